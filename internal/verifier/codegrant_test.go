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
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/oauth"
	"github.com/clearance-dev/clearance/internal/testenv"
)

const (
	consentURL  = "https://console.example/oauth2/consent"
	redirectURI = "http://127.0.0.1/cb"
	verifierPK  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk0123456789" // an RFC 7636 code_verifier
)

// codeWorld is the unit world with the authorization code grant served, acme-bi registered as
// a public OAuth client and the token signing keys loaded.
func codeWorld(t *testing.T, clientType v1.OAuthClientType) *world {
	w := newWorld(t, func(o *Options) { o.OAuth.ConsentURL = consentURL })
	w.newSigningKeys()
	w.updateApp(func(a *v1.Application) {
		a.Spec.OAuth = &v1.OAuthClient{ClientType: clientType, RedirectURIs: []string{redirectURI}}
	})
	return w
}

func challenge(verifier string) string {
	s := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// consent runs the browser's part: the authorization request, the console's consent recorded
// as the connection's annotations (as the apiserver would stamp them), the callback. It returns
// the code.
func (w *world) consent(scope string) string {
	w.t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {appID}, "redirect_uri": {"http://127.0.0.1:4711/cb"},
		"code_challenge": {challenge(verifierPK)}, "code_challenge_method": {"S256"}, "state": {"st-1"}, "scope": {scope}}
	rec := w.do(http.MethodGet, oauth.AuthorizePath+"?"+q.Encode(), "")
	if rec.Code != http.StatusFound {
		w.t.Fatalf("authorize: %d %s", rec.Code, rec.Body.String())
	}
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if !strings.HasPrefix(loc.String(), consentURL+"?") || loc.Query().Get("request") == "" {
		w.t.Fatalf("authorize sent the browser to %s, not the consent page", loc)
	}
	id := loc.Query().Get("request")
	info := w.do(http.MethodGet, oauth.AuthorizeRequestsPath+id, "")
	var ri oauth.RequestInfo
	if err := json.Unmarshal(info.Body.Bytes(), &ri); info.Code != http.StatusOK || err != nil || ri.ApplicationID != appID || ri.OwnerOrg != ownerOrg {
		w.t.Fatalf("request info: %d %s", info.Code, info.Body.String())
	}
	consented := w.conn.DeepCopy()
	consented.Annotations = map[string]string{v1.AnnotationConsent: id, v1.AnnotationConsentedBy: "ada"}
	w.conn = consented
	w.v.Apply(consented)
	done := w.do(http.MethodGet, oauth.AuthorizeDonePath+"?request="+id, "")
	back, _ := url.Parse(done.Header().Get("Location"))
	if done.Code != http.StatusFound || back.Host != "127.0.0.1:4711" || back.Query().Get("state") != "st-1" ||
		back.Query().Get("iss") != DefaultIssuer || back.Query().Get("code") == "" {
		w.t.Fatalf("callback: %d to %s", done.Code, back)
	}
	return back.Query().Get("code")
}

// tokenForm posts a form to the token endpoint; headers are name, value pairs.
func (w *world) tokenForm(form url.Values, headers ...string) (int, map[string]any) {
	w.t.Helper()
	rec := w.do(http.MethodPost, PathToken, form.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		w.t.Fatalf("token endpoint: %d %s", rec.Code, rec.Body.String())
	}
	if at, ok := body["access_token"].(string); ok {
		w.issued = append(w.issued, at)
	}
	return rec.Code, body
}

func (w *world) exchange(code string, headers ...string) (int, map[string]any) {
	return w.tokenForm(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {appID},
		"redirect_uri": {"http://127.0.0.1:4711/cb"}, "code_verifier": {verifierPK}}, headers...)
}

// TestAPartnersCodeGrantTokenIsDecidedLikeAnyRequestAndDiesWithItsGrant: a public client goes
// through authorize, consent and callback, exchanges the code, calls with the access token (no
// key obtained it: no key id in the answer, its connection's role), refreshes, and is refused
// the instant the Application is switched off or the connection is deleted, on the data path
// and at the token endpoint.
func TestAPartnersCodeGrantTokenIsDecidedLikeAnyRequestAndDiesWithItsGrant(t *testing.T) {
	w := codeWorld(t, v1.OAuthPublic)
	code := w.consent("openid offline_access reports:read")
	status, body := w.exchange(code)
	if status != http.StatusOK || body["refresh_token"] == nil || body["id_token"] == nil {
		t.Fatalf("exchange: %d %v", status, body)
	}
	at := body["access_token"].(string)
	_, claims := claimsOf(t, at)
	if claims["conn"] != string(w.conn.UID) || claims["org"] != grantOrg || claims["app_uid"] != string(w.app.UID) ||
		claims["key_id"] != nil || claims["scope"] != "reports:read" || claims["client_id"] != appID {
		t.Errorf("access token claims: %v", claims)
	}
	rec := w.bearer(at, "scope=reports:read")
	expect(t, rec, http.StatusOK, "")
	if rec.Header().Get("X-Clearance-Role") != string(v1.RoleAnalyst) || rec.Header().Get("X-Clearance-Key-Id") != "" ||
		rec.Header().Get("X-Clearance-Application-Id") != appID {
		t.Errorf("answer headers: %v", rec.Header())
	}
	expect(t, w.bearer(at, "scope=dashboards:refresh"), http.StatusForbidden, ReasonScopeMissing)
	expect(t, w.bearer(at, "minRole=Technician"), http.StatusForbidden, ReasonRoleInsufficient)

	// A refresh gives a new access token; the role follows the connection.
	w.conn.Spec.Role = v1.RoleTechnician
	w.v.Apply(w.conn)
	status, next := w.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}, "client_id": {appID}})
	if status != http.StatusOK || next["refresh_token"] == body["refresh_token"] {
		t.Fatalf("refresh: %d %v", status, next)
	}
	expect(t, w.bearer(next["access_token"].(string), "minRole=Technician"), http.StatusOK, "")

	// Switched off: refused on the data path and at the token endpoint.
	w.updateApp(func(a *v1.Application) { a.Spec.Enabled = ptr(false) })
	expect(t, w.bearer(at, ""), http.StatusUnauthorized, ReasonApplicationDisabled)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next["refresh_token"].(string)}, "client_id": {appID}}
	if status, body := w.tokenForm(refresh); status == http.StatusOK {
		t.Fatalf("refresh with the Application switched off: %d %v", status, body)
	}
	w.updateApp(func(a *v1.Application) { a.Spec.Enabled = nil })

	// Disconnected: the token is refused at once, and connecting again does not revive it.
	w.v.Remove(w.conn)
	expect(t, w.bearer(at, ""), http.StatusForbidden, ReasonOrgNotConnected)
	w.v.Apply(connection(grantOrg, "acme-bi-again", appID, v1.RoleAnalyst, ownerOrg, true))
	expect(t, w.bearer(at, ""), http.StatusUnauthorized, ReasonTokenRevoked)
}

// TestADeletedApplicationsGrantTokensNeverComeBack: applying the Application again under the
// same (pinned) ID makes another object; tokens issued to the deleted one stay refused, and its
// refresh token gets no new access token for the new object (the connection, which outlives
// the Application, is Ready again once it is back).
func TestADeletedApplicationsGrantTokensNeverComeBack(t *testing.T) {
	w := codeWorld(t, v1.OAuthPublic)
	_, body := w.exchange(w.consent("offline_access"))
	at := body["access_token"].(string)
	expect(t, w.bearer(at, ""), http.StatusOK, "")
	w.v.Remove(w.app)
	expect(t, w.bearer(at, ""), http.StatusUnauthorized, ReasonTokenRevoked)
	again := w.app.DeepCopy()
	again.UID = "uid-app-again"
	w.v.Apply(again)
	expect(t, w.bearer(at, ""), http.StatusUnauthorized, ReasonTokenRevoked)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}, "client_id": {appID}}
	if status, body := w.tokenForm(refresh); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after the Application was deleted and applied again: %d, error %v", status, body["error"])
	}
}

// TestGrantTokensSpendTheirConnectionsBudget: the Application's limit applies per connection to
// tokens no key obtained; another connection of the same application has its own budget.
func TestGrantTokensSpendTheirConnectionsBudget(t *testing.T) {
	w := codeWorld(t, v1.OAuthPublic)
	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 2, Period: metav1.Duration{Duration: time.Minute}}}
	})
	_, body := w.exchange(w.consent(""))
	at := body["access_token"].(string)
	expect(t, w.bearer(at, ""), http.StatusOK, "")
	expect(t, w.bearer(at, ""), http.StatusOK, "")
	rec := w.bearer(at, "")
	expect(t, rec, http.StatusTooManyRequests, ReasonRateLimited)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "") // the key's budget is its own
	w.step(time.Minute)
	expect(t, w.bearer(at, ""), http.StatusOK, "")
}

// TestAConfidentialClientAuthenticatesWithAKeyOfItsApplication: the client_id is the
// Application ID, the client_secret one of its keys; without it, or with a key of another
// Application, the token endpoint refuses (401), and a public client's way (no secret) does not
// work for it.
func TestAConfidentialClientAuthenticatesWithAKeyOfItsApplication(t *testing.T) {
	w := codeWorld(t, v1.OAuthConfidential)
	code := w.consent("offline_access")
	if status, body := w.exchange(code); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Fatalf("a confidential client without its secret: %d %v", status, body)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(appID)+":"+url.QueryEscape(w.token.Token)))
	status, body := w.exchange(code, "Authorization", basic)
	if status != http.StatusOK {
		t.Fatalf("with a key as the secret: %d %v", status, body)
	}
	expect(t, w.bearer(body["access_token"].(string), ""), http.StatusOK, "")
	w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = ptr(false) })
	status, body = w.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}}, "Authorization", basic)
	if status != http.StatusUnauthorized {
		t.Errorf("refresh with a disabled key as the secret: %d %v", status, body)
	}
}

// TestDiscoveryListsTheCodeGrantExactlyWhenItIsServed.
func TestDiscoveryListsTheCodeGrantExactlyWhenItIsServed(t *testing.T) {
	doc := func(w *world, path string) (int, map[string]any) {
		rec := w.do(http.MethodGet, path, "")
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		return rec.Code, m
	}
	plain := newWorld(t)
	if _, m := doc(plain, PathMetadata); m["authorization_endpoint"] != nil || len(m["grant_types_supported"].([]any)) != 1 {
		t.Errorf("client credentials only: %v", m)
	}
	if code, _ := doc(plain, PathOpenIDConfiguration); code != http.StatusNotFound {
		t.Errorf("OpenID discovery without the code grant: %d", code)
	}
	w := codeWorld(t, v1.OAuthPublic)
	for _, p := range []string{PathMetadata, PathOpenIDConfiguration} {
		code, m := doc(w, p)
		grants := m["grant_types_supported"].([]any)
		if code != http.StatusOK || m["authorization_endpoint"] != DefaultIssuer+oauth.AuthorizePath || len(grants) != 3 ||
			!slices.Contains(grants, any("refresh_token")) || m["code_challenge_methods_supported"].([]any)[0] != "S256" ||
			m["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("%s: %d %v", p, code, m)
		}
	}
	if _, m := doc(w, PathOpenIDConfiguration); m["id_token_signing_alg_values_supported"].([]any)[0] != "ES256" {
		t.Errorf("OpenID discovery: %v", m)
	}
}

// TestConcurrentRefreshesAcrossTwoReplicasGiveOneNextToken: 100 refreshes with one refresh
// token at once, half on each of two replicas sharing Debian's redis-server: none fails, all
// get the same next token, and the family moved one generation only.
func TestConcurrentRefreshesAcrossTwoReplicasGiveOneNextToken(t *testing.T) {
	if testenv.RedisServer() == "" {
		t.Skip("redis-server is not installed (apt-get install redis-server)")
	}
	r, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	shared := func(o *Options) {
		o.OAuth.ConsentURL, o.OAuth.CodeStore = consentURL, oauth.NewRedisStore(rc, "clearance:oauth:")
	}
	a, b := newWorld(t, shared), newWorld(t, shared)
	b.loadSigningKeys(a.newSigningKeys())
	for _, w := range []*world{a, b} {
		w.updateApp(func(app *v1.Application) {
			app.Spec.OAuth = &v1.OAuthClient{ClientType: v1.OAuthPublic, RedirectURIs: []string{redirectURI}}
		})
	}
	code := a.consent("offline_access")
	b.v.Apply(a.conn)
	status, body := b.exchange(code) // the code is redeemed on the other replica
	if status != http.StatusOK {
		t.Fatalf("exchange on the second replica: %d %v", status, body)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}, "client_id": {appID}}.Encode()

	const n = 100
	type answer struct {
		status int
		next   string
	}
	answers := make(chan answer, n)
	var start sync.WaitGroup
	start.Add(1)
	for i := range n {
		w := []*world{a, b}[i%2]
		go func() {
			start.Wait()
			rec := w.do(http.MethodPost, PathToken, form, "Content-Type", "application/x-www-form-urlencoded")
			var m map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &m)
			next, _ := m["refresh_token"].(string)
			if at, ok := m["access_token"].(string); ok {
				w.mu.Lock()
				w.issued = append(w.issued, at)
				w.mu.Unlock()
			}
			answers <- answer{rec.Code, next}
		}()
	}
	start.Done()
	nexts := map[string]int{}
	for range n {
		a := <-answers
		if a.status != http.StatusOK {
			t.Errorf("a concurrent refresh answered %d", a.status)
			continue
		}
		nexts[a.next]++
	}
	if len(nexts) != 1 {
		t.Errorf("%d different next refresh tokens, want 1", len(nexts))
	}
}

// TestAReusedRefreshTokenRevokesItsFamilyAndTellsTheGrantingOrg: presenting a rotated refresh
// token after the leeway revokes the whole family (the newer token too) and records a Warning on
// the org's connection that holds no token.
func TestAReusedRefreshTokenRevokesItsFamilyAndTellsTheGrantingOrg(t *testing.T) {
	w := codeWorld(t, v1.OAuthPublic)
	rec := events.NewFakeRecorder(10)
	w.v.events = rec
	_, first := w.exchange(w.consent("offline_access"))
	refresh := func(tok string) (int, map[string]any) {
		return w.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}, "client_id": {appID}})
	}
	status, second := refresh(first["refresh_token"].(string))
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, second)
	}
	w.step(oauth.DefaultRefreshLeeway + time.Second)
	if status, body := refresh(first["refresh_token"].(string)); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", status, body)
	}
	if status, body := refresh(second["refresh_token"].(string)); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("the newer token of a revoked family: %d %v", status, body)
	}
	select {
	case e := <-rec.Events:
		if !strings.HasPrefix(e, "Warning OAuthTokenReused") || !strings.Contains(e, appID) ||
			strings.Contains(e, first["refresh_token"].(string)) || strings.Contains(e, second["refresh_token"].(string)) {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no event on the connection")
	}
}

// TestTwoReplicasShareAGrantsBudget: with a shared rate-limit store, a connection's budget for
// grant tokens holds across replicas, as a key's does; its bucket is apart from the key's.
func TestTwoReplicasShareAGrantsBudget(t *testing.T) {
	m, store := sharedRedis(t)
	a := codeWorld(t, v1.OAuthPublic)
	b := newWorld(t, withStore(store), func(o *Options) { o.OAuth.ConsentURL = consentURL })
	a2 := newWorld(t, withStore(store), func(o *Options) { o.OAuth.ConsentURL = consentURL })
	set := a.newSigningKeys()
	for _, w := range []*world{b, a2} {
		w.loadSigningKeys(set)
	}
	limit := func(app *v1.Application) {
		app.Spec.OAuth = &v1.OAuthClient{ClientType: v1.OAuthPublic, RedirectURIs: []string{redirectURI}}
		app.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 3, Period: metav1.Duration{Duration: time.Hour}}}
	}
	for _, w := range []*world{a, b, a2} {
		w.updateApp(limit)
	}
	_, body := a.exchange(a.consent(""))
	at := body["access_token"].(string)
	for _, w := range []*world{b, a2} {
		w.v.Apply(a.conn)
	}
	m.SetTime(a.clk.Now())
	expect(t, b.bearer(at, ""), http.StatusOK, "")
	expect(t, a2.bearer(at, ""), http.StatusOK, "")
	expect(t, b.bearer(at, ""), http.StatusOK, "")
	expect(t, a2.bearer(at, ""), http.StatusTooManyRequests, ReasonRateLimited)
	expect(t, b.authorize(b.token.Token, ""), http.StatusOK, "") // the key's own bucket
}

// TestAReusedCodeRevokesItsRefreshTokenAndTellsTheGrantingOrg: a code redeemed a second time
// (it was stolen) revokes the refresh token its first redemption gave and records a Warning on
// the org's connection, as a reused refresh token does; the event holds no code or token.
func TestAReusedCodeRevokesItsRefreshTokenAndTellsTheGrantingOrg(t *testing.T) {
	w := codeWorld(t, v1.OAuthPublic)
	rec := events.NewFakeRecorder(10)
	w.v.events = rec
	code := w.consent("offline_access")
	status, first := w.exchange(code)
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, first["error"])
	}
	if status, body := w.exchange(code); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("second exchange: %d %v", status, body["error"])
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}, "client_id": {appID}}
	if status, body := w.tokenForm(refresh); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("the first redemption's refresh token: %d %v", status, body["error"])
	}
	select {
	case e := <-rec.Events:
		if !strings.HasPrefix(e, "Warning OAuthTokenReused") || !strings.Contains(e, appID) || strings.Contains(e, code) ||
			strings.Contains(e, first["refresh_token"].(string)) {
			t.Error("the event is not a reuse warning naming the application alone")
		}
	default:
		t.Error("no event on the connection")
	}
}

// TestAGrantTokenIsRefusedFromTheMomentItsApplicationIsBeingDeleted: an Application whose
// delete waits on a finalizer is already gone for its keys (key_revoked); the tokens an org
// admin's consent led to are refused as soon (token_revoked), not once the object finally goes,
// and no refresh renews them.
func TestAGrantTokenIsRefusedFromTheMomentItsApplicationIsBeingDeleted(t *testing.T) {
	w := codeWorld(t, v1.OAuthPublic)
	_, body := w.exchange(w.consent("offline_access"))
	at := body["access_token"].(string)
	expect(t, w.bearer(at, ""), http.StatusOK, "")
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")

	w.updateApp(func(a *v1.Application) {
		a.DeletionTimestamp = ptr(metav1.NewTime(epoch))
		a.Finalizers = []string{"example.com/hold"}
	})
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyRevoked)
	expect(t, w.bearer(at, ""), http.StatusUnauthorized, ReasonTokenRevoked)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}, "client_id": {appID}}
	if status, body := w.tokenForm(refresh); status == http.StatusOK || body["access_token"] != nil {
		t.Fatalf("refresh while the Application is being deleted: %d, a new access token", status)
	}
}

// TestARefreshNamingNoPermissionScopeNeverWidensTheToken: a consent to reports:read gives
// tokens good for reports:read alone. A token without a permission scope is good for every
// permission of the role, so a refresh asking only for offline_access or openid (scopes the
// consent holds, which say nothing of what a token may do) is refused, not answered with a
// token good for more than the org admin allowed.
func TestARefreshNamingNoPermissionScopeNeverWidensTheToken(t *testing.T) {
	w := codeWorld(t, v1.OAuthPublic)
	_, body := w.exchange(w.consent("openid offline_access reports:read"))
	rt := body["refresh_token"].(string)
	for _, scope := range []string{"offline_access", "openid", "openid offline_access"} {
		status, next := w.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {appID}, "scope": {scope}})
		if at, ok := next["access_token"].(string); ok {
			expect(t, w.bearer(at, "scope=dashboards:refresh"), http.StatusForbidden, ReasonScopeMissing)
			rt = next["refresh_token"].(string)
		}
		if status != http.StatusBadRequest || next["error"] != "invalid_scope" {
			t.Errorf("a refresh asking for %q alone: %d %v, want invalid_scope", scope, status, next["error"])
		}
	}
	status, next := w.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {appID}, "scope": {"offline_access reports:read"}})
	if status != http.StatusOK {
		t.Fatalf("a refresh keeping the permission scope: %d %v", status, next["error"])
	}
	expect(t, w.bearer(next["access_token"].(string), "scope=reports:read"), http.StatusOK, "")
	expect(t, w.bearer(next["access_token"].(string), "scope=dashboards:refresh"), http.StatusForbidden, ReasonScopeMissing)
}
