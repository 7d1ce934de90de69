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

package oidc

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/clearance-dev/clearance/internal/console"
)

// browser is a scripted browser on the console's sign-in: its own cookies, redirects not
// followed, trusting the provider's certificate.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := env.OIDC.HTTPClient()
	c.Jar = jar
	return &browser{t: t, client: c}
}

// get fetches u and returns the status, the Location and the body.
func (b *browser) get(u string) (int, string, string) {
	b.t.Helper()
	resp, err := b.client.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// toProvider starts a sign-in and follows it to the provider, returning the authorization
// request the console made and the callback URL the provider sends the browser back to.
func (b *browser) toProvider(who string) (authorize, callback *url.URL) {
	b.t.Helper()
	return b.toProviderAs(func() { env.OIDC.QueueUser(who) })
}

// toProviderAs is toProvider with the provider's person queued by queue.
func (b *browser) toProviderAs(queue func()) (authorize, callback *url.URL) {
	b.t.Helper()
	status, loc, _ := b.get(consoleURL + console.PathOIDCStart)
	if status != http.StatusSeeOther {
		b.t.Fatalf("starting a sign-in: status %d", status)
	}
	authorize, err := url.Parse(loc)
	if err != nil {
		b.t.Fatal(err)
	}
	queue()
	status, loc, _ = b.get(authorize.String())
	if status != http.StatusFound {
		b.t.Fatalf("the provider's authorization endpoint: status %d", status)
	}
	if callback, err = url.Parse(loc); err != nil {
		b.t.Fatal(err)
	}
	return authorize, callback
}

// TestAForgedOrReplayedSignInIsRefused: the console asks for PKCE S256 with a state and a nonce;
// a callback with a state the browser did not start with, or from a browser that holds no
// sign-in (so no PKCE verifier), is refused before the code is exchanged; a code already used is
// refused by the provider, and a callback replayed finds no sign-in. Each refusal says why.
func TestAForgedOrReplayedSignInIsRefused(t *testing.T) {
	b := newBrowser(t)
	authorize, callback := b.toProvider("eve")
	q := authorize.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) < 43 || len(q.Get("state")) < 43 || len(q.Get("nonce")) < 43 {
		t.Fatalf("the authorization request lacks PKCE S256, a state or a nonce: %v", q.Encode())
	}
	if q.Get("code_verifier") != "" {
		t.Fatal("the authorization request carries the PKCE verifier")
	}
	exchanged := env.OIDC.TokenRequests.Load()

	forged := *callback
	fq := forged.Query()
	fq.Set("state", "forged-"+fq.Get("state")[7:])
	forged.RawQuery = fq.Encode()
	status, _, body := b.get(forged.String())
	if status != http.StatusBadRequest || !strings.Contains(body, "came back with a state this browser did not start it with") {
		t.Errorf("a forged state: status %d: %s", status, errorOf(body))
	}

	stranger := newBrowser(t)
	_, callback2 := b.toProvider("eve")
	status, _, body = stranger.get(callback2.String())
	if status != http.StatusBadRequest || !strings.Contains(body, "was not started in this browser") {
		t.Errorf("a callback in a browser without the sign-in (no PKCE verifier): status %d: %s", status, errorOf(body))
	}
	if got := env.OIDC.TokenRequests.Load(); got != exchanged {
		t.Fatalf("a refused callback had its code exchanged (%d token requests)", got-exchanged)
	}

	_, callback3 := b.toProvider("eve")
	if status, _, body := b.get(callback3.String()); status != http.StatusOK || !strings.Contains(body, "Signing in") {
		t.Fatalf("a sign-in as it should be: status %d: %s", status, errorOf(body))
	}
	if status, _, body := b.get(callback3.String()); status != http.StatusBadRequest || !strings.Contains(body, "already used") {
		t.Errorf("the same callback again: status %d: %s", status, errorOf(body))
	}
	_, callback4 := b.toProvider("eve")
	replayed := *callback4
	rq := replayed.Query()
	rq.Set("code", callback3.Query().Get("code"))
	replayed.RawQuery = rq.Encode()
	if status, _, body := b.get(replayed.String()); status != http.StatusUnauthorized || !strings.Contains(body, "refused this sign-in&#39;s code (invalid_grant") {
		t.Errorf("a used code in a new sign-in: status %d: %s", status, errorOf(body))
	}
	noSecretLogged(t)
}

// TestAnIDTokenOfAnotherSignInIsRefusedByItsNonce: the provider's ID token must carry the nonce
// this sign-in sent. One carrying another sign-in's (a token injected or replayed on the
// provider's side, where state and PKCE cannot see it) starts no session, says why, and logs no
// token.
func TestAnIDTokenOfAnotherSignInIsRefusedByItsNonce(t *testing.T) {
	b := newBrowser(t)
	other, _ := b.toProvider("eve")
	nonce := other.Query().Get("nonce")
	authorize, callback := b.toProviderAs(func() { env.OIDC.QueueUserWithNonce("eve", nonce) })
	if authorize.Query().Get("nonce") == nonce {
		t.Fatal("two sign-ins were sent the same nonce")
	}
	exchanged := env.OIDC.TokenRequests.Load()
	resp, err := b.client.Get(callback.String())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if body := string(raw); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "The ID token does not carry this sign-in") {
		t.Errorf("an ID token with another sign-in's nonce: status %d: %s", resp.StatusCode, errorOf(body))
	}
	if env.OIDC.TokenRequests.Load() == exchanged {
		t.Error("the code was not exchanged: the nonce was never checked")
	}
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-clearance-console" && c.Value != "" {
			t.Error("a refused sign-in set the session cookie")
		}
	}
	noSecretLogged(t)
}

// errorOf is the error a page shows.
func errorOf(body string) string {
	_, after, ok := strings.Cut(body, `id="error">`)
	if !ok {
		return "(no error shown)"
	}
	msg, _, _ := strings.Cut(after, "</p>")
	return msg
}
