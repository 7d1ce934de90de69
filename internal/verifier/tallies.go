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
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Decisions counted per org and application (docs/metrics.md), for the org that granted access
// and the org that owns the application: clearance_verifier_application_decisions_total{org,
// application, reason}. Counting costs a request one atomic add on a tally the index entry it
// was decided on already points to; nothing is looked up, allocated or written to the
// apiserver. The labels come from objects, never from the request: org is a connection's
// namespace, or "" for a decision about an application's key or token made before any
// connection of the org asked for was found (a key disabled, an org that has not connected the
// application); so the series are bounded by (connections + applications) × the reasons
// possible at each, whatever clients send. Decisions about no application at all (no key, an
// unknown key) are in clearance_verifier_decisions_total only.

// ApplicationDecisionsMetric is the name of the per-application decisions counter.
const ApplicationDecisionsMetric = "clearance_verifier_application_decisions_total"

// tallyKey names a tally: the org (a connection's namespace, or "") and the Application ID.
type tallyKey struct{ org, app string }

// decisionTally counts one (org, application)'s decisions by reason.
type decisionTally struct {
	key  tallyKey
	n    [numReasons]atomic.Uint64
	refs int // index entries pointing at it (tallies.mu)
}

// count adds a decision; safe on a nil tally (counting off, or no application reached).
func (t *decisionTally) count(r reason) {
	if t != nil {
		t.n[r].Add(1)
	}
}

// tallies are every tally an index entry points to. Entries take one when they are published
// and give it back when they are replaced or removed, so an Application or connection updated
// keeps counting into the same tally, and one gone takes its series with it.
type tallies struct {
	mu   sync.Mutex
	m    map[tallyKey]*decisionTally
	desc *prometheus.Desc
	off  bool // Options.NoApplicationDecisions: entries get no tally
}

func newTallies(off bool) *tallies {
	return &tallies{m: map[tallyKey]*decisionTally{}, off: off, desc: prometheus.NewDesc(ApplicationDecisionsMetric,
		"Verifier answers by org (the connection's namespace; empty before a connection of the org asked for was found), Application ID and reason.",
		[]string{"org", "application", "reason"}, nil)}
}

// take is the tally of (org, app) for an entry being published; nil when counting is off or
// the application has no ID yet.
func (t *tallies) take(org, app string) *decisionTally {
	if t.off || app == "" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tallyKey{org, app}
	d := t.m[k]
	if d == nil {
		d = &decisionTally{key: k}
		t.m[k] = d
	}
	d.refs++
	return d
}

// give returns the tally of an entry replaced or removed.
func (t *tallies) give(d *decisionTally) {
	if d == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if d.refs--; d.refs <= 0 {
		delete(t.m, d.key)
	}
}

// series is the number of (org, application, reason) series with a count.
func (t *tallies) series() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, d := range t.m {
		for r := range d.n {
			if d.n[r].Load() > 0 {
				n++
			}
		}
	}
	return n
}

// Describe is prometheus.Collector's.
func (t *tallies) Describe(ch chan<- *prometheus.Desc) { ch <- t.desc }

// Collect is prometheus.Collector's: a counter for each reason an (org, application) has
// counted.
func (t *tallies) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range t.m {
		for r := range d.n {
			if n := d.n[r].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(t.desc, prometheus.CounterValue, float64(n), d.key.org, d.key.app, reason(r).String())
			}
		}
	}
}
