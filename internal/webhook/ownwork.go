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
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// The OrgConnection webhook waits on the apiserver for a SubjectAccessReview in most calls, so
// controller-runtime's latency histogram of it says as much about the apiserver as about the
// webhook. Its own work (decoding, cache lookups, deciding) is timed apart: from the request's
// arrival to the decision, less the time spent waiting on reviews.

// admissionClock is one admission request's arrival and the time it waited on reviews. Each
// request has its own, in its context; its reviews are made one after another.
type admissionClock struct {
	arrived time.Time
	waited  time.Duration
}

type admissionClockKey struct{}

// stampArrival is the webhook's context function: it runs before the request body is read.
func stampArrival(clk clock.PassiveClock) func(context.Context, *http.Request) context.Context {
	return func(ctx context.Context, _ *http.Request) context.Context {
		return context.WithValue(ctx, admissionClockKey{}, &admissionClock{arrived: clk.Now()})
	}
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
		Name: "clearance_webhook_own_work_seconds",
		Help: "Time the OrgConnection webhook spends on an admission request, from its arrival to its decision, " +
			"not counting the SubjectAccessReviews it waits on (those are the apiserver's work).",
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

// waiting runs a call to the apiserver, counting its time as waited rather than the webhook's.
func (o *ownWork) waiting(ctx context.Context, call func() error) error {
	c, ok := ctx.Value(admissionClockKey{}).(*admissionClock)
	if o == nil || !ok {
		return call()
	}
	start := o.clock.Now()
	err := call()
	c.waited += o.clock.Since(start)
	return err
}

// observe records the own work of the request in ctx so far (deferred by the validator).
func (o *ownWork) observe(ctx context.Context) {
	c, ok := ctx.Value(admissionClockKey{}).(*admissionClock)
	if o == nil || o.hist == nil || !ok {
		return
	}
	o.hist.Observe((o.clock.Since(c.arrived) - c.waited).Seconds())
}
