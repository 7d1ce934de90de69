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
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// The verifier reads the four kinds and writes only the usage fields of APIKey status.
// +kubebuilder:rbac:groups=access.clearance.dev,resources=apikeys;applications;orgconnections;metricsets,verbs=get;list;watch
// +kubebuilder:rbac:groups=access.clearance.dev,resources=apikeys/status,verbs=get;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Defaults of Options.
const (
	DefaultAddr          = ":8090"
	DefaultWriteMinRole  = v1.RoleAnalyst
	DefaultMaxStaleness  = 5 * time.Minute
	DefaultFlushInterval = 10 * time.Second
	DefaultProbeInterval = 10 * time.Second
	// DefaultShutdownTimeout bounds draining HTTP requests and the final usage flush.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading one request, its headers and body.
	DefaultReadTimeout = 30 * time.Second
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
	// WriteMinRole is the least role of a request whose method is not GET, HEAD or OPTIONS
	// (or is unknown), unless the request names minRole (--write-min-role). Default: Analyst.
	WriteMinRole v1.Role
	// DefaultAllowedOrigins are the allow-list's system default entries
	// (--default-allowed-origins): browser origins every Application's keys may be used from, on
	// top of its own spec.allowedOrigins. They live in the verifier's settings, not in any
	// Application, so no org can remove them; each is scheme://host[:port] in lowercase.
	DefaultAllowedOrigins []string
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
	// ReadTimeout bounds reading one request, its headers and body: no request the verifier
	// answers streams its body, and without it a client that announces a body and never sends
	// it holds a connection and a goroutine for as long as it likes. Default:
	// DefaultReadTimeout.
	ReadTimeout time.Duration
	// Registerer receives the verifier's metrics. Required: the verifier registers nothing
	// globally.
	Registerer prometheus.Registerer
	// Logger defaults to ctrl.Log.WithName("verifier").
	Logger logr.Logger
	// OAuth configures the token endpoint and access tokens (oauth.go).
	OAuth OAuthOptions
	// NoApplicationDecisions turns off counting decisions per org and application
	// (--application-decision-metrics=false; tallies.go), for measuring what it costs.
	NoApplicationDecisions bool
	// DecisionLog exports every decision as an OpenTelemetry log record when its Endpoint is
	// set (--decision-log-otlp-endpoint; decisionlog.go). Empty: nothing is exported.
	DecisionLog DecisionLogOptions

	// RateLimitStore, when set, keeps rate-limit buckets for every replica at once
	// (--rate-limit-store), so a key's limits hold exactly across replicas. Nil: each replica
	// limits on its own, and a key may get its limit from each.
	RateLimitStore RateLimitStore
	// RateLimitStoreTimeout bounds one call to the store (--rate-limit-store-timeout). Default:
	// DefaultRateLimitStoreTimeout.
	RateLimitStoreTimeout time.Duration
	// RateLimitStoreBackoff is how long after a failed call the replica limits in memory before
	// it tries the store again. Default: DefaultRateLimitStoreBackoff.
	RateLimitStoreBackoff time.Duration
	// RateLimitFallbackReplicas is how many replicas share each limit while the store is
	// unreachable: each allows limit/N, rounded up (--rate-limit-store-fallback-replicas).
	// Default: DefaultFallbackReplicas.
	RateLimitFallbackReplicas int
}

// Verifier answers forward-auth and JSON key checks from an in-memory index.
type Verifier struct {
	opts    Options
	clock   clock.WithTicker
	rules   rules
	log     logr.Logger
	index   *index
	usage   usageTracker
	metrics *metrics
	oauth   oauthState
	// dlog is the decision log; nil when off (decisionlog.go).
	dlog *decisionLog

	// staleness says whether the index can be trusted now (staleness.go).
	staleness

	// events records what the org that granted should see (codegrant.go); nil without a
	// manager.
	events events.EventRecorder

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
	if opts.WriteMinRole == "" {
		opts.WriteMinRole = DefaultWriteMinRole
	}
	if opts.WriteMinRole.Rank() < 0 {
		return nil, fmt.Errorf("verifier: WriteMinRole %q is not a role; use one of %v", opts.WriteMinRole, v1.Roles)
	}
	defaultOrigins, err := originSet(opts.DefaultAllowedOrigins)
	if err != nil {
		return nil, err
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
		{&opts.ReadTimeout, DefaultReadTimeout, "ReadTimeout"},
		{&opts.RateLimitStoreTimeout, DefaultRateLimitStoreTimeout, "RateLimitStoreTimeout"},
		{&opts.RateLimitStoreBackoff, DefaultRateLimitStoreBackoff, "RateLimitStoreBackoff"},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return nil, fmt.Errorf("verifier: %s must be positive, got %s", d.n, *d.v)
		}
	}
	switch {
	case opts.RateLimitFallbackReplicas == 0:
		opts.RateLimitFallbackReplicas = DefaultFallbackReplicas
	case opts.RateLimitFallbackReplicas < 0:
		return nil, fmt.Errorf("verifier: RateLimitFallbackReplicas must be positive, got %d", opts.RateLimitFallbackReplicas)
	}
	if opts.ProbeInterval >= opts.MaxStaleness {
		return nil, fmt.Errorf("verifier: ProbeInterval (%s) must be shorter than MaxStaleness (%s), or the verifier goes stale between probes",
			opts.ProbeInterval, opts.MaxStaleness)
	}
	v := &Verifier{
		opts:          opts,
		clock:         opts.Clock,
		rules:         rules{format: opts.Format, writeRank: opts.WriteMinRole.Rank(), defaultOrigins: defaultOrigins},
		log:           opts.Logger,
		index:         newIndex(opts.Logger),
		staleness:     staleness{clock: opts.Clock, maxStaleness: opts.MaxStaleness},
		serverStopped: make(chan struct{}),
	}
	v.synced.Store(true)
	v.recordContact()
	m, err := newMetrics(opts.Registerer, v)
	if err != nil {
		return nil, fmt.Errorf("verifier: registering metrics: %w", err)
	}
	v.metrics = m
	v.index.tallies = newTallies(opts.NoApplicationDecisions)
	if !opts.NoApplicationDecisions {
		if err := opts.Registerer.Register(v.index.tallies); err != nil {
			return nil, fmt.Errorf("verifier: registering metrics: %w", err)
		}
	}
	if v.dlog, err = newDecisionLog(opts.DecisionLog, opts.Clock, opts.Registerer); err != nil {
		return nil, err
	}
	if err := v.initOAuth(opts.Registerer); err != nil {
		return nil, err
	}
	if opts.RateLimitStore != nil {
		if v.index.keyStore.shared, err = newSharedLimits(opts); err != nil {
			return nil, fmt.Errorf("verifier: registering metrics: %w", err)
		}
	}
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

// Update replaces old with cur in the index; the informers' update handler calls it. An
// informer that lists again (its watch could not resume: too old a resource version) hands over
// an object deleted and made again under the same name as an update of the old one, with another
// UID. Keys and connections are indexed by UID, so the old object is removed too, after cur is
// in: its key or grant never outlives the delete the informer did not see.
func (v *Verifier) Update(old, cur any) {
	v.Apply(cur)
	o, oldOK := old.(client.Object)
	c, curOK := cur.(client.Object)
	if oldOK && curOK && o.GetUID() != c.GetUID() {
		v.Remove(old)
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
	v.events = mgr.GetEventRecorder("clearance-verifier")
	for _, obj := range []client.Object{&v1.APIKey{}, &v1.Application{}, &v1.OrgConnection{}, &v1.MetricSet{}} {
		inf, err := mgr.GetCache().GetInformer(context.Background(), obj)
		if err != nil {
			return fmt.Errorf("verifier: informer for %T: %w", obj, err)
		}
		w := v.track(inf)
		handler := toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { v.heardFrom(w); v.Apply(o) },
			UpdateFunc: func(old, o any) { v.heardFrom(w); v.Update(old, o) },
			DeleteFunc: func(o any) { v.heardFrom(w); v.Remove(o) },
		}
		reg, err := inf.AddEventHandler(handler)
		if err != nil {
			return fmt.Errorf("verifier: event handler for %T: %w", obj, err)
		}
		v.regs = append(v.regs, reg)
	}
	if v.opts.OAuth.SigningSecret.Name != "" {
		if err := v.watchSigningKeys(mgr); err != nil {
			return err
		}
	}
	v.synced.Store(false)
	runnables := []runnable{&flusher{v}, &prober{v}}
	if v.dlog != nil {
		runnables = append(runnables, &decisionLogRunner{v})
	}
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

// Serve answers on ln until ctx ends, then drains requests in flight for up to
// Options.ShutdownTimeout.
func (v *Verifier) Serve(ctx context.Context, ln net.Listener) error {
	defer v.markServerStopped()
	srv := &http.Server{
		Handler:           v,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       v.opts.ReadTimeout,
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

// allowedOrigin is what the CRD's rule for spec.allowedOrigins accepts (v1.AllowedOriginPattern).
var allowedOrigin = regexp.MustCompile(v1.AllowedOriginPattern)

// originSet checks the allow-list's default entries and returns them as a set, nil when none.
func originSet(origins []string) (map[string]struct{}, error) {
	if len(origins) == 0 {
		return nil, nil
	}
	set := make(map[string]struct{}, len(origins))
	for _, o := range origins {
		if !allowedOrigin.MatchString(o) {
			return nil, fmt.Errorf("verifier: default allowed origin %q must be scheme://host[:port] in lowercase with no path, e.g. https://bi.acme.example", o)
		}
		set[o] = struct{}{}
	}
	return set, nil
}
