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
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// The verifier reads the four kinds and writes only the usage fields of APIKey status.
// +kubebuilder:rbac:groups=access.clearance.dev,resources=apikeys;applications;orgconnections;metricsets,verbs=get;list;watch
// +kubebuilder:rbac:groups=access.clearance.dev,resources=apikeys/status,verbs=get;patch

// Defaults of Options.
const (
	DefaultAddr          = ":8090"
	DefaultMaxStaleness  = 5 * time.Minute
	DefaultFlushInterval = 10 * time.Second
	DefaultProbeInterval = 10 * time.Second
	// DefaultShutdownTimeout bounds draining HTTP requests and the final usage flush.
	DefaultShutdownTimeout = 10 * time.Second
)

// Options configure a Verifier; main.go sets them from flags.
type Options struct {
	// Addr is where the HTTP server listens (--verifier-bind-address). Empty or "0": SetupWithManager
	// starts no server (use Handler or Serve).
	Addr string
	// Clock is the only source of time: expiry, rate limits, staleness, usage timestamps and the
	// flusher's and probe's tickers. Default: the real clock.
	Clock clock.WithTicker
	// Format parses presented keys (the configured prefix).
	Format keyformat.Format
	// MaxStaleness is how long the verifier keeps answering from its index without hearing from
	// the apiserver before it answers 503 stale (--max-staleness).
	MaxStaleness time.Duration
	// FlushInterval is how often usage counts are written to APIKey status (--usage-flush-interval).
	FlushInterval time.Duration
	// ProbeInterval is how often the staleness probe calls the apiserver; it must be shorter
	// than MaxStaleness. Default: DefaultProbeInterval, or a third of MaxStaleness when that is
	// shorter, so a connected verifier with nothing changing never goes stale between probes.
	ProbeInterval time.Duration
	// ShutdownTimeout bounds the HTTP drain and the final flush on shutdown.
	ShutdownTimeout time.Duration
	// Registerer receives the verifier's metrics. Required: the verifier registers nothing
	// globally.
	Registerer prometheus.Registerer
	// Logger defaults to ctrl.Log.WithName("verifier").
	Logger logr.Logger
}

// Verifier answers forward-auth and JSON key checks from an in-memory index.
type Verifier struct {
	opts    Options
	clock   clock.WithTicker
	format  keyformat.Format
	log     logr.Logger
	index   *index
	usage   usageTracker
	metrics *metrics

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

	client    client.Client // writes usage; reads APIKeys from the cache
	apiReader client.Reader // uncached: the staleness probe and conflict retries

	addr          atomic.Pointer[string]
	serverStopped chan struct{}
	stopOnce      sync.Once
}

// New builds a Verifier. It serves requests from whatever its index holds: SetupWithManager
// connects the index to the informers, tests feed it with Apply and Remove.
func New(opts Options) (*Verifier, error) {
	if err := keyformat.ValidatePrefix(opts.Format.Prefix); err != nil {
		return nil, fmt.Errorf("verifier: key format: %w", err)
	}
	if opts.Registerer == nil {
		return nil, errors.New("verifier: Options.Registerer is required (pass controller-runtime's metrics.Registry)")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = ctrl.Log.WithName("verifier")
	}
	if opts.MaxStaleness > 0 && opts.ProbeInterval == 0 {
		opts.ProbeInterval = min(DefaultProbeInterval, max(opts.MaxStaleness/3, time.Millisecond))
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
		n   string
	}{
		{&opts.MaxStaleness, DefaultMaxStaleness, "MaxStaleness"},
		{&opts.FlushInterval, DefaultFlushInterval, "FlushInterval"},
		{&opts.ProbeInterval, DefaultProbeInterval, "ProbeInterval"},
		{&opts.ShutdownTimeout, DefaultShutdownTimeout, "ShutdownTimeout"},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return nil, fmt.Errorf("verifier: %s must be positive, got %s", d.n, *d.v)
		}
	}
	if opts.ProbeInterval >= opts.MaxStaleness {
		return nil, fmt.Errorf("verifier: ProbeInterval (%s) must be shorter than MaxStaleness (%s), or the verifier goes stale between probes",
			opts.ProbeInterval, opts.MaxStaleness)
	}
	v := &Verifier{
		opts:          opts,
		clock:         opts.Clock,
		format:        opts.Format,
		log:           opts.Logger,
		index:         newIndex(opts.Logger),
		serverStopped: make(chan struct{}),
	}
	v.synced.Store(true)
	v.recordContact()
	m, err := newMetrics(opts.Registerer, v)
	if err != nil {
		return nil, fmt.Errorf("verifier: registering metrics: %w", err)
	}
	v.metrics = m
	return v, nil
}

// Handler is the verifier's HTTP handler, for tests, benchmarks and embedding.
func (v *Verifier) Handler() http.Handler { return v }

// Apply adds or updates an APIKey, Application, OrgConnection or MetricSet in the index; the
// informer handlers call it, and tests and benchmarks feed the index with it.
func (v *Verifier) Apply(obj any) {
	switch o := obj.(type) {
	case *v1.APIKey:
		v.index.applyAPIKey(o)
	case *v1.Application:
		v.index.applyApplication(o)
	case *v1.OrgConnection:
		v.index.applyOrgConnection(o)
	case *v1.MetricSet:
		v.index.applyMetricSet(o)
	}
}

// Remove drops an object from the index (accepting informers' tombstones).
func (v *Verifier) Remove(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	switch o := obj.(type) {
	case *v1.APIKey:
		v.index.removeAPIKey(o)
	case *v1.Application:
		v.index.removeApplication(o)
	case *v1.OrgConnection:
		v.index.removeOrgConnection(o)
	case *v1.MetricSet:
		v.index.removeMetricSet(o)
	}
}

// SetupWithManager feeds the index from the manager's informers and adds the verifier's
// runnables: the HTTP server (unless Options.Addr is empty or "0"), the usage flusher and the
// staleness probe. None needs leader election: every replica verifies.
func (v *Verifier) SetupWithManager(mgr ctrl.Manager) error {
	v.client = mgr.GetClient()
	v.apiReader = mgr.GetAPIReader()
	for _, obj := range []client.Object{&v1.APIKey{}, &v1.Application{}, &v1.OrgConnection{}, &v1.MetricSet{}} {
		inf, err := mgr.GetCache().GetInformer(context.Background(), obj)
		if err != nil {
			return fmt.Errorf("verifier: informer for %T: %w", obj, err)
		}
		w := &watched{}
		if ls, ok := inf.(interface{ LastSyncResourceVersion() string }); ok {
			w.resourceVersion = ls.LastSyncResourceVersion
			if ws, ok := inf.(interface{ Watching() (uint64, bool) }); ok {
				w.watching = ws.Watching
			}
			v.watches = append(v.watches, w)
		}
		handler := toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { v.heardFrom(w); v.Apply(o) },
			UpdateFunc: func(_, o any) { v.heardFrom(w); v.Apply(o) },
			DeleteFunc: func(o any) { v.heardFrom(w); v.Remove(o) },
		}
		reg, err := inf.AddEventHandler(handler)
		if err != nil {
			return fmt.Errorf("verifier: event handler for %T: %w", obj, err)
		}
		v.regs = append(v.regs, reg)
	}
	v.synced.Store(false)
	runnables := []runnable{&flusher{v}, &prober{v}}
	if v.opts.Addr != "" && v.opts.Addr != "0" {
		runnables = append(runnables, &server{v})
	} else {
		v.markServerStopped()
	}
	for _, r := range runnables {
		if err := mgr.Add(r); err != nil {
			return err
		}
	}
	return nil
}

// ReadyzCheck fails while the index has not loaded or is stale, for mgr.AddReadyzCheck in a
// verifier-only Deployment, so a Service stops sending requests to a replica that cannot answer.
func (v *Verifier) ReadyzCheck(_ *http.Request) error {
	if r := v.unavailable(v.clock.Now()); r != rOK {
		return errors.New(r.String())
	}
	return nil
}

// Addr is the address the HTTP server listens on, once it does ("" before).
func (v *Verifier) Addr() string {
	if a := v.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// unavailable says why the verifier cannot answer truthfully now, or rOK.
func (v *Verifier) unavailable(now time.Time) reason {
	if !v.synced.Load() {
		for _, reg := range v.regs {
			if !reg.HasSynced() {
				return rNotReady
			}
		}
		v.synced.Store(true)
	}
	if v.sinceContact(now) > v.opts.MaxStaleness {
		return rStale
	}
	return rOK
}

func (v *Verifier) recordContact() { v.lastContact.Store(v.clock.Now().UnixNano()) }

// heardFrom records an event from an informer: contact, and proof that its watch is live.
func (v *Verifier) heardFrom(w *watched) {
	v.recordContact()
	w.suspectRV.Store(nil)
}

// sinceContact is how long the verifier's view may be out of date: since it last heard from
// the apiserver, or, while an informer may still be blind after an outage, since the outage
// began.
func (v *Verifier) sinceContact(now time.Time) time.Duration {
	last := v.lastContact.Load()
	if since := v.outage.since.Load(); since != 0 {
		if since = v.outageSince(); since != 0 && since < last {
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
func (v *Verifier) markOutage() {
	v.outage.mu.Lock()
	defer v.outage.mu.Unlock()
	if v.outage.since.Load() == 0 {
		v.outage.since.Store(v.lastContact.Load())
	}
	v.outage.probeRV.Store(nil)
	for _, w := range v.watches {
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
func (v *Verifier) outageSince() int64 {
	v.outage.mu.Lock()
	defer v.outage.mu.Unlock()
	probeRV := v.outage.probeRV.Load()
	for _, w := range v.watches {
		suspect := w.suspectRV.Load()
		if suspect == nil {
			continue
		}
		if w.proved(*suspect, probeRV) {
			w.suspectRV.Store(nil)
			continue
		}
		return v.outage.since.Load()
	}
	v.outage.since.Store(0)
	return 0
}

// Serve answers on ln until ctx ends, then drains requests in flight for up to
// Options.ShutdownTimeout.
func (v *Verifier) Serve(ctx context.Context, ln net.Listener) error {
	defer v.markServerStopped()
	srv := &http.Server{
		Handler:           v,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	addr := ln.Addr().String()
	v.addr.Store(&addr)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), v.opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

func (v *Verifier) markServerStopped() { v.stopOnce.Do(func() { close(v.serverStopped) }) }

// runnable is a manager Runnable that runs in every replica, leader or not.
type runnable interface {
	Start(context.Context) error
	NeedLeaderElection() bool
}

// server is the HTTP listener as a manager Runnable.
type server struct{ v *Verifier }

func (s *server) NeedLeaderElection() bool { return false }

func (s *server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.v.opts.Addr)
	if err != nil {
		s.v.markServerStopped()
		return fmt.Errorf("verifier: listening on %s: %w", s.v.opts.Addr, err)
	}
	s.v.log.Info("verifier listening", "address", ln.Addr().String())
	return s.v.Serve(ctx, ln)
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

// flusher writes usage every FlushInterval and once more on shutdown, after the HTTP server
// has drained, so requests answered during the drain are counted too.
type flusher struct{ v *Verifier }

func (f *flusher) NeedLeaderElection() bool { return false }

func (f *flusher) Start(ctx context.Context) error {
	t := f.v.clock.NewTicker(f.v.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), f.v.opts.ShutdownTimeout)
			defer cancel()
			select {
			case <-f.v.serverStopped:
			case <-final.Done():
			}
			if err := f.v.Flush(final); err != nil {
				f.v.log.Error(err, "final usage flush incomplete; these counts are lost")
			}
			return nil
		case <-t.C():
			if err := f.v.Flush(ctx); err != nil {
				f.v.log.Error(err, "usage flush incomplete; retrying with the next flush")
			}
		}
	}
}
