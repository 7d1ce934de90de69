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
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

var appIDPattern = regexp.MustCompile(v1.ApplicationIDPattern)

// TestAnOrgAdminCreatesAnApplicationCopiesItsIDAndGeneratesAKeyShownOnce is seed 000's org
// admin: Users → Applications, create one with a description (a blank one gets the CEL rule's
// own words), copy its Application ID, open its keys, generate a key with two permissions ticked and see it once.
func TestAnOrgAdminCreatesAnApplicationCopiesItsIDAndGeneratesAKeyShownOnce(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "acme")
	admin := newPerson(t, org, "alice", orgAdmin...)
	p := newPage(t, 1280, 800)
	p.signIn(admin)
	p.shot("applications-empty")
	if got := p.text("h1"); got != "Applications" {
		t.Fatalf("after sign-in the page is %q, want Applications", got)
	}

	// A blank description reaches the apiserver, whose CEL rule says what is wrong.
	p.submit("a[href='/applications/new']")
	p.fill("#description", "   ")
	p.fill("#name", "blank")
	if status := p.submit("form[action='/applications/new'] button[type=submit]"); status != http.StatusUnprocessableEntity {
		t.Errorf("a blank description: status %d, want 422", status)
	}
	if msg := p.text("#error"); !strings.Contains(msg, "description must not be blank") {
		t.Errorf("a blank description: the page says %q, want the CEL rule's message", msg)
	}

	p.fill("#description", "Acme BI export")
	p.fill("#name", "")
	p.shot("application-new")
	p.submit("form[action='/applications/new'] button[type=submit]")
	app := &v1.Application{}
	within(t, "the card to show the Application ID", func() error {
		p.open("/applications")
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: "acme-bi-export"}, app); err != nil {
			return err
		}
		if app.Status.ApplicationID == "" || p.count("#id-acme-bi-export[value]") == 0 {
			return fmt.Errorf("no ID on the card yet")
		}
		return nil
	})
	id := p.value("#id-acme-bi-export")
	if id != app.Status.ApplicationID || !appIDPattern.MatchString(id) {
		t.Fatalf("the card shows ID %q, the Application has %q", id, app.Status.ApplicationID)
	}
	p.grantClipboard()
	p.click("button[data-copy='id-acme-bi-export']")
	if got := p.clipboard(); got != id {
		t.Errorf("Copy put %q on the clipboard, want the Application ID %s", got, id)
	}
	p.shot("applications")

	// Keys: none yet; generate one, shown once, as its Secret holds it.
	p.submit("a[href='/applications/acme-bi-export/keys']")
	p.fill("#key-description", "prod exporter")
	p.click("#key-permissions input[value='reports:read']")
	p.click("#key-permissions input[value='dashboards:read']")
	p.choose("#ttl", "720h")
	p.shot("keys-empty")
	if status := p.submit("form[action='/applications/acme-bi-export/keys'] button[type=submit]"); status != http.StatusCreated {
		t.Fatalf("generating a key: status %d: %s", status, p.text("main"))
	}
	p.shot("key-new")
	token := p.value("#new-key")
	var keys v1.APIKeyList
	if err := env.Client.List(ctx, &keys, client.InNamespace(org)); err != nil || len(keys.Items) != 1 {
		t.Fatalf("want one APIKey after generating, got %d (%v)", len(keys.Items), err)
	}
	key := keys.Items[0]
	var secret corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: key.Status.SecretName}, &secret); err != nil {
		t.Fatal(err)
	}
	if token == "" || token != string(secret.Data[v1.SecretKeyToken]) {
		t.Fatalf("the page shows a key that is not the one in Secret %s", key.Status.SecretName)
	}
	p.click("button[data-copy='new-key']")
	if p.clipboard() != token {
		t.Error("Copy did not put the new key on the clipboard")
	}
	if key.Spec.Description != "prod exporter" || key.Spec.TTL == nil || key.Spec.TTL.Duration.String() != "720h0m0s" ||
		!slices.Equal(key.Spec.Scopes, []string{"reports:read", "dashboards:read"}) {
		t.Errorf("the APIKey was created with %+v, want the description, the permissions ticked and the 30-day TTL chosen", key.Spec)
	}

	// Once: the keys page shows it masked only.
	p.submit("a[href='/applications/acme-bi-export/keys']")
	html := p.html()
	if strings.Contains(html, token) {
		t.Fatal("the keys page shows the key in full after it was shown once")
	}
	if !strings.Contains(html, key.Status.Masked) || !strings.Contains(p.text("tbody"), "Active") {
		t.Errorf("the keys page does not list key %s as Active: %s", key.Status.Masked, p.text("main"))
	}
	p.shot("keys")
}

// TestAnotherOrgsAdminConnectsTheApplicationAsObserverRaisesItToAnalystAndDisconnects: the
// org that grants access connects another org's application by its ID with a role from the
// select (Observer, recommended, first), edits the role (the webhook's warning shown as it is)
// and disconnects it, which leaves the application untouched.
func TestAnotherOrgsAdminConnectsTheApplicationAsObserverRaisesItToAnalystAndDisconnects(t *testing.T) {
	ctx := context.Background()
	owner, grant := env.Namespace(t, "acme"), env.Namespace(t, "globex")
	app := application(t, owner, "bi", "Acme BI export")
	admin := newPerson(t, grant, "gina", orgAdmin...)
	p := newPage(t, 1280, 800)
	p.signIn(admin)

	p.submit("a[href='/connections/new']")
	if got, want := p.options("#role"), []string{"Observer", "Analyst", "Technician", "OrgAdmin"}; !slices.Equal(got, want) {
		t.Errorf("an org admin is offered roles %v, want %v", got, want)
	}
	if got := p.value("#role"); got != "Observer" {
		t.Errorf("the role select starts at %q, want Observer", got)
	}
	p.fill("#applicationID", app.Status.ApplicationID)
	p.shot("connect")
	p.submit("form[action='/connections/new'] button[type=submit]")
	name := ops.ConnectionName(app.Status.ApplicationID)
	within(t, "the connected application's row with its description and owner", func() error {
		p.open("/applications")
		row := p.text("main table tbody")
		for _, want := range []string{app.Status.ApplicationID, "Acme BI export", owner, "Observer"} {
			if !strings.Contains(row, want) {
				return fmt.Errorf("row %q lacks %q", row, want)
			}
		}
		return nil
	})
	p.shot("applications-connected")

	// The same page on a phone.
	phone := newPage(t, 390, 844)
	phone.signIn(admin)
	phone.shot("applications-phone")
	if wide, err := chromedp.Run(phone.ctx, chromedp.Evaluate[bool]("document.documentElement.scrollWidth > window.innerWidth")); err != nil || wide {
		t.Errorf("the Applications page is wider than a phone's screen (%v)", err)
	}

	p.submit("a[href='/connections/" + name + "/role']")
	p.choose("#role", "Analyst")
	p.shot("role")
	p.submit("form[action='/connections/" + name + "/role'] button[type=submit]")
	if warning := p.text("main"); !strings.Contains(warning, "role Analyst grants more than Observer") {
		t.Errorf("raising the role showed no admission warning: %s", warning)
	}
	conn := &v1.OrgConnection{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: grant, Name: name}, conn); err != nil || conn.Spec.Role != v1.RoleAnalyst {
		t.Fatalf("after editing the role the connection has role %q (%v), want Analyst", conn.Spec.Role, err)
	}
	if !strings.Contains(p.text("main table tbody"), "Analyst") {
		t.Errorf("the table does not show the new role: %s", p.text("main table tbody"))
	}

	p.submit("a[href='/connections/" + name + "/disconnect']")
	p.shot("disconnect")
	p.submit("form[action='/connections/" + name + "/disconnect'] button[type=submit]")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn); !apierrors.IsNotFound(err) {
		t.Errorf("after disconnecting, the OrgConnection: %v, want not found", err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
		t.Errorf("disconnecting touched the application: %v", err)
	}
	if p.count("main table") != 0 {
		t.Errorf("the connected table still has rows: %s", p.text("main"))
	}

}

// TestAnObserverSeesKeysMaskedWithNoGenerateButtonAndNoSecret: an observer lists keys, masked,
// with their state and usage, is offered nothing to change, and a generate request sent anyway
// (with the session's own CSRF token) is refused by the apiserver in its own words.
func TestAnObserverSeesKeysMaskedWithNoGenerateButtonAndNoSecret(t *testing.T) {
	org := env.Namespace(t, "acme")
	application(t, org, "bi", "Acme BI export")
	key, token := activeKey(t, org, "bi-prod", "bi")
	obs := newPerson(t, org, "olga", observer...)
	p := newPage(t, 1280, 800)
	p.signIn(obs)
	if n := p.count("a[href='/applications/new'], a[href='/connections/new']"); n != 0 {
		t.Errorf("an observer is offered %d create or connect buttons", n)
	}
	p.submit("a[href='/applications/bi/keys']")
	p.shot("keys-observer")
	html := p.html()
	if strings.Contains(html, token) {
		t.Fatal("an observer's keys page holds the key in full")
	}
	if !strings.Contains(p.text("tbody"), key.Status.Masked) {
		t.Errorf("an observer does not see key %s masked: %s", key.Status.Masked, p.text("main"))
	}
	if n := p.count("form[action='/applications/bi/keys'], td.actions"); n != 0 {
		t.Errorf("an observer is offered %d generate or key actions", n)
	}

	status, body := p.post("/applications/bi/keys", url.Values{"description": {"sneaky"}, "scope": {"reports:read"}})
	if status != http.StatusForbidden || !strings.Contains(body, `cannot create resource &#34;apikeys&#34;`) {
		t.Errorf("an observer's generate request: status %d, want 403 with the apiserver's denial; page: %s", status, body)
	}
	if strings.Contains(body, token) {
		t.Fatal("the refusal holds the key")
	}
}

// TestATechnicianMayLowerOrRaiseARoleUpToTechnicianButNeverPickOrgAdmin: the edit-role select
// offers only the roles the technician may bind, and a request for OrgAdmin sent anyway is
// refused by the webhook in its own words.
func TestATechnicianMayLowerOrRaiseARoleUpToTechnicianButNeverPickOrgAdmin(t *testing.T) {
	ctx := context.Background()
	owner, grant := env.Namespace(t, "acme"), env.Namespace(t, "globex")
	app := application(t, owner, "bi", "Acme BI export")
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: grant, Name: "bi"}, Spec: v1.OrgConnectionSpec{ApplicationID: app.Status.ApplicationID}}
	if err := env.Client.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	tech := newPerson(t, grant, "theo", technician...)
	p := newPage(t, 1280, 800)
	p.signIn(tech)
	if p.count("a[href='/connections/new']") != 0 || p.count("a[href='/connections/bi/disconnect']") != 0 {
		t.Error("a technician is offered to connect or disconnect, which only org admins may")
	}
	p.submit("a[href='/connections/bi/role']")
	if got, want := p.options("#role"), []string{"Observer", "Analyst", "Technician"}; !slices.Equal(got, want) {
		t.Errorf("a technician is offered roles %v, want %v", got, want)
	}
	p.shot("role-technician")

	status, body := p.post("/connections/bi/role", url.Values{"role": {"OrgAdmin"}})
	if status != http.StatusForbidden || !strings.Contains(body, "may not assign role OrgAdmin") {
		t.Errorf("a technician asking for OrgAdmin: status %d, want 403 with the webhook's words; page: %s", status, body)
	}
	p.choose("#role", "Technician")
	p.submit("form[action='/connections/bi/role'] button[type=submit]")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn); err != nil || conn.Spec.Role != v1.RoleTechnician {
		t.Errorf("a technician raising the role to Technician: role %q (%v)", conn.Spec.Role, err)
	}
}

// TestAFormPostedFromAnotherPageIsRefused: a page elsewhere that makes the signed-in browser
// post the console's disconnect form (a forged request carrying the session cookie) is refused
// with 403, and so is a request without the form's CSRF token; nothing changes.
func TestAFormPostedFromAnotherPageIsRefused(t *testing.T) {
	ctx := context.Background()
	owner, grant := env.Namespace(t, "acme"), env.Namespace(t, "globex")
	app := application(t, owner, "bi", "Acme BI export")
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: grant, Name: "bi"}, Spec: v1.OrgConnectionSpec{ApplicationID: app.Status.ApplicationID}}
	if err := env.Client.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	admin := newPerson(t, grant, "gina", orgAdmin...)
	p := newPage(t, 1280, 800)
	p.signIn(admin)

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form method="post" action="%s/connections/bi/disconnect"><input type="hidden" name="csrf" value="guessed"><button id="prize">Claim your prize</button></form>`, consoleURL)
	}))
	t.Cleanup(evil.Close)
	if _, err := chromedp.Run(p.ctx, chromedp.NavigateResponse(evil.URL)); err != nil {
		t.Fatal(err)
	}
	if status := p.submit("#prize"); status != http.StatusForbidden {
		t.Errorf("a form posted from another page: status %d, want 403", status)
	}
	p.shot("forged")
	if !strings.Contains(p.text("main"), "CSRF") {
		t.Errorf("the refusal does not say why: %s", p.text("main"))
	}

	status, _ := p.postWithout("/connections/bi/disconnect", url.Values{})
	if status != http.StatusForbidden {
		t.Errorf("a post with the session cookie and no CSRF token: status %d, want 403", status)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn); err != nil {
		t.Errorf("a forged request disconnected the application: %v", err)
	}
}

// TestKeyActionsAskForConfirmationThenRotateDisableEnableAndRevoke: each change to a key goes
// through a confirmation page; rotate now gives the key a new value, disable and enable flip
// its state, revoke deletes it.
func TestKeyActionsAskForConfirmationThenRotateDisableEnableAndRevoke(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "acme")
	application(t, org, "bi", "Acme BI export")
	key, _ := activeKey(t, org, "bi-prod", "bi")
	first := key.Status.Masked
	admin := newPerson(t, org, "alice", orgAdmin...)
	p := newPage(t, 1280, 800)
	p.signIn(admin)
	keys := "/applications/bi/keys"
	act := func(action string) {
		t.Helper()
		p.open(keys)
		p.submit("a[href='" + keys + "/bi-prod/" + action + "']")
		if !strings.HasSuffix(p.text("h1"), "?") {
			t.Fatalf("%s went straight through without asking: %s", action, p.text("main"))
		}
		if action == "rotate-now" {
			p.shot("key-confirm")
		}
		p.submit("form[action='" + keys + "/bi-prod/" + action + "'] button[type=submit]")
	}
	state := func(want v1.KeyState, cond func(*v1.APIKey) bool) {
		t.Helper()
		within(t, "the key to be "+string(want)+" on the page", func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), key); err != nil {
				return err
			}
			p.open(keys)
			if row := p.text("tbody"); key.Status.State != want || !strings.Contains(row, string(want)) || !cond(key) {
				return fmt.Errorf("state %q, row %q", key.Status.State, row)
			}
			return nil
		})
	}

	act("rotate-now")
	state(v1.KeyActive, func(k *v1.APIKey) bool {
		return k.Status.Masked != first && strings.Contains(p.text("tbody"), k.Status.Masked)
	})
	act("disable")
	state(v1.KeyDisabled, func(*v1.APIKey) bool { return p.count("a[href='"+keys+"/bi-prod/enable']") == 1 })
	act("enable")
	state(v1.KeyActive, func(*v1.APIKey) bool { return true })
	act("revoke")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), key); !apierrors.IsNotFound(err) {
		t.Errorf("after revoking, the APIKey: %v, want not found", err)
	}
	if !strings.Contains(p.text("main"), "Revoked") || p.count("tbody tr") != 0 {
		t.Errorf("after revoking, the keys page: %s", p.text("main"))
	}
}

// TestMetricsCatalogSearchShowDisabledAndTheCap: the Metrics page shows the enabled count
// against the cap, hides disabled metrics until asked, searches the catalog, enables a metric
// and offers no more once the cap is reached.
func TestMetricsCatalogSearchShowDisabledAndTheCap(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "acme")
	catalog := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "clearance-metric-catalog",
		Labels: map[string]string{v1.LabelConfigMap: v1.ConfigMapCatalog}}, Data: map[string]string{}}
	for _, family := range []string{"occupancy", "dwell", "footfall"} {
		for i, stat := range []string{"current", "peak", "avg", "p95", "daily", "weekly"} {
			catalog.Data[family+"."+stat] = fmt.Sprint(1 + i%3)
		}
	}
	if err := env.Client.Create(ctx, catalog); err != nil {
		t.Fatal(err)
	}
	on, off := true, false
	set := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "default"}, Spec: v1.MetricSetSpec{
		MaxEnabled: ptrTo[int32](3), CatalogRef: &v1.CatalogReference{Name: catalog.Name},
		Metrics: []v1.Metric{{Name: "occupancy.current", Enabled: &on}, {Name: "dwell.p95", Enabled: &on}, {Name: "footfall.daily", Enabled: &off}},
	}}
	if err := env.Client.Create(ctx, set); err != nil {
		t.Fatal(err)
	}
	admin := newPerson(t, org, "alice", orgAdmin...)
	p := newPage(t, 1280, 800)
	p.signIn(admin)
	p.submit("a[href='/metrics']")
	if got := p.text(".counter p"); !strings.HasPrefix(got, "2 of 3 enabled") || !strings.Contains(got, "18 in the catalog") {
		t.Errorf("the counter says %q, want 2 of 3 enabled of 18", got)
	}
	if got := p.count("tbody tr"); got != 2 {
		t.Errorf("with disabled metrics hidden, %d rows, want the 2 enabled", got)
	}

	p.fill("#q", "occupancy")
	if err := chromedp.Do(p.ctx, chromedp.Click(chromedp.CSS("#disabled"))); err != nil {
		t.Fatal(err)
	}
	p.submit("form[role=search] button[type=submit]")
	if got := p.count("tbody tr"); got != 6 {
		t.Errorf("searching occupancy with disabled shown: %d rows, want 6", got)
	}
	p.shot("metrics")
	p.submit("button[aria-label='Enable occupancy.peak']")
	if got := p.text(".counter p"); !strings.HasPrefix(got, "3 of 3 enabled") {
		t.Errorf("after enabling one more the counter says %q", got)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(set), set); err != nil || ops.EnabledCount(&set.Spec) != 3 {
		t.Errorf("the MetricSet after enabling: %v, %d enabled", err, ops.EnabledCount(&set.Spec))
	}
	if got, want := p.value("#q"), "occupancy"; got != want {
		t.Errorf("after a switch the search is %q, want it kept (%q)", got, want)
	}
	if n := p.count("button[aria-label^='Enable '][disabled]"); n != 4 {
		t.Errorf("at the cap, %d Enable buttons are disabled, want all 4 left", n)
	}
	p.shot("metrics-cap")
	p.submit("button[aria-label='Disable occupancy.current']")
	if got := p.text(".counter p"); !strings.HasPrefix(got, "2 of 3 enabled") {
		t.Errorf("after disabling one the counter says %q", got)
	}
}

func ptrTo[T any](v T) *T { return &v }
