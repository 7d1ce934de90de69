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

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestPermissionsListsTheCatalogToAnyoneSignedIn: someone who holds no rule at all lists the
// shipped permission catalog, as a table and as JSON for scripts.
func TestPermissionsListsTheCatalogToAnyoneSignedIn(t *testing.T) {
	ns := env.Namespace(t, "perms")
	rows := table(run(t, ns, "--as", "nobody", "permissions").ok(t).stdout)
	if len(rows) < 13 || strings.Join(rows[0], " ") != "NAME DESCRIPTION" {
		t.Fatalf("permissions printed %v", rows)
	}
	wantRow(t, rows, "reports:read", "Read", "reports", "and", "their", "rows")
	wantRow(t, rows, "dashboards:refresh", "Refresh", "a", "dashboard's", "data", "on", "demand")

	var out struct {
		Catalog string `json:"catalog"`
		Items   []struct{ Name, Description string }
	}
	must(t, json.Unmarshal([]byte(run(t, ns, "--as", "nobody", "permissions", "-o", "json").ok(t).stdout), &out))
	if out.Catalog != "clearance-system/clearance-permission-catalog" || len(out.Items) != len(rows)-1 || out.Items[0].Name != "reports:read" || out.Items[0].Description == "" {
		t.Errorf("permissions -o json: %+v", out)
	}
}

// TestKeyNewRefusesAScopeOutsideTheCatalogBeforeCreatingAnything: a mistyped --scope is named
// with where the permissions are listed, and no APIKey is created.
func TestKeyNewRefusesAScopeOutsideTheCatalogBeforeCreatingAnything(t *testing.T) {
	ns := env.Namespace(t, "badscope")
	application(t, ns, "acme-bi", "Acme BI export", 0)
	msg := run(t, ns, "key", "new", "--app", "acme-bi", "--scope", "reports:read", "--scope", "reports:raed").failed(t)
	want := "--scope reports:raed is not a permission of the permission catalog (ConfigMap clearance-system/clearance-permission-catalog): pick from `kubectl clearance permissions`, or ask the platform team to add it there"
	if msg != want {
		t.Errorf("\n got %s\nwant %s", msg, want)
	}
	msg = run(t, ns, "key", "new", "--app", "acme-bi", "--scope", "billing:read", "--scope", "reports:*", "--scope", "audit:*").failed(t)
	if !strings.HasPrefix(msg, "--scope billing:read, audit:* are not permissions of the permission catalog") {
		t.Errorf("two unknown scopes: %s", msg)
	}
	var keys v1.APIKeyList
	must(t, env.Client.List(ctx(), &keys, client.InNamespace(ns)))
	if len(keys.Items) != 0 {
		t.Errorf("a refused key was created: %v", keys.Items[0].Spec)
	}
}

// TestWithoutACatalogPermissionsSaysWhatIsMissingAndKeyNewLeavesTheCheckToTheAPIServer.
func TestWithoutACatalogPermissionsSaysWhatIsMissingAndKeyNewLeavesTheCheckToTheAPIServer(t *testing.T) {
	ns := env.Namespace(t, "nocatalog")
	application(t, ns, "acme-bi", "Acme BI export", 0)
	msg := run(t, ns, "permissions", "--catalog-namespace", ns).failed(t)
	want := "the permission catalog, ConfigMap " + ns + "/clearance-permission-catalog, does not exist, so no key can name permissions: the platform team installs it (the chart's permissionCatalog.enabled, or config/catalog)"
	if msg != want {
		t.Errorf("\n got %s\nwant %s", msg, want)
	}

	o, _, _ := newOptions()
	o.KeyWaitTimeout = 500 * 1e6
	r := runWith(t, o, ns, "key", "new", "--app", "acme-bi", "--name", "k", "--scope", "reports:read", "--catalog-namespace", ns)
	if !strings.Contains(r.stderr, "Warning: the --scope values are not checked here (the permission catalog, ConfigMap "+ns+"/clearance-permission-catalog, does not exist") {
		t.Errorf("no warning that the scopes went unchecked: %q", r.stderr)
	}
	var key v1.APIKey
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "k"}, &key)) // the apiserver admitted it (its catalog has reports:read)
}
