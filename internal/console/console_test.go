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
	"time"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

var appIDPattern = regexp.MustCompile(v1.ApplicationIDPattern)

// TestAnOrgAdminWalksTheUsersPage is seed 000's org admin on Users → People | Applications: the
// People tab lists who holds which role; Create application (a dialog) with a required
// description (a blank one gets the CEL rule's own words) makes the application and its first
// key with the permissions ticked (none ticked is refused before anything is created), shown
// once as its Secret holds it; the ⋮ menu renames it and opens its API keys, where
// the copy icon copies the key from its Secret (never put in the page), the Enabled checkbox
// disables and enables it, Generate new key adds one and Invalidate all keys, after asking,
// replaces every key.
func TestAnOrgAdminWalksTheUsersPage(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "acme")
	admin := newPerson(t, org, "alice", orgAdmin...)
	newPerson(t, org, "olga", observer...)
	p := newPage(t, 1280, 800)
	p.signIn(admin)
	if got := p.Text("h1"); got != "Users" || p.Text(".tabs a[aria-current=page]") != "Applications" {
		t.Fatalf("after sign-in the page is %q on tab %q, want Users on Applications", got, p.Text(".tabs a[aria-current=page]"))
	}
	p.Shots("users-applications-empty")

	// People: who holds which Clearance role, read from the org's RoleBindings.
	p.Submit(".tabs a[href='/users?tab=people']")
	people := p.Text("main table tbody")
	for _, want := range []string{org + "/alice", "Org Admin", org + "/olga", "Observer", "alice-clearance-org-admin"} {
		if !strings.Contains(people, want) {
			t.Errorf("the People tab lacks %q: %s", want, people)
		}
	}
	if strings.Contains(people, "console-test") {
		t.Errorf("the People tab lists bindings to ClusterRoles that are not Clearance's: %s", people)
	}
	p.Shots("users-people")
	p.Submit(".tabs a[href='/users?tab=applications']")

	// Create application: a dialog; its first key is on by default.
	if got := p.dialog("a[href='/applications/new']"); got != "Create application" {
		t.Fatalf("the create dialog says %q", got)
	}
	if checked, err := chromedp.Run(p.Ctx, chromedp.Evaluate[bool]("document.querySelector('#dialog #firstKey').checked")); err != nil || !checked {
		t.Errorf("Create its first API key is not ticked by default (%v)", err)
	}
	p.Fill("#dialog #description", "Acme BI export")
	p.Click("#dialog #first-key-permissions input[value='reports:read']")
	p.Shots("dialog-create")
	p.Fill("#dialog #description", "   ")
	p.Fill("#dialog #name", "blank")
	if status := p.Submit("#dialog form[action='/applications/new'] button[type=submit]"); status != http.StatusUnprocessableEntity {
		t.Errorf("a blank description: status %d, want 422", status)
	}
	if msg := p.Text("#error"); !strings.Contains(msg, "description must not be blank") {
		t.Errorf("a blank description: the page says %q, want the CEL rule's message", msg)
	}
	// The first key, like any generated here, needs a permission ticked: refused before the
	// application is created.
	p.Fill("#description", "Acme BI export")
	p.Fill("#name", "")
	p.Click("#first-key-permissions input[value='reports:read']")
	if status := p.Submit("form[action='/applications/new'] button[type=submit]"); status != http.StatusBadRequest ||
		!strings.Contains(p.Text("#error"), "Tick at least one permission") {
		t.Errorf("a first key with no permission ticked: status %d: %s", status, p.Text("main"))
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: "acme-bi-export"}, &v1.Application{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused first key left an application behind: %v", err)
	}
	p.Click("#first-key-permissions input[value='reports:read']")
	if status := p.Submit("form[action='/applications/new'] button[type=submit]"); status != http.StatusCreated {
		t.Fatalf("creating with a first key: status %d: %s", status, p.Text("main"))
	}
	token := p.Value("#new-key")
	first := onlyKey(t, org, "acme-bi-export")
	if token == "" || token != secretToken(t, first) {
		t.Fatalf("the page shows a key that is not the one in Secret %s", first.Status.SecretName)
	}
	if first.Spec.TTL == nil || first.Spec.TTL.Duration != 2160*time.Hour || !slices.Equal(first.Spec.Scopes, []string{"reports:read"}) {
		t.Errorf("the first key lives %v with %v, want the 90 days Generate new key offers first and the permission ticked", first.Spec.TTL, first.Spec.Scopes)
	}
	if strings.Contains(p.Text("main"), "Warning") {
		t.Errorf("creating an application with its first key warns: %s", p.Text("main"))
	}
	p.Shots("key-new")

	// The table: ID (copied with its icon), description, keys, creator.
	app := &v1.Application{}
	within(t, "the row to show the Application ID", func() error {
		p.Open("/users?tab=applications")
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: "acme-bi-export"}, app); err != nil {
			return err
		}
		if app.Status.ApplicationID == "" || p.Count("#id-acme-bi-export") == 0 || p.Text("#app-acme-bi-export td.keys") != "1" {
			return fmt.Errorf("no ID or key count in the row yet")
		}
		return nil
	})
	row := p.Text("#app-acme-bi-export")
	if id := p.Text("#id-acme-bi-export"); id != app.Status.ApplicationID || !appIDPattern.MatchString(id) || !strings.Contains(row, "Acme BI export") ||
		!strings.Contains(row, "system:serviceaccount:"+org+":alice") {
		t.Errorf("the row shows %q, the Application has ID %q", row, app.Status.ApplicationID)
	}
	p.GrantClipboard()
	p.Click("button[data-copy='id-acme-bi-export']")
	if got := p.Clipboard(); got != app.Status.ApplicationID {
		t.Errorf("the ID's copy icon put %q on the clipboard, want %s", got, app.Status.ApplicationID)
	}
	p.menu("#app-acme-bi-export")
	p.Shots("users-applications")

	// ⋮ Rename application.
	p.dialog("#app-acme-bi-export a[href='/applications/acme-bi-export/rename']")
	p.Fill("#dialog #rename-description", "Acme BI exports")
	p.Shots("dialog-rename")
	p.Submit("#dialog form[action='/applications/acme-bi-export/rename'] button[type=submit]")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil || app.Spec.Description != "Acme BI exports" {
		t.Errorf("after renaming, the description is %q (%v)", app.Spec.Description, err)
	}
	if !strings.Contains(p.Text("#app-acme-bi-export"), "Acme BI exports") {
		t.Errorf("the table does not show the new description: %s", p.Text("#app-acme-bi-export"))
	}

	// ⋮ View API keys: masked, with a copy icon that fetches the key on click.
	p.menu("#app-acme-bi-export")
	if got := p.dialog("#app-acme-bi-export a[href='/applications/acme-bi-export/keys']"); got != "API keys of Acme BI exports" {
		t.Errorf("the keys dialog says %q", got)
	}
	if html := p.HTML(); strings.Contains(html, token) || !strings.Contains(p.Text("#dialog"), first.Status.Masked) {
		t.Fatalf("the keys dialog holds the key in full, or not masked: %s", p.Text("#dialog"))
	}
	p.Click("#dialog #key-" + first.Name + " form[data-copy-key] button")
	within(t, "Copied to clipboard", func() error {
		if got := p.Text("#dialog #key-" + first.Name + " .copied"); got != "Copied to clipboard" {
			return fmt.Errorf("the copy icon says %q", got)
		}
		return nil
	})
	if p.Clipboard() != token {
		t.Error("the copy icon did not put the key on the clipboard")
	}
	if strings.Contains(p.HTML(), token) {
		t.Fatal("copying left the key in the page")
	}
	p.Shots("dialog-keys")

	// The Enabled checkbox: off, then on again; the dialog opens again after each.
	p.Submit("#dialog #enabled-" + first.Name)
	p.dialogOpen()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(first), first); err != nil || first.IsEnabled() {
		t.Errorf("after unticking Enabled the key is enabled %v (%v)", first.IsEnabled(), err)
	}
	if !strings.Contains(p.Text("#dialog"), "Disabled key "+first.Status.Masked) {
		t.Errorf("the dialog does not say the key was disabled: %s", p.Text("#dialog"))
	}
	p.Submit("#dialog #enabled-" + first.Name)
	p.dialogOpen()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(first), first); err != nil || !first.IsEnabled() {
		t.Errorf("after ticking Enabled the key is disabled (%v)", err)
	}

	// Generate new key: shown once; with the permissions ticked.
	p.Fill("#dialog #key-description", "prod exporter")
	p.Click("#dialog #key-permissions input[value='reports:read']")
	p.Click("#dialog #key-permissions input[value='dashboards:read']")
	p.Choose("#dialog #ttl", "720h")
	if status := p.Submit("#dialog form[action='/applications/acme-bi-export/keys'] button[type=submit]"); status != http.StatusCreated {
		t.Fatalf("generating a key: status %d: %s", status, p.Text("main"))
	}
	second := &v1.APIKey{}
	var keys v1.APIKeyList
	if err := env.Client.List(ctx, &keys, client.InNamespace(org)); err != nil || len(keys.Items) != 2 {
		t.Fatalf("want two APIKeys after generating, got %d (%v)", len(keys.Items), err)
	}
	for i := range keys.Items {
		if keys.Items[i].Name != first.Name {
			second = &keys.Items[i]
		}
	}
	if got := p.Value("#new-key"); got == "" || got != secretToken(t, second) {
		t.Fatal("the new key shown is not the one in its Secret")
	}
	if second.Spec.Description != "prod exporter" || second.Spec.TTL == nil || second.Spec.TTL.Duration.String() != "720h0m0s" ||
		!slices.Equal(second.Spec.Scopes, []string{"reports:read", "dashboards:read"}) {
		t.Errorf("the APIKey was created with %+v, want the description, the permissions ticked and the 30-day TTL chosen", second.Spec)
	}

	// Invalidate all keys: asks first, then every key gets a new value.
	p.Open("/users?tab=applications")
	p.menu("#app-acme-bi-export")
	p.dialog("#app-acme-bi-export a[href='/applications/acme-bi-export/keys']")
	if got := p.dialog("#dialog a[href='/applications/acme-bi-export/invalidate']"); got != "Invalidate all keys?" {
		t.Fatalf("Invalidate all keys went straight through: %q", got)
	}
	p.Shots("dialog-invalidate")
	before := map[string]string{first.Name: first.Status.Masked, second.Name: second.Status.Masked}
	p.Submit("#dialog form[action='/applications/acme-bi-export/invalidate'] button[type=submit]")
	within(t, "every key to be replaced", func() error {
		for name, masked := range before {
			var k v1.APIKey
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: name}, &k); err != nil {
				return err
			}
			if k.Status.Masked == masked || k.Status.State != v1.KeyActive {
				return fmt.Errorf("key %s is still %s (%s)", name, k.Status.Masked, k.Status.State)
			}
		}
		return nil
	})
}

// onlyKey waits for the one APIKey of app in org to be Active and returns it.
func onlyKey(t *testing.T, org, app string) *v1.APIKey {
	t.Helper()
	var key *v1.APIKey
	within(t, "the application's one key to be Active", func() error {
		keys, err := ops.KeysOf(context.Background(), env.Client, org, app)
		if err != nil || len(keys) != 1 || keys[0].Status.State != v1.KeyActive {
			return fmt.Errorf("keys %d (%v)", len(keys), err)
		}
		key = &keys[0]
		return nil
	})
	return key
}

// secretToken is the key in key's Secret.
func secretToken(t *testing.T, key *v1.APIKey) string {
	t.Helper()
	var secret corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: key.Namespace, Name: key.Status.SecretName}, &secret); err != nil {
		t.Fatal(err)
	}
	return string(secret.Data[v1.SecretKeyToken])
}

// TestAnotherOrgsAdminConnectsTheApplicationAsObserverRaisesItToAnalystAndDisconnects: the
// org that grants access connects another org's application by its ID in the Connect dialog,
// with a role from the select (Observer, recommended, first) and a link to the roles and
// permissions page; the ⋮ menu edits the role (the admission warning shown as it is) and
// disconnects it, which leaves the application untouched.
func TestAnotherOrgsAdminConnectsTheApplicationAsObserverRaisesItToAnalystAndDisconnects(t *testing.T) {
	ctx := context.Background()
	owner, grant := env.Namespace(t, "acme"), env.Namespace(t, "globex")
	app := application(t, owner, "bi", "Acme BI export")
	admin := newPerson(t, grant, "gina", orgAdmin...)
	p := newPage(t, 1280, 800)
	p.signIn(admin)

	p.dialog("a[href='/connections/new']")
	if got, want := p.Options("#dialog #role"), []string{"Observer", "Analyst", "Technician", "OrgAdmin"}; !slices.Equal(got, want) {
		t.Errorf("an org admin is offered roles %v, want %v", got, want)
	}
	if got := p.Value("#dialog #role"); got != "Observer" {
		t.Errorf("the role select starts at %q, want Observer", got)
	}
	if p.Count("#dialog a[href='/roles']") != 1 {
		t.Error("the Connect dialog has no link to the roles and permissions page")
	}
	p.Fill("#dialog #applicationID", app.Status.ApplicationID)
	p.Shots("dialog-connect")
	p.Submit("#dialog form[action='/connections/new'] button[type=submit]")
	name := ops.ConnectionName(app.Status.ApplicationID)
	within(t, "the connected application's row with its description and owner", func() error {
		p.Open("/users?tab=applications")
		row := p.Text("#connected-table tbody")
		for _, want := range []string{app.Status.ApplicationID, "Acme BI export", owner, "Observer"} {
			if !strings.Contains(row, want) {
				return fmt.Errorf("row %q lacks %q", row, want)
			}
		}
		return nil
	})
	p.Shots("users-applications-connected")
	if wide, err := chromedp.Run(p.Ctx, chromedp.Evaluate[bool]("document.documentElement.scrollWidth > window.innerWidth")); err != nil || wide {
		t.Errorf("the Users page is wider than the screen (%v)", err)
	}

	p.menu("#conn-" + name)
	p.dialog("#conn-" + name + " a[href='/connections/" + name + "/role']")
	if got := p.Count("#dialog input[name=transport]:checked"); got != len(v1.Transports) {
		t.Errorf("a new connection's Edit role dialog ticks %d transports, want all %d", got, len(v1.Transports))
	}
	p.Choose("#dialog #role", "Analyst")
	p.Click("#dialog input[name=transport][value=WebSockets]") // refuse WebSockets
	p.Shots("dialog-role")
	p.Submit("#dialog form[action='/connections/" + name + "/role'] button[type=submit]")
	if warning := p.Text("main"); !strings.Contains(warning, "role Analyst grants more than Observer") ||
		!strings.Contains(warning, "Refused transports: WebSockets.") {
		t.Errorf("raising the role showed no admission warning, or not the refused transport: %s", warning)
	}
	conn := &v1.OrgConnection{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: grant, Name: name}, conn); err != nil || conn.Spec.Role != v1.RoleAnalyst {
		t.Fatalf("after editing the role the connection has role %q (%v), want Analyst", conn.Spec.Role, err)
	}
	for _, tr := range v1.Transports {
		if want := tr != v1.TransportWebSockets; conn.Spec.TransportAllowed(tr) != want {
			t.Errorf("after unticking WebSockets, %s allowed = %v, want %v (%+v)", tr, !want, want, conn.Spec.Transports)
		}
	}
	// Ticking it again allows it again: the org admin may assign the connection's role.
	p.menu("#conn-" + name)
	p.dialog("#conn-" + name + " a[href='/connections/" + name + "/role']")
	if p.Count("#dialog input[name=transport][value=WebSockets]:checked") != 0 {
		t.Error("the Edit role dialog ticks WebSockets, which the connection refuses")
	}
	p.Click("#dialog input[name=transport][value=WebSockets]")
	p.Submit("#dialog form[action='/connections/" + name + "/role'] button[type=submit]")
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: grant, Name: name}, conn); err != nil || !conn.Spec.TransportAllowed(v1.TransportWebSockets) {
		t.Fatalf("after ticking WebSockets again the connection refuses it (%v): %+v", err, conn.Spec.Transports)
	}
	if !strings.Contains(p.Text("#connected-table tbody"), "Analyst") {
		t.Errorf("the table does not show the new role: %s", p.Text("#connected-table tbody"))
	}

	p.menu("#conn-" + name)
	p.dialog("#conn-" + name + " a[href='/connections/" + name + "/disconnect']")
	p.Shots("dialog-disconnect")
	p.Submit("#dialog form[action='/connections/" + name + "/disconnect'] button[type=submit]")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn); !apierrors.IsNotFound(err) {
		t.Errorf("after disconnecting, the OrgConnection: %v, want not found", err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
		t.Errorf("disconnecting touched the application: %v", err)
	}
	if p.Count("#connected-table") != 0 {
		t.Errorf("the connected table still has rows: %s", p.Text("main"))
	}

	// The roles and permissions page says what each role allows, in the API's own texts.
	p.Open("/roles")
	roles := p.Text("main")
	for _, r := range v1.Roles {
		for _, want := range append([]string{r.Title(), r.Summary(), r.ClusterRole()}, append(r.ApplicationMay(), r.PeopleMay()...)...) {
			if !strings.Contains(roles, want) {
				t.Errorf("the roles page lacks %q", want)
			}
		}
	}
	p.Shots("roles")
}

// TestAnObserverSeesOnlyWhatTheyMay: an observer sees the Applications tab without People,
// without Create, Connect, Rename or Invalidate; in the keys dialog keys are masked, with no
// copy icon, no Enabled toggle (a ticked box they cannot change) and no Generate; requests
// sent anyway (with the session's own CSRF token) are refused by the console or the
// apiserver in its own words. Granted get on one key's Secret by name, they get that key's
// copy icon.
func TestAnObserverSeesOnlyWhatTheyMay(t *testing.T) {
	org := env.Namespace(t, "acme")
	application(t, org, "bi", "Acme BI export")
	key, token := activeKey(t, org, "bi-prod", "bi")
	obs := newPerson(t, org, "olga", observer...)
	p := newPage(t, 1280, 800)
	p.signIn(obs)
	if n := p.Count(".tabs a[href='/users?tab=people'], a[href='/applications/new'], a[href='/connections/new'], a[href$='/rename'], a[href$='/invalidate']"); n != 0 {
		t.Errorf("an observer is offered %d of People, create, connect, rename or invalidate", n)
	}
	p.Open("/users?tab=people")
	if got := p.Text("#people-note"); !strings.Contains(got, "You may not list the RoleBindings") {
		t.Errorf("an observer opening People reads %q, want the one-line explanation", got)
	}
	p.Open("/users?tab=applications")
	p.menu("#app-bi")
	p.dialog("#app-bi a[href='/applications/bi/keys']")
	p.Shots("dialog-keys-observer")
	if strings.Contains(p.HTML(), token) {
		t.Fatal("an observer's keys dialog holds the key in full")
	}
	if !strings.Contains(p.Text("#dialog tbody"), key.Status.Masked) {
		t.Errorf("an observer does not see key %s masked: %s", key.Status.Masked, p.Text("#dialog"))
	}
	if n := p.Count("#dialog form[data-copy-key], #dialog form.enabled-form, #dialog form[action='/applications/bi/keys'], #dialog td.actions, #dialog input[type=checkbox]:not([disabled])"); n != 0 {
		t.Errorf("an observer is offered %d copy, enabled, generate or key actions", n)
	}

	status, body := p.post("/applications/bi/keys/bi-prod/copy", url.Values{})
	if strings.Contains(body, token) {
		t.Fatal("an observer's copy request was answered with the key")
	}
	if status != http.StatusForbidden || !strings.Contains(body, "You may not read Secret "+key.Status.SecretName) {
		t.Errorf("an observer's copy request: status %d, want 403 saying why; page: %s", status, body)
	}
	status, body = p.post("/applications/bi/keys/bi-prod/enabled", url.Values{})
	if status != http.StatusForbidden || !strings.Contains(body, `cannot patch resource &#34;apikeys&#34;`) {
		t.Errorf("an observer's Enabled request: status %d, want 403 with the apiserver's denial; page: %s", status, body)
	}
	status, body = p.post("/applications/bi/keys", url.Values{"description": {"sneaky"}, "scope": {"reports:read"}})
	if status != http.StatusForbidden || !strings.Contains(body, `cannot create resource &#34;apikeys&#34;`) {
		t.Errorf("an observer's generate request: status %d, want 403 with the apiserver's denial; page: %s", status, body)
	}
	if strings.Contains(body, token) {
		t.Fatal("the refusal holds the key")
	}
	if status, _ = p.post("/applications/bi/rename", url.Values{"description": {"Mine"}}); status != http.StatusForbidden {
		t.Errorf("an observer's rename request: status %d, want 403", status)
	}

	// Granted get on that one Secret, the same observer gets its copy icon, and it copies.
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "olga-reads-bi-prod"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{key.Status.SecretName}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "olga-reads-bi-prod"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: org, Name: "olga"}}}
	if err := env.Client.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	within(t, "the copy icon for the Secret olga may get", func() error {
		p.Open("/users?tab=applications")
		p.menu("#app-bi")
		p.dialog("#app-bi a[href='/applications/bi/keys']")
		if p.Count("#dialog #key-bi-prod form[data-copy-key]") != 1 {
			return fmt.Errorf("no copy icon yet")
		}
		return nil
	})
	p.GrantClipboard()
	p.Click("#dialog #key-bi-prod form[data-copy-key] button")
	within(t, "Copied to clipboard", func() error {
		if got := p.Text("#dialog #key-bi-prod .copied"); got != "Copied to clipboard" {
			return fmt.Errorf("the copy icon says %q", got)
		}
		return nil
	})
	if p.Clipboard() != token || strings.Contains(p.HTML(), token) {
		t.Error("the copy icon did not put the key on the clipboard, or left it in the page")
	}
}

// TestATechnicianEditsRolesUpToTechnicianAndNothingElse: a technician (clearance-technician:
// patch on connections, bind up to Technician) is offered Edit role and no other action: no
// People, Create, Rename, Invalidate, Connect or Disconnect; in the keys dialog no copy icon
// and no Enabled toggle. The role select offers only the roles they may bind, and a request
// for OrgAdmin sent anyway is refused by the admission policy in its own words.
func TestATechnicianEditsRolesUpToTechnicianAndNothingElse(t *testing.T) {
	ctx := context.Background()
	owner, grant := env.Namespace(t, "acme"), env.Namespace(t, "globex")
	app := application(t, owner, "bi", "Acme BI export")
	application(t, grant, "sensors", "Globex sensors")
	activeKey(t, grant, "sensors-prod", "sensors")
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: grant, Name: "bi"}, Spec: v1.OrgConnectionSpec{ApplicationID: app.Status.ApplicationID}}
	if err := env.Client.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	tech := newPerson(t, grant, "theo", technician...)
	p := newPage(t, 1280, 800)
	p.signIn(tech)
	if n := p.Count(".tabs a[href='/users?tab=people'], a[href='/applications/new'], a[href='/connections/new'], a[href$='/rename'], a[href$='/invalidate'], a[href$='/disconnect']"); n != 0 {
		t.Errorf("a technician is offered %d of People, create, connect, rename, invalidate or disconnect, which only org admins may", n)
	}
	p.menu("#app-sensors")
	p.dialog("#app-sensors a[href='/applications/sensors/keys']")
	if n := p.Count("#dialog form[data-copy-key], #dialog form.enabled-form, #dialog form[action='/applications/sensors/keys']"); n != 0 {
		t.Errorf("a technician is offered %d copy, enabled or generate forms", n)
	}
	p.Shots("dialog-keys-technician")
	p.Open("/users?tab=applications")
	p.menu("#conn-bi")
	p.dialog("#conn-bi a[href='/connections/bi/role']")
	if got, want := p.Options("#dialog #role"), []string{"Observer", "Analyst", "Technician"}; !slices.Equal(got, want) {
		t.Errorf("a technician is offered roles %v, want %v", got, want)
	}
	p.Shots("dialog-role-technician")

	status, body := p.post("/connections/bi/role", url.Values{"role": {"OrgAdmin"}})
	if status != http.StatusForbidden || !strings.Contains(body, "may not assign role OrgAdmin") {
		t.Errorf("a technician asking for OrgAdmin: status %d, want 403 with the policy's words; page: %s", status, body)
	}
	p.Choose("#dialog #role", "Technician")
	p.Submit("#dialog form[action='/connections/bi/role'] button[type=submit]")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn); err != nil || conn.Spec.Role != v1.RoleTechnician {
		t.Errorf("a technician raising the role to Technician: role %q (%v)", conn.Spec.Role, err)
	}
	if status, _ := p.post("/applications/sensors/keys/sensors-prod/copy", url.Values{}); status != http.StatusForbidden {
		t.Errorf("a technician's copy request: status %d, want 403", status)
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
	if _, err := chromedp.Run(p.Ctx, chromedp.NavigateResponse(evil.URL)); err != nil {
		t.Fatal(err)
	}
	if status := p.Submit("#prize"); status != http.StatusForbidden {
		t.Errorf("a form posted from another page: status %d, want 403", status)
	}
	p.Shot("forged")
	if !strings.Contains(p.Text("main"), "CSRF") {
		t.Errorf("the refusal does not say why: %s", p.Text("main"))
	}

	status, _ := p.postWithout("/connections/bi/disconnect", url.Values{})
	if status != http.StatusForbidden {
		t.Errorf("a post with the session cookie and no CSRF token: status %d, want 403", status)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn); err != nil {
		t.Errorf("a forged request disconnected the application: %v", err)
	}
}

// TestEveryActionWorksWithoutJavaScript: with script off, / and /applications lead to the
// Users page, and the ⋮ menus and buttons are links and forms to whole pages: create (here
// without a first key), rename, the keys page, the Enabled checkbox with its Save button,
// copy (the key on a page of its own, answering the POST), rotate now, invalidate and revoke
// (each asking first), connect, edit role and disconnect all work.
func TestEveryActionWorksWithoutJavaScript(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "acme")
	app := application(t, org, "bi", "Acme BI export")
	key, token := activeKey(t, org, "bi-prod", "bi")
	first := key.Status.Masked
	admin := newPerson(t, org, "alice", orgAdmin...)
	p := newPage(t, 1280, 800)
	p.WithoutScript()
	p.signIn(admin)

	// The old addresses lead to the Users page's Applications tab.
	for _, old := range []string{"/", "/applications"} {
		p.Open(old)
		if at, err := chromedp.Run(p.Ctx, chromedp.Location()); err != nil || at != consoleURL+"/users?tab=applications" {
			t.Errorf("%s leads to %q (%v), want /users?tab=applications", old, at, err)
		}
	}

	// Create application without its first key: no APIKey is made.
	p.Submit("a[href='/applications/new']")
	p.Fill("#description", "Acme ledger")
	p.Click("#firstKey")
	p.Submit("form[action='/applications/new'] button[type=submit]")
	if keys, err := ops.KeysOf(ctx, env.Client, org, "acme-ledger"); err != nil || len(keys) != 0 || !strings.Contains(p.Text("main"), "Created application Acme ledger") {
		t.Errorf("creating without a first key: %d keys (%v): %s", len(keys), err, p.Text("main"))
	}

	p.menu("#app-bi")
	p.Submit("#app-bi a[href='/applications/bi/rename']")
	p.Fill("#rename-description", "Acme BI exports")
	p.Submit("form[action='/applications/bi/rename'] button[type=submit]")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil || app.Spec.Description != "Acme BI exports" {
		t.Errorf("renaming without script: description %q (%v)", app.Spec.Description, err)
	}

	keys := "/applications/bi/keys"
	p.menu("#app-bi")
	p.Submit("#app-bi a[href='" + keys + "']")
	p.Shots("keys")
	if strings.Contains(p.HTML(), token) {
		t.Fatal("the keys page holds the key in full")
	}
	if status := p.Submit("#key-bi-prod form[data-copy-key] button"); status != http.StatusOK || p.Value("#new-key") != token {
		t.Errorf("copying without script: status %d, and the page does not show the Secret's key", status)
	}

	// What console.js asks for: the key as JSON, never stored, and only with the CSRF token.
	p.Open(keys)
	ask := func(form url.Values) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, consoleURL+keys+"/bi-prod/copy", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.AddCookie(&http.Cookie{Name: p.sessionCookie().Name, Value: p.sessionCookie().Value})
		return fetch(t, noRedirects(t), req)
	}
	resp, body := ask(url.Values{"csrf": {p.Value("input[name=csrf]")}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" || body != `{"key":"`+token+`"}`+"\n" {
		t.Errorf("the copy endpoint: status %d, Cache-Control %q, and not the Secret's key as JSON", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	if resp, body := ask(url.Values{}); resp.StatusCode != http.StatusForbidden || strings.Contains(body, token) {
		t.Errorf("the copy endpoint without the CSRF token: status %d, want 403", resp.StatusCode)
	}

	state := func(want v1.KeyState, cond func(*v1.APIKey) bool) {
		t.Helper()
		within(t, "the key to be "+string(want)+" on the page", func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), key); err != nil {
				return err
			}
			p.Open(keys)
			if row := p.Text("#key-bi-prod"); key.Status.State != want || !strings.Contains(row, string(want)) || !cond(key) {
				return fmt.Errorf("state %q, row %q", key.Status.State, row)
			}
			return nil
		})
	}
	p.Open(keys)
	p.Click("#enabled-bi-prod")
	p.Submit("#key-bi-prod form.enabled-form button[type=submit]")
	state(v1.KeyDisabled, func(*v1.APIKey) bool { return p.Count("#enabled-bi-prod:checked") == 0 })
	p.Click("#enabled-bi-prod")
	p.Submit("#key-bi-prod form.enabled-form button[type=submit]")
	state(v1.KeyActive, func(*v1.APIKey) bool { return p.Count("#enabled-bi-prod:checked") == 1 })

	confirm := func(link, form string) {
		t.Helper()
		p.Open(keys)
		if strings.Contains(link, "/keys/") {
			p.menu("#key-bi-prod")
		}
		p.Submit("a[href='" + link + "']")
		if !strings.HasSuffix(p.Text("h1"), "?") {
			t.Fatalf("%s went straight through without asking: %s", link, p.Text("main"))
		}
		if strings.HasSuffix(link, "rotate-now") {
			p.Shots("key-confirm")
		}
		p.Submit("form[action='" + form + "'] button[type=submit]")
	}
	confirm(keys+"/bi-prod/rotate-now", keys+"/bi-prod/rotate-now")
	state(v1.KeyActive, func(k *v1.APIKey) bool {
		return k.Status.Masked != first && strings.Contains(p.Text("#key-bi-prod"), k.Status.Masked)
	})
	second := key.Status.Masked
	confirm("/applications/bi/invalidate", "/applications/bi/invalidate")
	state(v1.KeyActive, func(k *v1.APIKey) bool { return k.Status.Masked != second })
	confirm(keys+"/bi-prod/revoke", keys+"/bi-prod/revoke")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), key); !apierrors.IsNotFound(err) {
		t.Errorf("after revoking, the APIKey: %v, want not found", err)
	}
	if !strings.Contains(p.Text("main"), "Revoked") || p.Count("tbody tr") != 0 {
		t.Errorf("after revoking, the keys page: %s", p.Text("main"))
	}

	// Connections: connect, edit the role, disconnect, each on its own page.
	p.Open("/users?tab=applications")
	p.Submit("a[href='/connections/new']")
	p.Fill("#applicationID", app.Status.ApplicationID)
	p.Choose("#role", "Analyst")
	p.Submit("form[action='/connections/new'] button[type=submit]")
	name := ops.ConnectionName(app.Status.ApplicationID)
	p.menu("#conn-" + name)
	p.Submit("#conn-" + name + " a[href='/connections/" + name + "/role']")
	p.Choose("#role", "Observer")
	p.Submit("form[action='/connections/" + name + "/role'] button[type=submit]")
	conn := &v1.OrgConnection{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: name}, conn); err != nil || conn.Spec.Role != v1.RoleObserver {
		t.Errorf("connecting as Analyst then lowering to Observer without script: role %q (%v)", conn.Spec.Role, err)
	}
	p.menu("#conn-" + name)
	p.Submit("#conn-" + name + " a[href='/connections/" + name + "/disconnect']")
	p.Submit("form[action='/connections/" + name + "/disconnect'] button[type=submit]")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn); !apierrors.IsNotFound(err) {
		t.Errorf("after disconnecting without script, the OrgConnection: %v", err)
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
	p.Submit("a[href='/metrics']")
	if got := p.Text(".counter p"); !strings.HasPrefix(got, "2 of 3 enabled") || !strings.Contains(got, "18 in the catalog") {
		t.Errorf("the counter says %q, want 2 of 3 enabled of 18", got)
	}
	if got := p.Count("tbody tr"); got != 2 {
		t.Errorf("with disabled metrics hidden, %d rows, want the 2 enabled", got)
	}

	p.Fill("#q", "occupancy")
	if err := chromedp.Do(p.Ctx, chromedp.Click(chromedp.CSS("#disabled"))); err != nil {
		t.Fatal(err)
	}
	p.Submit("form[role=search] button[type=submit]")
	if got := p.Count("tbody tr"); got != 6 {
		t.Errorf("searching occupancy with disabled shown: %d rows, want 6", got)
	}
	p.Shots("metrics")
	p.Submit("button[aria-label='Enable occupancy.peak']")
	if got := p.Text(".counter p"); !strings.HasPrefix(got, "3 of 3 enabled") {
		t.Errorf("after enabling one more the counter says %q", got)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(set), set); err != nil || ops.EnabledCount(&set.Spec) != 3 {
		t.Errorf("the MetricSet after enabling: %v, %d enabled", err, ops.EnabledCount(&set.Spec))
	}
	if got, want := p.Value("#q"), "occupancy"; got != want {
		t.Errorf("after a switch the search is %q, want it kept (%q)", got, want)
	}
	if n := p.Count("button[aria-label^='Enable '][disabled]"); n != 4 {
		t.Errorf("at the cap, %d Enable buttons are disabled, want all 4 left", n)
	}
	p.Shot("metrics-cap")
	p.Submit("button[aria-label='Disable occupancy.current']")
	if got := p.Text(".counter p"); !strings.HasPrefix(got, "2 of 3 enabled") {
		t.Errorf("after disabling one the counter says %q", got)
	}
}

func ptrTo[T any](v T) *T { return &v }
