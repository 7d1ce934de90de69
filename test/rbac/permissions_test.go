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

package rbac

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestTheChartShipsThePermissionCatalogWhereItsPolicyReadsIt renders the chart into another
// namespace: the catalog ConfigMap (the same data as config/catalog), both bindings of the
// policy clearance-permissions reading it there, the reader Role (get on that one ConfigMap)
// bound to everyone signed in, and the console told its namespace. permissionCatalog.enabled=false
// leaves the ConfigMap out and the reader RBAC in.
func TestTheChartShipsThePermissionCatalogWhereItsPolicyReadsIt(t *testing.T) {
	const ns = "platform"
	data, err := os.ReadFile(filepath.Join(env.Root, "config", "catalog", "permission-catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var shipped corev1.ConfigMap
	if err := yaml.Unmarshal(data, &shipped); err != nil {
		t.Fatal(err)
	}

	r := parseChart(t, env.HelmTemplate(t, "-n", ns, "--set", "console.enabled=true"))
	var catalogs []corev1.ConfigMap
	bindings := map[string]admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	for _, d := range r.docs {
		switch d.kind {
		case "ConfigMap":
			var cm corev1.ConfigMap
			must(t, yaml.Unmarshal(d.data, &cm))
			if cm.Name == v1.PermissionCatalogName {
				catalogs = append(catalogs, cm)
			}
		case "ValidatingAdmissionPolicyBinding":
			var b admissionregistrationv1.ValidatingAdmissionPolicyBinding
			must(t, yaml.Unmarshal(d.data, &b))
			bindings[b.Name] = b
		}
	}
	if len(catalogs) != 1 || catalogs[0].Namespace != ns || catalogs[0].Data[v1.PermissionCatalogKey] != shipped.Data[v1.PermissionCatalogKey] {
		t.Errorf("the chart renders %d permission catalogs (want one in %s, as config/catalog has it): %+v", len(catalogs), ns, catalogs)
	}
	for name, action := range map[string]admissionregistrationv1.ParameterNotFoundActionType{
		"clearance-permissions": admissionregistrationv1.DenyAction, "clearance-permissions-updates": admissionregistrationv1.AllowAction,
	} {
		ref := bindings[name].Spec.ParamRef
		if ref == nil || ref.Namespace != ns || ref.Name != v1.PermissionCatalogName || ref.ParameterNotFoundAction == nil || *ref.ParameterNotFoundAction != action {
			t.Errorf("binding %s reads %+v, want %s/%s with parameterNotFoundAction %s", name, ref, ns, v1.PermissionCatalogName, action)
		}
	}
	role, ok := r.roles[ns+"/clearance-permission-catalog-reader"]
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{v1.PermissionCatalogName}, Verbs: []string{"get"}}}
	if !ok || len(role.Rules) != 1 || !slices.Equal(role.Rules[0].Verbs, want[0].Verbs) || !slices.Equal(role.Rules[0].ResourceNames, want[0].ResourceNames) ||
		!slices.Equal(role.Rules[0].Resources, want[0].Resources) {
		t.Errorf("the reader Role in %s: %+v, want only %+v", ns, role.Rules, want)
	}
	bound := slices.ContainsFunc(r.bindings, func(b binding) bool {
		return b.namespace == ns && b.roleRef.Name == "clearance-permission-catalog-reader" &&
			slices.Equal(b.subjects, []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:authenticated"}})
	})
	if !bound {
		t.Error("the reader Role is not bound to system:authenticated, and only to it")
	}
	console := r.deployment("clearance-console")
	if console == nil || !slices.ContainsFunc(console.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
	}) {
		t.Error("the console is not told its namespace (POD_NAMESPACE), where it reads the permission catalog")
	}

	off := parseChart(t, env.HelmTemplate(t, "-n", ns, "--set", "permissionCatalog.enabled=false"))
	for _, d := range off.docs {
		var cm corev1.ConfigMap
		if d.kind == "ConfigMap" && yaml.Unmarshal(d.data, &cm) == nil && cm.Name == v1.PermissionCatalogName {
			t.Error("permissionCatalog.enabled=false still renders the catalog")
		}
	}
	if _, ok := off.roles[ns+"/clearance-permission-catalog-reader"]; !ok {
		t.Error("permissionCatalog.enabled=false drops the reader Role: a catalog of one's own could not be read")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
