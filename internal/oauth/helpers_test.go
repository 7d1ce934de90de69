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

package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

const (
	confID     = "app_0123456789abcdefghjkmnpqrs"
	publicID   = "app_1123456789abcdefghjkmnpqrs"
	disabledID = "app_2123456789abcdefghjkmnpqrs"
	bareID     = "app_3123456789abcdefghjkmnpqrs" // an Application without spec.oauth
	goodSecret = "sk-good"
	issuer     = "https://verifier.test"
	consentURL = "https://console.test/oauth2/consent"
	redirect   = "http://127.0.0.1:5555/callback"
)

// stubDirectory plays the verifier's index; the test plays the console by recording consents.
type stubDirectory struct {
	mu       sync.Mutex
	clients  map[string]Client
	consents map[string]Grant
	revoked  map[string]bool // connection UIDs no longer in force
}

func (d *stubDirectory) Client(id string) (Client, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.clients[id]
	return c, ok
}

func (d *stubDirectory) Consent(id, _ string) (Grant, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.consents[id]
	return g, ok
}

func (d *stubDirectory) InForce(org, uid, app, appUID string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, g := range d.consents {
		if g.Org == org && g.ConnectionUID == uid && g.ApplicationID == app && g.ApplicationUID == appUID && !d.revoked[uid] {
			return g.Role, true
		}
	}
	return "", false
}

// stubIssuer mints numbered opaque access tokens.
type stubIssuer struct{ n atomic.Int64 }

func (s *stubIssuer) IssueAccessToken(_ context.Context, g Grant, _ []string, now time.Time) (string, time.Time, error) {
	return fmt.Sprintf("at-%s-%d", g.ConnectionUID, s.n.Add(1)), now.Add(5 * time.Minute), nil
}

type env struct {
	t          *testing.T
	dir        *stubDirectory
	clock      *clocktesting.FakeClock
	srv        *httptest.Server
	idKey      *ecdsa.PrivateKey
	noRedirect *http.Client
}

func newEnv(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	reg := func(typ v1.OAuthClientType) v1.OAuthClient {
		return v1.OAuthClient{ClientType: typ, RedirectURIs: []string{"http://127.0.0.1/callback", "https://app.example/cb", "com.example.app:/cb"}}
	}
	dir := &stubDirectory{clients: map[string]Client{
		confID:     {ApplicationID: confID, Namespace: "acme", Enabled: true, Registration: reg(v1.OAuthConfidential)},
		publicID:   {ApplicationID: publicID, Namespace: "acme", Enabled: true, Registration: reg(v1.OAuthPublic)},
		disabledID: {ApplicationID: disabledID, Namespace: "acme", Enabled: false, Registration: reg(v1.OAuthConfidential)},
	}, consents: map[string]Grant{}, revoked: map[string]bool{}}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC))
	cfg := Config{Issuer: issuer, ConsentURL: consentURL, Directory: dir, Tokens: &stubIssuer{},
		Authenticate: func(_ *http.Request, _, secret string) error {
			if secret != goodSecret {
				return errors.New("wrong key")
			}
			return nil
		},
		Keys: StaticKeys{ID: &SigningKey{Key: k, KID: "k1"}, Refresh: []byte(strings.Repeat("k", 32))}, Clock: clk}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(AuthorizePath, h)
	mux.Handle(AuthorizeDonePath, h)
	mux.Handle(AuthorizeRequestsPath, h)
	mux.HandleFunc("/oauth2/token", h.Token)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, dir: dir, clock: clk, srv: srv, idKey: k, noRedirect: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// config is the app's oauth2 client: Basic auth with a key for a confidential client.
func (e *env) config(clientID, redirectURI string) *oauth2.Config {
	c := &oauth2.Config{ClientID: clientID, RedirectURL: redirectURI, Scopes: []string{"openid", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: e.srv.URL + AuthorizePath, TokenURL: e.srv.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	if clientID == publicID {
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	} else {
		c.ClientSecret = goodSecret
	}
	return c
}

// get fetches u without following redirects.
func (e *env) get(u string) (status int, location *url.URL, body string) {
	e.t.Helper()
	resp, err := e.noRedirect.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if loc := resp.Header.Get("Location"); loc != "" {
		location, err = url.Parse(loc)
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return resp.StatusCode, location, string(b)
}

// startAuthorize sends the browser to the authorization endpoint and returns the request ID
// the consent page is given.
func (e *env) startAuthorize(authURL string) string {
	e.t.Helper()
	status, loc, body := e.get(authURL)
	if status != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), consentURL+"?") {
		e.t.Fatalf("authorize: %d %v %q, want a redirect to the consent page", status, loc, body)
	}
	return loc.Query().Get("request")
}

// grantFor is the grant the console records when an org admin allows request id.
func grantFor(app, id string) Grant {
	return Grant{Org: "org-1", ConnectionUID: "uid-" + id, ApplicationID: app, ApplicationUID: "uid-" + app, Role: "Viewer", ConsentedBy: "alice@example.com"}
}

// allow plays the console's Allow and returns the redirect to the app.
func (e *env) allow(app, id string) *url.URL {
	e.t.Helper()
	e.recordConsent(app, id)
	status, loc, body := e.get(e.srv.URL + AuthorizeDonePath + "?request=" + url.QueryEscape(id))
	if status != http.StatusFound || loc == nil {
		e.t.Fatalf("done: %d %q, want a redirect", status, body)
	}
	return loc
}

// recordConsent plays the console's Allow: the org's connection now carries the request.
func (e *env) recordConsent(app, id string) {
	e.dir.mu.Lock()
	defer e.dir.mu.Unlock()
	e.dir.consents[id] = grantFor(app, id)
}

// code runs the browser part of the flow and returns a code and its verifier.
func (e *env) code(c *oauth2.Config) (code, verifier string) {
	e.t.Helper()
	verifier = oauth2.GenerateVerifier()
	id := e.startAuthorize(c.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)))
	loc := e.allow(c.ClientID, id)
	if q := loc.Query(); q.Get("code") == "" || q.Get("state") != "st-1" || q.Get("iss") != issuer {
		e.t.Fatalf("callback %s: want code, state and iss", loc)
	}
	return loc.Query().Get("code"), verifier
}

// exchange redeems a code; err is the oauth2 error, if any.
func (e *env) exchange(c *oauth2.Config, code, verifier string) (*oauth2.Token, error) {
	return c.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
}

// post sends a token request form and returns the status and decoded body.
func (e *env) post(form url.Values, basicID, basicSecret string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// refresh uses a refresh token as the confidential client.
func (e *env) refresh(rt string) (int, map[string]any) {
	return e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, confID, goodSecret)
}

// wantOAuthError checks an oauth2 library error for the RFC 6749 error code.
func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// recordingIssuer is stubIssuer noting the grant and scopes of each access token it issues.
type recordingIssuer struct {
	stubIssuer
	mu     sync.Mutex
	grants []Grant
	scopes [][]string
}

func (r *recordingIssuer) IssueAccessToken(ctx context.Context, g Grant, scopes []string, now time.Time) (string, time.Time, error) {
	r.mu.Lock()
	r.grants, r.scopes = append(r.grants, g), append(r.scopes, slices.Clone(scopes))
	r.mu.Unlock()
	return r.stubIssuer.IssueAccessToken(ctx, g, scopes, now)
}

func (r *recordingIssuer) last() (int, Grant, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.grants) == 0 {
		return 0, Grant{}, nil
	}
	return len(r.grants), r.grants[len(r.grants)-1], r.scopes[len(r.scopes)-1]
}

// withdraw takes every consented connection out of force, as deleting it does.
func (e *env) withdraw() {
	e.dir.mu.Lock()
	defer e.dir.mu.Unlock()
	for _, g := range e.dir.consents {
		e.dir.revoked[g.ConnectionUID] = true
	}
}

// hookStore runs afterRedeem once, right after the next code it redeems.
type hookStore struct {
	Store
	mu          sync.Mutex
	afterRedeem func()
}

func (s *hookStore) RedeemCode(ctx context.Context, codeHash string, ttl time.Duration) (CodeRecord, error) {
	rec, err := s.Store.RedeemCode(ctx, codeHash, ttl)
	s.mu.Lock()
	f := s.afterRedeem
	s.afterRedeem = nil
	s.mu.Unlock()
	if err == nil && f != nil {
		f()
	}
	return rec, err
}
