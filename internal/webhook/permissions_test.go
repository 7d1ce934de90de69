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

package webhook

import (
	"context"
	"fmt"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// permissionsPolicy is the ValidatingAdmissionPolicy that checks a key's scopes against the
// permission catalog (config/policies/permissions.yaml); it is bound twice, for creates (refused
// while the catalog is missing) and for updates (admitted unchecked while it is missing).
const (
	permissionsPolicy  = "clearance-permissions"
	permissionsCreates = "clearance-permissions"
	permissionsUpdates = "clearance-permissions-updates"
	shippedCatalog     = "clearance-system/clearance-permission-catalog"
)

func scopedKey(org, name string, scopes ...string) *v1.APIKey {
	return &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name},
		Spec: v1.APIKeySpec{ApplicationName: "bi", TTL: &metav1.Duration{Duration: 720 * 3600e9}, Scopes: scopes}}
}

// notInCatalog is the policy's refusal, through binding, of the permissions named, against the
// catalog ns/name.
func notInCatalog(binding, key, catalog string, unknown ...string) string {
	what := "permission "
	if len(unknown) > 1 {
		what = "permissions "
	}
	return fmt.Sprintf(`apikeys.access.clearance.dev %q is forbidden: ValidatingAdmissionPolicy '%s' with binding '%s' denied request: `, key, permissionsPolicy, binding) +
		"APIKey " + key + " names " + what + strings.Join(unknown, ", ") + ", not in the permission catalog (ConfigMap " + catalog +
		`): pick permissions it lists (kubectl clearance permissions), or have the platform team add a "name: description" line to its data key permissions`
}

// TestAKeyNamingAPermissionOutsideTheCatalogIsRefusedSayingWhereToAddIt: with the shipped
// catalog, keys naming its permissions (or a wildcard over some of them) and keys without scopes
// are admitted; a create or an update that adds a permission it does not list is refused, in one
// sentence naming the catalog ConfigMap and how to add one.
func TestAKeyNamingAPermissionOutsideTheCatalogIsRefusedSayingWhereToAddIt(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "perms")
	for _, k := range []*v1.APIKey{
		scopedKey(org, "readers", "reports:read", "dashboards:refresh", "metrics:read"),
		scopedKey(org, "wildcard", "dashboards:*", "exports:create"),
		scopedKey(org, "whole-role"),
	} {
		if err := env.Client.Create(ctx, k); err != nil {
			t.Errorf("APIKey %s with scopes %v from the catalog: %v", k.Name, k.Spec.Scopes, err)
		}
	}

	err := env.Client.Create(ctx, scopedKey(org, "typo", "reports:read", "reports:raed"))
	if want := notInCatalog(permissionsCreates, "typo", shippedCatalog, "reports:raed"); !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("a permission outside the catalog: %v\nwant: %s", err, want)
	}
	err = env.Client.Create(ctx, scopedKey(org, "two", "reports:delete", "billing:*"))
	if want := notInCatalog(permissionsCreates, "two", shippedCatalog, "reports:delete", "billing:*"); err == nil || err.Error() != want {
		t.Errorf("two permissions outside the catalog: %v\nwant: %s", err, want)
	}

	key := &v1.APIKey{}
	must(t, env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: "readers"}, key))
	key.Spec.Scopes = append(key.Spec.Scopes, "reports:purge")
	if err := env.Client.Update(ctx, key); err == nil || err.Error() != notInCatalog(permissionsUpdates, "readers", shippedCatalog, "reports:purge") {
		t.Errorf("an update adding a permission outside the catalog: %v", err)
	}
	key.Spec.Scopes = append(key.Spec.Scopes[:3], "reports:write")
	if err := env.Client.Update(ctx, key); err != nil {
		t.Errorf("an update adding a permission of the catalog: %v", err)
	}
}

// TestThePolicyAndTheGoReaderAgreeOnTheShippedCatalog: every permission ops.ReadPermissions
// finds in the shipped catalog (what the console offers and the plugin checks) is one the
// policy's CEL finds too, and it finds no other: one key naming them all is admitted, and each
// name with a character changed is refused.
func TestThePolicyAndTheGoReaderAgreeOnTheShippedCatalog(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "agree")
	catalog, err := ops.ReadPermissions(ctx, env.Client, "clearance-system")
	must(t, err)
	if len(catalog.Problems) > 0 {
		t.Errorf("the shipped catalog has lines the Go reader cannot read: %v", catalog.Problems)
	}
	var names, near []string
	for _, p := range catalog.Permissions {
		names = append(names, p.Name)
		near = append(near, p.Name+"x")
	}
	if err := env.Client.Create(ctx, scopedKey(org, "all", names...), client.DryRunAll); err != nil {
		t.Errorf("a key naming every permission of the shipped catalog: %v", err)
	}
	err = env.Client.Create(ctx, scopedKey(org, "near", near...), client.DryRunAll)
	if want := notInCatalog(permissionsCreates, "near", shippedCatalog, near...); err == nil || err.Error() != want {
		t.Errorf("a key naming every permission with an x added: %v", err)
	}
}

// TestThePolicyReadsEveryLayoutOfACatalogLineAsTheGoReaderDoes: the policy finds a name in the
// catalog's text without parsing it into lines; for a catalog written every way a person might
// (spaces and tabs around the name and the ": ", no description, a '*' in a name, comments,
// CRLF line ends, a no-break space), it admits exactly the scopes ops.ParsePermissions and
// PermissionCatalog.Unknown admit: every name, every NAME:* over some of them, and none of the
// near misses (a commented name, a name cut short or made longer, a prefix that is a whole name).
func TestThePolicyReadsEveryLayoutOfACatalogLineAsTheGoReaderDoes(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "layout")
	lines := []string{
		"# a comment: not:a:permission",
		"reports:read: Read reports",
		"  reports:write  :  Write reports  ",
		"\tdashboards:view\t: tab before the colon",
		"alerts:mute",
		"alerts:fire:now   ",
		"exports:csv:   three spaces after the colon",
		"exports:x*y",
		"spaces: a name without a colon",
		"\u00a0devices:list: after a no-break space",
		"metrics:live: CRLF\r",
		"   ",
		"  # reports:purge: commented, indented",
		"billing:run:now: two colons, the name ends at the first one followed by a space",
	}
	must(t, env.Client.Create(ctx, catalogMap(org, "catalog", lines...)))
	shippedCatalogLeaves(t, org)
	creates, _ := permissionBindings(t, org, "catalog")
	eventually(t, func() bool { // the shipped catalog lacks it; the test's lists it
		return env.Client.Create(ctx, scopedKey(org, "probe", "billing:run:now"), client.DryRunAll) == nil
	})
	catalog := &ops.PermissionCatalog{}
	catalog.Permissions, catalog.Problems = ops.ParsePermissions(strings.Join(lines, "\n"))
	if len(catalog.Problems) > 0 {
		t.Fatalf("the test's catalog has lines the Go reader cannot read: %v", catalog.Problems)
	}
	candidates := []string{"a", "not:a:permission", "reports:purge", "reports", "reports:*", "reports:re", "reports:readx",
		"dashboards:*", "alerts:*", "alerts:fire:*", "alerts:fire", "exports:*", "exports:csv:*", "exports:x*y", "exports:x:*",
		"spaces", "spaces:*", "devices:*", "metrics:live", "metrics:*", "billing:*", "billing:run:*", "billing:run", "billing:run:now:*", "nothing:*"}
	for _, p := range catalog.Permissions {
		candidates = append(candidates, p.Name, p.Name+"x", p.Name[:len(p.Name)-1], p.Name+":*")
	}
	for i, scope := range candidates {
		err := env.Client.Create(ctx, scopedKey(org, fmt.Sprintf("k%d", i), scope), client.DryRunAll)
		known := len(catalog.Unknown([]string{scope})) == 0
		switch {
		case apierrors.IsInvalid(err):
			// The CRD's scope grammar refuses it before admission.
		case known && err != nil:
			t.Errorf("scope %q, which the Go reader finds in the catalog, is refused: %v", scope, err)
		case !known && (err == nil || !strings.Contains(err.Error(), "with binding '"+creates+"'")):
			t.Errorf("scope %q, which the Go reader does not find in the catalog, is not refused by the policy: %v", scope, err)
		}
	}
}

// shippedCatalogLeaves makes the shipped bindings leave out namespace org (labelled, and the
// bindings' namespace selectors required not to have the label), until the test ends: its keys
// are judged by the test's own catalog alone. Every other namespace stays bound as before.
func shippedCatalogLeaves(t *testing.T, org string) {
	t.Helper()
	ctx := context.Background()
	const label = "test.clearance.dev/own-permission-catalog"
	ns := &corev1.Namespace{}
	must(t, env.Client.Get(ctx, client.ObjectKey{Name: org}, ns))
	ns.Labels[label] = "true"
	must(t, env.Client.Update(ctx, ns))
	for _, name := range []string{permissionsCreates, permissionsUpdates} {
		b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
		must(t, env.Client.Get(ctx, client.ObjectKey{Name: name}, b))
		shipped := b.Spec.MatchResources.DeepCopy()
		sel := b.Spec.MatchResources.NamespaceSelector
		if sel == nil {
			sel = &metav1.LabelSelector{}
		}
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: label, Operator: metav1.LabelSelectorOpDoesNotExist})
		b.Spec.MatchResources.NamespaceSelector = sel
		must(t, env.Client.Update(ctx, b))
		t.Cleanup(func() {
			cur := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
			if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, cur); err != nil {
				t.Errorf("restoring binding %s: %v", name, err)
				return
			}
			cur.Spec.MatchResources = shipped
			if err := env.Client.Update(context.Background(), cur); err != nil {
				t.Errorf("restoring binding %s: %v", name, err)
			}
		})
	}
}

// permissionBindings binds the shipped policy as the shipped bindings do (read from the
// apiserver) to the catalog ConfigMap org/catalog, for keys of org alone: a test's own catalog,
// which it may shrink or leave missing without touching the cluster-wide one. It returns the
// names of the create and the update binding once the apiserver enforces them.
func permissionBindings(t *testing.T, org, catalog string) (creates, updates string) {
	t.Helper()
	ctx := context.Background()
	var names []string
	for _, name := range []string{permissionsCreates, permissionsUpdates} {
		shipped := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
		must(t, env.Client.Get(ctx, client.ObjectKey{Name: name}, shipped))
		b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: org + "-" + name}, Spec: *shipped.Spec.DeepCopy()}
		if b.Spec.ParamRef == nil || b.Spec.MatchResources == nil {
			t.Fatalf("the shipped binding %s has no paramRef or no matchResources: %+v", name, b.Spec)
		}
		b.Spec.ParamRef.Namespace, b.Spec.ParamRef.Name = org, catalog
		b.Spec.MatchResources.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: org}}
		must(t, env.Client.Create(ctx, b))
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), b) })
		names = append(names, b.Name)
	}
	// In force: a dry run adding exports:create (in the shipped catalog, never in a test's, nor
	// when it is missing) is refused through the test's create binding.
	eventually(t, func() bool {
		err := env.Client.Create(ctx, scopedKey(org, "probe", "exports:create"), client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), "with binding '"+names[0]+"'")
	})
	return names[0], names[1]
}

func catalogMap(org, name string, lines ...string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name},
		Data: map[string]string{v1.PermissionCatalogKey: strings.Join(lines, "\n") + "\n"}}
}

// TestAKeyStaysUpdatableWhenThePlatformTeamRemovesOneOfItsPermissions: only what an update adds
// is checked, so after reports:write leaves the catalog, the key that names it is still edited,
// disabled, narrowed and given other catalog permissions; adding one outside the catalog is
// refused, naming the catalog the binding reads.
func TestAKeyStaysUpdatableWhenThePlatformTeamRemovesOneOfItsPermissions(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "shrink")
	catalog := catalogMap(org, "catalog", "# the org's test catalog", "reports:read: Read reports", "reports:write: Write reports", "dashboards:read: View dashboards")
	must(t, env.Client.Create(ctx, catalog))
	_, updates := permissionBindings(t, org, "catalog")
	key := scopedKey(org, "writer", "reports:read", "reports:write")
	must(t, env.Client.Create(ctx, key))

	catalog.Data[v1.PermissionCatalogKey] = "reports:read: Read reports\ndashboards:read: View dashboards\n"
	must(t, env.Client.Update(ctx, catalog))
	eventually(t, func() bool { // the apiserver reads parameters from its own informer
		return env.Client.Create(ctx, scopedKey(org, "probe", "reports:write"), client.DryRunAll) != nil
	})

	steps := []struct {
		what string
		edit func(k *v1.APIKey)
	}{
		{"a new description", func(k *v1.APIKey) { k.Spec.Description = "still writing" }},
		{"disabled", func(k *v1.APIKey) { k.Spec.Enabled = ptr.To(false) }},
		{"narrowed to the removed permission", func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:write"} }},
		{"given a catalog permission beside it", func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:write", "dashboards:read"} }},
	}
	for _, s := range steps {
		s.edit(key)
		if err := env.Client.Update(ctx, key); err != nil {
			t.Errorf("a key naming a permission removed from the catalog, %s: %v", s.what, err)
			must(t, env.Client.Get(ctx, client.ObjectKeyFromObject(key), key))
		}
	}
	key.Spec.Scopes = append(key.Spec.Scopes, "exports:create")
	err := env.Client.Update(ctx, key)
	if want := notInCatalog(updates, "writer", org+"/catalog", "exports:create"); err == nil || err.Error() != want {
		t.Errorf("adding a permission the org's catalog lacks: %v\nwant: %s", err, want)
	}
}

// TestWithoutTheCatalogNoKeyIsCreatedButExistingKeysStayEditable: the catalog ConfigMap missing,
// every create is refused (parameterNotFoundAction Deny: the apiserver resolves the parameter
// before the match conditions, so it cannot single out keys with scopes) with the apiserver's
// words, which docs/security.md explains; updates of existing keys are admitted, so a key can
// always be disabled or narrowed.
func TestWithoutTheCatalogNoKeyIsCreatedButExistingKeysStayEditable(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "missing")
	old := scopedKey(org, "old", "reports:read", "reports:write")
	must(t, env.Client.Create(ctx, old))
	creates, _ := permissionBindings(t, org, "no-such-catalog")

	for _, k := range []*v1.APIKey{scopedKey(org, "new", "reports:read"), scopedKey(org, "whole-role")} {
		err := env.Client.Create(ctx, k)
		want := fmt.Sprintf("apikeys.access.clearance.dev %q is forbidden: ValidatingAdmissionPolicy '%s' with binding '%s' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction",
			k.Name, permissionsPolicy, creates)
		if err == nil || err.Error() != want {
			t.Errorf("creating key %s (scopes %v) without a catalog: %v\nwant: %s", k.Name, k.Spec.Scopes, err, want)
		}
	}
	for _, edit := range []func(k *v1.APIKey){
		func(k *v1.APIKey) { k.Spec.Description = "edited" },
		func(k *v1.APIKey) { k.Spec.Enabled = ptr.To(false) },
		func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:read"} },
	} {
		edit(old)
		if err := env.Client.Update(ctx, old); err != nil {
			t.Errorf("editing an existing key without a catalog (%+v): %v", old.Spec, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestACatalogWithoutItsDataKeySaysSo: a catalog ConfigMap that lost its data key permissions
// refuses a key naming permissions with a sentence saying what the catalog lacks.
func TestACatalogWithoutItsDataKeySaysSo(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "nokey")
	must(t, env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "catalog"}, Data: map[string]string{"permission": "reports:read: typo in the key"}}))
	creates, _ := permissionBindings(t, org, "catalog")
	err := env.Client.Create(ctx, scopedKey(org, "k", "reports:read"))
	want := fmt.Sprintf(`apikeys.access.clearance.dev "k" is forbidden: ValidatingAdmissionPolicy '%s' with binding '%s' denied request: `, permissionsPolicy, creates) +
		`the permission catalog (ConfigMap ` + org + `/catalog) has no data key permissions, so APIKey k cannot name permissions: the platform team restores it (one "name: description" a line; config/catalog/permission-catalog.yaml)`
	if err == nil || err.Error() != want {
		t.Errorf("a catalog without its data key: %v\nwant: %s", err, want)
	}
	if err := env.Client.Create(ctx, scopedKey(org, "whole-role")); err != nil {
		t.Errorf("a key without scopes, the catalog without its data key: %v", err)
	}
}
