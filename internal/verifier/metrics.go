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

package verifier

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Endpoints, the label of the latency histogram.
const (
	endpointAuthorize = "authorize"
	endpointVerify    = "verify"
)

// metrics are the verifier's Prometheus metrics, registered on the Registerer the caller
// passes (controller-runtime's registry in main.go, a fresh one in tests). Labels hold reasons,
// endpoints and kinds only: never a key, a key id or an org.
type metrics struct {
	decisions        [numReasons]prometheus.Counter
	latencyAuthorize prometheus.Observer
	latencyVerify    prometheus.Observer
	flushes          *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, v *Verifier) (*metrics, error) {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clearance_verifier_decisions_total",
		Help: "Verifier answers by result (allowed, denied, error) and machine-readable reason.",
	}, []string{"result", "reason"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "clearance_verifier_request_duration_seconds",
		Help:    "Time to answer a verifier request, by endpoint (authorize, verify).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16), // 50µs .. 1.6s
	}, []string{"endpoint"})
	flushes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clearance_verifier_usage_writes_total",
		Help: "Usage status patches of APIKeys by result (ok, conflict, gone, error).",
	}, []string{"result"})
	indexSize := func(kind string, size func() int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "clearance_verifier_index_entries",
			Help:        "Entries in the verifier's index, by kind: keys (current and rotated-out key ids), applications, connections ((org, application) pairs), metricsets (orgs with MetricSets).",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(size()) })
	}
	staleness := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clearance_verifier_staleness_seconds",
		Help: "Seconds the verifier's view may be out of date: since it last heard from the apiserver, or since an outage began until every informer watches again. Above --max-staleness it answers 503 stale.",
	}, func() float64 { return v.sinceContact(v.clock.Now()).Seconds() })

	for _, c := range []prometheus.Collector{
		decisions, latency, flushes, staleness,
		indexSize("keys", v.index.keys.len),
		indexSize("applications", v.index.apps.len),
		indexSize("connections", v.index.conns.len),
		indexSize("metricsets", v.index.metrics.len),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m := &metrics{
		latencyAuthorize: latency.WithLabelValues(endpointAuthorize),
		latencyVerify:    latency.WithLabelValues(endpointVerify),
		flushes:          flushes,
	}
	for r := reason(0); r < numReasons; r++ {
		m.decisions[r] = decisions.WithLabelValues(resultOf(r), r.String())
	}
	return m, nil
}

// resultOf groups reasons: allowed, denied (the key or the request was refused), or error (the
// verifier could not answer, or was asked wrongly).
func resultOf(r reason) string {
	switch s := r.status(); {
	case s < 300:
		return "allowed"
	case s == 401 || s == 403 || s == 429:
		return "denied"
	}
	return "error"
}
