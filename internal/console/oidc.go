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

package console

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
)

// Sign-in with the company's OpenID Connect provider (docs/console.md). The console is an OIDC
// client of its own (authorization code with PKCE S256, state and nonce); the ID token it gets is
// the person's bearer token toward the apiserver, which trusts the same provider through its
// AuthenticationConfiguration. The console keeps the ID token and the refresh token in the
// session's memory only, renews the ID token with the refresh token shortly before it expires,
// and forgets both at sign-out. The apiserver, not the console, decides who the token is.

// Paths of the OIDC sign-in.
const (
	PathOIDCStart    = "/login/oidc"
	PathOIDCCallback = "/login/oidc/callback"
)

// DefaultOIDCScopes are asked besides openid when OIDCOptions.ExtraScopes is nil:
// offline_access brings the refresh token that keeps a session going past the ID token's life.
var DefaultOIDCScopes = []string{"email", "profile", "offline_access"}

// Bounds of the OIDC sign-in.
const (
	// pendingLoginTTL is how long a browser has at the provider between leaving and coming back.
	pendingLoginTTL = 10 * time.Minute
	// maxPendingLogins bounds the sign-ins under way; past it the oldest is forgotten.
	maxPendingLogins = 10000
	// idTokenRenewMargin: an ID token is renewed this long before it expires, so no call goes to
	// the apiserver with a token about to lapse (nor with a clock a little behind the apiserver's).
	idTokenRenewMargin = 2 * time.Minute
	// providerTimeout bounds one call to the provider.
	providerTimeout = 10 * time.Second
)

// oidcCookie names the browser's sign-in under way. SameSite=Lax, not Strict: the provider sends
// the browser back from another site, and only a Lax cookie comes along with that navigation.
// It holds a random ID; state, nonce and PKCE verifier stay in the console's memory.
const oidcCookie = "__Host-clearance-console-oidc"

// OIDCOptions configure sign-in with an OpenID Connect provider.
type OIDCOptions struct {
	// IssuerURL is the provider's issuer exactly as its discovery document and the apiserver's
	// AuthenticationConfiguration spell it, e.g. https://dex.example.com (https only).
	IssuerURL string
	// ClientID is the console's client at the provider: the audience of its ID tokens, which the
	// apiserver's JWT authenticator must list.
	ClientID string
	// ClientSecret authenticates the console to the provider's token endpoint.
	ClientSecret string
	// RootCAs verify the provider's TLS certificate; nil: the system's roots.
	RootCAs *x509.CertPool
	// RedirectURL is the console's callback as browsers reach it: the console's URL followed by
	// PathOIDCCallback, registered at the provider.
	RedirectURL string
	// ExtraScopes are asked besides openid; nil: DefaultOIDCScopes.
	ExtraScopes []string
	// ProviderName names the provider on the sign-in button ("Sign in with NAME"); default the
	// issuer's host.
	ProviderName string
}

// check says what is wrong with o, in a sentence naming the flag that sets it.
func (o *OIDCOptions) check() error {
	u, err := url.Parse(o.IssuerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--console-oidc-issuer-url %q must be the provider's https issuer URL, exactly as its discovery document says, e.g. https://dex.example.com", o.IssuerURL)
	}
	if o.ClientID == "" {
		return errors.New("OIDC sign-in needs the console's client ID at the provider (--console-oidc-client-id), the audience the apiserver accepts")
	}
	if o.ClientSecret == "" {
		return errors.New("OIDC sign-in needs the console's client secret (--console-oidc-client-secret-file, a file holding it)")
	}
	r, err := url.Parse(o.RedirectURL)
	if err != nil || (r.Scheme != "https" && r.Scheme != "http") || r.Host == "" || !strings.HasSuffix(r.Path, PathOIDCCallback) || r.RawQuery != "" || r.Fragment != "" {
		return fmt.Errorf("--console-oidc-redirect-url %q must be the console's URL as browsers reach it followed by %s, e.g. https://console.example.com%s", o.RedirectURL, PathOIDCCallback, PathOIDCCallback)
	}
	if o.ProviderName == "" {
		o.ProviderName = u.Host
	}
	if o.ExtraScopes == nil {
		o.ExtraScopes = DefaultOIDCScopes
	}
	return nil
}

// oidcClient is the console's side of the provider.
type oidcClient struct {
	opts  OIDCOptions
	clock clock.PassiveClock
	// http reaches the provider, trusting opts.RootCAs.
	http    *http.Client
	pending *pendingLogins

	mu       sync.Mutex
	oauth    *oauth2.Config // nil until discovery succeeded
	verifier *oidc.IDTokenVerifier
}

func newOIDCClient(opts OIDCOptions, c clock.PassiveClock) (*oidcClient, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	return &oidcClient{
		opts: opts, clock: c,
		http:    &http.Client{Transport: tr, Timeout: providerTimeout},
		pending: &pendingLogins{clock: c, byID: map[string]*pendingLogin{}},
	}, nil
}

// withClient carries the provider's HTTP client to go-oidc and x/oauth2.
func (c *oidcClient) withClient(ctx context.Context) context.Context {
	return context.WithValue(oidc.ClientContext(ctx, c.http), oauth2.HTTPClient, c.http)
}

// discover reads the provider's discovery document once it can: a provider down when the
// console starts delays sign-in through it, not the console.
func (c *oidcClient) discover(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.oauth != nil {
		return c.oauth, c.verifier, nil
	}
	ctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	p, err := oidc.NewProvider(c.withClient(ctx), c.opts.IssuerURL)
	if err != nil {
		return nil, nil, err
	}
	c.oauth = &oauth2.Config{
		ClientID: c.opts.ClientID, ClientSecret: c.opts.ClientSecret, RedirectURL: c.opts.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, c.opts.ExtraScopes...),
	}
	// The key set fetches the provider's keys in the background: no request's context.
	c.verifier = p.VerifierContext(c.withClient(context.Background()), &oidc.Config{ClientID: c.opts.ClientID, Now: c.clock.Now})
	return c.oauth, c.verifier, nil
}

// pendingLogin is a sign-in under way: what the callback must match and prove.
type pendingLogin struct {
	state, nonce, verifier string
	next                   string
	created                time.Time
}

// pendingLogins keeps sign-ins under way, keyed by the random ID of their browser's cookie.
// Each is taken once: a callback replayed, or one from a browser that did not start it, finds
// nothing.
type pendingLogins struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	byID  map[string]*pendingLogin
}

// add stores l under a fresh ID, first forgetting expired sign-ins and, when full, the oldest.
func (p *pendingLogins) add(l *pendingLogin) string {
	id := randomToken()
	now := p.clock.Now()
	l.created = now
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.byID) >= maxPendingLogins {
		var oldest string
		for k, v := range p.byID {
			if now.Sub(v.created) >= pendingLoginTTL {
				delete(p.byID, k)
			} else if oldest == "" || v.created.Before(p.byID[oldest].created) {
				oldest = k
			}
		}
		if len(p.byID) >= maxPendingLogins {
			delete(p.byID, oldest)
		}
	}
	p.byID[id] = l
	return id
}

// take removes and returns the live sign-in with this ID, or nil.
func (p *pendingLogins) take(id string) *pendingLogin {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.byID[id]
	delete(p.byID, id)
	if l == nil || p.clock.Now().Sub(l.created) >= pendingLoginTTL {
		return nil
	}
	return l
}

// oidcTokens are an OIDC session's tokens. Token hands the current ID token to the session's
// client (an oauth2.TokenSource, through client-go's token-source transport); renew replaces it.
type oidcTokens struct {
	mu      sync.Mutex
	idToken string
	expiry  time.Time
	refresh string // empty: the provider gave none, and the session ends with the ID token
	subject string
}

// Token is the current ID token as a bearer token.
func (t *oidcTokens) Token() (*oauth2.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idToken == "" {
		return nil, errors.New("this session was signed out")
	}
	return &oauth2.Token{AccessToken: t.idToken, TokenType: "Bearer"}, nil
}

// forget drops the tokens (sign-out).
func (t *oidcTokens) forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.idToken, t.refresh = "", ""
}

// errSignInEnded is an OIDC session that could not be renewed: the person signs in again.
type errSignInEnded struct{ reason string }

func (e *errSignInEnded) Error() string {
	return "Your sign-in has ended: " + e.reason + ". Sign in again."
}

// renew replaces t's ID token using its refresh token once it is within idTokenRenewMargin of
// expiring. Concurrent requests of one session wait for one renewal.
func (c *oidcClient) renew(ctx context.Context, t *oidcTokens) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := c.clock.Now()
	if now.Before(t.expiry.Add(-idTokenRenewMargin)) {
		return nil
	}
	if t.refresh == "" {
		if now.Before(t.expiry) {
			return nil
		}
		return &errSignInEnded{reason: c.opts.ProviderName + " gave no refresh token (the console asks for offline_access; see docs/console.md) and the ID token expired"}
	}
	cfg, verifier, err := c.discover(ctx)
	if err != nil {
		return &errSignInEnded{reason: c.opts.ProviderName + " could not be reached to renew it (" + err.Error() + ")"}
	}
	ctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	tok, err := cfg.TokenSource(c.withClient(ctx), &oauth2.Token{RefreshToken: t.refresh}).Token()
	if err != nil {
		return &errSignInEnded{reason: c.opts.ProviderName + " did not renew it (" + providerError(err) + ")"}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return &errSignInEnded{reason: c.opts.ProviderName + " renewed it without a new ID token"}
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return &errSignInEnded{reason: "the ID token " + c.opts.ProviderName + " renewed it with is not valid (" + err.Error() + ")"}
	}
	if idt.Subject != t.subject {
		return &errSignInEnded{reason: c.opts.ProviderName + " renewed it for someone else"}
	}
	t.idToken, t.expiry = raw, idt.Expiry
	if tok.RefreshToken != "" {
		t.refresh = tok.RefreshToken // a provider that rotates refresh tokens
	}
	return nil
}

// providerError is the OAuth error code the provider's token endpoint answered with, and nothing
// else of its answer: a description may quote what it was sent (a code), and the body more.
func providerError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch {
		case re.ErrorCode != "":
			return re.ErrorCode
		case re.Response != nil:
			return "its token endpoint answered " + re.Response.Status
		}
		return "its token endpoint refused"
	}
	return err.Error()
}

// oidcStart sends the browser to the provider with a fresh state, nonce and PKCE challenge,
// remembered under the random ID of a cookie.
func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		http.NotFound(w, r)
		return
	}
	cfg, _, err := s.oidc.discover(r.Context())
	if err != nil {
		s.opts.Log.Info("the OpenID Connect provider could not be reached", "issuer", s.oidc.opts.IssuerURL, "error", err.Error())
		s.renderSignIn(w, r, http.StatusBadGateway, fmt.Sprintf("%s (%s) could not be reached: %v. Try again in a moment, or sign in with a token.", s.oidc.opts.ProviderName, s.oidc.opts.IssuerURL, err))
		return
	}
	l := &pendingLogin{state: randomToken(), nonce: randomToken(), verifier: oauth2.GenerateVerifier()}
	if n := r.URL.Query().Get("next"); consentReturn(n) {
		l.next = n
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: s.oidc.pending.add(l), Path: "/", MaxAge: int(pendingLoginTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, cfg.AuthCodeURL(l.state, oidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier)), http.StatusSeeOther)
}

// oidcCallback finishes a sign-in: the browser must bring back the cookie of a sign-in it
// started and that sign-in's state; the code is exchanged with that sign-in's PKCE verifier, and
// the ID token must carry its nonce and be accepted by the apiserver.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		http.NotFound(w, r)
		return
	}
	var l *pendingLogin
	if c, err := r.Cookie(oidcCookie); err == nil {
		l = s.oidc.pending.take(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	name := s.oidc.opts.ProviderName
	switch {
	case l == nil:
		s.oidcRefused(w, r, http.StatusBadRequest, "no sign-in", "This sign-in was not started in this browser, was already used, or took longer than 10 minutes, so it was refused. Sign in again.")
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.state)) != 1:
		s.oidcRefused(w, r, http.StatusBadRequest, "state mismatch", "This sign-in came back with a state this browser did not start it with (a link from somewhere else?), so it was refused. Sign in again.")
	case q.Get("error") != "":
		s.oidcRefused(w, r, http.StatusUnauthorized, "provider error", fmt.Sprintf("%s did not sign you in (%s). Sign in again, or ask whoever runs %s.", name, clip(q.Get("error")+" "+q.Get("error_description"), 200), name))
	case q.Get("code") == "":
		s.oidcRefused(w, r, http.StatusBadRequest, "no code", name+" sent the browser back without a code. Sign in again.")
	default:
		s.oidcFinish(w, r, l, q.Get("code"))
	}
}

// oidcFinish exchanges the code, checks the ID token and starts the session.
func (s *Server) oidcFinish(w http.ResponseWriter, r *http.Request, l *pendingLogin, code string) {
	name := s.oidc.opts.ProviderName
	cfg, verifier, err := s.oidc.discover(r.Context())
	if err != nil {
		s.oidcRefused(w, r, http.StatusBadGateway, "discovery", fmt.Sprintf("%s could not be reached: %v. Sign in again in a moment.", name, err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), providerTimeout)
	defer cancel()
	tok, err := cfg.Exchange(s.oidc.withClient(ctx), code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		s.oidcRefused(w, r, http.StatusUnauthorized, "code refused", fmt.Sprintf("%s refused this sign-in's code (%s), so it was refused. Sign in again.", name, providerError(err)))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		s.oidcRefused(w, r, http.StatusBadGateway, "no ID token", name+" answered without an ID token: the console's client must be allowed the openid scope. Ask whoever runs "+name+".")
		return
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		s.oidcRefused(w, r, http.StatusUnauthorized, "ID token invalid", fmt.Sprintf("The ID token from %s is not valid (%v), so the sign-in was refused. Sign in again.", name, err))
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(l.nonce)) != 1 {
		s.oidcRefused(w, r, http.StatusUnauthorized, "nonce mismatch", "The ID token does not carry this sign-in's nonce (a token from another sign-in?), so it was refused. Sign in again.")
		return
	}
	t := &oidcTokens{idToken: raw, expiry: idt.Expiry, refresh: tok.RefreshToken, subject: idt.Subject}
	sess, err := s.startSession(r.Context(), &session{oidc: t})
	if err != nil {
		msg := fmt.Sprintf("The Kubernetes API did not accept your sign-in with %s (%s): its AuthenticationConfiguration must trust issuer %s with audience %s (docs/console.md).", name, apiMessage(err), s.oidc.opts.IssuerURL, s.oidc.opts.ClientID)
		if !apierrors.IsUnauthorized(err) {
			msg = "Could not check your sign-in with the Kubernetes API: " + apiMessage(err)
		}
		s.oidcRefused(w, r, http.StatusUnauthorized, "apiserver refused", msg)
		return
	}
	s.setCookie(w, sessionCookie, sess.id, s.opts.MaxAge)
	to := "/org"
	if l.next != "" {
		to = l.next
	}
	// The browser came from the provider's site, so it would not send the SameSite=Strict
	// session cookie on a redirect: a page of the console's own moves it on, and it does.
	s.render(w, http.StatusOK, "login-hop", &page{Title: "Signing in", Data: to})
}

// oidcRefused shows the sign-in page with why, and logs the reason (never a token or code).
func (s *Server) oidcRefused(w http.ResponseWriter, r *http.Request, status int, reason, message string) {
	s.opts.Log.Info("an OpenID Connect sign-in was refused", "reason", reason, "status", status)
	s.renderSignIn(w, r, status, message)
}

// clip shortens what the provider said to at most n characters.
func clip(s string, n int) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return string(r)
}
