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

package ops_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// catalogNamespace is where the test environment installs the shipped permission catalog
// (config/catalog), as the chart does in its release namespace.
const catalogNamespace = "clearance-system"

// TestAnyoneSignedInReadsTheShippedPermissionCatalogWithTheirOwnCredentials: a person who holds
// nothing but a role in their org reads the catalog (the shipped reader RBAC), and every line of
// the shipped catalog is a permission with a description.
func TestAnyoneSignedInReadsTheShippedPermissionCatalogWithTheirOwnCredentials(t *testing.T) {
	org := env.Namespace(t, "perms")
	c := person(t, org, "pat", clearanceRule("apikeys", []string{"create"}))
	cat, err := ops.ReadPermissions(ctx(), c, catalogNamespace)
	must(t, err)
	if cat.Source != "clearance-system/clearance-permission-catalog" || len(cat.Problems) > 0 || len(cat.Permissions) < 12 {
		t.Fatalf("the shipped catalog read as %s with %d permissions and problems %v", cat.Source, len(cat.Permissions), cat.Problems)
	}
	i := slices.IndexFunc(cat.Permissions, func(p ops.Permission) bool { return p.Name == "reports:read" })
	if i < 0 || cat.Permissions[i].Description != "Read reports and their rows" {
		t.Errorf("reports:read is not in the catalog with its description: %+v", cat.Permissions)
	}
	for _, p := range cat.Permissions {
		if p.Description == "" {
			t.Errorf("permission %s has no description", p.Name)
		}
	}
	// Every scope the samples, docs and tests give keys is in it.
	for _, s := range []string{"reports:read", "reports:write", "reports:export", "dashboards:read", "dashboards:refresh", "metrics:read", "exports:create", "dashboards:*", "exports:*"} {
		if u := cat.Unknown([]string{s}); len(u) > 0 {
			t.Errorf("the shipped catalog does not know %s", s)
		}
	}
}

// TestReadingThePermissionCatalogSaysWhatIsMissing: no catalog, a catalog the person may not
// read, one without its data key, and a read that failed each get a sentence naming the
// ConfigMap.
func TestReadingThePermissionCatalogSaysWhatIsMissing(t *testing.T) {
	ns := env.Namespace(t, "nocatalog")
	c := person(t, ns, "nick")
	_, err := ops.ReadPermissions(ctx(), env.Client, ns)
	want := "the permission catalog, ConfigMap " + ns + "/clearance-permission-catalog, does not exist, so no key can name permissions: the platform team installs it (the chart's permissionCatalog.enabled, or config/catalog)"
	if err == nil || err.Error() != want {
		t.Errorf("no catalog: %v\nwant: %s", err, want)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1.PermissionCatalogName}, Data: map[string]string{"other": "x"}}
	must(t, env.Client.Create(ctx(), cm))
	_, err = ops.ReadPermissions(ctx(), c, ns)
	want = "you may not read the permission catalog, ConfigMap " + ns + "/clearance-permission-catalog: the chart lets everyone signed in get it (Role and RoleBinding clearance-permission-catalog-reader there); ask a cluster admin to restore them"
	if err == nil || err.Error() != want {
		t.Errorf("a catalog nick may not read: %v\nwant: %s", err, want)
	}
	_, err = ops.ReadPermissions(ctx(), env.Client, ns)
	want = "the permission catalog, ConfigMap " + ns + "/clearance-permission-catalog, has no data key permissions: the platform team restores it, one \"name: description\" a line"
	if err == nil || err.Error() != want {
		t.Errorf("no data key: %v\nwant: %s", err, want)
	}
	// Any other failure is an error naming the ConfigMap, never a catalog that looks empty.
	cancelled, cancel := context.WithCancel(ctx())
	cancel()
	cat, err := ops.ReadPermissions(cancelled, env.Client, ns)
	if cat != nil || err == nil || !strings.HasPrefix(err.Error(), "reading the permission catalog, ConfigMap "+ns+"/clearance-permission-catalog: ") {
		t.Errorf("a read that failed: %+v, %v; want no catalog and an error naming it", cat, err)
	}
}

func TestThePermissionCatalogIsOneNameAndDescriptionALine(t *testing.T) {
	perms, problems := ops.ParsePermissions(`
# reports
  reports:read: Read reports: all of them  
reports:write:Create
reports:write: again
exports:create
Reports: capitalised

`)
	want := []ops.Permission{{"reports:read", "Read reports: all of them"}, {"reports:write", "again"}, {"exports:create", ""}}
	if !slices.Equal(perms, want) {
		t.Errorf("permissions %+v, want %+v", perms, want)
	}
	if len(problems) != 2 || problems[0] != `line "reports:write:Create" names no permission: write "name: description" with a name of lowercase words joined by ':'` ||
		problems[1] != `line "Reports: capitalised" names no permission: write "name: description" with a name of lowercase words joined by ':'` {
		t.Errorf("problems %q", problems)
	}
	_, problems = ops.ParsePermissions("a:b: one\na:b: two")
	if !slices.Equal(problems, []string{"permission a:b is listed twice"}) {
		t.Errorf("a duplicate: %q", problems)
	}
	// The name is trimmed, as the admission policy reads it, and so is the description; a name
	// must start with a letter, as the CRD's scope rule requires, or no key could name it.
	perms, problems = ops.ParsePermissions("dashboards:read :  Read dashboards\n2fa:enrol: Enrol a second factor")
	if want := []ops.Permission{{"dashboards:read", "Read dashboards"}}; !slices.Equal(perms, want) ||
		!slices.Equal(problems, []string{`line "2fa:enrol: Enrol a second factor" names no permission: write "name: description" with a name of lowercase words joined by ':'`}) {
		t.Errorf("a name with a space before its ': ' and one starting with a digit: permissions %+v, problems %q", perms, problems)
	}
}

func TestAWildcardScopeIsKnownWhenTheCatalogListsAPermissionUnderIt(t *testing.T) {
	cat := &ops.PermissionCatalog{Permissions: []ops.Permission{{Name: "reports:read"}, {Name: "dashboards:read"}}}
	got := cat.Unknown([]string{"reports:read", "reports:*", "reports:write", "exports:*", "report*", "dashboards:read"})
	if want := []string{"reports:write", "exports:*", "report*"}; !slices.Equal(got, want) {
		t.Errorf("unknown %v, want %v", got, want)
	}
}

// TestAKeyAskedToRequireAPermissionIsRefusedWithoutOne: the console's rule, none ticked is
// refused, not everything; nothing reaches the apiserver. Without the requirement a key without
// scopes keeps its meaning (the application's whole role).
func TestAKeyAskedToRequireAPermissionIsRefusedWithoutOne(t *testing.T) {
	ns := env.Namespace(t, "require")
	_, err := ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: "none", RequireScopes: true})
	if !errors.Is(err, ops.ErrNoPermissions) {
		t.Fatalf("no scopes with RequireScopes: %v, want ErrNoPermissions", err)
	}
	var keys v1.APIKeyList
	must(t, env.Client.List(ctx(), &keys, client.InNamespace(ns)))
	if len(keys.Items) != 0 {
		t.Errorf("a refused key was created: %v", keys.Items)
	}
	key, err := ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: "one", Scopes: []string{"metrics:read"}, RequireScopes: true})
	must(t, err)
	if !slices.Equal(key.Spec.Scopes, []string{"metrics:read"}) {
		t.Errorf("created with scopes %v", key.Spec.Scopes)
	}
	key, err = ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: "whole-role"})
	must(t, err)
	if key.Spec.Scopes != nil {
		t.Errorf("a key without scopes got %v", key.Spec.Scopes)
	}
}
