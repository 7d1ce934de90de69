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

// Package console is `clearance console`: server-rendered pages (Users → Applications, keys,
// connections, metrics, activity) for org admins and their colleagues. It holds no power of its own:
// every read and write goes to the apiserver with the signed-in person's own bearer token, so
// RBAC and the admission webhook decide exactly as they do for kubectl. See docs/console.md.
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/clearance-dev/clearance/internal/activity"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Defaults of Options.
const (
	DefaultIdleTimeout    = 30 * time.Minute
	DefaultMaxAge         = 8 * time.Hour
	DefaultKeyWaitTimeout = 20 * time.Second
	// DefaultCatalogNamespace is where the chart installs the permission catalog.
	DefaultCatalogNamespace = "clearance-system"
	// DefaultMaxSessions bounds the sessions of a replica; DefaultMaxSessionsPerIdentity those
	// of one person (one username), so that nobody can end others' sessions by signing in.
	DefaultMaxSessions            = 10000
	DefaultMaxSessionsPerIdentity = 10
)

// Options configure the console; main sets them from flags.
type Options struct {
	// Addr is the address to listen on, e.g. 127.0.0.1:8095 or :8095.
	Addr string
	// Base reaches the apiserver: host and CA only (BaseConfig strips anything else).
	Base *rest.Config
	// Scheme knows Clearance's kinds and the built-in ones.
	Scheme *runtime.Scheme
	// Clock is the only source of time: session ages, rotation requests.
	Clock clock.Clock
	// IdleTimeout ends a session after this long without a request (default 30m); MaxAge ends
	// it this long after sign-in whatever happens (default 8h).
	IdleTimeout, MaxAge time.Duration
	// KeyWaitTimeout bounds how long generating a key waits for the operator to mint it.
	KeyWaitTimeout time.Duration
	// TrustAuthProxy makes an Authorization: Bearer header sign the request in, as an auth proxy
	// in front (oauth2-proxy) sends it (--console-trust-auth-proxy). Off, the header is ignored
	// and only the sign-in form starts sessions.
	TrustAuthProxy bool
	// MaxSessions bounds the live sessions (default DefaultMaxSessions), MaxSessionsPerIdentity
	// those of one username (default DefaultMaxSessionsPerIdentity).
	MaxSessions, MaxSessionsPerIdentity int
	// VerifierURL is the verifier's base URL as the browser reaches it, e.g.
	// http://127.0.0.1:8090 (--console-verifier-url): the consent page asks it what an
	// authorization request is and sends the browser back to it. Empty: no consent page.
	VerifierURL string
	// PrometheusURL is the Prometheus that scrapes the verifiers, e.g.
	// http://prometheus.monitoring:9090 (--console-prometheus-url): the Activity page reads what
	// applications did from it. Empty: the page says how to set it.
	PrometheusURL string
	// CatalogNamespace holds the permission catalog a new key's permissions are picked from
	// (the operator's namespace; default clearance-system).
	CatalogNamespace string
	// OIDC, when set, offers sign-in with the company's OpenID Connect provider beside the token
	// form (--console-oidc-*; docs/console.md).
	OIDC *OIDCOptions
	Log  logr.Logger
}

// Server serves the console.
type Server struct {
	opts     Options
	base     *rest.Config
	mapper   meta.RESTMapper
	sessions *sessionStore
	pages    map[string]*template.Template
	loginKey []byte
	handler  http.Handler
	// verifier asks the verifier about authorization requests.
	verifier *http.Client
	// activity reads what applications did from Prometheus; nil without PrometheusURL.
	activity *activity.Client
	// oidc signs people in with the OpenID Connect provider; nil without Options.OIDC.
	oidc *oidcClient
}

// New checks opts and prepares the pages.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		return nil, errors.New("the console needs an address to listen on (--console-bind-address), e.g. 127.0.0.1:8095")
	}
	if opts.Base == nil || opts.Base.Host == "" {
		return nil, errors.New("the console needs the apiserver's address: run it in a cluster or set KUBECONFIG")
	}
	if opts.Scheme == nil {
		return nil, errors.New("the console needs a scheme")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.KeyWaitTimeout <= 0 {
		opts.KeyWaitTimeout = DefaultKeyWaitTimeout
	}
	if opts.CatalogNamespace == "" {
		opts.CatalogNamespace = DefaultCatalogNamespace
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxSessionsPerIdentity <= 0 {
		opts.MaxSessionsPerIdentity = DefaultMaxSessionsPerIdentity
	}
	if opts.VerifierURL != "" {
		u, err := url.Parse(opts.VerifierURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("--console-verifier-url %q must be the verifier's base URL as browsers reach it, e.g. https://verifier.example.com or http://127.0.0.1:8090", opts.VerifierURL)
		}
		opts.VerifierURL = strings.TrimSuffix(opts.VerifierURL, "/")
	}
	var act *activity.Client
	if opts.PrometheusURL != "" {
		u, err := url.Parse(opts.PrometheusURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("--console-prometheus-url %q must be the base URL of the Prometheus that scrapes the verifiers, e.g. http://prometheus.monitoring:9090", opts.PrometheusURL)
		}
		if act, err = activity.New(opts.PrometheusURL, nil); err != nil {
			return nil, err
		}
	}
	var oc *oidcClient
	if opts.OIDC != nil {
		var err error
		if oc, err = newOIDCClient(*opts.OIDC, opts.Clock); err != nil {
			return nil, err
		}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{
		oidc:     oc,
		verifier: &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		opts:     opts,
		base:     BaseConfig(opts.Base),
		mapper:   restMapper(),
		sessions: newSessionStore(opts.Clock, opts.IdleTimeout, opts.MaxAge, opts.MaxSessions, opts.MaxSessionsPerIdentity),
		pages:    pages,
		loginKey: make([]byte, 32),
		activity: act,
	}
	_, _ = rand.Read(s.loginKey)
	s.handler = s.routes()
	return s, nil
}

// Handler serves every page, with the security headers.
func (s *Server) Handler() http.Handler { return s.handler }

// NeedLeaderElection: every replica serves the console.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, then shuts down gracefully.
func (s *Server) Start(ctx context.Context) error {
	l, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("the console cannot listen on %s: %w", s.opts.Addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.opts.KeyWaitTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	s.opts.Log.Info("serving the console", "address", l.Addr().String(), "trustAuthProxy", s.opts.TrustAuthProxy)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// newSession makes a session for a pasted or proxied token.
func (s *Server) newSession(ctx context.Context, token string, fromProxy bool) (*session, error) {
	return s.startSession(ctx, &session{token: token, tokenSum: sha256.Sum256([]byte(token)), fromProxy: fromProxy})
}

// startSession gives sess a client that carries its token, asks the apiserver who it is and
// stores it. The client is the session's own: its config is the base (host and CA) plus the
// token (an OIDC session's current ID token), nothing else.
func (s *Server) startSession(ctx context.Context, sess *session) (*session, error) {
	cfg := rest.CopyConfig(s.base)
	if sess.oidc != nil {
		cfg.Wrap(transport.TokenSourceWrapTransport(sess.oidc))
	} else {
		cfg.BearerToken = sess.token
	}
	cfg.WarningHandlerWithContext = warningRouter{}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s.opts.Scheme, Mapper: s.mapper})
	if err != nil {
		return nil, err
	}
	sess.client = c
	user, err := whoAmI(ctx, sess)
	if err != nil {
		return nil, err
	}
	sess.user = user
	s.sessions.add(sess)
	return sess, nil
}

// parsePages parses each page with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", name)
		if err != nil {
			return nil, err
		}
		pages[base] = t
	}
	return pages, nil
}

// render writes a page whole, or a plain error if it cannot be rendered.
func (s *Server) render(w http.ResponseWriter, status int, name string, p *page) {
	var buf bytes.Buffer
	t := s.pages[name]
	if t == nil {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	tmpl := "layout.html"
	if p.Fragment && t.Lookup("dialog") != nil {
		tmpl = "dialog"
	}
	if err := t.ExecuteTemplate(&buf, tmpl, p); err != nil {
		s.opts.Log.Error(err, "rendering a page", "page", name)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
