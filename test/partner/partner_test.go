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

package partner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/testenv/browser"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// revocationBound is how long a disconnect may take to refuse the partner's tokens here (the
// verifier follows its informers; the design target is far below it).
const revocationBound = 10 * time.Second

// TestAPartnersAppGetsTokensThroughTheConsolesConsentAndLosesThemOnDisconnect is a partner's
// whole flow: its app (golang.org/x/oauth2, a public client with PKCE and a loopback redirect)
// sends an org admin's browser to the verifier, which sends it to the console's consent page;
// the admin signs in, picks their org and role Analyst and allows; the browser comes back to
// the app with a code, state and iss. The code gives an access, a refresh and an ID token (sub:
// the admin, signed with a key of the verifier's JWKS); the access token passes nginx to the
// org's API, as does the one a refresh gives. The admin disconnects the application in the
// console: within the bound, every access token is refused at nginx and the refresh token is
// invalid_grant.
func TestAPartnersAppGetsTokensThroughTheConsolesConsentAndLosesThemOnDisconnect(t *testing.T) {
	browser.Chromium(t, needsChromium)
	t.Cleanup(func() { noSecretLogged(t) })
	ctx := context.Background()
	partner, org := env.Namespace(t, "partner"), env.Namespace(t, "initech")
	id := partnerApp(t, partner)
	admin := newPerson(t, org, "ines", "clearance-org-admin")
	up := newUpstream(t)
	proxy := startNginx(t, org, up.addr())
	app := newAppClient(t, id)

	// 1–2. The browser: authorize → consent → sign in → org, Analyst, Allow → back at the app.
	state, pkce, nonce := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	secrets.Add("PKCE code verifier", pkce)
	p := newPage(t)
	p.Load(app.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("nonce", nonce)))
	p.signIn(admin)
	if got := p.Text("main h1"); !strings.Contains(got, "Allow Partner BI") {
		t.Fatalf("after signing in the browser shows %q, want the consent page", got)
	}
	if main := p.Text("main"); !strings.Contains(main, partner) || !strings.Contains(main, id) ||
		!strings.Contains(main, "every permission of the role you pick") || !strings.Contains(main, "keep that access while you are away") {
		t.Errorf("the consent page does not say which application asks what: %s", main)
	}
	p.Fill("#org", org)
	p.Submit("#consent-org button[type=submit]")
	p.Choose("#role", string(v1.RoleAnalyst))
	p.Submit("#consent-decision button[value=allow]")
	cb := app.callback(t, state)
	if cb.Get("error") != "" || cb.Get("code") == "" || cb.Get("iss") != issuer {
		t.Fatalf("the redirect to the app: error %q, code given %t, iss %q (want %q)", cb.Get("error"), cb.Get("code") != "", cb.Get("iss"), issuer)
	}
	code := cb.Get("code")
	secrets.Add("authorization code", code)

	// The connection the consent made, with the admin's own credentials, recorded by the apiserver.
	conn := &v1.OrgConnection{}
	must(t, env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: ops.ConnectionName(id)}, conn))
	if conn.Spec.Role != v1.RoleAnalyst || conn.Spec.ApplicationID != id || conn.Annotations[v1.AnnotationConsentedBy] != admin.username() ||
		conn.Annotations[v1.AnnotationCreatedBy] != admin.username() || conn.Annotations[v1.AnnotationConsent] == "" {
		t.Errorf("the connection after Allow: %s %s, annotations %v; want Analyst, created and consented by %s", conn.Spec.ApplicationID, conn.Spec.Role, conn.Annotations, admin.username())
	}

	// 3. The code for an access, a refresh and an ID token.
	tok, err := app.cfg.Exchange(app.ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchanging the code: %v", err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	secrets.Add("ID token", idToken)
	if tok.AccessToken == "" || tok.RefreshToken == "" || idToken == "" || tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
		t.Fatalf("the exchange gave access token %t, refresh token %t, ID token %t, type %q, expiry %v",
			tok.AccessToken != "", tok.RefreshToken != "", idToken != "", tok.TokenType, tok.Expiry)
	}
	claims := app.verifyIDToken(t, idToken)
	if claims["sub"] != admin.username() || claims["iss"] != issuer || claims["aud"] != id || claims["nonce"] != nonce {
		t.Errorf("ID token: sub %v, iss %v, aud %v, nonce as sent %t; want sub %s, iss %s, aud %s",
			claims["sub"], claims["iss"], claims["aud"], claims["nonce"] == nonce, admin.username(), issuer, id)
	}

	// 4. Through nginx to the org's API.
	if status, reason := call(t, proxy, tok.AccessToken); status != http.StatusOK {
		t.Fatalf("the access token through nginx: %d %s", status, reason)
	}
	if got := up.last(); got.Get("X-Clearance-Org") != org || got.Get("X-Clearance-Role") != string(v1.RoleAnalyst) ||
		got.Get("X-Clearance-Application-Id") != id || got.Get("X-Clearance-Key-Id") != "" {
		t.Errorf("the API got org %q, role %q, application %q, key %q; want org %s, role Analyst, application %s, no key",
			got.Get("X-Clearance-Org"), got.Get("X-Clearance-Role"), got.Get("X-Clearance-Application-Id"), got.Get("X-Clearance-Key-Id"), org, id)
	}

	// 5. A refresh, as the oauth2 client does once its token expired: a new access token that
	// works, and a new refresh token.
	next, err := app.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refreshing: %v", err)
	}
	if next.AccessToken == tok.AccessToken || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Errorf("the refresh gave the same access token %t, a refresh token %t, the same refresh token %t",
			next.AccessToken == tok.AccessToken, next.RefreshToken != "", next.RefreshToken == tok.RefreshToken)
	}
	if status, reason := call(t, proxy, next.AccessToken); status != http.StatusOK {
		t.Fatalf("the refreshed access token through nginx: %d %s", status, reason)
	}

	// 6. The admin disconnects the application in the console. While the click is under way the
	// app goes on calling and refreshing, as it would; the clock starts at the click.
	p.Load(consoleURL + "/org")
	p.Fill("#org", org)
	p.Submit("form[action='/org'].stack button[type=submit]")
	p.Load(consoleURL + "/connections/" + conn.Name + "/disconnect") // the Disconnect from org page, as without script
	current, refreshToken := next.AccessToken, next.RefreshToken
	accessTokens := []string{tok.AccessToken, next.AccessToken}
	start := time.Now()
	clicked := p.SubmitAsync("form[action='/connections/" + conn.Name + "/disconnect'] button[type=submit]")
	var answered, deleted, accessRefused, refreshRefused time.Duration
	refreshed := 0
	for answered == 0 || deleted == 0 || accessRefused == 0 || refreshRefused == 0 {
		if time.Since(start) > revocationBound {
			t.Fatalf("%s after clicking Disconnect: the console answered %t, the connection deleted %t, the access token refused %t, the refresh token refused %t",
				revocationBound, answered != 0, deleted != 0, accessRefused != 0, refreshRefused != 0)
		}
		select {
		case err := <-clicked:
			if err != nil {
				t.Fatalf("clicking Disconnect: %v", err)
			}
			answered = time.Since(start)
		default:
		}
		if deleted == 0 {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), &v1.OrgConnection{})
			switch {
			case apierrors.IsNotFound(err):
				deleted = time.Since(start)
			case err != nil:
				t.Fatal(err)
			}
		}
		if accessRefused == 0 {
			if status, _ := call(t, proxy, current); status == http.StatusUnauthorized || status == http.StatusForbidden {
				accessRefused = time.Since(start)
			}
		}
		if refreshRefused == 0 {
			got, err := app.refresh(refreshToken)
			var re *oauth2.RetrieveError
			switch {
			case err == nil: // the verifier has not seen the delete yet: the app goes on with what it got
				refreshed++
				current, refreshToken = got.AccessToken, got.RefreshToken
				accessTokens = append(accessTokens, got.AccessToken)
			case errors.As(err, &re) && re.ErrorCode == "invalid_grant":
				refreshRefused = time.Since(start)
			default:
				t.Fatalf("refreshing after the disconnect: %v, want invalid_grant", err)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("clicking Disconnect in the console: the OrgConnection gone from the apiserver after %s, the access token refused at nginx after %s, "+
		"the refresh token invalid_grant after %s (%d refreshes succeeded before), the console's answer loaded after %s",
		deleted.Round(time.Millisecond), accessRefused.Round(time.Millisecond), refreshRefused.Round(time.Millisecond), refreshed, answered.Round(time.Millisecond))
	// Every token the app ever got stays refused.
	for _, at := range accessTokens {
		if status, reason := call(t, proxy, at); status != http.StatusForbidden || reason != verifier.ReasonOrgNotConnected {
			t.Errorf("an access token after the disconnect: %d %s, want 403 %s", status, reason, verifier.ReasonOrgNotConnected)
		}
	}
	var re *oauth2.RetrieveError
	if _, err := app.refresh(refreshToken); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refreshing again after the disconnect: %v, want invalid_grant", err)
	}
}

// TestAConsentThatGrantsNothingGivesTheAppNoCode: an org admin denies, and the app gets
// error=access_denied with its state and iss; a technician, who may neither create a connection
// nor assign OrgAdmin, posts OrgAdmin anyway: the apiserver refuses it, the org has no
// connection and the app hears nothing.
func TestAConsentThatGrantsNothingGivesTheAppNoCode(t *testing.T) {
	browser.Chromium(t, needsChromium)
	t.Cleanup(func() { noSecretLogged(t) })
	partner := env.Namespace(t, "partner")
	id := partnerApp(t, partner)
	app := newAppClient(t, id)
	for _, tc := range []struct {
		name  string
		roles []string
		// answer decides on the consent page of org and checks what the app got.
		answer func(t *testing.T, p *page, org, state string)
	}{
		{"an org admin denies: access_denied", []string{"clearance-org-admin"}, func(t *testing.T, p *page, _, state string) {
			p.Submit("#consent-decision button[value=deny]")
			cb := app.callback(t, state)
			if cb.Get("error") != "access_denied" || cb.Get("code") != "" || cb.Get("iss") != issuer {
				t.Errorf("after Deny the app got error %q, a code %t, iss %q; want access_denied, no code, %s", cb.Get("error"), cb.Get("code") != "", cb.Get("iss"), issuer)
			}
		}},
		{"a technician posts OrgAdmin: refused", []string{"clearance-technician"}, func(t *testing.T, p *page, org, state string) {
			if got := p.Options("#role"); slices.Contains(got, string(v1.RoleOrgAdmin)) {
				t.Errorf("a technician is offered %v", got)
			}
			request := p.Value("#consent-decision input[name=request]")
			status, body := p.post("/oauth2/consent", url.Values{"request": {request}, "org": {org}, "role": {string(v1.RoleOrgAdmin)}, "decision": {"allow"}})
			// Only org admins create connections (clearance-org-admin): the apiserver refuses the
			// technician's own request, which the console shows as it is.
			if status != http.StatusForbidden || !strings.Contains(body, "is forbidden") {
				t.Errorf("a technician granting OrgAdmin: %d, the page says it is forbidden %t", status, strings.Contains(body, "is forbidden"))
			}
			if cb := app.received(state); cb != nil {
				t.Errorf("the app got a redirect (error %q, a code %t) for a consent the apiserver refused", cb.Get("error"), cb.Get("code") != "")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			org := env.Namespace(t, "initech")
			who := newPerson(t, org, "pat", tc.roles...)
			state, pkce := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
			p := newPage(t)
			p.Load(app.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(pkce)))
			p.signIn(who)
			p.Fill("#org", org)
			p.Submit("#consent-org button[type=submit]")
			tc.answer(t, p, org, state)
			var conns v1.OrgConnectionList
			must(t, env.Client.List(context.Background(), &conns, client.InNamespace(org)))
			if len(conns.Items) != 0 {
				t.Errorf("the org has %d connections, want none", len(conns.Items))
			}
		})
	}
}

// partnerApp creates the partner's Application, a public OAuth client with a loopback redirect
// URI (any port), and waits until it has its ID and the verifier knows it as a client.
func partnerApp(t *testing.T, ns string) string {
	t.Helper()
	ctx := context.Background()
	a := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "Partner BI",
		OAuth: &v1.OAuthClient{ClientType: v1.OAuthPublic, RedirectURIs: []string{"http://127.0.0.1/cb"}}}}
	must(t, env.Client.Create(ctx, a))
	within(t, "the Application's ID, known to the verifier as an OAuth client", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), a); err != nil {
			return err
		}
		if a.Status.ApplicationID == "" {
			return errors.New("no ID yet")
		}
		if c, ok := vf.OAuthClient(a.Status.ApplicationID); !ok || !c.Enabled {
			return errors.New("not an enabled OAuth client of the verifier yet")
		}
		return nil
	})
	return a.Status.ApplicationID
}

// appClient is the partner's app: an oauth2 client configured from the verifier's discovery
// document, and the loopback server its redirect URI names.
type appClient struct {
	cfg  *oauth2.Config
	ctx  context.Context // carries the HTTP client oauth2 uses
	jwks string

	mu  sync.Mutex
	got map[string]url.Values // redirects received, by state
}

func newAppClient(t *testing.T, clientID string) *appClient {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	var meta struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
		JWKSURI               string `json:"jwks_uri"`
	}
	getJSON(t, hc, issuer+verifier.PathMetadata, &meta)
	if meta.Issuer != issuer || meta.AuthorizationEndpoint == "" || meta.TokenEndpoint == "" || meta.JWKSURI == "" {
		t.Fatalf("the discovery document: %+v; want issuer %s and the endpoints", meta, issuer)
	}
	a := &appClient{ctx: context.WithValue(context.Background(), oauth2.HTTPClient, hc), jwks: meta.JWKSURI, got: map[string]url.Values{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		a.mu.Lock()
		a.got[q.Get("state")] = q
		a.mu.Unlock()
		_, _ = io.WriteString(w, "back at the partner's app")
	}))
	t.Cleanup(srv.Close)
	a.cfg = &oauth2.Config{
		ClientID:    clientID,
		Endpoint:    oauth2.Endpoint{AuthURL: meta.AuthorizationEndpoint, TokenURL: meta.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: srv.URL + "/cb",
		Scopes:      []string{"openid", "offline_access"},
	}
	return a
}

// received is the redirect the app got for state, or nil.
func (a *appClient) received(state string) url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got[state]
}

// callback waits for the redirect the app gets for state.
func (a *appClient) callback(t *testing.T, state string) url.Values {
	t.Helper()
	var q url.Values
	within(t, "the browser's redirect to the app", func() error {
		if q = a.received(state); q == nil {
			return errors.New("none with the state sent")
		}
		return nil
	})
	return q
}

// refresh is what the oauth2 client does with an expired token: a refresh_token grant.
func (a *appClient) refresh(refreshToken string) (*oauth2.Token, error) {
	tok, err := a.cfg.TokenSource(a.ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if err == nil {
		secrets.Add("access token", tok.AccessToken)
		secrets.Add("refresh token", tok.RefreshToken)
		id, _ := tok.Extra("id_token").(string)
		secrets.Add("ID token", id)
	}
	return tok, err
}

// verifyIDToken checks the ID token's ES256 signature against the key the verifier's JWKS
// publishes under its kid, and returns its claims.
func (a *appClient) verifyIDToken(t *testing.T, idToken string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(idToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		t.Fatalf("the ID token is no ES256 JWS: %v", err)
	}
	var set jose.JSONWebKeySet
	getJSON(t, &http.Client{Timeout: 10 * time.Second}, a.jwks, &set)
	kid := jws.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("the JWKS has %d keys with the ID token's kid %q", len(keys), kid)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("the ID token's signature: %v", err)
	}
	var claims map[string]any
	must(t, json.Unmarshal(payload, &claims))
	if exp, _ := claims["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
		t.Errorf("the ID token expired at %v", exp)
	}
	return claims
}

// jwks is the verifier's key set, for the readiness check.
func jwks(ctx context.Context) (*jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+verifier.PathJWKS, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("JWKS: %s: %w", resp.Status, err)
	}
	return &set, nil
}

func getJSON(t *testing.T, hc *http.Client, u string, into any) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s (%v)", u, resp.Status, err)
	}
}

// upstream is the org's API behind nginx: it answers 200 and records the identity nginx sent.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen http.Header
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = r.Header.Clone()
		u.mu.Unlock()
		_, _ = io.WriteString(w, "reports\n")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

func (u *upstream) last() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen
}

// nginxConf is the data path: every request asks the verifier about the org (auth_request to
// /v1/authorize?org=…) and goes on to the API with the identity it answered; refusals reach the
// client with the verifier's status and reason.
const nginxConf = `daemon off;
worker_processes 1;
{{user}}pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log info;
events { worker_connections 64; }
http {
    access_log {{dir}}/access.log;
    client_body_temp_path {{dir}}/client_body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;
    server {
        listen {{listen}};
        location / {
            auth_request /_clearance;
            auth_request_set $clearance_reason $upstream_http_x_clearance_reason;
            auth_request_set $clearance_app    $upstream_http_x_clearance_application_id;
            auth_request_set $clearance_org    $upstream_http_x_clearance_org;
            auth_request_set $clearance_role   $upstream_http_x_clearance_role;
            auth_request_set $clearance_key_id $upstream_http_x_clearance_key_id;
            proxy_set_header X-Clearance-Application-Id $clearance_app;
            proxy_set_header X-Clearance-Org            $clearance_org;
            proxy_set_header X-Clearance-Role           $clearance_role;
            proxy_set_header X-Clearance-Key-Id         $clearance_key_id;
            add_header X-Clearance-Reason $clearance_reason always;
            proxy_pass http://{{upstream}};
        }
        location = /_clearance {
            internal;
            proxy_pass http://{{verifier}}/v1/authorize?org={{org}};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_method $request_method;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-Method $request_method;
        }
    }
}
`

// startNginx runs Debian's nginx in front of the verifier for org's API at upstream.
func startNginx(t *testing.T, org, upstream string) string {
	t.Helper()
	return "http://" + testenv.StartProxy(t, testenv.Proxy{Name: "nginx", Binary: "nginx", Configure: func(t testing.TB, dir, listen string) []string {
		user := ""
		if os.Geteuid() == 0 {
			user = "user root root;\n"
		}
		conf := strings.NewReplacer("{{user}}", user, "{{dir}}", dir, "{{listen}}", listen, "{{upstream}}", upstream,
			"{{verifier}}", strings.TrimPrefix(issuer, "http://"), "{{org}}", org).Replace(nginxConf)
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")}
	}}, secrets.Values)
}

// call sends GET /reports through nginx with the access token and returns the status and the
// verifier's reason.
func call(t *testing.T, proxy, accessToken string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, proxy+"/reports?year=2026", nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Clearance-Reason")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// within polls cond until it holds, for up to 30 s.
func within(t *testing.T, what string, cond func() error) {
	t.Helper()
	testenv.Within(t, 30*time.Second, what, cond)
}
