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
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const consoleSA = "clearance-console"

// TestTheConsoleHoldsNoPowerOfItsOwn renders the chart with the console on: its Deployment runs
// only the console, under a ServiceAccount of its own that no binding names and whose token is
// not mounted (only the apiserver's CA is, from the kube-root-ca.crt ConfigMap). With the
// chart's RBAC applied, the apiserver refuses that ServiceAccount every verb on every Clearance
// kind, on the orgroles it could assign, and on Secrets, in every namespace: whatever the console
// does, it does with the signed-in person's own token.
func TestTheConsoleHoldsNoPowerOfItsOwn(t *testing.T) {
	ctx := context.Background()
	args := []string{"--set", "console.enabled=true"}
	r := parseChart(t, env.HelmTemplate(t, args...))
	console := r.deployment("clearance-console")
	if console == nil {
		t.Fatal("console.enabled=true renders no clearance-console Deployment")
	}
	if r.deployment("clearance") == nil || r.deployment("clearance-verifier") == nil {
		t.Error("turning the console on removed the operator or the verifier")
	}
	cArgs := argsOf(console)
	for _, want := range []string{"--enable-controllers=false", "--enable-webhooks=false", "--enable-verifier=false"} {
		if !slices.Contains(cArgs, want) {
			t.Errorf("the console lacks %s: it must run nothing but the console; its args: %v", want, cArgs)
		}
	}
	if !slices.ContainsFunc(cArgs, func(a string) bool { return strings.HasPrefix(a, "--console-bind-address=:") }) {
		t.Errorf("the console Deployment does not serve the console: %v", cArgs)
	}
	// An Authorization header signs requests in only when the chart is told a proxy is in front.
	if slices.ContainsFunc(cArgs, func(a string) bool { return strings.HasPrefix(a, "--console-trust-auth-proxy") }) {
		t.Errorf("the console trusts an auth proxy by default: %v", cArgs)
	}
	proxied := parseChart(t, env.HelmTemplate(t, "--set", "console.enabled=true", "--set", "console.trustAuthProxy=true")).deployment("clearance-console")
	if proxied == nil || !slices.Contains(argsOf(proxied), "--console-trust-auth-proxy") {
		t.Error("console.trustAuthProxy=true does not pass --console-trust-auth-proxy")
	}
	pod := console.Spec.Template.Spec
	if pod.ServiceAccountName != consoleSA {
		t.Fatalf("the console runs as ServiceAccount %q, want %s", pod.ServiceAccountName, consoleSA)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the console pod mounts its ServiceAccount token; it needs no credentials of its own")
	}
	rules, unknown := r.rulesOf(releaseNamespace, consoleSA)
	if len(rules) > 0 || len(unknown) > 0 {
		t.Errorf("the console's ServiceAccount is bound to rules %v and roles %v; it must be bound to nothing", rules, unknown)
	}
	caFromConfigMap := false
	for _, v := range pod.Volumes {
		if v.Secret != nil || v.Projected != nil {
			t.Errorf("the console mounts a Secret or a projected token: volume %s", v.Name)
		}
		if v.ConfigMap != nil && v.ConfigMap.Name == "kube-root-ca.crt" {
			caFromConfigMap = true
		}
	}
	if !caFromConfigMap {
		t.Error("the console does not mount the apiserver's CA from the kube-root-ca.crt ConfigMap")
	}
	for _, c := range pod.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("the console reads Secret %s into $%s", e.ValueFrom.SecretKeyRef.Name, e.Name)
			}
		}
	}

	// What the apiserver says, with the chart's RBAC (and the people roles) applied.
	applyChartRBAC(t, args...)
	var sa corev1.ServiceAccount
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: consoleSA}, &sa); err != nil {
		t.Fatalf("the chart's console ServiceAccount: %v", err)
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("the console's ServiceAccount lets pods mount its token")
	}
	org := env.Namespace(t, "org")
	user := "system:serviceaccount:" + releaseNamespace + ":" + consoleSA
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"}
	type target struct{ group, resource, name string }
	targets := []target{{"", "secrets", ""}}
	for _, res := range []string{"applications", "apikeys", "orgconnections", "metricsets", "apikeys/status", "orgroles"} {
		targets = append(targets, target{"access.clearance.dev", res, ""})
	}
	allowed := 0
	for _, ns := range []string{"", releaseNamespace, org} {
		for _, tg := range targets {
			for _, verb := range []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "bind"} {
				st := env.Review(t, authorizationv1.SubjectAccessReviewSpec{
					User: user, Groups: groups,
					ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: tg.group, Resource: tg.resource, Name: tg.name},
				})
				if st.Allowed {
					allowed++
					t.Errorf("the console's ServiceAccount may %s %s.%s in namespace %q (%s)", verb, tg.resource, tg.group, ns, st.Reason)
				}
			}
		}
	}
	t.Logf("%d SubjectAccessReviews for the console's ServiceAccount (9 verbs × %d resources × 3 namespaces): %d allowed",
		9*len(targets)*3, len(targets), allowed)
}
