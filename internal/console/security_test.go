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

package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/clearance-dev/clearance/internal/console"
	"github.com/clearance-dev/clearance/internal/wiring"
)

// noRedirects is a client that shows each answer as it is, with a cookie jar like a browser.
func noRedirects(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func fetch(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var hiddenCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestPagesCarryAStrictPolicyAndTheSessionLivesOnlyInAnHttpOnlyStrictCookie: every page forbids
// inline script and framing and sends no referrer; signing in sets a __Host- cookie (Secure,
// Path=/, no Domain), HttpOnly and SameSite=Strict, holding a random session ID, never the token,
// which no page or log line holds either; a bad token is refused with the apiserver's word;
// signing out ends the session. (On loopback over plain HTTP, as here, browsers and Go's cookie
// jar count the origin as secure.)
func TestPagesCarryAStrictPolicyAndTheSessionLivesOnlyInAnHttpOnlyStrictCookie(t *testing.T) {
	org := env.Namespace(t, "acme")
	who := newPerson(t, org, "alice", orgAdmin...)
	c := noRedirects(t)
	req, _ := http.NewRequest(http.MethodGet, consoleURL+"/login", nil)
	resp, body := fetch(t, c, req)
	for header, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if got := resp.Header.Get(header); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Error("the policy lets other sites frame the console")
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
		t.Error("the sign-in page has inline script or style")
	}
	m := hiddenCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the sign-in form has no CSRF token")
	}

	// A token the apiserver does not accept.
	post := func(token, csrf string) (*http.Response, string) {
		form := url.Values{"token": {token}, "csrf": {csrf}}
		req, _ := http.NewRequest(http.MethodPost, consoleURL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return fetch(t, c, req)
	}
	if resp, body := post("not-a-token", m[1]); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "did not accept this token: Unauthorized") {
		t.Errorf("a bad token: status %d: %s", resp.StatusCode, body)
	}
	// The sign-in form's own CSRF token is checked too.
	if resp, _ := post(who.token, "made-up"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("signing in with a made-up CSRF token: status %d, want 403", resp.StatusCode)
	}

	req, _ = http.NewRequest(http.MethodGet, consoleURL+"/login", nil)
	_, body = fetch(t, c, req)
	resp, body = post(who.token, hiddenCSRF.FindStringSubmatch(body)[1])
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/org" {
		t.Fatalf("signing in: status %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	session := sessionCookie(resp)
	if session == nil {
		t.Fatalf("no session cookie set: %v", resp.Header["Set-Cookie"])
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || !session.Secure || session.Path != "/" || session.Domain != "" {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Secure, Path=/ and no Domain, as __Host- requires", session)
	}
	if strings.Contains(session.Value, who.token) || len(session.Value) < 40 {
		t.Errorf("the session cookie is not a random ID")
	}
	if loc := resp.Header.Get("Location"); strings.Contains(loc, who.token) {
		t.Fatal("the token is in a URL")
	}
	for _, path := range []string{"/org", "/users?tab=applications", "/users?tab=people"} {
		req, _ = http.NewRequest(http.MethodGet, consoleURL+path, nil)
		resp, body = fetch(t, c, req)
		if strings.Contains(body, who.token) {
			t.Fatalf("page %s holds the token", path)
		}
	}

	// Signing out ends the session: its cookie opens nothing any more.
	req, _ = http.NewRequest(http.MethodGet, consoleURL+"/org", nil)
	_, body = fetch(t, c, req)
	form := url.Values{"csrf": {hiddenCSRF.FindStringSubmatch(body)[1]}}
	req, _ = http.NewRequest(http.MethodPost, consoleURL+"/logout", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := fetch(t, c, req); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("signing out: status %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	stale := noRedirects(t)
	req, _ = http.NewRequest(http.MethodGet, consoleURL+"/org", nil)
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	if resp, _ := fetch(t, stale, req); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("the signed-out session still opens pages: status %d", resp.StatusCode)
	}

	if log := operator.Log(); strings.Contains(log, who.token) {
		t.Fatal("the process log holds a bearer token")
	}
}

// sessionCookie is the session cookie an answer sets, or nil.
func sessionCookie(resp *http.Response) *http.Cookie {
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-clearance-console" {
			return ck
		}
	}
	return nil
}

// startConsole serves a console of this test's own, in this process, against the test's
// apiserver, on a loopback port.
func startConsole(t *testing.T, opts console.Options) string {
	t.Helper()
	opts.Addr, opts.Base, opts.Scheme, opts.Clock, opts.Log = "127.0.0.1:0", console.BaseConfig(env.Config), wiring.Scheme(), clock.RealClock{}, logr.Discard()
	srv, err := console.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestWithoutTrustInAnAuthProxyTheAuthorizationHeaderSignsNobodyIn: by default (no
// --console-trust-auth-proxy) a request carrying Authorization: Bearer with a valid token is
// sent to the sign-in form, gets no session cookie, and leaves a signed-in person's session as
// it was, whatever it is sent with.
func TestWithoutTrustInAnAuthProxyTheAuthorizationHeaderSignsNobodyIn(t *testing.T) {
	org := env.Namespace(t, "acme")
	who := newPerson(t, org, "alice", orgAdmin...)
	other := newPerson(t, org, "mallory", observer...)
	for _, path := range []string{"/org", "/applications", "/"} {
		req, _ := http.NewRequest(http.MethodGet, consoleURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+who.token)
		resp, body := fetch(t, noRedirects(t), req)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" || sessionCookie(resp) != nil {
			t.Errorf("GET %s with a bearer token and no auth proxy trusted: status %d to %q, cookie %v: %s",
				path, resp.StatusCode, resp.Header.Get("Location"), sessionCookie(resp) != nil, body)
		}
	}
	// A signed-in person's cookie sent along with another identity's header still opens the
	// person's own session, and the header neither replaces nor ends it.
	c := signIn(t, consoleURL, who.token)
	req, _ := http.NewRequest(http.MethodGet, consoleURL+"/org", nil)
	req.Header.Set("Authorization", "Bearer "+other.token)
	if resp, body := fetch(t, c, req); resp.StatusCode != http.StatusOK || !strings.Contains(body, "system:serviceaccount:"+org+":alice") || sessionCookie(resp) != nil {
		t.Errorf("alice's session with mallory's header: status %d, new cookie %v", resp.StatusCode, sessionCookie(resp) != nil)
	}
	req, _ = http.NewRequest(http.MethodGet, consoleURL+"/org", nil)
	if resp, body := fetch(t, c, req); resp.StatusCode != http.StatusOK || !strings.Contains(body, "system:serviceaccount:"+org+":alice") {
		t.Errorf("alice's session after mallory's header: status %d", resp.StatusCode)
	}
}

// signIn signs in with the form, as a browser would, and returns the client holding the cookie.
func signIn(t *testing.T, base, token string) *http.Client {
	t.Helper()
	c := noRedirects(t)
	req, _ := http.NewRequest(http.MethodGet, base+"/login", nil)
	_, body := fetch(t, c, req)
	m := hiddenCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the sign-in form has no CSRF token")
	}
	form := url.Values{"token": {token}, "csrf": {m[1]}}
	req, _ = http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, body := fetch(t, c, req); resp.StatusCode != http.StatusSeeOther || sessionCookie(resp) == nil {
		t.Fatalf("signing in: status %d: %s", resp.StatusCode, body)
	}
	return c
}

// TestOneIdentitySigningInOverAndOverLogsNobodyElseOut: anyone with any valid token can start
// sessions, through the form or (behind a trusted proxy) the header. In a console whose store
// holds 8 sessions, at most 3 per identity, three people sign in; then one identity signs in 60
// times, alternating form and header. Each of the three still has their session; the flooder
// keeps only its 3 newest; and a fourth person signs in afterwards and keeps theirs too.
func TestOneIdentitySigningInOverAndOverLogsNobodyElseOut(t *testing.T) {
	base := startConsole(t, console.Options{TrustAuthProxy: true, MaxSessions: 8, MaxSessionsPerIdentity: 3})
	org := env.Namespace(t, "acme")
	opens := func(c *http.Client, who person) bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/org", nil)
		resp, body := fetch(t, c, req)
		return resp.StatusCode == http.StatusOK && strings.Contains(body, "system:serviceaccount:"+org+":"+who.name)
	}
	var people []person
	var theirs []*http.Client
	for _, name := range []string{"alice", "bob", "carol"} {
		p := newPerson(t, org, name, observer...)
		people = append(people, p)
		theirs = append(theirs, signIn(t, base, p.token))
	}
	mallory := newPerson(t, org, "mallory", observer...)
	var floods []*http.Client
	for i := range 60 {
		if i%2 == 0 {
			floods = append(floods, signIn(t, base, mallory.token))
			continue
		}
		c := noRedirects(t)
		req, _ := http.NewRequest(http.MethodGet, base+"/org", nil)
		req.Header.Set("Authorization", "Bearer "+mallory.token)
		if resp, _ := fetch(t, c, req); resp.StatusCode != http.StatusOK || sessionCookie(resp) == nil {
			t.Fatalf("mallory's forwarded token: status %d", resp.StatusCode)
		}
		floods = append(floods, c)
	}
	dave := newPerson(t, org, "dave", observer...)
	people, theirs = append(people, dave), append(theirs, signIn(t, base, dave.token))
	for i, p := range people {
		if !opens(theirs[i], p) {
			t.Errorf("%s's session ended after another identity signed in 60 times", p.name)
		}
	}
	// The flooder's form sessions: only those among its 3 newest sessions still open (a proxy
	// session opens nothing without the header).
	var open, want []int
	for i, c := range floods {
		if i%2 == 0 && opens(c, mallory) {
			open = append(open, i)
		}
		if i%2 == 0 && i >= len(floods)-3 {
			want = append(want, i)
		}
	}
	if !slices.Equal(open, want) {
		t.Errorf("of mallory's 60 sessions these form sessions still open: %v; want %v, the form sessions among its 3 newest", open, want)
	}
}

// TestBehindATrustedAuthProxyTheForwardedBearerTokenSignsIn: with --console-trust-auth-proxy, a
// proxy such as oauth2-proxy in front sets Authorization: Bearer; the console acts with that
// token without a sign-in form, and keeps CSRF protection on its forms.
func TestBehindATrustedAuthProxyTheForwardedBearerTokenSignsIn(t *testing.T) {
	consoleURL := startConsole(t, console.Options{TrustAuthProxy: true})
	org := env.Namespace(t, "acme")
	who := newPerson(t, org, "alice", orgAdmin...)
	c := noRedirects(t)
	get := func(path string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, consoleURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+who.token)
		return fetch(t, c, req)
	}
	resp, body := get("/org")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "system:serviceaccount:"+org+":alice") {
		t.Fatalf("with a forwarded token: status %d: %s", resp.StatusCode, body)
	}
	if strings.Contains(body, "Sign out") {
		t.Error("behind a proxy the console offers to sign out, which the proxy owns")
	}
	form := url.Values{"org": {org}}
	req, _ := http.NewRequest(http.MethodPost, consoleURL+"/org", strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer "+who.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := fetch(t, c, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a post without the CSRF token behind a proxy: status %d, want 403", resp.StatusCode)
	}
	form.Set("csrf", hiddenCSRF.FindStringSubmatch(body)[1])
	req, _ = http.NewRequest(http.MethodPost, consoleURL+"/org", strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer "+who.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := fetch(t, c, req); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("picking the org behind a proxy: status %d", resp.StatusCode)
	}
	if resp, body := get("/users?tab=applications"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Applications created by your organization") {
		t.Errorf("the Applications page behind a proxy: status %d", resp.StatusCode)
	}
	// The same cookie without the proxy's header opens nothing.
	req, _ = http.NewRequest(http.MethodGet, consoleURL+"/applications", nil)
	if resp, _ := fetch(t, c, req); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the session of a forwarded token without the header: status %d, want a redirect to sign in", resp.StatusCode)
	}
}
