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
	"context"
	"slices"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestWithMetricsSecureTheChartLetsItsPodsReviewScrapesAndAReaderRead: metrics.secure runs the
// operator and the verifier with --metrics-secure, lets their ServiceAccounts ask the apiserver
// about a scrape's token (and nothing more), ships clearance-metrics-reader, which lets whoever
// is bound to it get /metrics and nothing else, and points the ServiceMonitor at HTTPS with
// Prometheus's token. The default chart does none of it.
func TestWithMetricsSecureTheChartLetsItsPodsReviewScrapesAndAReaderRead(t *testing.T) {
	secure := []string{"--set", "metrics.secure=true", "--set", "serviceMonitor.enabled=true",
		"--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"}
	off := parseChart(t, env.HelmTemplate(t, "--set", "serviceMonitor.enabled=true", "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"))
	on := parseChart(t, env.HelmTemplate(t, secure...))
	for _, name := range []string{"clearance", "clearance-verifier"} {
		if slices.Contains(argsOf(off.deployment(name)), "--metrics-secure") {
			t.Errorf("the default chart runs %s with --metrics-secure", name)
		}
		if !slices.Contains(argsOf(on.deployment(name)), "--metrics-secure") {
			t.Errorf("metrics.secure: %s runs without --metrics-secure", name)
		}
	}
	for _, role := range []string{"clearance-metrics-auth", "clearance-metrics-reader"} {
		if _, ok := off.clusterRoles[role]; ok {
			t.Errorf("the default chart renders ClusterRole %s", role)
		}
	}
	endpoint := func(r rendered) map[string]any {
		for _, d := range r.docs {
			if d.kind != "ServiceMonitor" {
				continue
			}
			var sm unstructured.Unstructured
			if err := yaml.Unmarshal(d.data, &sm.Object); err != nil {
				t.Fatal(err)
			}
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(eps) != 1 {
				t.Fatalf("the ServiceMonitor has %d endpoints, want 1", len(eps))
			}
			return eps[0].(map[string]any)
		}
		t.Fatal("no ServiceMonitor rendered")
		return nil
	}
	if ep := endpoint(off); ep["scheme"] != nil || ep["bearerTokenFile"] != nil {
		t.Errorf("the default ServiceMonitor scrapes %v", ep)
	}
	if ep := endpoint(on); ep["scheme"] != "https" || ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
		t.Errorf("metrics.secure: the ServiceMonitor scrapes %v, want https with Prometheus's ServiceAccount token", ep)
	}

	// What the apiserver lets each identity do, with the chart's RBAC applied.
	applyChartRBAC(t, secure...)
	ctx := context.Background()
	reader := "metrics-scraper"
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "test-" + reader},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "clearance-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: releaseNamespace, Name: reader}},
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), binding) })
	review := func(who string, res *authorizationv1.ResourceAttributes, path, verb string) bool {
		t.Helper()
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: serviceAccountUser(who), Groups: serviceAccountGroups(), ResourceAttributes: res}}
		if res == nil {
			sar.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: path, Verb: verb}
		}
		if err := env.Client.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	for _, sa := range []string{operatorSA, verifierSA} {
		for _, r := range []authorizationv1.ResourceAttributes{
			{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"},
			{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"},
		} {
			if !review(sa, &r, "", "") {
				t.Errorf("ServiceAccount %s may not create %s.%s, which --metrics-secure needs", sa, r.Resource, r.Group)
			}
		}
	}
	for _, tc := range []struct {
		who, path, verb string
		want            bool
	}{
		{reader, "/metrics", "get", true},
		{reader, "/debug/pprof/", "get", false},
		{reader, "/metrics", "post", false},
		{"someone-else", "/metrics", "get", false},
	} {
		if got := review(tc.who, nil, tc.path, tc.verb); got != tc.want {
			t.Errorf("ServiceAccount %s may %s %s: %v, want %v", tc.who, tc.verb, tc.path, got, tc.want)
		}
	}
	// The reader may read nothing else.
	if review(reader, &authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, "", "") {
		t.Error("clearance-metrics-reader lets its holder list Secrets")
	}
}
