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
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/clearance-dev/clearance/internal/index"
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

// TestOwnWorkStartsAtTheBodysEndNotAtALaterRead: a read after the body's end (which finds it
// ended again) does not move the request's arrival.
func TestOwnWorkStartsAtTheBodysEndNotAtALaterRead(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1_800_000_000, 0))
	reg := prometheus.NewRegistry()
	own, err := newOwnWork(clk, reg)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"kind":"AdmissionReview"}`))
	ctx := stampArrival(clk)(context.Background(), r)
	if _, err := io.ReadAll(r.Body); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(clk.Now().Add(time.Millisecond))
	if n, err := r.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("a read after the end: %d, %v", n, err)
	}
	clk.SetTime(clk.Now().Add(300 * time.Microsecond))
	own.observe(ctx)
	if h := histogram(t, reg, "clearance_webhook_own_work_seconds"); h.GetSampleSum() != 0.0013 {
		t.Fatalf("own work %gs, want 0.0013s (from the body's end)", h.GetSampleSum())
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

// TestTheOrgConnectionWebhookSetUpTimesItsOwnWork: the OrgConnection webhook that Setup
// registers stamps each request's arrival and records its own work, in the registry and by the
// clock it is given: none of the time the apiserver takes to send the body.
func TestTheOrgConnectionWebhookSetUpTimesItsOwnWork(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(1_800_000_000, 0))
	reg := prometheus.NewRegistry()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := index.Register(context.Background(), mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	if err := Setup(mgr, Options{Clock: clk, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE",` +
		`"kind":{"group":"access.clearance.dev","version":"v1alpha1","kind":"OrgConnection"},"namespace":"acme",` +
		`"object":{"metadata":{"name":"bi","namespace":"acme"},"spec":{"applicationID":"app_00000000000000000000000001","role":"Observer"}}}}`
	r := httptest.NewRequest(http.MethodPost, "/validate-access-clearance-dev-v1alpha1-orgconnection", &slowBody{clk: clk, r: strings.NewReader(review)})
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	mgr.GetWebhookServer().WebhookMux().ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("the webhook answered %d: %s", w.Code, w.Body)
	}
	h := histogram(t, reg, "clearance_webhook_own_work_seconds")
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 0 {
		t.Fatalf("%d samples summing to %gs, want one of 0s (the fake clock stands still once the body has arrived)", h.GetSampleCount(), h.GetSampleSum())
	}
}
