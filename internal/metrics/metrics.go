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

// Package metrics defines Clearance's Prometheus metrics. Nothing here is global: each set is
// created with the registry it belongs to (controller-runtime's in main.go, a fresh one in tests).
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a key was minted, the label values of clearance_key_mints_total.
const (
	MintNew      = "new"
	MintRotated  = "rotated"
	MintReplaced = "replaced"
	MintAdopted  = "adopted"
)

// Controllers are the controllers' metrics. Reconcile errors and durations come from
// controller-runtime's own controller_runtime_reconcile_* metrics.
type Controllers struct {
	// Mints counts keys minted or adopted, by reason.
	Mints *prometheus.CounterVec
	// TimeToReady observes the time from an APIKey's creation to its first Ready.
	TimeToReady prometheus.Histogram
}

// KeyStateCounter counts APIKeys by state when Prometheus scrapes; it reads the informer cache.
type KeyStateCounter func() (map[string]int, error)

// NewControllers creates the controllers' metrics and registers them, with a gauge of keys by
// state computed at scrape time from countKeys.
func NewControllers(reg prometheus.Registerer, countKeys KeyStateCounter) (*Controllers, error) {
	m := &Controllers{
		Mints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clearance_key_mints_total",
			Help: "Keys minted into Secrets, by reason: new, rotated, replaced (Secret lost or edited), adopted (restored APIKey).",
		}, []string{"reason"}),
		TimeToReady: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clearance_key_time_to_ready_seconds",
			Help:    "Time from an APIKey's creation to its key being minted and Ready.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
	}
	for _, c := range []prometheus.Collector{m.Mints, m.TimeToReady, &keyStates{count: countKeys}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveTimeToReady records how long a key took to become Ready.
func (m *Controllers) ObserveTimeToReady(d time.Duration) { m.TimeToReady.Observe(d.Seconds()) }

var keyStatesDesc = prometheus.NewDesc("clearance_keys", "APIKeys by state.", []string{"state"}, nil)

// keyStates is a collector so the gauge is always what the cache holds, with no bookkeeping
// in the reconcile loop.
type keyStates struct{ count KeyStateCounter }

func (k *keyStates) Describe(ch chan<- *prometheus.Desc) { ch <- keyStatesDesc }

func (k *keyStates) Collect(ch chan<- prometheus.Metric) {
	counts, err := k.count()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(keyStatesDesc, err)
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(keyStatesDesc, prometheus.GaugeValue, float64(n), state)
	}
}
