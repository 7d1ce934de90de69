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
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/docs"
	"github.com/clearance-dev/clearance/internal/console"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// documentedRoutes are the document's operations as "METHOD path", read without the console's
// parser.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" && method != "summary" && method != "description" && method != "servers" {
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}

// shownRoute is a route as the Developers page shows it.
type shownRoute struct {
	ID, Method, Path, Summary, Curl, Go string
	InTOC                               bool
}

const shownRoutes = `Array.from(document.querySelectorAll("details.route")).map(d => ({
  ID: d.id, Method: d.dataset.method, Path: d.dataset.path,
  Summary: d.querySelector("summary").textContent,
  Curl: d.querySelector("textarea.curl").value, Go: d.querySelector("textarea.go").value,
  InTOC: document.querySelector(".toc a[href='#" + d.id + "']") !== null}))`

// TestTheDevelopersPageDocumentsEveryRouteWithCurlAndGoExamples: every operation of the OpenAPI
// document the verifier serves is on the page, in its table of contents, with its method, path
// and summary, a curl example and a Go example against the verifier the console knows, which
// read the key from the environment; every reason is explained.
func TestTheDevelopersPageDocumentsEveryRouteWithCurlAndGoExamples(t *testing.T) {
	org := env.Namespace(t, "acme")
	who := newPerson(t, org, "olga", observer...)
	p := newPage(t, 1280, 900)
	p.signIn(who)
	if status := p.Submit("nav a[href='/developers']"); status != http.StatusOK {
		t.Fatalf("the Developers page: status %d: %s", status, p.Text("main"))
	}
	routes, err := chromedp.Run(p.Ctx, chromedp.Evaluate[[]shownRoute](shownRoutes))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range routes {
		got = append(got, r.Method+" "+r.Path)
		prefix, _, _ := strings.Cut(r.Path, "{")
		switch {
		case !strings.Contains(r.Summary, r.Method) || !strings.Contains(r.Summary, r.Path):
			t.Errorf("%s %s: the summary line reads %q", r.Method, r.Path, r.Summary)
		case !r.InTOC:
			t.Errorf("%s %s is not in the table of contents", r.Method, r.Path)
		case !strings.HasPrefix(r.Curl, "curl ") || !strings.Contains(r.Curl, verifier.URL+prefix):
			t.Errorf("%s %s: the curl example is %q", r.Method, r.Path, r.Curl)
		case !strings.HasPrefix(r.Go, "package main") || !strings.Contains(r.Go, "http.NewRequest(") || !strings.Contains(r.Go, verifier.URL+prefix):
			t.Errorf("%s %s: the Go example is %q", r.Method, r.Path, r.Go)
		case strings.Contains(r.Curl, keyformat.DefaultPrefix) || strings.Contains(r.Go, keyformat.DefaultPrefix):
			t.Errorf("%s %s: an example holds a key", r.Method, r.Path)
		}
	}
	slices.Sort(got)
	if want := documentedRoutes(t); !slices.Equal(got, want) {
		t.Errorf("the page shows the routes\n%q\nthe document has\n%q", got, want)
	}
	for _, r := range routes {
		if r.ID == "op-authorizeGet" && (!strings.Contains(r.Curl, `-H "Authorization: api-key ${CLEARANCE_KEY}"`) ||
			!strings.Contains(r.Go, `req.Header.Set("Authorization", "api-key "+os.Getenv("CLEARANCE_KEY"))`)) {
			t.Errorf("the forward-auth examples do not send the key from CLEARANCE_KEY:\n%s\n%s", r.Curl, r.Go)
		}
	}
	reasons, err := chromedp.Run(p.Ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#reasons tbody tr")).filter(tr => tr.cells[2].textContent.trim() !== "").map(tr => tr.cells[0].textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"key_unknown", "role_insufficient", "rate_limited", "org_not_connected", "stale"} {
		if !slices.Contains(reasons, reason) {
			t.Errorf("the reasons table does not explain %s: %q", reason, reasons)
		}
	}
	// The table of contents leads to the route, opened.
	p.Click(".toc a[href='#op-verifyKey']")
	within(t, "keys:verify to open after following the table of contents to it", func() error {
		if open, err := chromedp.Run(p.Ctx, chromedp.Evaluate[bool](`document.getElementById("op-verifyKey").open`)); err != nil || !open {
			return fmt.Errorf("still closed (%v)", err)
		}
		return nil
	})
}

// TestTheTesterShowsTheVerifiersAnswerToAPastedKeyAndKeepsNoneOfIt: a developer pastes their
// key into the tester; the console asks the verifier, server-side, and shows 200 and allowed
// with the rate-limit headers for an org that connected the application, and the reason with
// its meaning for a role above the connection's and for an unknown key. The key is in no page
// the console answers with (the form comes back empty), nor in its log; a post without the
// session's CSRF token is refused before anything is sent.
func TestTheTesterShowsTheVerifiersAnswerToAPastedKeyAndKeepsNoneOfIt(t *testing.T) {
	ctx := context.Background()
	owner, globex := env.Namespace(t, "acme"), env.Namespace(t, "globex")
	app := application(t, owner, "bi", "Acme BI export", v1.RateLimit{Name: "general", Limit: 100, Period: metav1.Duration{Duration: time.Hour}})
	key, token := activeKey(t, owner, "exporter", "bi")
	conn := resolvedConnection(t, globex, "bi", app.Status.ApplicationID)
	for _, o := range []client.Object{app, key, conn} {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		verifier.real.Apply(o)
	}
	format, _ := keyformat.New(keyformat.DefaultPrefix)
	unknown, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	issued.add(unknown.Token) // the suite's leak check looks for it too
	alice := newPerson(t, owner, "alice", orgAdmin...)

	p := newPage(t, 1280, 900)
	p.signIn(alice)
	p.Open("/developers")
	if got, err := chromedp.Run(p.Ctx, chromedp.Evaluate[string](`(f => f.type + " " + f.autocomplete)(document.getElementById("tester-key"))`)); err != nil || got != "password off" {
		t.Errorf("the key field is %q, want a password field with autocomplete off (%v)", got, err)
	}
	send := func(p *page, key, route, org, minRole string) {
		p.T.Helper()
		p.Fill("#tester-key", key)
		p.Choose("#tester-route", route)
		p.Fill("#tester-org", org)
		p.Choose("#tester-role", minRole)
		if status := p.Submit("#tester button[type=submit]"); status != http.StatusOK {
			p.T.Fatalf("testing a key: status %d: %s", status, p.Text("main"))
		}
		if html := p.HTML(); strings.Contains(html, token) || strings.Contains(html, unknown.Token) {
			p.T.Fatal("the tester's answer holds the key")
		}
		if got := p.Value("#tester-key"); got != "" {
			p.T.Errorf("the key field comes back holding %d characters", len(got))
		}
	}

	send(p, token, "authorizeGet", globex, "")
	if got := p.Text("#tester-status") + " " + p.Text("#tester-answer"); got != "200 OK allowed" {
		t.Errorf("a good key for a connected org: %q, want 200 OK allowed", got)
	}
	headers := p.Text("#tester-result table")
	for _, want := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-Clearance-Org", globex, "X-Clearance-Role", "Observer", "X-Clearance-Key-Id"} {
		if !strings.Contains(headers, want) {
			t.Errorf("the answer's headers do not show %q: %s", want, headers)
		}
	}
	if got := p.Value("#tester-org"); got != globex {
		t.Errorf("the org field comes back as %q, want %q", got, globex)
	}
	if err := chromedp.Do(p.Ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("op-verifyKey").open = true`)); err != nil {
		t.Fatal(err)
	}
	p.Shot("developers")

	send(p, token, "verifyKey", globex, "OrgAdmin")
	if got := p.Text("#tester-status") + " " + p.Text("#tester-answer") + " " + p.Text("#tester-reason"); got != "200 OK refused role_insufficient" {
		t.Errorf("a role above the connection's on keys:verify: %q, want 200 OK refused role_insufficient", got)
	}
	if got := p.Text("#tester-meaning"); !strings.Contains(got, "below the least role") {
		t.Errorf("role_insufficient is explained as %q", got)
	}
	if got := p.Text("#tester-request"); !strings.Contains(got, `"key":"(your key)"`) || !strings.Contains(got, `"minRole":"OrgAdmin"`) {
		t.Errorf("the request is shown as %q", got)
	}

	phone := newPage(t, 390, 844)
	phone.signIn(alice)
	phone.Open("/developers")
	send(phone, unknown.Token, "authorizeGet", globex, "")
	if got := phone.Text("#tester-status") + " " + phone.Text("#tester-reason"); got != "401 Unauthorized key_unknown" {
		t.Errorf("an unknown key: %q, want 401 Unauthorized key_unknown", got)
	}
	if got := phone.Text("#tester-meaning"); !strings.Contains(got, "No such key id") {
		t.Errorf("key_unknown is explained as %q", got)
	}
	phone.Shot("developers-phone")

	form := url.Values{"key": {token}, "route": {"authorizeGet"}, "org": {globex}, "method": {"GET"}}
	if status, body := p.postWithout("/developers", form); status != http.StatusForbidden || strings.Contains(body, token) {
		t.Errorf("a test without the CSRF token: status %d, want 403 without the key", status)
	}
	bad := url.Values{"key": {token}, "route": {"authorizeGet"}, "org": {"Not_An_Org"}, "method": {"GET"}}
	if status, body := p.post("/developers", bad); status != http.StatusBadRequest || !strings.Contains(body, "Type the org") || strings.Contains(body, token) {
		t.Errorf("a test for no org: status %d, want 400 saying so, without the key", status)
	}
	other := url.Values{"key": {token}, "route": {"token"}, "org": {globex}, "method": {"GET"}}
	if status, body := p.post("/developers", other); status != http.StatusBadRequest || !strings.Contains(body, "Pick one of the routes") || strings.Contains(body, token) {
		t.Errorf("a test of a route the tester does not offer: status %d, want 400 saying so, without the key", status)
	}
	if log := operator.Log(); strings.Contains(log, token) || strings.Contains(log, unknown.Token) {
		t.Error("the console's log holds a key pasted into the tester")
	}
}

// TestWithoutTheVerifiersAddressTheTesterSaysHowToSetIt: a console started without
// --console-verifier-url documents every route against the document's own server and says what
// the tester needs; a test posted anyway is refused with the same words.
func TestWithoutTheVerifiersAddressTheTesterSaysHowToSetIt(t *testing.T) {
	base := startConsole(t, console.Options{})
	who := newPerson(t, env.Namespace(t, "acme"), "alice", observer...)
	c := signIn(t, base, who.token)
	req, _ := http.NewRequest(http.MethodGet, base+"/developers", nil)
	resp, body := fetch(t, c, req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="no-verifier"`) || strings.Contains(body, `id="tester-key"`) ||
		!strings.Contains(body, "http://clearance-verifier.clearance-system.svc:8090/v1/authorize") {
		t.Fatalf("without a verifier URL: status %d: %s", resp.StatusCode, body)
	}
	form := url.Values{"csrf": {hiddenCSRF.FindStringSubmatch(body)[1]}, "key": {"clr_x"}, "route": {"authorizeGet"}, "org": {"acme"}, "method": {"GET"}}
	req, _ = http.NewRequest(http.MethodPost, base+"/developers", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, body := fetch(t, c, req); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "--console-verifier-url") {
		t.Errorf("a test without a verifier URL: status %d: %s", resp.StatusCode, body)
	}
}

// resolvedConnection connects the application with id to org, as a cluster admin, and waits
// until the operator has resolved it to its Application.
func resolvedConnection(t *testing.T, org, name, id string) *v1.OrgConnection {
	t.Helper()
	ctx := context.Background()
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name}, Spec: v1.OrgConnectionSpec{ApplicationID: id}}
	if err := env.Client.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	within(t, "the connection to be resolved", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn); err != nil {
			return err
		}
		if conn.Status.ApplicationNamespace == "" {
			return fmt.Errorf("not resolved yet: %+v", conn.Status)
		}
		return nil
	})
	return conn
}
