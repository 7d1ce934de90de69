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
	"bufio"
	"bytes"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/clearance-dev/clearance/internal/signingkey"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// rendered is the chart as helm template wrote it, by kind.
type rendered struct {
	deployments  []appsv1.Deployment
	pdbs         []policyv1.PodDisruptionBudget
	clusterRoles map[string]rbacv1.ClusterRole
	roles        map[string]rbacv1.Role // by namespace/name
	bindings     []binding
	// docs are the raw documents, for applying a subset.
	docs []renderedDoc
}

type renderedDoc struct {
	kind string
	data []byte
}

// binding is a RoleBinding or ClusterRoleBinding, with the namespace of a RoleBinding.
type binding struct {
	kind, namespace, name string
	roleRef               rbacv1.RoleRef
	subjects              []rbacv1.Subject
}

func parseChart(t *testing.T, out []byte) rendered {
	t.Helper()
	r := rendered{clusterRoles: map[string]rbacv1.ClusterRole{}, roles: map[string]rbacv1.Role{}}
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := docs.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == "" {
			continue
		}
		r.docs = append(r.docs, renderedDoc{kind: meta.Kind, data: doc})
		switch meta.Kind {
		case "Deployment":
			var d appsv1.Deployment
			err = yaml.Unmarshal(doc, &d)
			r.deployments = append(r.deployments, d)
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			err = yaml.Unmarshal(doc, &p)
			r.pdbs = append(r.pdbs, p)
		case "ClusterRole":
			var c rbacv1.ClusterRole
			err = yaml.Unmarshal(doc, &c)
			r.clusterRoles[c.Name] = c
		case "Role":
			var c rbacv1.Role
			err = yaml.Unmarshal(doc, &c)
			r.roles[c.Namespace+"/"+c.Name] = c
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			err = yaml.Unmarshal(doc, &b)
			r.bindings = append(r.bindings, binding{kind: meta.Kind, name: b.Name, roleRef: b.RoleRef, subjects: b.Subjects})
		case "RoleBinding":
			var b rbacv1.RoleBinding
			err = yaml.Unmarshal(doc, &b)
			r.bindings = append(r.bindings, binding{kind: meta.Kind, namespace: b.Namespace, name: b.Name, roleRef: b.RoleRef, subjects: b.Subjects})
		}
		if err != nil {
			t.Fatalf("decoding a %s: %v", meta.Kind, err)
		}
	}
	return r
}

func (r rendered) deployment(name string) *appsv1.Deployment {
	for i := range r.deployments {
		if r.deployments[i].Name == name {
			return &r.deployments[i]
		}
	}
	return nil
}

// rulesOf returns every rule bound to the ServiceAccount ns/name by the chart's bindings, and
// the bindings whose role the chart does not render (a built-in role would grant more).
func (r rendered) rulesOf(ns, name string) (rules []rbacv1.PolicyRule, unknown []string) {
	for _, b := range r.bindings {
		if !slices.ContainsFunc(b.subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Name == name && s.Namespace == ns
		}) {
			continue
		}
		switch b.roleRef.Kind {
		case "ClusterRole":
			c, ok := r.clusterRoles[b.roleRef.Name]
			if !ok || c.AggregationRule != nil {
				unknown = append(unknown, b.kind+" "+b.name+" -> ClusterRole "+b.roleRef.Name)
				continue
			}
			rules = append(rules, c.Rules...)
		case "Role":
			c, ok := r.roles[b.namespace+"/"+b.roleRef.Name]
			if !ok {
				unknown = append(unknown, b.kind+" "+b.name+" -> Role "+b.roleRef.Name)
				continue
			}
			rules = append(rules, c.Rules...)
		}
	}
	return rules, unknown
}

// touchesSecrets says whether a rule grants anything on Secrets.
func touchesSecrets(rule rbacv1.PolicyRule) bool {
	core := slices.Contains(rule.APIGroups, "") || slices.Contains(rule.APIGroups, "*")
	return core && (slices.Contains(rule.Resources, "secrets") || slices.Contains(rule.Resources, "*")) && len(rule.Verbs) > 0
}

func argsOf(d *appsv1.Deployment) []string {
	var args []string
	for _, c := range d.Spec.Template.Spec.Containers {
		args = append(args, c.Args...)
	}
	return args
}

// TestTheDefaultChartKeepsKeysAwayFromTheVerifier renders the chart with its default values: two
// Deployments, the operator without the verifier, the verifier under a ServiceAccount bound to
// no rule on Secrets but reading the OAuth token signing keys by name (get, list, watch of that
// one Secret: never a key Secret), mounting none, and a PodDisruptionBudget over the operator's
// webhook replicas.
func TestTheDefaultChartKeepsKeysAwayFromTheVerifier(t *testing.T) {
	r := parseChart(t, env.HelmTemplate(t))

	var names []string
	for _, d := range r.deployments {
		names = append(names, d.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"clearance", "clearance-verifier"}) {
		t.Fatalf("the default chart renders Deployments %v, want exactly clearance and clearance-verifier", names)
	}
	operator, verifier := r.deployment("clearance"), r.deployment("clearance-verifier")

	opArgs := argsOf(operator)
	if !slices.Contains(opArgs, "--enable-verifier=false") {
		t.Errorf("the operator must run without the verifier (--enable-verifier=false); its args: %v", opArgs)
	}
	vArgs := argsOf(verifier)
	for _, want := range []string{"--enable-controllers=false", "--enable-webhooks=false", "--enable-verifier"} {
		if !slices.Contains(vArgs, want) {
			t.Errorf("the verifier lacks %s; its args: %v", want, vArgs)
		}
	}

	// The verifier's identity: its own ServiceAccount, bound to rules the chart renders, none on
	// Secrets.
	vPod := verifier.Spec.Template.Spec
	if vPod.ServiceAccountName != "clearance-verifier" {
		t.Fatalf("the verifier runs as ServiceAccount %q, want clearance-verifier", vPod.ServiceAccountName)
	}
	if operator.Spec.Template.Spec.ServiceAccountName == vPod.ServiceAccountName {
		t.Fatal("the verifier shares the operator's ServiceAccount")
	}
	rules, unknown := r.rulesOf("clearance-system", "clearance-verifier")
	if len(unknown) > 0 {
		t.Errorf("the verifier is bound to roles the chart does not render (or aggregates): %v", unknown)
	}
	if len(rules) == 0 {
		t.Error("the verifier is bound to no rule at all; it needs to read Clearance objects")
	}
	signingKeys := 0
	for _, rule := range rules {
		switch {
		case touchesSecrets(rule) && slices.Equal(rule.ResourceNames, []string{signingkey.DefaultSecretName}) &&
			!slices.ContainsFunc(rule.Verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" }):
			signingKeys++
		case touchesSecrets(rule):
			t.Errorf("the verifier's ServiceAccount is bound to a rule on secrets other than reading the signing keys: %+v", rule)
		}
		for _, list := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs} {
			if slices.Contains(list, "*") {
				t.Errorf("wildcard in the verifier's rule %+v", rule)
			}
		}
	}
	if signingKeys != 1 {
		t.Errorf("the verifier may read the OAuth signing keys Secret %s by %d rules, want 1", signingkey.DefaultSecretName, signingKeys)
	}
	// Nor does a Secret reach it another way.
	for _, v := range vPod.Volumes {
		if v.Secret != nil || v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(p corev1.VolumeProjection) bool { return p.Secret != nil }) {
			t.Errorf("the verifier mounts a Secret: volume %s", v.Name)
		}
	}
	for _, c := range append(vPod.Containers, vPod.InitContainers...) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("the verifier's container %s reads Secret %s into $%s", c.Name, e.ValueFrom.SecretKeyRef.Name, e.Name)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				t.Errorf("the verifier's container %s reads Secret %s into its environment", c.Name, e.SecretRef.Name)
			}
		}
	}

	// A budget over the operator's pods (and not the verifier's, which has its own).
	opPods := labels.Set(operator.Spec.Template.Labels)
	vPods := labels.Set(verifier.Spec.Template.Labels)
	var budget *policyv1.PodDisruptionBudget
	for i, p := range r.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Fatalf("PodDisruptionBudget %s: %v", p.Name, err)
		}
		if sel.Matches(opPods) {
			if sel.Matches(vPods) {
				t.Errorf("PodDisruptionBudget %s selects the operator and the verifier together", p.Name)
			}
			budget = &r.pdbs[i]
		}
	}
	if budget == nil {
		t.Fatalf("no PodDisruptionBudget selects the operator's pods %v; PodDisruptionBudgets: %d", opPods, len(r.pdbs))
	}
	if budget.Spec.MinAvailable == nil || budget.Spec.MinAvailable.IntValue() < 1 ||
		operator.Spec.Replicas == nil || budget.Spec.MinAvailable.IntValue() >= int(*operator.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget %s keeps %v of %v operator pods: it must keep at least one and let one go",
			budget.Name, budget.Spec.MinAvailable, operator.Spec.Replicas)
	}
}

// TestTheChartRefusesAClusterWithoutTheAdmissionPolicyAPIs: the creator record and the role
// rule are admission policies the apiserver evaluates; on a cluster that cannot serve them the
// chart stops the install and says what is missing, rather than installing without them.
func TestTheChartRefusesAClusterWithoutTheAdmissionPolicyAPIs(t *testing.T) {
	const (
		validating = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
		mutating   = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"
	)
	for _, tc := range []struct {
		cluster string
		args    []string
		want    string
	}{
		{"Kubernetes 1.35", []string{"--kube-version", "1.35.0", "--api-versions", validating}, "chart requires kubeVersion: >=1.36.0-0"},
		{"1.37 with MutatingAdmissionPolicy switched off", []string{"--kube-version", "1.37.0", "--api-versions", validating},
			"does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy, with which the apiserver records who created each Application, APIKey and OrgConnection"},
		{"1.37 with ValidatingAdmissionPolicy switched off", []string{"--kube-version", "1.37.0", "--api-versions", mutating},
			"does not serve admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy, with which the apiserver decides role assignment"},
	} {
		if _, err := env.HelmTemplateFor(t, tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: the chart rendered or refused with other words (%v); want %q", tc.cluster, err, tc.want)
		}
	}
	if _, err := env.HelmTemplateFor(t, testenv.HelmOffline); err != nil {
		t.Errorf("a 1.37 cluster serving both: %v", err)
	}
}

// TestTheChartsOtherTopologies: one operator replica gets no budget (it would block every drain);
// verifier.separate=false still runs the verifier inside the operator, as one Deployment.
func TestTheChartsOtherTopologies(t *testing.T) {
	single := parseChart(t, env.HelmTemplate(t, "--set", "replicaCount=1"))
	for _, p := range single.pdbs {
		if p.Name == "clearance" {
			t.Error("one operator replica gets a PodDisruptionBudget, which would block every node drain")
		}
	}

	combined := parseChart(t, env.HelmTemplate(t, "--set", "verifier.separate=false"))
	if len(combined.deployments) != 1 || combined.deployments[0].Name != "clearance" {
		t.Fatalf("verifier.separate=false renders %d Deployments, want only clearance", len(combined.deployments))
	}
	if args := argsOf(&combined.deployments[0]); !slices.Contains(args, "--enable-verifier=true") {
		t.Errorf("verifier.separate=false: the operator must run the verifier; its args: %v", args)
	}
	for _, d := range combined.docs {
		if d.kind == "ServiceAccount" && strings.Contains(string(d.data), "clearance-verifier") {
			t.Error("verifier.separate=false still renders the verifier's ServiceAccount")
		}
	}
}

// TestTheChartPointsTheVerifierAtASharedRateLimitStore: verifier.rateLimitStore gives the
// verifier the store's URL, its replica count for the fallback and the password from an
// existing Secret, as an environment variable: never in the args or the values.
func TestTheChartPointsTheVerifierAtASharedRateLimitStore(t *testing.T) {
	out := parseChart(t, env.HelmTemplate(t,
		"--set", "verifier.replicaCount=3",
		"--set", "verifier.rateLimitStore.url=redis://valkey.cache:6379/0",
		"--set", "verifier.rateLimitStore.existingSecret=valkey",
		"--set", "verifier.rateLimitStore.passwordKey=valkey-password"))
	for _, d := range out.deployments {
		args := argsOf(&d)
		want := d.Name == "clearance-verifier"
		if got := slices.Contains(args, "--rate-limit-store=redis://valkey.cache:6379/0"); got != want {
			t.Errorf("Deployment %s: --rate-limit-store %v, want %v; args %v", d.Name, got, want, args)
		}
		if !want {
			continue
		}
		if !slices.Contains(args, "--rate-limit-store-fallback-replicas=3") || !slices.Contains(args, "--rate-limit-store-timeout=50ms") {
			t.Errorf("the verifier's args %v: want the timeout and its 3 replicas for the fallback", args)
		}
		var found bool
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "CLEARANCE_RATE_LIMIT_STORE_PASSWORD" {
				ref := e.ValueFrom.SecretKeyRef
				found = e.Value == "" && ref != nil && ref.Name == "valkey" && ref.Key == "valkey-password"
			}
		}
		if !found {
			t.Errorf("the verifier's env %v: want the password from Secret valkey, key valkey-password", d.Spec.Template.Spec.Containers[0].Env)
		}
	}
	for _, d := range parseChart(t, env.HelmTemplate(t)).deployments {
		for _, a := range argsOf(&d) {
			if strings.HasPrefix(a, "--rate-limit-store") {
				t.Errorf("the default chart sets %s on %s", a, d.Name)
			}
		}
	}
}

// TestTheFallbackShareHoldsHoweverFarTheAutoscalerScales: while the rate-limit store is
// unreachable each verifier replica allows limit/N of every key's limit, so the replicas together
// stay within the limit only while N is at least the replicas that run. Whatever the topology,
// the rendered N is at least the most replicas the rendered objects let run — the HPA's
// maxReplicas when one scales the verifier (never its minReplicas: at maxReplicas a key would get
// max/min times its limit), else the Deployment's replicas — and, unless set by hand, exactly
// that.
func TestTheFallbackShareHoldsHoweverFarTheAutoscalerScales(t *testing.T) {
	store := []string{"--set", "verifier.rateLimitStore.url=redis://valkey.cache:6379/0"}
	for _, c := range []struct {
		name string
		set  []string
		want int
	}{
		{"autoscaled from 2 to 10", []string{"verifier.hpa.enabled=true", "verifier.hpa.minReplicas=2", "verifier.hpa.maxReplicas=10"}, 10},
		{"autoscaled from 1 to 3", []string{"verifier.hpa.enabled=true", "verifier.hpa.minReplicas=1", "verifier.hpa.maxReplicas=3"}, 3},
		{"autoscaled at a fixed 4", []string{"verifier.hpa.enabled=true", "verifier.hpa.minReplicas=4", "verifier.hpa.maxReplicas=4"}, 4},
		{"5 replicas, no autoscaler", []string{"verifier.replicaCount=5"}, 5},
		{"5 replicas, an autoscaler off", []string{"verifier.replicaCount=5", "verifier.hpa.minReplicas=1", "verifier.hpa.maxReplicas=20"}, 5},
		{"inside 3 operator replicas", []string{"verifier.separate=false", "replicaCount=3"}, 3},
		{"set by hand above the maximum", []string{"verifier.hpa.enabled=true", "verifier.hpa.maxReplicas=10", "verifier.rateLimitStore.fallbackReplicas=12"}, 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := slices.Clone(store)
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			r := parseChart(t, env.HelmTemplate(t, args...))
			most := mostReplicas(t, r)
			var seen int
			for i := range r.deployments {
				d := &r.deployments[i]
				n, ok := fallbackReplicasOf(t, d)
				if !ok {
					continue
				}
				seen++
				if n < most[d.Name] {
					t.Errorf("Deployment %s runs up to %d replicas but shares each limit by %d: during a store outage a key gets up to %d/%d times its limit",
						d.Name, most[d.Name], n, most[d.Name], n)
				}
				if n != c.want {
					t.Errorf("Deployment %s: --rate-limit-store-fallback-replicas=%d, want %d", d.Name, n, c.want)
				}
			}
			if seen != 1 {
				t.Fatalf("%d Deployments run the verifier with a rate-limit store, want 1", seen)
			}
		})
	}
}

// mostReplicas is, per Deployment, the most replicas the rendered objects let it run: an HPA's
// maxReplicas when one scales it, else spec.replicas.
func mostReplicas(t *testing.T, r rendered) map[string]int {
	t.Helper()
	most := map[string]int{}
	for _, d := range r.deployments {
		most[d.Name] = 1
		if d.Spec.Replicas != nil {
			most[d.Name] = int(*d.Spec.Replicas)
		}
	}
	for _, doc := range r.docs {
		if doc.kind != "HorizontalPodAutoscaler" {
			continue
		}
		var hpa autoscalingv2.HorizontalPodAutoscaler
		if err := yaml.Unmarshal(doc.data, &hpa); err != nil {
			t.Fatal(err)
		}
		if ref := hpa.Spec.ScaleTargetRef; ref.Kind == "Deployment" {
			most[ref.Name] = int(hpa.Spec.MaxReplicas)
		}
	}
	return most
}

// fallbackReplicasOf reads --rate-limit-store-fallback-replicas from a Deployment's args.
func fallbackReplicasOf(t *testing.T, d *appsv1.Deployment) (int, bool) {
	t.Helper()
	for _, a := range argsOf(d) {
		if v, ok := strings.CutPrefix(a, "--rate-limit-store-fallback-replicas="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("Deployment %s: %s", d.Name, a)
			}
			return n, true
		}
	}
	return 0, false
}

// TestEverySecretAPodMountsIsOneTheChartMakes: a Secret volume that nothing renders keeps its
// pod from starting (ContainerCreating, FailedMount) without a word from helm. For each way the
// chart is commonly installed, every Secret a Deployment of it mounts is rendered by the chart
// itself or is the secretName of a cert-manager Certificate it renders.
func TestEverySecretAPodMountsIsOneTheChartMakes(t *testing.T) {
	for _, values := range [][]string{
		nil,
		{"--set", "webhooks.enabled=false"},
		{"--set", "webhooks.certManager.enabled=true"},
		{"--set", "console.enabled=true"},
	} {
		out := env.HelmTemplate(t, values...)
		made := map[string]bool{}
		mounted := map[string]string{} // Secret → the Deployment mounting it
		var mounts []string
		docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
		for {
			doc, err := docs.Read()
			if err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatal(err)
			}
			switch meta.Kind {
			case "Secret":
				var s corev1.Secret
				if err := yaml.Unmarshal(doc, &s); err != nil {
					t.Fatal(err)
				}
				made[s.Name] = true
			case "Certificate":
				var c struct {
					Spec struct {
						SecretName string `json:"secretName"`
					} `json:"spec"`
				}
				if err := yaml.Unmarshal(doc, &c); err != nil {
					t.Fatal(err)
				}
				made[c.Spec.SecretName] = true
			case "Deployment":
				var d appsv1.Deployment
				if err := yaml.Unmarshal(doc, &d); err != nil {
					t.Fatal(err)
				}
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.Secret != nil && (v.Secret.Optional == nil || !*v.Secret.Optional) {
						mounts = append(mounts, d.Name+" mounts Secret "+v.Secret.SecretName)
						mounted[v.Secret.SecretName] = d.Name
					}
				}
			}
		}
		for secret, deployment := range mounted {
			if !made[secret] {
				t.Errorf("helm template %v: Deployment %s mounts Secret %s, which nothing renders: its pods would never start", values, deployment, secret)
			}
		}
		t.Logf("helm template %v: %s", values, strings.Join(mounts, "; "))
	}
}
