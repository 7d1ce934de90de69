/*
Copyright 2026 The Clearance Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package webhook

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"
)

// slowBody is a request body whose sender takes 2 ms before each part after its first.
type slowBody struct {
	clk  *clocktesting.FakePassiveClock
	r    io.Reader
	read int
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.read > 0 {
		b.clk.SetTime(b.clk.Now().Add(2 * time.Millisecond))
	}
	n, err := b.r.Read(p[:min(len(p), 4)])
	b.read += n
	return n, err
}

// TestOwnWorkStartsWhenTheBodyHasArrived: the time the apiserver takes to send the body is
// not the webhook's; its own work starts at the body's last byte.
func TestOwnWorkStartsWhenTheBodyHasArrived(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1_800_000_000, 0))
	reg := prometheus.NewRegistry()
	own, err := newOwnWork(clk, reg)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/", &slowBody{clk: clk, r: strings.NewReader(`{"kind":"AdmissionReview"}`)})
	ctx := stampArrival(clk)(context.Background(), r)
	body, err := io.ReadAll(r.Body)
	if err != nil || string(body) != `{"kind":"AdmissionReview"}` {
		t.Fatalf("the body read through the stamp was %q, %v", body, err)
	}
	clk.SetTime(clk.Now().Add(300 * time.Microsecond)) // decoding and deciding
	own.observe(ctx)
	if h := histogram(t, reg, "clearance_webhook_own_work_seconds"); h.GetSampleSum() != 0.0003 {
		t.Fatalf("own work %gs, want 0.0003s (the body's time in flight left out)", h.GetSampleSum())
	}
}

// TestOwnWorkIsNotMeasuredOutsideAnAdmission: a validator called without the webhook's context
// (a test calling it directly) records nothing.
func TestOwnWorkIsNotMeasuredOutsideAnAdmission(t *testing.T) {
	reg := prometheus.NewRegistry()
	own, err := newOwnWork(clocktesting.NewFakePassiveClock(time.Unix(0, 0)), reg)
	if err != nil {
		t.Fatal(err)
	}
	own.observe(context.Background())
	var none *ownWork
	none.observe(context.Background())
	if n := histogram(t, reg, "clearance_webhook_own_work_seconds").GetSampleCount(); n != 0 {
		t.Fatalf("%d samples recorded outside an admission", n)
	}
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
