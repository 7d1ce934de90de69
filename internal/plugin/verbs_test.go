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

package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/ops"
)

func TestAppCreateNamesTheApplicationAfterItsDescriptionAndRenameChangesOnlyTheDescription(t *testing.T) {
	ns := env.Namespace(t, "appcreate")
	r := run(t, ns, "app", "create", "--description", "Acme BI export").ok(t)
	want := "application/acme-bi-export created in " + ns + ": its Application ID appears in `kubectl clearance apps -n " + ns +
		"` as soon as the operator has allocated it\n"
	if r.stdout != want {
		t.Errorf("\n got %q\nwant %q", r.stdout, want)
	}
	var app v1.Application
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi-export"}, &app))
	if app.Spec.Description != "Acme BI export" {
		t.Errorf("created %+v", app.Spec)
	}

	var printed v1.Application
	must(t, json.Unmarshal([]byte(run(t, ns, "app", "create", "crm", "--description", "CRM sync", "-o", "json").ok(t).stdout), &printed))
	if printed.Kind != "Application" || printed.Name != "crm" || printed.Spec.Description != "CRM sync" || printed.UID == "" {
		t.Errorf("-o json printed %+v", printed)
	}

	if msg := run(t, ns, "app", "create", "acme-bi").failed(t); msg != errNoDescription.Error() {
		t.Errorf("no --description: %s", msg)
	}
	if msg := run(t, ns, "app", "create", "blank", "--description", "  ").failed(t); !strings.Contains(msg, "description must not be blank: say what the application is") {
		t.Errorf("a blank description: %s, want the CEL rule's message", msg)
	}
	want = "Application acme-bi-export already exists in namespace " + ns + ": name it yourself with `kubectl clearance app create NAME --description …`"
	if msg := run(t, ns, "app", "new", "--description", "Acme BI export").failed(t); msg != want {
		t.Errorf("the same description twice:\n got %s\nwant %s", msg, want)
	}

	r = run(t, ns, "app", "rename", "acme-bi-export", "--description", "Acme BI").ok(t)
	if want := "application/acme-bi-export (" + orNone("") + `) renamed: now described as "Acme BI"` + "\n"; r.stdout != want {
		t.Errorf("rename printed %q, want %q", r.stdout, want)
	}
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi-export"}, &app))
	if app.Spec.Description != "Acme BI" || !app.IsEnabled() {
		t.Errorf("after rename: %+v", app.Spec)
	}
	want = "Application nope not found in namespace " + ns + ": list the applications with `kubectl clearance apps -n " + ns + "`"
	if msg := run(t, ns, "app", "rename", "nope", "--description", "x").failed(t); msg != want {
		t.Errorf("renaming a missing application:\n got %s\nwant %s", msg, want)
	}
	if msg := run(t, ns, "app", "rename", "acme-bi-export").failed(t); msg != errNoDescription.Error() {
		t.Errorf("rename without --description: %s", msg)
	}
}

// TestSetRoleFindsTheConnectionByIDOrNameAndPrintsThePolicysRefusalAsItIs: an admin raises a
// role (the advice comes back as a warning), setting the same role writes nothing, and a
// technician is refused OrgAdmin in the role assignment policy's words but may lower a role.
func TestSetRoleFindsTheConnectionByIDOrNameAndPrintsThePolicysRefusalAsItIs(t *testing.T) {
	ns := env.Namespace(t, "setrole")
	appID, err := keyformat.ApplicationID()
	must(t, err)
	run(t, ns, "connect", appID, "--name", "partner").ok(t)

	r := run(t, ns, "set-role", appID, "--role", "Analyst").ok(t)
	if want := "orgconnection/partner updated: " + appID + " now has role Analyst in " + ns + " (was Observer)\n"; r.stdout != want {
		t.Errorf("\n got %q\nwant %q", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "Warning: ") || !strings.Contains(r.stderr, "role Analyst grants more than Observer") {
		t.Errorf("stderr %q, want the admission warning", r.stderr)
	}
	var conn v1.OrgConnection
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "partner"}, &conn))
	if conn.Spec.Role != v1.RoleAnalyst {
		t.Errorf("role %s after set-role", conn.Spec.Role)
	}
	rv := conn.ResourceVersion
	if out := run(t, ns, "role", "partner", "--role", "Analyst").ok(t).stdout; out != "orgconnection/partner unchanged: "+appID+" already has role Analyst in "+ns+"\n" {
		t.Errorf("setting the same role printed %q", out)
	}
	must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(&conn), &conn))
	if conn.ResourceVersion != rv {
		t.Error("setting the same role wrote the connection")
	}

	grantOnly(t, ns, "theo",
		rbacv1.PolicyRule{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgconnections"}, Verbs: []string{"get", "list", "patch"}},
		rbacv1.PolicyRule{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgroles"}, Verbs: []string{"bind"},
			ResourceNames: []string{"Observer", "Analyst", "Technician"}})
	msg := run(t, ns, "--as", "theo", "set-role", appID, "--role", "OrgAdmin").failed(t)
	want := `orgconnections.access.clearance.dev "partner" is forbidden: ValidatingAdmissionPolicy 'clearance-role-assignment' with binding 'clearance-role-assignment' denied request: ` +
		`user "theo" may not assign role OrgAdmin in org "` + ns + `"`
	if !strings.HasPrefix(msg, want) {
		t.Errorf("a technician asking for OrgAdmin:\n got %s\nwant %s…", msg, want)
	}
	var printed v1.OrgConnection
	must(t, json.Unmarshal([]byte(run(t, ns, "--as", "theo", "set-role", appID, "--role", "Observer", "-o", "json").ok(t).stdout), &printed))
	if printed.Kind != "OrgConnection" || printed.Spec.Role != v1.RoleObserver {
		t.Errorf("lowering as a technician, -o json printed %+v", printed)
	}

	other, err := keyformat.ApplicationID()
	must(t, err)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"set-role", appID}, "--role is required: use Observer (read-only, recommended), Analyst, Technician or OrgAdmin"},
		{[]string{"set-role", appID, "--role", "Admin"}, `--role "Admin" is not a role: use Observer (read-only, recommended), Analyst, Technician or OrgAdmin`},
		{[]string{"set-role", other, "--role", "Analyst"}, "application " + other + " is not connected to " + ns + ": list the connections with `kubectl clearance connections -n " + ns + "`"},
		{[]string{"set-role", "nope", "--role", "Analyst"}, "OrgConnection nope not found in namespace " + ns + ": list the connections with `kubectl clearance connections -n " + ns + "`"},
	} {
		if msg := run(t, ns, c.args...).failed(t); msg != c.want {
			t.Errorf("%v:\n got %s\nwant %s", c.args, msg, c.want)
		}
	}
}

func TestDisconnectDeletesTheConnectionAndLeavesTheApplicationAlone(t *testing.T) {
	owner, ns := env.Namespace(t, "owner"), env.Namespace(t, "disconnect")
	app := application(t, owner, "acme-bi", "Acme BI export", 1)
	appID := app.Status.ApplicationID
	run(t, ns, "connect", appID).ok(t)
	grantOnly(t, ns, "olivia", rbacv1.PolicyRule{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgconnections"}, Verbs: []string{"get", "list"}})

	want := "you may not delete orgconnections in namespace " + ns + ": ask an org admin for delete on orgconnections.access.clearance.dev in namespace " + ns
	if msg := run(t, ns, "--as", "olivia", "disconnect", appID).failed(t); msg != want {
		t.Errorf("an observer disconnecting:\n got %s\nwant %s", msg, want)
	}

	r := run(t, ns, "disconnect", appID).ok(t)
	name := ops.ConnectionName(appID)
	if want := "orgconnection/" + name + " deleted: " + appID + " is disconnected from " + ns + "; the application itself is untouched\n"; r.stdout != want {
		t.Errorf("\n got %q\nwant %q", r.stdout, want)
	}
	if err := env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, &v1.OrgConnection{}); !apierrors.IsNotFound(err) {
		t.Errorf("the OrgConnection after disconnect: %v, want NotFound", err)
	}
	if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(app), &v1.Application{}); err != nil {
		t.Errorf("the Application after disconnect: %v", err)
	}

	want = "application " + appID + " is not connected to " + ns + ": list the connections with `kubectl clearance connections -n " + ns + "`"
	if msg := run(t, ns, "disconnect", appID).failed(t); msg != want {
		t.Errorf("disconnecting twice:\n got %s\nwant %s", msg, want)
	}
}
