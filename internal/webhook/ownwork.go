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
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// The OrgConnection webhook's own work (decoding, cache lookups, deciding) is timed apart from
// controller-runtime's latency histogram, which also counts the time the apiserver takes to
// send the body: from the request's arrival (its last byte read) to the decision.

// admissionClock is one admission request's arrival. Each request has its own, in its context.
type admissionClock struct {
	arrived time.Time
}

type admissionClockKey struct{}

// stampArrival is the webhook's context function: it runs once the request's headers are read
// and before its body is, so it stamps the arrival then and again when the body's last byte
// has been read.
func stampArrival(clk clock.PassiveClock) func(context.Context, *http.Request) context.Context {
	return func(ctx context.Context, r *http.Request) context.Context {
		c := &admissionClock{arrived: clk.Now()}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &arrivingBody{ReadCloser: r.Body, clock: clk, c: c}
		}
		return context.WithValue(ctx, admissionClockKey{}, c)
	}
}

// arrivingBody moves its request's arrival to the instant its last byte was read.
type arrivingBody struct {
	io.ReadCloser
	clock clock.PassiveClock
	c     *admissionClock
	done  bool
}

func (b *arrivingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		b.c.arrived = b.clock.Now()
	}
	return n, err
}

// ownWork observes the own work of the admissions whose context stampArrival made.
type ownWork struct {
	clock clock.PassiveClock
	hist  prometheus.Observer // nil: not measured
}

// newOwnWork makes the histogram clearance_webhook_own_work_seconds and registers it with reg
// (nil: not registered).
func newOwnWork(clk clock.PassiveClock, reg prometheus.Registerer) (*ownWork, error) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                           "clearance_webhook_own_work_seconds",
		Help:                           "Time the OrgConnection webhook spends on an admission request, from its arrival (its last byte read) to its decision.",
		Buckets:                        prometheus.ExponentialBuckets(0.0000625, 2, 14),
		NativeHistogramBucketFactor:    1.1,
		NativeHistogramMaxBucketNumber: 160,
	})
	if reg != nil {
		if err := reg.Register(h); err != nil {
			return nil, err
		}
	}
	return &ownWork{clock: clk, hist: h}, nil
}

// observe records the own work of the request in ctx so far (deferred by the validator).
func (o *ownWork) observe(ctx context.Context) {
	c, ok := ctx.Value(admissionClockKey{}).(*admissionClock)
	if o == nil || o.hist == nil || !ok {
		return
	}
	o.hist.Observe(o.clock.Since(c.arrived).Seconds())
}
