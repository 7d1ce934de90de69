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
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/clearance-dev/clearance/internal/keyformat"
)

func TestTheProbeRunsOftenEnoughForAShortMaxStaleness(t *testing.T) {
	for _, tc := range []struct {
		maxStaleness, probe, want time.Duration
		fails                     bool
	}{
		{maxStaleness: 0, want: DefaultProbeInterval},
		{maxStaleness: 4 * time.Second, want: 4 * time.Second / 3},
		{maxStaleness: time.Hour, want: DefaultProbeInterval},
		{maxStaleness: 4 * time.Second, probe: time.Second, want: time.Second},
		{maxStaleness: 4 * time.Second, probe: 4 * time.Second, fails: true},
	} {
		v, err := New(Options{Format: keyformat.Format{Prefix: keyformat.DefaultPrefix}, Registerer: prometheus.NewRegistry(),
			MaxStaleness: tc.maxStaleness, ProbeInterval: tc.probe})
		switch {
		case tc.fails && err == nil:
			t.Errorf("max staleness %s, probe %s: accepted, the verifier would go stale between probes", tc.maxStaleness, tc.probe)
		case !tc.fails && err != nil:
			t.Errorf("max staleness %s, probe %s: %v", tc.maxStaleness, tc.probe, err)
		case !tc.fails && v.opts.ProbeInterval != tc.want:
			t.Errorf("max staleness %s: probe every %s, want %s", tc.maxStaleness, v.opts.ProbeInterval, tc.want)
		}
	}
}

// fakeWatch is an informer's last synced resource version.
type fakeWatch struct {
	mu sync.Mutex
	rv string
}

func (f *fakeWatch) get() string   { f.mu.Lock(); defer f.mu.Unlock(); return f.rv }
func (f *fakeWatch) set(rv string) { f.mu.Lock(); defer f.mu.Unlock(); f.rv = rv }

func TestAfterAnOutageStalenessCountsUntilEveryInformerWatchesAgain(t *testing.T) {
	v, clk := outageVerifier(t)
	keys, conns := &fakeWatch{rv: "100"}, &fakeWatch{rv: "90"}
	wKeys, wConns := &watched{resourceVersion: keys.get}, &watched{resourceVersion: conns.get}
	v.watches = []*watched{wKeys, wConns}
	since := func() time.Duration { return v.sinceContact(clk.Now()) }

	// The apiserver is lost 5s after the last contact; 20s later a probe gets through again.
	clk.Step(5 * time.Second)
	v.markOutage()
	clk.Step(20 * time.Second)
	v.recordContact()
	if got := since(); got != 25*time.Second {
		t.Fatalf("a probe got through but no informer watches yet: staleness %s, want 25s (since the last contact before the outage)", got)
	}
	// An event from one informer proves that one only.
	v.heardFrom(wKeys)
	clk.Step(10 * time.Second)
	if got := since(); got != 35*time.Second {
		t.Fatalf("one informer of two watches again: staleness %s, want 35s", got)
	}
	if v.unavailable(clk.Now()) != rStale {
		t.Fatal("35s without knowing every informer watches, max 30s: not stale")
	}
	// The other relists: its resource version moves. The outage is over.
	conns.set("120")
	if got := since(); got != 10*time.Second {
		t.Fatalf("every informer watches again: staleness %s, want 10s (since the probe)", got)
	}
	if v.unavailable(clk.Now()) != rOK {
		t.Fatal("every informer watches again: still unavailable")
	}

	// Nothing changed anywhere during a second outage: a probe reading the resource version
	// the informers hold proves them current.
	v.markOutage()
	clk.Step(time.Second)
	keys.set("120")
	rv := "120"
	v.outage.probeRV.Store(&rv)
	v.recordContact()
	if got := since(); got != 0 {
		t.Fatalf("the probe read the informers' resource version: staleness %s, want 0", got)
	}
}

// fakeWatching is an informer that counts its watches (package watches).
type fakeWatching struct {
	mu     sync.Mutex
	opened uint64
	open   bool
}

func (f *fakeWatching) get() (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opened, f.open
}
func (f *fakeWatching) set(opened uint64, open bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened, f.open = opened, open
}

func TestAfterAnOutageAWatchOpenedSinceProvesAnIdleInformer(t *testing.T) {
	v, clk := outageVerifier(t)
	// An informer with nothing to deliver: its resource version never moves.
	rv := &fakeWatch{rv: "90"}
	watching := &fakeWatching{opened: 1, open: true}
	w := &watched{resourceVersion: rv.get, watching: watching.get}
	v.watches = []*watched{w}
	since := func() time.Duration { return v.sinceContact(clk.Now()) }

	clk.Step(5 * time.Second)
	v.markOutage()
	clk.Step(20 * time.Second)
	v.recordContact()
	// The watch open since before the outage may be cut without the informer knowing yet.
	if got := since(); got != 25*time.Second {
		t.Fatalf("only the watch from before the outage is open: staleness %s, want 25s", got)
	}
	// A new watch opened and broke again: nothing proved.
	watching.set(2, false)
	if got := since(); got != 25*time.Second {
		t.Fatalf("a watch opened since the outage is closed again: staleness %s, want 25s", got)
	}
	watching.set(3, true)
	if got := since(); got != 0 {
		t.Fatalf("a watch opened since the outage is open: staleness %s, want 0 (the probe just now)", got)
	}
	// A second outage: the open watch is suspect again until a newer one opens.
	v.markOutage()
	clk.Step(time.Second)
	v.recordContact()
	if got := since(); got != time.Second {
		t.Fatalf("second outage, only the watch from before it is open: staleness %s, want 1s", got)
	}
	watching.set(4, true)
	if got := since(); got != 0 {
		t.Fatalf("second outage, a newer watch is open: staleness %s, want 0", got)
	}
}

// TestAProbeProvesOnlyTheInformersThatHoldWhatItRead: after an outage a successful probe says
// the apiserver is back, and which resource version it is at. An informer still blind since
// the outage holds the version it had then: it is proved current only if the probe read
// exactly that (nothing changed anywhere), or its own version moved (it listed or watched
// again). Over every combination for two informers, the outage ends exactly when each is
// proved, and until then staleness counts from the outage's beginning.
func TestAProbeProvesOnlyTheInformersThatHoldWhatItRead(t *testing.T) {
	for _, keysMoved := range []bool{false, true} {
		for _, connsMoved := range []bool{false, true} {
			for _, probe := range []string{"", "90", "100", "130"} {
				v, clk := outageVerifier(t)
				keys, conns := &fakeWatch{rv: "100"}, &fakeWatch{rv: "90"}
				v.watches = []*watched{{resourceVersion: keys.get}, {resourceVersion: conns.get}}

				clk.Step(5 * time.Second)
				v.markOutage()
				clk.Step(20 * time.Second)
				if keysMoved {
					keys.set("130")
				}
				if connsMoved {
					conns.set("130")
				}
				if probe != "" {
					v.outage.probeRV.Store(&probe)
				}
				v.recordContact()

				proved := func(rv string, moved bool) bool { return moved || (probe != "" && rv == probe) }
				want := 25 * time.Second
				if proved("100", keysMoved) && proved("90", connsMoved) {
					want = 0
				}
				if got := v.sinceContact(clk.Now()); got != want {
					t.Errorf("keys moved %v, connections moved %v, the probe read %q: staleness %s, want %s",
						keysMoved, connsMoved, probe, got, want)
				}
			}
		}
	}
}

// TestAnOutageCountsFromItsBeginningWhateverFailsOrArrivesDuringIt: while one informer is
// still blind, another's events are contact, and further probes may fail: neither moves the
// beginning of the outage, so the blind informer's view is as old as the outage, and the
// verifier goes stale once that is older than --max-staleness.
func TestAnOutageCountsFromItsBeginningWhateverFailsOrArrivesDuringIt(t *testing.T) {
	v, clk := outageVerifier(t)
	keys, conns := &fakeWatch{rv: "100"}, &fakeWatch{rv: "90"}
	wKeys := &watched{resourceVersion: keys.get}
	v.watches = []*watched{wKeys, {resourceVersion: conns.get}}

	clk.Step(5 * time.Second)
	v.markOutage() // the last contact was at epoch
	for range 5 {
		clk.Step(5 * time.Second)
		v.heardFrom(wKeys) // the keys' watch delivers; the connections' stays blind
		v.markOutage()     // and the next probe fails again
	}
	if got := v.sinceContact(clk.Now()); got != 30*time.Second {
		t.Fatalf("the connections' informer blind since the outage 30s ago: staleness %s, want 30s", got)
	}
	clk.Step(time.Second)
	if r := v.unavailable(clk.Now()); r != rStale {
		t.Fatalf("31s since the outage began, max 30s: %s, want stale", r)
	}
}

// outageVerifier is a verifier on a fake clock at epoch, going stale after 30 s without
// contact, for the outage tests to give informers of their own (v.watches).
func outageVerifier(t *testing.T) (*Verifier, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(epoch)
	v, err := New(Options{Clock: clk, Format: keyformat.Format{Prefix: keyformat.DefaultPrefix}, Registerer: prometheus.NewRegistry(),
		MaxStaleness: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return v, clk
}
