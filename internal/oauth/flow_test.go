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
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	mathrand "math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestAppGetsTokensThroughConsentAndRefreshesThem(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	tok, err := e.exchange(c, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "at-uid-") || tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("token response %+v", tok)
	}
	idt, _ := tok.Extra("id_token").(string)
	jws, err := jose.ParseSigned(idt, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || jws.Signatures[0].Header.KeyID != "k1" {
		t.Fatalf("id_token %q: %v", idt, err)
	}
	payload, err := jws.Verify(&e.idKey.PublicKey)
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	if err != nil || claims["sub"] != "alice@example.com" || claims["aud"] != confID || claims["iss"] != issuer {
		t.Fatalf("id_token claims %v: %v", claims, err)
	}
	status, body := e.refresh(tok.RefreshToken)
	if status != http.StatusOK || body["refresh_token"] == tok.RefreshToken || body["access_token"] == "" {
		t.Fatalf("refresh: %d %v", status, body)
	}
}

func TestPublicClientGetsTokensWithPKCEAlone(t *testing.T) {
	e := newEnv(t)
	c := e.config(publicID, "com.example.app:/cb")
	code, verifier := e.code(c)
	if _, err := e.exchange(c, code, verifier); err != nil {
		t.Fatal(err)
	}
}

func TestNearMissRedirectsGetAnErrorPageNeverARedirect(t *testing.T) {
	e := newEnv(t)
	for _, ru := range []string{
		"https://evil.example/cb",
		"https://app.example/cb/",
		"https://app.example/CB",
		"https://app.example/cb?x=1",
		"https://app.example/cb#f",
		"https://APP.example/cb",
		"http://app.example/cb",
		"https://app.example.evil/cb",
		"https://user@app.example/cb",
		"http://localhost:5555/callback",
		"http://127.0.0.2:5555/callback",
		"http://127.0.0.1:5555/callback/",
		"http://127.0.0.1:5555/callback?x=1",
		"http://127.0.0.1:/callback",
		"http://[::1]:5555/callback",
		"com.example.app:/cb/x",
		"com.example.evil:/cb",
		"",
	} {
		t.Run(ru, func(t *testing.T) {
			c := e.config(confID, ru)
			status, loc, _ := e.get(c.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			if status != http.StatusBadRequest || loc != nil {
				t.Fatalf("%d %v, want 400 and no redirect", status, loc)
			}
		})
	}
}

func TestUnusableApplicationsGetAnErrorPageAtAuthorize(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{disabledID, bareID, "app_nosuchapplication00000000"} {
		status, loc, _ := e.get(e.config(id, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if status != http.StatusBadRequest || loc != nil {
			t.Errorf("%s: %d %v, want 400 and no redirect", id, status, loc)
		}
	}
}

// wantRedirectError checks an authorize answer sent the browser back with the error, state and iss.
func wantRedirectError(t *testing.T, status int, loc *url.URL, code string) {
	t.Helper()
	if status != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("%d %v, want a redirect to the app", status, loc)
	}
	if q := loc.Query(); q.Get("error") != code || q.Get("state") != "st" || q.Get("iss") != issuer || q.Has("code") {
		t.Fatalf("redirect %s, want error=%s, state and iss", loc, code)
	}
}

func TestPlainPKCEIsRefused(t *testing.T) {
	e := newEnv(t)
	v := oauth2.GenerateVerifier()
	u := e.config(confID, redirect).AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", v), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
	status, loc, _ := e.get(u)
	wantRedirectError(t, status, loc, "invalid_request")
}

func TestMissingPKCEIsRefusedForEveryClientType(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{confID, publicID} {
		status, loc, _ := e.get(e.config(id, redirect).AuthCodeURL("st"))
		wantRedirectError(t, status, loc, "invalid_request")
	}
}

func TestWrongCodeVerifierIsRefused(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	code, _ := e.code(c)
	_, err := e.exchange(c, code, oauth2.GenerateVerifier())
	wantOAuthError(t, err, "invalid_grant")
}

func TestReusedCodeIsRefusedAndRevokesTheFirstUsesRefreshToken(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	tok, err := e.exchange(c, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.exchange(c, code, verifier)
	wantOAuthError(t, err, "invalid_grant")
	if status, body := e.refresh(tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after code reuse: %d %v, want invalid_grant", status, body)
	}
}

func TestCodeOlderThanAMinuteIsRefused(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	e.clock.Step(61 * time.Second)
	_, err := e.exchange(c, code, verifier)
	wantOAuthError(t, err, "invalid_grant")
}

func TestCodeIsBoundToItsClientAndRedirectURI(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	other := e.config(confID, "http://127.0.0.1:6666/callback")
	_, err := e.exchange(other, code, verifier)
	wantOAuthError(t, err, "invalid_grant")

	code, verifier = e.code(c)
	_, err = e.exchange(e.config(publicID, redirect), code, verifier)
	wantOAuthError(t, err, "invalid_grant")
}

func TestConfidentialClientNeedsOneOfItsKeys(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	c.ClientSecret = "sk-wrong"
	_, err := e.exchange(c, code, verifier)
	wantOAuthError(t, err, "invalid_client")
	c.ClientSecret = ""
	_, err = e.exchange(c, code, verifier)
	wantOAuthError(t, err, "invalid_client")
}

func TestDenyRedirectsWithAccessDeniedStateAndIss(t *testing.T) {
	e := newEnv(t)
	id := e.startAuthorize(e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	status, loc, _ := e.get(e.srv.URL + AuthorizeDonePath + "?request=" + url.QueryEscape(id) + "&error=access_denied")
	wantRedirectError(t, status, loc, "access_denied")
	// The request is answered: a later Allow gets no code.
	status, loc, _ = e.get(e.srv.URL + AuthorizeDonePath + "?request=" + url.QueryEscape(id))
	if status != http.StatusBadRequest || loc != nil {
		t.Fatalf("done after deny: %d %v", status, loc)
	}
}

func TestCallbackWaitsForConsentAndAnswersOnce(t *testing.T) {
	e := newEnv(t)
	id := e.startAuthorize(e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	done := e.srv.URL + AuthorizeDonePath + "?request=" + url.QueryEscape(id)
	if status, loc, _ := e.get(done); status != http.StatusConflict || loc != nil {
		t.Fatalf("done before consent: %d %v, want 409", status, loc)
	}
	e.allow(confID, id)
	if status, loc, _ := e.get(done); status != http.StatusBadRequest || loc != nil {
		t.Fatalf("second done: %d %v, want 400 and no second code", status, loc)
	}
}

func TestAuthorizationRequestExpiresAfterTenMinutes(t *testing.T) {
	e := newEnv(t)
	authURL := e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	kept, id := e.startAuthorize(authURL), e.startAuthorize(authURL)
	e.clock.Step(10*time.Minute - time.Second)
	e.allow(confID, kept) // an admin who took almost ten minutes still answers
	e.clock.Step(2 * time.Second)
	e.recordConsent(confID, id)
	if status, loc, _ := e.get(e.srv.URL + AuthorizeDonePath + "?request=" + url.QueryEscape(id)); status != http.StatusBadRequest || loc != nil {
		t.Fatalf("done after expiry: %d %v", status, loc)
	}
}

func TestPromptNoneIsAnsweredInteractionRequired(t *testing.T) {
	e := newEnv(t)
	u := e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none"))
	status, loc, _ := e.get(u)
	wantRedirectError(t, status, loc, "interaction_required")
}

func TestConsoleLearnsWhatARequestAsksUntilItIsAnswered(t *testing.T) {
	e := newEnv(t)
	id := e.startAuthorize(e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	info := e.srv.URL + AuthorizeRequestsPath + url.PathEscape(id)
	resp, err := http.Get(info)
	if err != nil {
		t.Fatal(err)
	}
	var got RequestInfo
	_ = json.NewDecoder(resp.Body).Decode(&got)
	_ = resp.Body.Close()
	want := RequestInfo{ApplicationID: confID, OwnerOrg: "acme", Scopes: []string{"openid", "offline_access"}, ExpiresAt: e.clock.Now().Add(DefaultRequestTTL)}
	if resp.StatusCode != http.StatusOK || !reflect.DeepEqual(got, want) {
		t.Fatalf("%d %+v, want %+v", resp.StatusCode, got, want)
	}
	e.allow(confID, id)
	if status, _, _ := e.get(info); status != http.StatusNotFound {
		t.Fatalf("after the answer: %d, want 404", status)
	}
}

func TestConfidentialClientMayPostItsKeyInTheForm(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	code, verifier := e.code(c)
	if _, err := e.exchange(c, code, verifier); err != nil {
		t.Fatal(err)
	}
}

func TestApplicationSwitchedOffAfterConsentGetsNoTokens(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	e.dir.mu.Lock()
	cl := e.dir.clients[confID]
	cl.Enabled = false
	e.dir.clients[confID] = cl
	e.dir.mu.Unlock()
	_, err := e.exchange(c, code, verifier)
	wantOAuthError(t, err, "invalid_client")
}

// lateDirectory is an index that has not yet seen the connection the console wrote: its
// consent arrives while the callback waits for it (ConsentWaiter).
type lateDirectory struct {
	*stubDirectory
	arrive func() // records the consent, as the informer's delivery would
	asked  chan struct{}
}

func (d *lateDirectory) WaitConsent(ctx context.Context, id, app string) (Grant, bool) {
	close(d.asked)
	d.arrive()
	select {
	case <-ctx.Done():
		return Grant{}, false
	default:
		return d.Consent(id, app)
	}
}

// TestCallbackWaitsForAConsentTheIndexHasNotSeenYet: the browser is back before the verifier's
// index holds the connection; a Directory that can wait is waited for, and the code follows.
func TestCallbackWaitsForAConsentTheIndexHasNotSeenYet(t *testing.T) {
	var e *env
	late := &lateDirectory{asked: make(chan struct{})}
	e = newEnv(t, func(c *Config) {
		late.stubDirectory = c.Directory.(*stubDirectory)
		c.Directory = late
	})
	id := e.startAuthorize(e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	late.arrive = func() { e.recordConsent(confID, id) }
	status, loc, _ := e.get(e.srv.URL + AuthorizeDonePath + "?request=" + url.QueryEscape(id))
	if status != http.StatusFound && status != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("done while the index catches up: %d %v, want a redirect with a code", status, loc)
	}
	select {
	case <-late.asked:
	default:
		t.Error("the callback answered without waiting")
	}
}

// TestWithoutOfflineAccessThereIsNoRefreshToken: a refresh token only for scope offline_access,
// and no refresh family stored for a grant without one.
func TestWithoutOfflineAccessThereIsNoRefreshToken(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	c.Scopes = []string{"openid", "reports:read"}
	code, verifier := e.code(c)
	tok, err := e.exchange(c, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" || tok.Extra("id_token") == nil {
		t.Errorf("without offline_access: refresh token %v, id token %v", tok.RefreshToken != "", tok.Extra("id_token") != nil)
	}
}

// TestBeforeItsKeysAreLoadedTheTokenEndpointAnswers503: the verifier loads the refresh key
// from a Secret that may come after it starts; until then nothing is issued or accepted.
func TestBeforeItsKeysAreLoadedTheTokenEndpointAnswers503(t *testing.T) {
	keys := &swapKeys{}
	e := newEnv(t, func(c *Config) { keys.StaticKeys = c.Keys.(StaticKeys); c.Keys = keys })
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	keys.off = true
	_, err := e.exchange(c, code, verifier)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || re.ErrorCode != "temporarily_unavailable" {
		t.Fatalf("exchange without keys: %v", err)
	}
	keys.off = false
	if _, err := e.exchange(c, code, verifier); err != nil {
		t.Fatalf("the code is still good once the keys are loaded: %v", err)
	}
}

type swapKeys struct {
	StaticKeys
	off bool
}

func (k *swapKeys) RefreshKey() []byte {
	if k.off {
		return nil
	}
	return k.StaticKeys.RefreshKey()
}

// TestAnOversizedAuthorizationRequestIsRefusedAndNeverStored: the authorization endpoint is
// open to anyone who knows a client_id and one of its redirect URIs, and what it stores (state,
// nonce, scopes) is the browser's to choose. A request past MaxAuthorizeRequest, in the query
// or a POST body, gets an error page and stores nothing, so a few requests cannot fill the
// store with megabytes each for RequestTTL.
func TestAnOversizedAuthorizationRequestIsRefusedAndNeverStored(t *testing.T) {
	store := NewMemoryStore(clocktesting.NewFakeClock(time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)))
	e := newEnv(t, func(c *Config) { c.Store = store })
	c := e.config(confID, redirect)
	big := strings.Repeat("s", MaxAuthorizeRequest)
	if status, loc, _ := e.get(c.AuthCodeURL(big, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); status != http.StatusBadRequest || loc != nil {
		t.Fatalf("GET with a %d-byte state: %d %v, want 400 and no redirect", len(big), status, loc)
	}
	u, _ := url.Parse(c.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	form := u.Query()
	form.Set("state", strings.Repeat("s", 1<<20))
	resp, err := e.noRedirect.PostForm(e.srv.URL+AuthorizePath, form)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("POST with a 1 MiB state: %d %q, want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
	store.mu.Lock()
	n := len(store.reqs)
	store.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d requests stored, want none", n)
	}
	// An ordinary request still goes through.
	e.startAuthorize(c.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
}

func TestANearMissRedirectGetsAnErrorPageWhateverElseTheRequestGetsWrong(t *testing.T) {
	e := newEnv(t)
	v := oauth2.GenerateVerifier()
	faults := map[string][]oauth2.AuthCodeOption{
		"nothing else":           {oauth2.S256ChallengeOption(v)},
		"no PKCE":                nil,
		"plain PKCE":             {oauth2.SetAuthURLParam("code_challenge", v), oauth2.SetAuthURLParam("code_challenge_method", "plain")},
		"a short challenge":      {oauth2.SetAuthURLParam("code_challenge", "abc"), oauth2.SetAuthURLParam("code_challenge_method", "S256")},
		"prompt=none":            {oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("prompt", "none")},
		"response_mode=fragment": {oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("response_mode", "fragment")},
		"response_type=token":    {oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("response_type", "token")},
		"response_type=none":     {oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("response_type", "none")},
	}
	for _, ru := range []string{"https://evil.example/cb", "https://app.example/cb/", "https://app.example/cb?x=1",
		"http://localhost/callback", "http://localhost:5555/callback", "http://127.0.0.2:5555/callback", "http://[::1]:5555/callback",
		"https://127.0.0.1/callback", "http://127.0.0.1:/callback", "http://127.0.0.1:5555/callback/", "com.example.app:/cb/x", ""} {
		for fault, opts := range faults {
			status, loc, _ := e.get(e.config(confID, ru).AuthCodeURL("st", opts...))
			if status != http.StatusBadRequest || loc != nil {
				t.Errorf("redirect_uri %q and %s: %d to %v, want 400 and no redirect", ru, fault, status, loc)
			}
		}
	}
}

func TestAnAuthorizationRequestNamingItsClientOrRedirectTwiceGetsAnErrorPage(t *testing.T) {
	e := newEnv(t)
	u, err := url.Parse(e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range []struct {
		param, value string
		before       bool
	}{
		{"client_id", publicID, false}, {"client_id", publicID, true}, {"client_id", disabledID, false}, {"client_id", confID, false},
		{"redirect_uri", "http://127.0.0.1:6666/callback", false}, {"redirect_uri", "https://app.example/cb", true},
		{"redirect_uri", "https://evil.example/cb", false}, {"redirect_uri", redirect, false},
		{"request", "eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL2V2aWwuZXhhbXBsZS9jYiJ9.", false},
		{"request_uri", "https://evil.example/request.jwt", false},
	} {
		q := u.Query()
		if extra.before {
			q[extra.param] = append([]string{extra.value}, q[extra.param]...)
		} else {
			q[extra.param] = append(q[extra.param], extra.value)
		}
		v := *u
		v.RawQuery = q.Encode()
		if status, loc, _ := e.get(v.String()); status != http.StatusBadRequest || loc != nil {
			t.Errorf("with %s=%q too: %d to %v, want 400 and no redirect", extra.param, extra.value, status, loc)
		}
	}
}

func TestTheCallbackGivesACodeOnlyToAnEnabledClientAtARedirectStillRegistered(t *testing.T) {
	for name, change := range map[string]func(c *Client, ok *bool){
		"switched off":               func(c *Client, _ *bool) { c.Enabled = false },
		"spec.oauth removed":         func(_ *Client, ok *bool) { *ok = false },
		"redirect URI removed":       func(c *Client, _ *bool) { c.Registration.RedirectURIs = []string{"https://app.example/cb"} },
		"every redirect URI removed": func(c *Client, _ *bool) { c.Registration.RedirectURIs = nil },
	} {
		for _, answer := range []string{"", "&error=access_denied"} {
			t.Run(name+answer, func(t *testing.T) {
				e := newEnv(t)
				id := e.startAuthorize(e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
				e.dir.mu.Lock()
				cl, ok := e.dir.clients[confID]
				change(&cl, &ok)
				if ok {
					e.dir.clients[confID] = cl
				} else {
					delete(e.dir.clients, confID)
				}
				e.dir.mu.Unlock()
				e.recordConsent(confID, id)
				status, loc, _ := e.get(e.srv.URL + AuthorizeDonePath + "?request=" + url.QueryEscape(id) + answer)
				if status != http.StatusBadRequest || loc != nil {
					t.Fatalf("callback: %d to %v, want 400 and no redirect", status, loc)
				}
			})
		}
	}
}

func TestAConsentRecordedForAnotherApplicationGivesNoCode(t *testing.T) {
	e := newEnv(t)
	id := e.startAuthorize(e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	e.recordConsent(publicID, id)
	status, loc, _ := e.get(e.srv.URL + AuthorizeDonePath + "?request=" + url.QueryEscape(id))
	if status != http.StatusBadRequest || loc != nil {
		t.Fatalf("callback with another application's consent: %d to %v, want 400 and no redirect", status, loc)
	}
}

func TestACodeLivesAtMostSixtySecondsWhateverTheConfigOrTheStoresClock(t *testing.T) {
	for _, ttl := range []time.Duration{0, 30 * time.Second, DefaultCodeTTL, time.Hour} {
		e := newEnv(t, func(c *Config) {
			c.CodeTTL = ttl
			c.Store = NewMemoryStore(clocktesting.NewFakeClock(c.Clock.Now())) // a store whose clock stands still
		})
		life := min(cmp.Or(ttl, time.Minute), time.Minute)
		c := e.config(confID, redirect)
		code, verifier := e.code(c)
		e.clock.Step(life)
		if _, err := e.exchange(c, code, verifier); err != nil {
			t.Fatalf("CodeTTL %v: a code %v old: %v, want it good", ttl, life, err)
		}
		code, verifier = e.code(c)
		e.clock.Step(life + time.Millisecond)
		_, err := e.exchange(c, code, verifier)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("CodeTTL %v: a code %v old: %v, want invalid_grant", ttl, life+time.Millisecond, err)
		}
	}
}

func TestOnlyAnRFC7636VerifierRedeemsACode(t *testing.T) {
	e := newEnv(t)
	c := e.config(publicID, "com.example.app:/cb")
	const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	const other = " +/=%!*'()\"<>\\^`{|}:;,?@#&$[]\x00\t\né"
	r := mathrand.New(mathrand.NewPCG(7636, 43))
	var cases []string
	for _, n := range []int{1, 8, 32, 42, 43, 44, 64, 127, 128, 129, 200} {
		cases = append(cases, strings.Repeat("a", n))
	}
	for range 150 {
		b := make([]rune, 30+r.IntN(110))
		for i := range b {
			b[i] = rune(unreserved[r.IntN(len(unreserved))])
		}
		if r.IntN(3) == 0 {
			o := []rune(other)
			b[r.IntN(len(b))] = o[r.IntN(len(o))]
		}
		cases = append(cases, string(b))
	}
	for _, v := range cases {
		wellFormed := len(v) >= 43 && len(v) <= 128 && strings.Trim(v, unreserved) == ""
		id := e.startAuthorize(c.AuthCodeURL("st-1", oauth2.S256ChallengeOption(v)))
		code := e.allow(publicID, id).Query().Get("code")
		_, err := e.exchange(c, code, v)
		if wellFormed != (err == nil) {
			t.Errorf("a verifier of %d bytes (well-formed %v) redeemed: %v", len(v), wellFormed, err == nil)
		}
	}
}

func TestACodeWhoseConnectionWasDeletedBeforeTheExchangeGivesNoTokens(t *testing.T) {
	rec := &recordingIssuer{}
	e := newEnv(t, func(c *Config) { c.Tokens = rec })
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	e.withdraw()
	tok, err := e.exchange(c, code, verifier)
	wantOAuthError(t, err, "invalid_grant")
	if n, _, _ := rec.last(); n != 0 || tok != nil {
		t.Fatalf("%d access tokens minted for a deleted connection", n)
	}
}

func TestACodeRedeemedTwiceAtOnceGivesNoRefreshTokenToEither(t *testing.T) {
	rec, hs := &recordingIssuer{}, &hookStore{}
	var (
		mu   sync.Mutex
		told []Grant
	)
	e := newEnv(t, func(c *Config) {
		hs.Store = NewMemoryStore(c.Clock)
		c.Store, c.Tokens = hs, rec
		c.OnReuse = func(g Grant, _ string) { mu.Lock(); told = append(told, g); mu.Unlock() }
	})
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	var thief error
	hs.mu.Lock()
	hs.afterRedeem = func() { _, thief = e.exchange(c, code, verifier) }
	hs.mu.Unlock()
	tok, err := e.exchange(c, code, verifier)
	wantOAuthError(t, thief, "invalid_grant")
	wantOAuthError(t, err, "invalid_grant")
	if n, _, _ := rec.last(); n != 0 || tok != nil {
		t.Fatalf("%d access tokens minted for a code redeemed twice", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 1 || told[0].ConnectionUID == "" {
		t.Fatalf("the granting org was told %d times, want once", len(told))
	}
}

func TestARepeatedTokenParameterIsRefusedAndSpendsNothing(t *testing.T) {
	e := newEnv(t)
	c := e.config(publicID, redirect)
	code, verifier := e.code(c)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {publicID}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	for k := range form {
		f := url.Values{}
		for k2, v := range form {
			f[k2] = slices.Clone(v)
		}
		f[k] = append(f[k], f[k][0])
		if status, body := e.post(f, "", ""); status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("%s twice: %d %v, want invalid_request", k, status, body["error"])
		}
	}
	if status, body := e.post(form, "", ""); status != http.StatusOK {
		t.Fatalf("the code after the refused requests: %d %v, want it unspent", status, body["error"])
	}
	status, body := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x", "y"}}, confID, goodSecret)
	if status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Errorf("refresh_token twice: %d %v, want invalid_request", status, body["error"])
	}
}

func TestATokenRequestOver16KiBIsRefusedAndSpendsNothing(t *testing.T) {
	e := newEnv(t)
	c := e.config(publicID, redirect)
	code, verifier := e.code(c)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {publicID}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	big := url.Values{"pad": {strings.Repeat("p", 1<<20)}}
	for k, v := range form {
		big[k] = v
	}
	if status, body := e.post(big, "", ""); status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("a 1 MiB token request: %d %v, want invalid_request", status, body["error"])
	}
	if status, body := e.post(form, "", ""); status != http.StatusOK {
		t.Fatalf("the code after the refused request: %d %v, want it unspent", status, body["error"])
	}
}

func TestTheIDTokenCarriesItsRequestsNonceLivesItsTTLAndNeedsOpenID(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	verifier, nonce := oauth2.GenerateVerifier(), rand.Text()
	id := e.startAuthorize(c.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce)))
	tok, err := e.exchange(c, e.allow(confID, id).Query().Get("code"), verifier)
	if err != nil {
		t.Fatal(err)
	}
	idt, _ := tok.Extra("id_token").(string)
	jws, err := jose.ParseSigned(idt, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(&e.idKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Nonce, Aud, Azp string
		Iat, Exp        int64
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Nonce != nonce || claims.Aud != confID || claims.Azp != confID || time.Duration(claims.Exp-claims.Iat)*time.Second != DefaultIDTokenTTL {
		t.Fatalf("id_token: nonce matches %v, aud %q, azp %q, lives %v; want the request's nonce, the client, %v",
			claims.Nonce == nonce, claims.Aud, claims.Azp, time.Duration(claims.Exp-claims.Iat)*time.Second, DefaultIDTokenTTL)
	}
	c.Scopes = []string{"offline_access", "reports:read"}
	code, verifier := e.code(c)
	if tok, err = e.exchange(c, code, verifier); err != nil || tok.Extra("id_token") != nil {
		t.Fatalf("without openid: %v, an id_token %v; want none", err, tok != nil && tok.Extra("id_token") != nil)
	}
}

// TestACodeReplayedMinutesLaterStillRevokesTheTokensItGave: a stolen code is often tried after
// it expired; the second redemption is recognised as long as the authorization request could
// have lived, and still revokes the refresh token of the first, in memory and in Redis.
func TestACodeReplayedMinutesLaterStillRevokesTheTokensItGave(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			var (
				told int
				m    *miniredis.Miniredis
			)
			e := newEnv(t, func(c *Config) {
				c.OnReuse = func(Grant, string) { told++ }
				if store == "redis" {
					c.Store, m = redisStore(t, c.Clock.(*clocktesting.FakeClock))
				}
			})
			c := e.config(confID, redirect)
			code, verifier := e.code(c)
			tok, err := e.exchange(c, code, verifier)
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Step(DefaultRequestTTL - time.Second)
			if m != nil {
				m.FastForward(DefaultRequestTTL - time.Second)
			}
			_, err = e.exchange(c, code, verifier)
			wantOAuthError(t, err, "invalid_grant")
			e.wantRefreshRefused(tok.RefreshToken, "the first redemption's refresh token after a late replay")
			if told != 1 {
				t.Fatalf("the granting org was told %d times, want once", told)
			}
		})
	}
}

// TestEveryRequestIDAndCodeIsAnotherAndTooLongToGuess: a request ID lets whoever holds it
// answer the request, a code redeems it; RFC 6749 §10.10 asks that such values be guessed with
// probability at most 2^-128, in the base32 of rand.Text at least 26 characters, and no two
// requests share either.
func TestEveryRequestIDAndCodeIsAnotherAndTooLongToGuess(t *testing.T) {
	e := newEnv(t)
	c := e.config(publicID, redirect)
	seen := map[string]bool{}
	for range 20 {
		id := e.startAuthorize(c.AuthCodeURL("st-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		code := e.allow(publicID, id).Query().Get("code")
		for what, v := range map[string]string{"request ID": id, "code": code} {
			if len(v) < 26 || seen[v] {
				t.Fatalf("a %s of %d characters, seen before %v; want at least 26 and a new one", what, len(v), seen[v])
			}
			seen[v] = true
		}
	}
}

// TestAClientUsingTwoAuthenticationMethodsAtOnceIsRefused: RFC 6749 §2.3 allows one method per
// request. HTTP Basic beside a client_secret in the form, or beside a client_id naming another
// client, is invalid_request, and the code stays unspent.
func TestAClientUsingTwoAuthenticationMethodsAtOnceIsRefused(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	for name, extra := range map[string]url.Values{
		"client_secret in the form too": {"client_secret": {goodSecret}},
		"another client_id in the form": {"client_id": {publicID}},
	} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		for k, v := range extra {
			f[k] = v
		}
		if status, body := e.post(f, confID, goodSecret); status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("Basic and %s: %d %v, want invalid_request", name, status, body["error"])
		}
	}
	form.Set("client_id", confID)
	if status, body := e.post(form, confID, goodSecret); status != http.StatusOK {
		t.Fatalf("Basic with its own client_id in the form: %d %v, want the code unspent and redeemed", status, body["error"])
	}
}

// TestTokenAnswersAreNeverCachedAndABasicClientRefusedIsChallenged: RFC 6749 §5.1 and §5.2:
// every answer of the token endpoint, tokens or error, carries Cache-Control: no-store, and a
// client refused after HTTP Basic is told how to authenticate (WWW-Authenticate: Basic).
func TestTokenAnswersAreNeverCachedAndABasicClientRefusedIsChallenged(t *testing.T) {
	e := newEnv(t)
	c := e.config(publicID, redirect)
	code, verifier := e.code(c)
	post := func(form url.Values, id, secret string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id != "" {
			req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	ok := post(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {publicID}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, "", "")
	refused := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.0.y"}}, confID, "sk-wrong")
	for name, resp := range map[string]*http.Response{"tokens": ok, "a refusal": refused} {
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s (%d): Cache-Control %q, want no-store", name, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	if ok.StatusCode != http.StatusOK || refused.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(refused.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("tokens %d; refused %d with WWW-Authenticate %q, want 200, and 401 with a Basic challenge",
			ok.StatusCode, refused.StatusCode, refused.Header.Get("WWW-Authenticate"))
	}
}

// TestARefreshKeyShorterThan256BitsIsNoKey: a refresh key of fewer than 32 bytes (a Secret cut
// short) issues and accepts no refresh token: the token endpoint answers 503 as with none.
func TestARefreshKeyShorterThan256BitsIsNoKey(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		k := c.Keys.(StaticKeys)
		k.Refresh = k.Refresh[:31]
		c.Keys = k
	})
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	_, err := e.exchange(c, code, verifier)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || re.ErrorCode != "temporarily_unavailable" {
		t.Fatalf("exchange with a 31-byte refresh key: %v, want 503 temporarily_unavailable", err)
	}
}

// TestExpiresInSaysWhenTheAccessTokenStopsWorking: a client renews by expires_in, so it is the
// access token's own lifetime (the stub issuer's 5 minutes), at the exchange and at a refresh.
func TestExpiresInSaysWhenTheAccessTokenStopsWorking(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	status, body := e.post(form, confID, goodSecret)
	if status != http.StatusOK || body["expires_in"] != float64(300) {
		t.Fatalf("exchange: %d, expires_in %v, want 300", status, body["expires_in"])
	}
	if status, body = e.refresh(body["refresh_token"].(string)); status != http.StatusOK || body["expires_in"] != float64(300) {
		t.Fatalf("refresh: %d, expires_in %v, want 300", status, body["expires_in"])
	}
}

// deadlineDirectory is an index that never sees the consent: it notes how long the callback
// gives it, read from the context's deadline when the wait begins.
type deadlineDirectory struct {
	*stubDirectory
	left time.Duration
	has  bool
}

func (d *deadlineDirectory) WaitConsent(ctx context.Context, _, _ string) (Grant, bool) {
	begun := time.Now()
	dl, ok := ctx.Deadline()
	d.left, d.has = dl.Sub(begun), ok
	return Grant{}, false
}

// TestTheCallbackWaitsAtMostFiveSecondsForAConsent: a browser back before its consent holds a
// connection at most DefaultConsentWait (5 s), then gets 409 and tries again.
func TestTheCallbackWaitsAtMostFiveSecondsForAConsent(t *testing.T) {
	dd := &deadlineDirectory{}
	e := newEnv(t, func(c *Config) {
		dd.stubDirectory = c.Directory.(*stubDirectory)
		c.Directory = dd
	})
	id := e.startAuthorize(e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if status, loc, _ := e.get(e.srv.URL + AuthorizeDonePath + "?request=" + url.QueryEscape(id)); status != http.StatusConflict || loc != nil {
		t.Fatalf("done without a consent: %d %v, want 409", status, loc)
	}
	if !dd.has || dd.left > 5*time.Second {
		t.Fatalf("the callback waited with a deadline %v (%v), want one at most %v away", dd.left, dd.has, 5*time.Second)
	}
}

// TestTheConsoleIsToldNothingOfARequestWhoseClientWasSwitchedOff: the consent page shows only
// requests an org admin can still usefully allow; once the Application is switched off its
// pending requests are 404, so no admin consents to (and connects) an application that is off.
func TestTheConsoleIsToldNothingOfARequestWhoseClientWasSwitchedOff(t *testing.T) {
	e := newEnv(t)
	id := e.startAuthorize(e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	info := e.srv.URL + AuthorizeRequestsPath + url.PathEscape(id)
	if status, _, _ := e.get(info); status != http.StatusOK {
		t.Fatalf("a pending request: %d, want 200", status)
	}
	e.dir.mu.Lock()
	cl := e.dir.clients[confID]
	cl.Enabled = false
	e.dir.clients[confID] = cl
	e.dir.mu.Unlock()
	if status, _, _ := e.get(info); status != http.StatusNotFound {
		t.Fatalf("a request of a client switched off: %d, want 404", status)
	}
}

// TestAChallengeThatIsNoS256DigestOrAResponseModeNotServedIsRefusedBeforeConsent: a
// code_challenge that is not 43 characters can be no S256 digest, and a response_mode other
// than query is not served; both go back to the app as invalid_request, before any org admin
// is asked to consent to a request that could never give tokens as asked.
func TestAChallengeThatIsNoS256DigestOrAResponseModeNotServedIsRefusedBeforeConsent(t *testing.T) {
	e := newEnv(t)
	c := e.config(confID, redirect)
	digest := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"a challenge one character short": {oauth2.SetAuthURLParam("code_challenge", digest[:42]), oauth2.SetAuthURLParam("code_challenge_method", "S256")},
		"a challenge one character long":  {oauth2.SetAuthURLParam("code_challenge", digest+"A"), oauth2.SetAuthURLParam("code_challenge_method", "S256")},
		"response_mode=fragment":          {oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("response_mode", "fragment")},
		"response_mode=form_post":         {oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("response_mode", "form_post")},
	} {
		t.Run(name, func(t *testing.T) {
			// op answers in the response mode asked for: the error may be in the fragment.
			status, loc, _ := e.get(c.AuthCodeURL("st", opts...))
			if status != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), redirect+"?") ||
				!strings.Contains(loc.String(), "error=invalid_request") || strings.Contains(loc.String(), "code=") {
				t.Fatalf("%d %v, want invalid_request sent back to the app", status, loc)
			}
		})
	}
}

// TestTheEightKiBBoundCountsTheQueryAndTheBodyTogether: a POSTed authorization request may
// split its parameters between the URL and the body; MaxAuthorizeRequest bounds both together,
// so 6 KiB in each is refused and stores nothing.
func TestTheEightKiBBoundCountsTheQueryAndTheBodyTogether(t *testing.T) {
	store := NewMemoryStore(clocktesting.NewFakeClock(time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)))
	e := newEnv(t, func(c *Config) { c.Store = store })
	u, _ := url.Parse(e.config(confID, redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	form := u.Query()
	form.Set("nonce", strings.Repeat("n", 6<<10))
	query := url.Values{"ui_locales": {strings.Repeat("l", 6<<10)}}.Encode()
	resp, err := e.noRedirect.PostForm(e.srv.URL+AuthorizePath+"?"+query, form)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("POST with 6 KiB in the URL and 6 KiB in the body: %d %q, want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
	store.mu.Lock()
	n := len(store.reqs)
	store.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d requests stored, want none", n)
	}
}

// TestAnOAuthClientWithoutATypeIsConfidential: the apiserver defaults clientType to
// Confidential; should an Application reach the index without it, its client still needs one of
// its keys, never PKCE alone.
func TestAnOAuthClientWithoutATypeIsConfidential(t *testing.T) {
	e := newEnv(t)
	e.dir.mu.Lock()
	cl := e.dir.clients[confID]
	cl.Registration.ClientType = ""
	e.dir.clients[confID] = cl
	e.dir.mu.Unlock()
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	c.ClientSecret, c.Endpoint.AuthStyle = "", oauth2.AuthStyleInParams
	_, err := e.exchange(c, code, verifier)
	wantOAuthError(t, err, "invalid_client")
	code, verifier = e.code(e.config(confID, redirect))
	if _, err := e.exchange(e.config(confID, redirect), code, verifier); err != nil {
		t.Fatalf("with one of its keys: %v", err)
	}
}
