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
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/console"
	"github.com/clearance-dev/clearance/internal/ops"
)

// The tests an attacker of the console would write: each names a promise and tries it over
// many inputs, over plain HTTP against the real apiserver.

// loginForm fetches the sign-in form as a browser of its own: its login cookie and the CSRF
// token the form carries.
func loginForm(t *testing.T, base string) (*http.Cookie, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/login", nil)
	resp, body := fetch(t, noRedirects(t), req)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-clearance-console-login" {
			cookie = c
		}
	}
	m := hiddenCSRF.FindStringSubmatch(body)
	if cookie == nil || m == nil {
		t.Fatalf("the sign-in form: status %d, login cookie %t, CSRF token %t", resp.StatusCode, cookie != nil, m != nil)
	}
	return cookie, m[1]
}

// postLogin posts the sign-in form with exactly this login cookie (nil: none) and these fields,
// as a page elsewhere can make a browser do.
func postLogin(t *testing.T, base string, cookie *http.Cookie, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	resp, _ := fetch(t, noRedirects(t), req)
	return resp
}

// TestASignInFormsCSRFTokenSignsInOnlyTheBrowserThatFetchedIt: the sign-in form's CSRF token
// is bound to the login cookie of the browser that fetched the form, so a token an attacker
// fetched in their own browser never signs a victim's browser in to the attacker's identity
// (login CSRF). Of several browsers, each one's cookie with every other one's token, and every
// token without a cookie, is refused with 403 and no session; each with its own pair signs in.
func TestASignInFormsCSRFTokenSignsInOnlyTheBrowserThatFetchedIt(t *testing.T) {
	base := startConsole(t, console.Options{})
	mallory := newPerson(t, env.Namespace(t, "acme"), "mallory", observer...)
	const browsers = 4
	cookies, tokens := make([]*http.Cookie, browsers), make([]string, browsers)
	for i := range browsers {
		cookies[i], tokens[i] = loginForm(t, base)
	}
	for i := range browsers {
		for j := range browsers {
			if i == j {
				continue
			}
			resp := postLogin(t, base, cookies[i], url.Values{"token": {mallory.token}, "csrf": {tokens[j]}})
			if resp.StatusCode != http.StatusForbidden || sessionCookie(resp) != nil {
				t.Errorf("browser %d's login cookie with the CSRF token of browser %d's form: status %d, session cookie set %t; want 403 and none",
					i, j, resp.StatusCode, sessionCookie(resp) != nil)
			}
		}
		resp := postLogin(t, base, nil, url.Values{"token": {mallory.token}, "csrf": {tokens[i]}})
		if resp.StatusCode != http.StatusForbidden || sessionCookie(resp) != nil {
			t.Errorf("browser %d's CSRF token without its login cookie: status %d, session cookie set %t; want 403 and none",
				i, resp.StatusCode, sessionCookie(resp) != nil)
		}
	}
	for i := range browsers {
		if resp := postLogin(t, base, cookies[i], url.Values{"token": {mallory.token}, "csrf": {tokens[i]}}); resp.StatusCode != http.StatusSeeOther || sessionCookie(resp) == nil {
			t.Errorf("browser %d with its own login cookie and token: status %d, want 303 with a session", i, resp.StatusCode)
		}
	}
}

var hiddenNext = regexp.MustCompile(`name="next" value="([^"]*)"`)

// TestSigningInLeadsOnlyToTheOrgPickerOrThisConsolesConsentPage: a link to the sign-in page
// may name where signing in leads (?next=), which the consent page uses to come back. Whatever
// the link or the posted form names, signing in leads to the org picker or to this console's
// own consent page for a well-formed request ID, never to another site, scheme or path: each
// next below is put in the sign-in link and in the posted form, and the form carries it, and
// signing in follows it, only when it is exactly such a consent page.
func TestSigningInLeadsOnlyToTheOrgPickerOrThisConsolesConsentPage(t *testing.T) {
	base := startConsole(t, console.Options{})
	who := newPerson(t, env.Namespace(t, "acme"), "alice", observer...)
	good := []string{
		"/oauth2/consent?request=req-1",
		"/oauth2/consent?request=A.b_c-9",
		"/oauth2/consent?request=" + strings.Repeat("a", 128),
	}
	bad := []string{
		"https://evil.example/", "//evil.example/", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
		"https://evil.example/oauth2/consent?request=a", "//evil.example/oauth2/consent?request=a", base + "/oauth2/consent?request=a",
		"/oauth2/consent?request=", "/oauth2/consent?request=" + strings.Repeat("a", 129), "/oauth2/consent?request=a&org=other",
		"/oauth2/consent?request=a&next=//evil.example", "/oauth2/consent?request=a%0d%0aLocation:%20//evil.example",
		"/oauth2/consent?request=a\r\nLocation: //evil.example", "/oauth2/consentx?request=a", "/oauth2/consent/../../evil?request=a",
		"/OAUTH2/consent?request=a", " /oauth2/consent?request=a", "/oauth2/consent", "/org", "/applications", "/logout",
		"/login/oidc?next=//evil.example",
	}
	// Every good next with one character a request ID never holds, and something after it.
	for _, c := range "/?&#%:@\\ <>\"'\x00\t" {
		bad = append(bad, good[0]+string(c)+"evil.example", good[0]+string(c))
	}
	check := func(next string, follow bool) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/login?"+url.Values{"next": {next}}.Encode(), nil)
		_, body := fetch(t, noRedirects(t), req)
		m := hiddenNext.FindStringSubmatch(body)
		switch {
		case follow && (m == nil || html.UnescapeString(m[1]) != next):
			t.Errorf("the sign-in link naming next %q: the form does not carry it", next)
		case !follow && m != nil:
			t.Errorf("the sign-in link naming next %q: the form carries next %q", next, html.UnescapeString(m[1]))
		}
		cookie, csrf := loginForm(t, base)
		resp := postLogin(t, base, cookie, url.Values{"token": {who.token}, "csrf": {csrf}, "next": {next}})
		want := "/org"
		if follow {
			want = next
		}
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("signing in with next %q: status %d to %q, want 303 to %q", next, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	for _, next := range good {
		check(next, true)
	}
	for _, next := range bad {
		check(next, false)
	}
}

// securityHeaders are what every answer of the console carries: no framing, no inline script,
// forms posted only to itself, no referrer, no sniffing, its own browsing context group.
var securityHeaders = map[string][]string{
	"Content-Security-Policy": {"default-src 'self'", "script-src 'self'", "style-src 'self'", "form-action 'self'",
		"frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"},
	"X-Frame-Options":              {"DENY"},
	"Referrer-Policy":              {"no-referrer"},
	"X-Content-Type-Options":       {"nosniff"},
	"Cross-Origin-Opener-Policy":   {"same-origin"},
	"Cross-Origin-Resource-Policy": {"same-origin"},
}

// TestEveryAnswerCarriesTheSecurityHeaders: every page, signed in or not, found or not, and
// every refusal carries the strict policy and the other security headers, and every answer but
// the static files is never cached (a generated key is shown once).
func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	org := env.Namespace(t, "acme")
	who := newPerson(t, org, "alice", orgAdmin...)
	in := signIn(t, consoleURL, who.token)
	chooseOrg(t, in, consoleURL, org)
	out := noRedirects(t)
	type call struct {
		c            *http.Client
		method, path string
	}
	var calls []call
	for _, path := range []string{"/", "/org", "/applications", "/users", "/users?tab=people", "/users?tab=applications", "/roles",
		"/applications/new", "/applications/none/keys", "/connections/new", "/connections/none/role", "/metrics", "/activity",
		"/developers", "/oauth2/consent?request=req-unknown", "/oauth2/consent?request=bad%20id", "/login", "/login/oidc",
		"/login/oidc/callback", "/healthz", "/no-such-page", "/static/console.css", "/static/console.js", "/static/"} {
		calls = append(calls, call{in, http.MethodGet, path}, call{out, http.MethodGet, path})
	}
	for _, path := range []string{"/org", "/logout", "/login", "/applications/new", "/connections/new", "/metrics", "/developers", "/oauth2/consent"} {
		calls = append(calls, call{in, http.MethodPost, path}, call{out, http.MethodPost, path})
	}
	for _, cl := range calls {
		req, _ := http.NewRequest(cl.method, consoleURL+cl.path, strings.NewReader("csrf=forged"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, _ := fetch(t, cl.c, req)
		who := "signed out"
		if cl.c == in {
			who = "signed in"
		}
		for header, wants := range securityHeaders {
			for _, want := range wants {
				if got := resp.Header.Get(header); !strings.Contains(got, want) {
					t.Errorf("%s %s (%s, status %d): %s is %q, want %q in it", cl.method, cl.path, who, resp.StatusCode, header, got, want)
				}
			}
		}
		if got := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cl.path, "/static/") && got != "no-store" {
			t.Errorf("%s %s (%s, status %d): Cache-Control %q, want no-store", cl.method, cl.path, who, resp.StatusCode, got)
		}
	}
}

// chooseOrg picks org as the session's current org, as the org picker's form does.
func chooseOrg(t *testing.T, c *http.Client, base, org string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/org", nil)
	_, body := fetch(t, c, req)
	m := hiddenCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the org picker has no CSRF token")
	}
	form := url.Values{"org": {org}, "csrf": {m[1]}}
	req, _ = http.NewRequest(http.MethodPost, base+"/org", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := fetch(t, c, req); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("choosing org %s: status %d", org, resp.StatusCode)
	}
}

var actingAs = regexp.MustCompile(`system:serviceaccount:[a-z0-9-]+:([a-z]+)`)

// TestBehindATrustedAuthProxyTheConsoleActsAsWhoeverTheProxyForwardsNow: behind an auth
// proxy the browser keeps the console's session cookie while the proxy's sign-in changes hands
// (a shared machine, someone signing out of the proxy and another in). Each request acts as the
// identity whose token the proxy forwards with it, never as the one an earlier cookie was made
// for; and a request the proxy no longer vouches for (no header) opens nothing, however fresh
// the cookie: one browser, its cookies kept, goes through a sequence of forwarded identities,
// each followed by a request without the header.
func TestBehindATrustedAuthProxyTheConsoleActsAsWhoeverTheProxyForwardsNow(t *testing.T) {
	base := startConsole(t, console.Options{TrustAuthProxy: true})
	org := env.Namespace(t, "acme")
	people := []person{newPerson(t, org, "alice", observer...), newPerson(t, org, "bob", observer...), newPerson(t, org, "carol", observer...)}
	c := noRedirects(t)
	for step, i := range []int{0, 1, 0, 2, 2, 1, 0, 1} {
		req, _ := http.NewRequest(http.MethodGet, base+"/org", nil)
		req.Header.Set("Authorization", "Bearer "+people[i].token)
		resp, body := fetch(t, c, req)
		var acting []string
		for _, m := range actingAs.FindAllStringSubmatch(body, -1) {
			acting = append(acting, m[1])
		}
		if resp.StatusCode != http.StatusOK || len(acting) == 0 || strings.Join(acting, " ") != strings.TrimSpace(strings.Repeat(people[i].name+" ", len(acting))) {
			t.Errorf("step %d, the proxy forwarding %s's token: status %d, the page acts as %v", step, people[i].name, resp.StatusCode, acting)
		}
		for _, path := range []string{"/org", "/applications", "/"} {
			req, _ = http.NewRequest(http.MethodGet, base+path, nil)
			if resp, body := fetch(t, c, req); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
				t.Errorf("step %d, %s's cookie without the proxy's header: GET %s answered %d to %q, acting as %v; want a redirect to /login",
					step, people[i].name, path, resp.StatusCode, resp.Header.Get("Location"), actingAs.FindAllStringSubmatch(body, 1))
			}
		}
	}
}

// TestAFormOfMoreThan64KiBIsRefusedAndChangesNothing: a post is read up to 64 KiB, so nobody
// makes the console buffer more: a sign-in or a signed-in form over the bound is refused with
// 403 before anything happens (no session, no org chosen), though its CSRF token is right.
func TestAFormOfMoreThan64KiBIsRefusedAndChangesNothing(t *testing.T) {
	base := startConsole(t, console.Options{})
	org := env.Namespace(t, "acme")
	who := newPerson(t, org, "alice", observer...)
	for _, size := range []int{64 << 10, 256 << 10, 2 << 20} {
		pad := strings.Repeat("a", size)
		cookie, csrf := loginForm(t, base)
		if resp := postLogin(t, base, cookie, url.Values{"csrf": {csrf}, "token": {who.token}, "pad": {pad}}); resp.StatusCode != http.StatusForbidden || sessionCookie(resp) != nil {
			t.Errorf("a sign-in of %d bytes: status %d, session cookie set %t; want 403 and none", size, resp.StatusCode, sessionCookie(resp) != nil)
		}
		c := signIn(t, base, who.token)
		req, _ := http.NewRequest(http.MethodGet, base+"/org", nil)
		_, body := fetch(t, c, req)
		form := url.Values{"csrf": {hiddenCSRF.FindStringSubmatch(body)[1]}, "org": {org}, "pad": {pad}}
		req, _ = http.NewRequest(http.MethodPost, base+"/org", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, _ := fetch(t, c, req); resp.StatusCode != http.StatusForbidden {
			t.Errorf("choosing the org with a form of %d bytes: status %d, want 403", size, resp.StatusCode)
		}
		req, _ = http.NewRequest(http.MethodGet, base+"/users", nil)
		if resp, _ := fetch(t, c, req); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/org" {
			t.Errorf("after a refused form of %d bytes the session has an org: /users answers %d to %q", size, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// The same form within the bound is taken.
	c := signIn(t, base, who.token)
	chooseOrg(t, c, base, org)
}

// connectedCard is one connected application's card on the Activity page: its ID and figures.
var connectedCard = regexp.MustCompile(`(?s)<article class="card activity" data-app="([^"]+)">.*?<dd class="allowed">(\d+)</dd>.*?<dd class="refused">(\d+)</dd>(.*?)</article>`)

// activityShown is what an Activity page shows of its connected applications, "ID allowed
// refused" and "chart" when the card has one, one card a line.
func activityShown(body string) string {
	var lines []string
	for _, m := range connectedCard.FindAllStringSubmatch(body, -1) {
		line := m[1] + " " + m[2] + " " + m[3]
		if strings.Contains(m[4], "<svg") {
			line += " chart"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// TestAnOrgSeesOnlyItsOwnActivityWhateverOrgItsSessionOrLinkNames: the figures of what an
// application did in an org (read from Prometheus, which knows no RBAC) are shown only to
// those who may list that org's OrgConnections, and always for the org the page names. One
// application is connected to two orgs that it used differently (one allowed answer to globex;
// to initech, answers before and after Prometheus first saw them, so that only initech has a
// chart). Each org's admin opens the Activity page with each org as the session's current org
// (the org picker takes any name) and each org, or none, in the link: the page for their own
// org shows exactly their org's figures and chart, and no error; the page for the other org is
// refused with 403 and shows no figure.
func TestAnOrgSeesOnlyItsOwnActivityWhateverOrgItsSessionOrLinkNames(t *testing.T) {
	needPrometheus(t)
	owner, globex, initech := env.Namespace(t, "acme"), env.Namespace(t, "globex"), env.Namespace(t, "initech")
	app := application(t, owner, "bi", "Acme BI export")
	id := app.Status.ApplicationID
	key, token := activeKey(t, owner, "exporter", "bi")
	objs := []client.Object{app, key}
	for _, org := range []string{globex, initech} {
		objs = append(objs, resolvedConnection(t, org, "bi", id))
	}
	applyAll(t, objs...)
	base := startConsole(t, console.Options{PrometheusURL: prom.URL})
	admins := map[string]*http.Client{
		globex:  signIn(t, base, newPerson(t, globex, "gina", orgAdmin...).token),
		initech: signIn(t, base, newPerson(t, initech, "ivan", orgAdmin...).token),
	}
	for org, c := range admins {
		chooseOrg(t, c, base, org)
	}
	open := func(c *http.Client, link string) (int, string) {
		t.Helper()
		path := "/activity"
		if link != "" {
			path += "?" + url.Values{"org": {link}}.Encode()
		}
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		resp, body := fetch(t, c, req)
		return resp.StatusCode, body
	}
	shows := func(org, want string) {
		t.Helper()
		within(t, org+"'s figures "+want, func() error {
			if status, body := open(admins[org], org); status != http.StatusOK || activityShown(body) != want {
				return fmt.Errorf("status %d, shown %q", status, activityShown(body))
			}
			return nil
		})
	}
	// One answer only to globex: a counter born at 1 and never rising, so no chart there.
	a := replicas[0]
	a.ask(t, 1, token, globex, "", http.StatusOK)
	a.ask(t, 1, token, initech, "", http.StatusOK)
	shows(globex, id+" 1 0")
	shows(initech, id+" 1 0")
	a.ask(t, 3, token, initech, "", http.StatusOK)
	a.ask(t, 2, token, initech, "&minRole=Technician", http.StatusForbidden)
	want := map[string]string{globex: id + " 1 0", initech: id + " 4 2 chart"}
	shows(initech, want[initech])

	for viewer, c := range admins {
		for _, current := range []string{globex, initech} {
			chooseOrg(t, c, base, current)
			for _, link := range []string{"", globex, initech} {
				org := link
				if org == "" {
					org = current
				}
				status, body := open(c, link)
				shown := activityShown(body)
				switch {
				case org == viewer && (status != http.StatusOK || shown != want[org] || strings.Contains(body, `class="flash error"`)):
					t.Errorf("%s's admin, current org %s, link %q: status %d, shown %q, error shown %t; want 200 with %q and no error",
						viewer, current, link, status, shown, strings.Contains(body, `class="flash error"`), want[org])
				case org != viewer && (status != http.StatusForbidden || shown != "" || strings.Contains(body, id)):
					t.Errorf("%s's admin, current org %s, link %q: %s's activity answered %d, shown %q; want 403 and nothing",
						viewer, current, link, org, status, shown)
				}
			}
		}
	}
}

// TestConsentGrantsOnlyOnAnExplicitAllow: a consent post grants only when it says allow, as the
// Allow button does; anything else (no decision, an empty one, another spelling, deny) sends the
// browser back to the verifier with access_denied and connects nothing.
func TestConsentGrantsOnlyOnAnExplicitAllow(t *testing.T) {
	ctx := context.Background()
	owner, org := env.Namespace(t, "partner"), env.Namespace(t, "initech")
	id := application(t, owner, "bi", "Partner BI").Status.ApplicationID
	request := "req-explicit-" + org
	verifier.expect(request, console.AuthorizationRequest{ApplicationID: id, Description: "Partner BI", OwnerOrg: owner})
	c := signIn(t, consoleURL, newPerson(t, org, "ines", orgAdmin...).token)
	req, _ := http.NewRequest(http.MethodGet, consoleURL+"/oauth2/consent?request="+request+"&org="+org, nil)
	resp, body := fetch(t, c, req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="consent-decision"`) {
		t.Fatalf("the consent page: status %d", resp.StatusCode)
	}
	csrf := hiddenCSRF.FindStringSubmatch(body)[1]
	for _, decision := range [][]string{nil, {""}, {"Allow"}, {"ALLOW"}, {" allow"}, {"allow "}, {"yes"}, {"true"}, {"1"}, {"deny"}, {"deny", "allow"}} {
		form := url.Values{"csrf": {csrf}, "request": {request}, "org": {org}, "role": {string(v1.RoleObserver)}}
		if decision != nil {
			form["decision"] = decision
		}
		req, _ := http.NewRequest(http.MethodPost, consoleURL+"/oauth2/consent", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, body := fetch(t, c, req)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "error=access_denied") {
			t.Errorf("decision %q: status %d, want the page back to the verifier with access_denied", decision, resp.StatusCode)
		}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: ops.ConnectionName(id)}, &v1.OrgConnection{}); err == nil {
			t.Fatalf("decision %q connected the application", decision)
		}
	}
}
