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
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/watches"
)

// Staleness: whether the verifier can answer truthfully at all. Before its informers have
// delivered their initial lists it answers 503 not_ready; without contact with the apiserver
// for longer than MaxStaleness, or after an outage until every informer watches again, 503
// stale. Contact is an informer event (heardFrom) or a successful probe (prober).

// staleness is the state behind those answers. The Verifier embeds it; the informer handlers
// (SetupWithManager) and the probe feed it, every request asks it (unavailable).
type staleness struct {
	clock        clock.PassiveClock
	maxStaleness time.Duration

	// lastContact is when the verifier last heard from the apiserver (unix nanoseconds of the
	// injected clock): an informer event or a successful probe.
	lastContact atomic.Int64
	// watches are the informers the index is fed from, and outage says since when they may be
	// blind; see markOutage.
	watches []*watched
	outage  outage
	// synced turns true once every informer handler has seen its initial list; until then the
	// verifier answers 503 not_ready instead of refusing keys it has not loaded yet.
	synced atomic.Bool
	regs   []toolscache.ResourceEventHandlerRegistration
}

// track follows an informer the index is fed from: its events are contact (heardFrom with the
// returned watched), and after an outage it must prove it watches again (watched.proved).
func (s *staleness) track(inf any) *watched {
	w := &watched{}
	if ls, ok := inf.(interface{ LastSyncResourceVersion() string }); ok {
		w.resourceVersion = ls.LastSyncResourceVersion
		if ws, ok := inf.(watches.Health); ok {
			w.watching = ws.Watching
		}
		s.watches = append(s.watches, w)
	}
	return w
}

// unavailable says why the verifier cannot answer truthfully now, or rOK.
func (s *staleness) unavailable(now time.Time) reason {
	if !s.synced.Load() {
		for _, reg := range s.regs {
			if !reg.HasSynced() {
				return rNotReady
			}
		}
		s.synced.Store(true)
	}
	if s.sinceContact(now) > s.maxStaleness {
		return rStale
	}
	return rOK
}

func (s *staleness) recordContact() { s.lastContact.Store(s.clock.Now().UnixNano()) }

// heardFrom records an event from an informer: contact, and proof that its watch is live.
func (s *staleness) heardFrom(w *watched) {
	s.recordContact()
	w.suspectRV.Store(nil)
}

// sinceContact is how long the verifier's view may be out of date: since it last heard from
// the apiserver, or, while an informer may still be blind after an outage, since the outage
// began.
func (s *staleness) sinceContact(now time.Time) time.Duration {
	last := s.lastContact.Load()
	if since := s.outage.since.Load(); since != 0 {
		if since = s.outageSince(); since != 0 && since < last {
			last = since
		}
	}
	return now.Sub(time.Unix(0, last))
}

// watched is one informer the index is fed from.
type watched struct {
	// resourceVersion is the informer's last synced resource version; it moves with every
	// event, relist and watch bookmark.
	resourceVersion func() string
	// watching, when the informer counts its watches (package watches), says how many the
	// apiserver has accepted and whether one is open now.
	watching func() (opened uint64, open bool)
	// suspectRV is the resource version the informer had when an outage was noticed, nil when
	// it is not suspect.
	suspectRV atomic.Pointer[string]
	// suspectOpened is how many watches the informer had opened when an outage was last
	// noticed.
	suspectOpened atomic.Uint64
}

// proved says whether a suspect informer follows the apiserver again: it had an event since
// (heardFrom clears suspectRV), its resource version moved (a relist or a bookmark) or equals
// what a probe read after the outage (nothing changed anywhere since), or a watch opened since
// the outage was noticed is still open.
func (w *watched) proved(suspect string, probeRV *string) bool {
	if rv := w.resourceVersion(); rv != suspect || (probeRV != nil && rv == *probeRV) {
		return true
	}
	if w.watching == nil {
		return false
	}
	opened, open := w.watching()
	return open && opened > w.suspectOpened.Load()
}

// outage is the state of the verifier after it lost the apiserver. A probe that succeeds
// again proves that the apiserver is back, not that the informers are: until an informer
// watches again the index misses every change (a disabled or deleted key). So after an outage
// the verifier counts staleness from the outage's beginning until every informer has proved
// that it follows the apiserver again (watched.proved).
type outage struct {
	mu sync.Mutex
	// since is the last contact before the outage (unix nanoseconds), 0 when there is none.
	since atomic.Int64
	// probeRV is the resource version the last successful probe read since the outage.
	probeRV atomic.Pointer[string]
}

// markOutage records that the apiserver could not be reached; informer events stop proving
// anything about the other informers until each has proved live on its own.
func (s *staleness) markOutage() {
	s.outage.mu.Lock()
	defer s.outage.mu.Unlock()
	if s.outage.since.Load() == 0 {
		s.outage.since.Store(s.lastContact.Load())
	}
	s.outage.probeRV.Store(nil)
	for _, w := range s.watches {
		if w.watching != nil {
			// A watch open now may be one the outage has cut without the informer knowing
			// yet: only one opened from here on proves anything.
			opened, _ := w.watching()
			w.suspectOpened.Store(opened)
		}
		if w.suspectRV.Load() == nil {
			rv := w.resourceVersion()
			w.suspectRV.Store(&rv)
		}
	}
}

// outageSince returns the beginning of the outage while an informer may still be blind, and
// ends the outage (returning 0) once none is.
func (s *staleness) outageSince() int64 {
	s.outage.mu.Lock()
	defer s.outage.mu.Unlock()
	probeRV := s.outage.probeRV.Load()
	for _, w := range s.watches {
		suspect := w.suspectRV.Load()
		if suspect == nil {
			continue
		}
		if w.proved(*suspect, probeRV) {
			w.suspectRV.Store(nil)
			continue
		}
		return s.outage.since.Load()
	}
	s.outage.since.Store(0)
	return 0
}

// prober is the staleness probe: informer events prove contact only when something changes, so
// every ProbeInterval it makes one cheap uncached call (a List of at most one APIKey).
type prober struct{ v *Verifier }

func (p *prober) NeedLeaderElection() bool { return false }

func (p *prober) Start(ctx context.Context) error {
	t := p.v.clock.NewTicker(p.v.opts.ProbeInterval)
	defer t.Stop()
	p.v.probe(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			p.v.probe(ctx)
		}
	}
}

func (v *Verifier) probe(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, 5*time.Second)
	defer cancel()
	list := &v1.APIKeyList{}
	if err := v.apiReader.List(ctx, list, client.Limit(1)); err != nil {
		// An error status is an answer: the apiserver is reachable. Anything else (refused,
		// reset, timed out) has most likely cut the informers' watches too.
		var answer apierrors.APIStatus
		if !errors.As(err, &answer) && parent.Err() == nil {
			v.markOutage()
		}
		v.log.V(1).Info("staleness probe failed", "error", err.Error(), "sinceContact", v.sinceContact(v.clock.Now()).String())
		return
	}
	if v.outage.since.Load() != 0 {
		rv := list.ResourceVersion
		v.outage.probeRV.Store(&rv)
	}
	v.recordContact()
}
