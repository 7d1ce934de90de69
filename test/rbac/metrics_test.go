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
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/clearance-dev/clearance/internal/testenv"
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

	// metrics.certSecret: both pods serve the Secret's certificate, which the ServiceMonitor
	// checks before it sends the token; without metrics.secure the chart stops.
	withCert := parseChart(t, env.HelmTemplate(t, append(secure, "--set", "metrics.certSecret=metrics-tls")...))
	for _, name := range []string{"clearance", "clearance-verifier"} {
		d := withCert.deployment(name)
		pod := d.Spec.Template.Spec
		mounted := slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool {
			return v.Secret != nil && v.Secret.SecretName == "metrics-tls" && slices.ContainsFunc(pod.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool {
				return m.Name == v.Name && m.MountPath == "/metrics-certs" && m.ReadOnly
			})
		})
		if !mounted || !slices.Contains(argsOf(d), "--metrics-cert-dir=/metrics-certs") {
			t.Errorf("metrics.certSecret: %s mounts it at /metrics-certs: %v; its args: %v", name, mounted, argsOf(d))
		}
	}
	tlsConfig, _ := endpoint(withCert)["tlsConfig"].(map[string]any)
	if tlsConfig["insecureSkipVerify"] != nil || tlsConfig["serverName"] != "clearance-metrics."+releaseNamespace+".svc" ||
		!reflect.DeepEqual(tlsConfig["ca"], map[string]any{"secret": map[string]any{"name": "metrics-tls", "key": "ca.crt"}}) {
		t.Errorf("metrics.certSecret: the ServiceMonitor's tlsConfig is %v, want the Secret's ca.crt checked for the Service's name", tlsConfig)
	}
	if _, err := env.HelmTemplateFor(t, append(slices.Clone(testenv.HelmOffline), "--set", "metrics.certSecret=metrics-tls")); err == nil ||
		!strings.Contains(err.Error(), "metrics.certSecret serves the metrics over HTTPS only with metrics.secure=true") {
		t.Errorf("metrics.certSecret without metrics.secure: %v, want the chart to stop saying so", err)
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
		spec := authorizationv1.SubjectAccessReviewSpec{User: serviceAccountUser(who), Groups: serviceAccountGroups(), ResourceAttributes: res}
		if res == nil {
			spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: path, Verb: verb}
		}
		return env.Review(t, spec).Allowed
	}
	// The apiserver's authorizer learns of bindings just made from its own informers: what they
	// allow is waited for; what nothing allows is checked once they are seen.
	for _, sa := range []string{operatorSA, verifierSA} {
		for _, r := range []authorizationv1.ResourceAttributes{
			{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"},
			{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"},
		} {
			testenv.Within(t, 30*time.Second, "ServiceAccount "+sa+" to create "+r.Resource+"."+r.Group+", which --metrics-secure needs", func() error {
				if !review(sa, &r, "", "") {
					return errors.New("not allowed")
				}
				return nil
			})
		}
	}
	testenv.Within(t, 30*time.Second, "the reader to get /metrics", func() error {
		if !review(reader, nil, "/metrics", "get") {
			return errors.New("not allowed")
		}
		return nil
	})
	for _, tc := range []struct {
		who, path, verb string
		want            bool
	}{
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

// TestTheChartsNetworkPoliciesLetOnlyThePeersGivenReachTheVerifierAndTheMetrics: with
// metrics.allowedFrom and verifier.networkPolicy, the verifier pods get a NetworkPolicy of their
// own (selecting them and not the operator's) letting the verifier port only from the proxies
// named and the metrics port only from Prometheus's namespace, the probes from anywhere; the
// operator's policy keeps the metrics port to the same peers. The apiserver takes both. By
// default the verifier gets no policy and the operator's ports answer any pod, as before.
func TestTheChartsNetworkPoliciesLetOnlyThePeersGivenReachTheVerifierAndTheMetrics(t *testing.T) {
	prometheus := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}}
	proxies := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ingress-nginx"}}}
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(`metrics:
  allowedFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
verifier:
  networkPolicy:
    enabled: true
    allowedFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	policies := func(r rendered) map[string]networkingv1.NetworkPolicy {
		out := map[string]networkingv1.NetworkPolicy{}
		for _, d := range r.docs {
			if d.kind == "NetworkPolicy" {
				var np networkingv1.NetworkPolicy
				if err := yaml.Unmarshal(d.data, &np); err != nil {
					t.Fatal(err)
				}
				out[np.Name] = np
			}
		}
		return out
	}
	// peersOf returns the peers np lets reach port, nil for any, and whether a rule lets it at all.
	peersOf := func(np networkingv1.NetworkPolicy, port int32) ([]networkingv1.NetworkPolicyPeer, bool) {
		var peers []networkingv1.NetworkPolicyPeer
		found := false
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port != nil && p.Port.IntVal == port {
					if len(rule.From) == 0 {
						return nil, true
					}
					found = true
					peers = append(peers, rule.From...)
				}
			}
		}
		return peers, found
	}
	on := parseChart(t, env.HelmTemplate(t, "-f", values))
	nps := policies(on)
	verifierPolicy, ok := nps["clearance-verifier"]
	if !ok {
		t.Fatalf("verifier.networkPolicy.enabled renders no NetworkPolicy clearance-verifier; policies: %v", slices.Collect(maps.Keys(nps)))
	}
	sel, err := metav1.LabelSelectorAsSelector(&verifierPolicy.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(on.deployment("clearance-verifier").Spec.Template.Labels)) || sel.Matches(labels.Set(on.deployment("clearance").Spec.Template.Labels)) {
		t.Errorf("the verifier's NetworkPolicy selects %v: want the verifier's pods and not the operator's", verifierPolicy.Spec.PodSelector.MatchLabels)
	}
	for _, tc := range []struct {
		policy string
		port   int32
		want   []networkingv1.NetworkPolicyPeer // nil: any
	}{
		{"clearance-verifier", 8090, []networkingv1.NetworkPolicyPeer{proxies}},
		{"clearance-verifier", 8080, []networkingv1.NetworkPolicyPeer{prometheus}},
		{"clearance-verifier", 8081, nil},
		{"clearance-webhook", 8080, []networkingv1.NetworkPolicyPeer{prometheus}},
		{"clearance-webhook", 8081, nil},
	} {
		peers, found := peersOf(nps[tc.policy], tc.port)
		if !found || !reflect.DeepEqual(peers, tc.want) {
			t.Errorf("NetworkPolicy %s lets port %d from %+v (a rule: %v), want %+v", tc.policy, tc.port, peers, found, tc.want)
		}
	}
	for _, np := range nps {
		np.Namespace = env.Namespace(t, "netpol")
		if err := env.Client.Create(context.Background(), &np, client.DryRunAll); err != nil {
			t.Errorf("the apiserver refuses NetworkPolicy %s: %v", np.Name, err)
		}
	}

	off := policies(parseChart(t, env.HelmTemplate(t)))
	if _, ok := off["clearance-verifier"]; ok {
		t.Error("the default chart gives the verifier a NetworkPolicy")
	}
	for _, port := range []int32{8080, 8081, 8090} {
		if peers, found := peersOf(off["clearance-webhook"], port); !found || peers != nil {
			t.Errorf("the default chart lets the operator's port %d from %+v, want any pod", port, peers)
		}
	}
}
