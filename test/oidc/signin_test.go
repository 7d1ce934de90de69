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
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestAnOrgAdminSignsInWithTheProviderAndActsAsTheirOIDCIdentity: the sign-in page offers the
// provider beside the token form; Chromium goes to the provider and back; what the admin then
// creates is recorded by the apiserver as oidc:<their email>, the RBAC subject their org bound;
// no code or token reaches a page, a cookie or a log; signing out ends the session.
func TestAnOrgAdminSignsInWithTheProviderAndActsAsTheirOIDCIdentity(t *testing.T) {
	org := env.Namespace(t, "acme")
	bind(t, org, rbacv1.UserKind, env.OIDC.Username("alice"), "clearance-org-admin", secretReader)
	p := newPage(t, consoleURL)

	p.Open("/login")
	p.Shots("login-oidc")
	if got := p.Text("#oidc-sign-in"); got != "Sign in with "+providerName {
		t.Errorf("the sign-in button reads %q", got)
	}
	if !strings.Contains(p.HTML(), `id="token"`) {
		t.Error("the sign-in page no longer offers the token form (ServiceAccounts need it)")
	}
	p.signIn("alice", org)
	if got := p.Text(".who .user"); got != env.OIDC.Username("alice") {
		t.Errorf("the console says it is signed in as %q, want %q", got, env.OIDC.Username("alice"))
	}

	p.Open("/applications/new")
	p.Fill("#description", "Acme BI export")
	p.Click("#firstKey") // no first key: the key comes next, from Generate new key
	p.Submit("form[action='/applications/new'] button[type=submit]")
	var app v1.Application
	within(t, "the application to exist", func() error {
		return env.Client.Get(context.Background(), client.ObjectKey{Namespace: org, Name: "acme-bi-export"}, &app)
	})
	if got := app.Annotations[v1.AnnotationCreatedBy]; got != env.OIDC.Username("alice") {
		t.Errorf("the application was created by %q, want %q", got, env.OIDC.Username("alice"))
	}
	p.Open("/applications/acme-bi-export/keys")
	p.Click("#key-permissions input[value='reports:read']")
	if status := p.Submit("form[action='/applications/acme-bi-export/keys'] button[type=submit]"); status != http.StatusCreated {
		t.Fatalf("generating a key: status %d: %s", status, p.Text("main"))
	}
	minted.Add("the key alice generated", p.Value("#new-key"))
	var keys v1.APIKeyList
	within(t, "the key's status.createdBy", func() error {
		if err := env.Client.List(context.Background(), &keys, client.InNamespace(org)); err != nil {
			return err
		}
		if len(keys.Items) != 1 || keys.Items[0].Status.CreatedBy == "" {
			return fmt.Errorf("%d keys", len(keys.Items))
		}
		return nil
	})
	if got := keys.Items[0].Status.CreatedBy; got != env.OIDC.Username("alice") {
		t.Errorf("the key's status.createdBy is %q, want %q", got, env.OIDC.Username("alice"))
	}
	p.noSecretOnPage()

	var sessionID string
	for _, c := range p.cookies() {
		if c.Name == "__Host-clearance-console" {
			sessionID = c.Value
		}
	}
	p.Submit(".who form[action='/logout'] button")
	p.WaitFor("/login", "#oidc-sign-in")
	p.Open("/applications")
	if !strings.HasPrefix(p.Location(), consoleURL+"/login") {
		t.Errorf("after signing out, /applications is at %s, not the sign-in page", p.Location())
	}
	// The session is over, not just its cookie gone from this browser.
	req, _ := http.NewRequest(http.MethodGet, consoleURL+"/applications", nil)
	req.AddCookie(&http.Cookie{Name: "__Host-clearance-console", Value: sessionID})
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if sessionID == "" || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("the signed-out session's cookie still opens /applications: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	noSecretLogged(t)
}

// TestAPersonWithNoRoleSeesNothingTheyMayNot: someone the provider knows but the org never
// bound signs in, and the org's applications stay hidden; a colleague whose provider group the
// org bound sees them.
func TestAPersonWithNoRoleSeesNothingTheyMayNot(t *testing.T) {
	org := env.Namespace(t, "globex")
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "secret-project"}, Spec: v1.ApplicationSpec{Description: "Globex secret project"}}
	if err := env.Client.Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	bind(t, org, rbacv1.GroupKind, testenv.OIDCPrefix+"globex-admins", "clearance-org-admin")

	nobody := newPage(t, consoleURL)
	nobody.signIn("mallory", org, "contractors")
	if html := nobody.HTML(); strings.Contains(html, "Globex secret project") || strings.Contains(html, "secret-project") {
		t.Error("a person with no role in the org sees its application")
	}
	if want := `User "` + env.OIDC.Username("mallory") + `" cannot list resource "applications"`; !strings.Contains(nobody.Text("main"), want) {
		t.Errorf("the page does not show the apiserver refusing the person's own identity (%s): %s", want, nobody.Text("main"))
	}
	if n := strings.Count(nobody.HTML(), `href="/applications/new"`); n != 0 {
		t.Error("a person with no role in the org is offered to create an application")
	}

	member := newPage(t, consoleURL)
	member.signIn("grace", org, "globex-admins")
	if !strings.Contains(member.Text("main"), "Globex secret project") {
		t.Errorf("a member of the bound group does not see the org's application: %s", member.Text("main"))
	}
	noSecretLogged(t)
}

// TestTheSessionRenewsItsIDTokenBeforeItExpires: on the in-process console's clock, nothing is
// renewed while the ID token has more than two minutes left; then the next page renews it with
// the refresh token (one call to the provider) and the apiserver accepts the new one; when the
// provider refuses to renew, the session ends with a sentence saying so.
func TestTheSessionRenewsItsIDTokenBeforeItExpires(t *testing.T) {
	org := env.Namespace(t, "initech")
	bind(t, org, rbacv1.UserKind, env.OIDC.Username("peter"), "clearance-org-admin")
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "tps"}, Spec: v1.ApplicationSpec{Description: "TPS reports"}}
	if err := env.Client.Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	clock.SetTime(time.Now()) // the console's clock starts at the real one, then steps ahead of it
	p := newPage(t, clockedURL)
	p.signIn("peter", org)
	lifetime := env.OIDC.Mock.AccessTTL
	requests := env.OIDC.TokenRequests.Load()

	// Steps of half a minute and more keep the real seconds the browser takes out of the count.
	clock.Step(lifetime - 2*time.Minute - 30*time.Second)
	p.Open("/users?tab=applications")
	if got := env.OIDC.TokenRequests.Load(); got != requests {
		t.Fatalf("the console called the token endpoint %d times with more than 2 minutes left", got-requests)
	}
	for round := range 2 {
		clock.Step(time.Minute)
		if status := p.Open("/users?tab=applications"); status != http.StatusOK || !strings.Contains(p.Text("main"), "TPS reports") {
			t.Fatalf("round %d: after renewing: status %d: %s", round, status, p.Text("main"))
		}
		if got := env.OIDC.TokenRequests.Load(); got != requests+1 {
			t.Fatalf("round %d: %d calls to the token endpoint to renew, want 1", round, got-requests)
		}
		requests++
		p.Open("/users?tab=applications")
		if got := env.OIDC.TokenRequests.Load(); got != requests {
			t.Fatalf("round %d: the renewed token was renewed again at once", round)
		}
		clock.Step(lifetime - 2*time.Minute - 30*time.Second - time.Minute)
		p.Open("/users?tab=applications")
		if got := env.OIDC.TokenRequests.Load(); got != requests {
			t.Fatalf("round %d: the console renewed with more than 2 minutes left", round)
		}
		clock.Step(time.Minute)
	}
	p.noSecretOnPage()

	env.OIDC.Mock.QueueError(&mockoidc.ServerError{Code: http.StatusBadRequest, Error: "invalid_grant", Description: "the refresh token was revoked"})
	clock.Step(time.Minute)
	if status := p.Open("/users?tab=applications"); status != http.StatusUnauthorized {
		t.Fatalf("a session the provider would not renew: status %d", status)
	}
	if got := p.Text("#error"); !strings.Contains(got, "Your sign-in has ended: "+providerName+" did not renew it (invalid_grant") {
		t.Errorf("the sign-in page says %q", got)
	}
	p.WaitFor("/users?tab=applications", "#oidc-sign-in")
	noSecretLogged(t)
}

// within waits for cond.
func within(t *testing.T, what string, cond func() error) {
	t.Helper()
	testenv.Within(t, 60*time.Second, what, cond)
}
