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
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/console"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/ops"
	vf "github.com/clearance-dev/clearance/internal/verifier"
)

// stubVerifier plays the verifier's side of the consent page's contract: it answers what an
// authorization request is, records where the browser came back to and, as the verifier does,
// redirects it on to the partner's app, another origin, which records its arrival. (The
// verifier's own tests hold it to the same contract.) Every other path is answered by real, a
// verifier in this process fed the test's objects (the Developers page's tester asks it).
type stubVerifier struct {
	*httptest.Server
	real     *vf.Verifier
	app      *httptest.Server
	mu       sync.Mutex
	requests map[string]console.AuthorizationRequest
	returns  []string // request URIs of the browser's returns
	arrivals int      // the browser's arrivals at the app
}

func newStubVerifier() (*stubVerifier, error) {
	format, err := keyformat.New(keyformat.DefaultPrefix) // the operator's default --key-prefix
	if err != nil {
		return nil, err
	}
	inProcess, err := vf.New(vf.Options{Clock: clock.RealClock{}, Format: format, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return nil, err
	}
	v := &stubVerifier{real: inProcess, requests: map[string]console.AuthorizationRequest{}}
	v.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		v.mu.Lock()
		v.arrivals++
		v.mu.Unlock()
		_, _ = w.Write([]byte("back at the partner's app"))
	}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/authorize/requests/{id}", func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		ar, ok := v.requests[r.PathValue("id")]
		v.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(ar)
	})
	mux.HandleFunc("GET /oauth2/authorize/done", func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.returns = append(v.returns, r.URL.RequestURI())
		v.mu.Unlock()
		http.Redirect(w, r, v.app.URL+"/cb?"+r.URL.RawQuery, http.StatusFound)
	})
	mux.Handle("/", inProcess.Handler())
	v.Server = httptest.NewServer(mux)
	return v, nil
}

func (v *stubVerifier) Close() {
	v.Server.Close()
	v.app.Close()
}

func (v *stubVerifier) expect(id string, ar console.AuthorizationRequest) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.requests[id] = ar
}

// forget drops the returns and arrivals recorded so far, so that a test counts only its own
// (go test -count runs it again against the same stub).
func (v *stubVerifier) forget() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.returns, v.arrivals = nil, 0
}

func (v *stubVerifier) returned() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.returns)
}

// waitLanded waits until the browser has loaded the partner's app's page: the app answering
// the request is not the browser done with it, and a page opened while that navigation commits
// gets no response (CI saw it).
func (v *stubVerifier) waitLanded(t *testing.T, p *page) {
	t.Helper()
	within(t, "the browser to land on the partner's app", func() error {
		loc, err := chromedp.Run(p.Ctx, chromedp.Location())
		if err != nil {
			return err
		}
		state, err := chromedp.Run(p.Ctx, chromedp.Evaluate[string]("document.readyState"))
		if err != nil {
			return err
		}
		if !strings.HasPrefix(loc, v.app.URL+"/cb") || state != "complete" {
			return fmt.Errorf("the browser is at %s (%s)", redactQuery(loc), state)
		}
		return nil
	})
}

// redactQuery drops a URL's query, which may hold a code.
func redactQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// waitReturns waits until the browser came back n times in all (the page a consent answers
// with sends it by itself) and went on to the partner's app each time (nothing on the way may
// stop it: a form's redirects are held to the console's form-action), and returns every return.
func (v *stubVerifier) waitReturns(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	within(t, fmt.Sprintf("the browser's return number %d through the verifier to the app", n), func() error {
		v.mu.Lock()
		arrivals := v.arrivals
		v.mu.Unlock()
		if got = v.returned(); len(got) < n || arrivals < n {
			return fmt.Errorf("returns to the verifier so far: %q, arrivals at the app: %d", got, arrivals)
		}
		return nil
	})
	if len(got) != n {
		t.Fatalf("the browser came back to the verifier %d times, want %d: %q", len(got), n, got)
	}
	return got
}

// TestConsentConnectsTheApplicationWithThePersonsOwnCredentials: an org admin arriving from a
// partner's app, signed out, signs in, sees which application asks, picks a role among those
// they may assign and allows; the org's connection carries the consent, recorded by the
// apiserver as theirs, and the browser is back at the verifier. A Deny changes nothing; a
// technician is not offered OrgAdmin, and the apiserver refuses it when posted anyway.
func TestConsentConnectsTheApplicationWithThePersonsOwnCredentials(t *testing.T) {
	ctx := context.Background()
	owner, org := env.Namespace(t, "partner"), env.Namespace(t, "initech")
	app := application(t, owner, "bi", "Partner BI")
	id := app.Status.ApplicationID
	verifier.forget()
	verifier.expect("req-allow", console.AuthorizationRequest{ApplicationID: id, Description: "Partner BI", OwnerOrg: owner, Scopes: []string{"openid", "offline_access"}})
	verifier.expect("req-deny", console.AuthorizationRequest{ApplicationID: id, Description: "Partner BI", OwnerOrg: owner})
	admin := newPerson(t, org, "ines", orgAdmin...)
	ines := "system:serviceaccount:" + org + ":ines"

	p := newPage(t, 1280, 800)
	p.Open("/oauth2/consent?request=req-deny")
	// The page reloads itself from the console's origin, then sends the browser to sign in: wait
	// through both navigations for the sign-in form.
	waitCtx, cancel := context.WithTimeout(p.Ctx, time.Minute)
	defer cancel()
	if _, err := chromedp.Run(waitCtx, chromedp.WaitVisible(chromedp.CSS("#token"))); err != nil {
		t.Fatalf("no sign-in form on the way to the consent: %v", err)
	}
	p.Fill("#token", admin.token)
	p.Submit("form[action='/login'] button[type=submit]")
	if got := p.Text("main h1"); !strings.Contains(got, "Allow Partner BI") {
		t.Fatalf("after signing in, the page is %q, want the consent", got)
	}
	p.Fill("#org", org)
	p.Submit("#consent-org button[type=submit]")
	p.Submit("#consent-decision button[value=deny]")
	if got := verifier.waitReturns(t, 1); got[0] != "/oauth2/authorize/done?request=req-deny&error=access_denied" {
		t.Fatalf("after Deny the verifier saw %q", got)
	}
	verifier.waitLanded(t, p)
	conn := &v1.OrgConnection{}
	key := client.ObjectKey{Namespace: org, Name: ops.ConnectionName(id)}
	if err := env.Client.Get(ctx, key, conn); err == nil {
		t.Fatalf("Deny connected the application: %+v", conn.Spec)
	}

	p.Open("/oauth2/consent?request=req-allow&org=" + org)
	main := p.Text("main")
	for _, want := range []string{"Partner BI", owner, id, "every permission of the role you pick", "keep that access while you are away"} {
		if !strings.Contains(main, want) {
			t.Errorf("the consent page does not show %q: %s", want, main)
		}
	}
	if got, want := p.Options("#role"), []string{"Observer", "Analyst", "Technician", "OrgAdmin"}; !slices.Equal(got, want) {
		t.Errorf("an org admin is offered %v, want %v", got, want)
	}
	p.Choose("#role", "Analyst")
	p.Shots("consent")
	p.Submit("#consent-decision button[value=allow]")
	if got := verifier.waitReturns(t, 2); got[1] != "/oauth2/authorize/done?request=req-allow" {
		t.Fatalf("after Allow the verifier saw %q", got)
	}
	if err := env.Client.Get(ctx, key, conn); err != nil {
		t.Fatal(err)
	}
	if conn.Spec.Role != v1.RoleAnalyst || conn.Annotations[v1.AnnotationConsent] != "req-allow" || conn.Annotations[v1.AnnotationConsentedBy] != ines ||
		conn.Annotations[v1.AnnotationCreatedBy] != ines {
		t.Errorf("the connection after Allow: role %s, annotations %v; want Analyst, consent req-allow by %s", conn.Spec.Role, conn.Annotations, ines)
	}

	// A technician consenting again on the same connection: OrgAdmin is not offered, and
	// posting it anyway is refused by the apiserver, which leaves the connection as it was.
	tech := newPerson(t, org, "tom", technician...)
	verifier.expect("req-tech", console.AuthorizationRequest{ApplicationID: id, Description: "Partner BI", OwnerOrg: owner})
	q := newPage(t, 1280, 800)
	q.signIn(tech)
	q.Open("/oauth2/consent?request=req-tech")
	if got := q.Options("#role"); slices.Contains(got, "OrgAdmin") {
		t.Errorf("a technician is offered %v", got)
	}
	status, body := q.post("/oauth2/consent", map[string][]string{"request": {"req-tech"}, "org": {org}, "role": {"OrgAdmin"}, "decision": {"allow"}})
	if status != http.StatusForbidden || !strings.Contains(body, "may not assign role OrgAdmin") {
		t.Errorf("a technician granting OrgAdmin: %d %s", status, body)
	}
	if err := env.Client.Get(ctx, key, conn); err != nil || conn.Spec.Role != v1.RoleAnalyst || conn.Annotations[v1.AnnotationConsent] != "req-allow" {
		t.Errorf("the refused consent changed the connection: %v %+v %v", err, conn.Spec, conn.Annotations)
	}

	// A link naming another org shows that org on the page but changes nothing in the session.
	q.Open("/oauth2/consent?request=req-tech&org=elsewhere")
	if got := q.Value("#consent-decision input[name=org]"); got != "elsewhere" {
		t.Errorf("the page's org is %q, want the one the link names", got)
	}
	q.Open("/applications")
	if got := q.Text("header .org strong"); got != org {
		t.Errorf("after a consent link naming another org, the session's org is %q, want %q", got, org)
	}

	// An unknown request is answered with what to do, never a form.
	p.Open("/oauth2/consent?request=req-unknown")
	if main := p.Text("main"); !strings.Contains(main, "go back to the application and connect it again") || p.Count("#consent-decision") != 0 {
		t.Errorf("an unknown request: %s", main)
	}
}

// TestConsentOffersAndGivesOnlyARoleThePersonMayAssign: consent hands the partner's app tokens
// with the connection's role, so it needs bind on that role even when the connection already has
// it. A technician on a connection an org admin made OrgAdmin is offered the roles up to
// Technician only; posting Allow at OrgAdmin anyway gets the apiserver's refusal and leaves the
// connection without their consent; Allow at Technician is theirs. (Over plain HTTP: no browser.)
func TestConsentOffersAndGivesOnlyARoleThePersonMayAssign(t *testing.T) {
	ctx := context.Background()
	owner, org := env.Namespace(t, "partner"), env.Namespace(t, "umbrella")
	id := application(t, owner, "bi", "Partner BI").Status.ApplicationID
	key := client.ObjectKey{Namespace: org, Name: ops.ConnectionName(id)}
	if err := env.Client.Create(ctx, &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Spec: v1.OrgConnectionSpec{ApplicationID: id, Role: v1.RoleOrgAdmin}}); err != nil {
		t.Fatal(err)
	}
	verifier.expect("req-tech-above", console.AuthorizationRequest{ApplicationID: id, Description: "Partner BI", OwnerOrg: owner})
	tom := newPerson(t, org, "tom", technician...)
	c := signIn(t, consoleURL, tom.token)

	req, _ := http.NewRequest(http.MethodGet, consoleURL+"/oauth2/consent?request=req-tech-above&org="+org, nil)
	resp, body := fetch(t, c, req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="consent-decision"`) {
		t.Fatalf("the consent page: status %d: %s", resp.StatusCode, body)
	}
	if strings.Contains(body, `value="OrgAdmin"`) || !strings.Contains(body, `value="Technician"`) {
		t.Errorf("a technician on an OrgAdmin connection is offered OrgAdmin, or not Technician")
	}
	csrf := hiddenCSRF.FindStringSubmatch(body)[1]
	allow := func(role v1.Role) (*http.Response, string) {
		form := url.Values{"csrf": {csrf}, "request": {"req-tech-above"}, "org": {org}, "role": {string(role)}, "decision": {"allow"}}
		req, _ := http.NewRequest(http.MethodPost, consoleURL+"/oauth2/consent", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return fetch(t, c, req)
	}
	if resp, body := allow(v1.RoleOrgAdmin); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "may not consent") {
		t.Errorf("a technician allowing at OrgAdmin: status %d, want 403 with the apiserver's refusal", resp.StatusCode)
	}
	conn := &v1.OrgConnection{}
	if err := env.Client.Get(ctx, key, conn); err != nil {
		t.Fatal(err)
	}
	if conn.Spec.Role != v1.RoleOrgAdmin || conn.Annotations[v1.AnnotationConsent] != "" || conn.Annotations[v1.AnnotationConsentedBy] != "" {
		t.Fatalf("the refused consent changed the connection: role %s, annotations %v", conn.Spec.Role, conn.Annotations)
	}
	if resp, body := allow(v1.RoleTechnician); resp.StatusCode != http.StatusOK || !strings.Contains(body, "/oauth2/authorize/done?request=req-tech-above") {
		t.Errorf("a technician allowing at Technician: status %d, want the page back to the verifier", resp.StatusCode)
	}
	if err := env.Client.Get(ctx, key, conn); err != nil {
		t.Fatal(err)
	}
	if tomUser := "system:serviceaccount:" + org + ":tom"; conn.Spec.Role != v1.RoleTechnician || conn.Annotations[v1.AnnotationConsentedBy] != tomUser {
		t.Errorf("after Allow at Technician: role %s, annotations %v; want Technician, consented by %s", conn.Spec.Role, conn.Annotations, tomUser)
	}
}

// TestTheConsentPageSaysWhatTheTokensMayDo: openid and offline_access say nothing about what
// tokens may do, so a request naming no permission asks for every permission of the role, and
// the page says so rather than listing those two as if they limited it.
func TestTheConsentPageSaysWhatTheTokensMayDo(t *testing.T) {
	owner, org := env.Namespace(t, "partner"), env.Namespace(t, "initech")
	id := application(t, owner, "bi", "Partner BI").Status.ApplicationID
	c := signIn(t, consoleURL, newPerson(t, org, "ivan", orgAdmin...).token)
	for _, tc := range []struct {
		request     string
		scopes      []string
		want, never string
	}{
		{"req-scopes-none", []string{"openid", "offline_access"}, "with <strong>every permission of the role you pick</strong>", "limited to"},
		{"req-scopes-some", []string{"openid", "reports:read", "occupancy:read"}, "limited to the permissions <code>reports:read occupancy:read</code>", "every permission"},
	} {
		verifier.expect(tc.request, console.AuthorizationRequest{ApplicationID: id, Description: "Partner BI", OwnerOrg: owner, Scopes: tc.scopes})
		req, _ := http.NewRequest(http.MethodGet, consoleURL+"/oauth2/consent?request="+tc.request+"&org="+org, nil)
		resp, body := fetch(t, c, req)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, tc.want) || strings.Contains(body, tc.never) {
			t.Errorf("%s (scopes %v): status %d, want %q and never %q in:\n%s", tc.request, tc.scopes, resp.StatusCode, tc.want, tc.never, body)
		}
	}
}
