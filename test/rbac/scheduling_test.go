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
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestEveryPodOfTheChartTakesWhereItRunsAndWhatItCarries: each component's extraArgs reach its
// own container only; imagePullSecrets, priorityClassName,
// podLabels and podAnnotations reach every pod of the chart; nodeSelector, tolerations and
// affinity each reach the one component they are given for; the chart's selector labels win over
// podLabels (a label of the same name would take the pods out of their Deployment and Service);
// the scrape annotations stay with the pods that serve metrics; the apiserver takes every
// Deployment. By default a pod carries none of them.
func TestEveryPodOfTheChartTakesWhereItRunsAndWhatItCarries(t *testing.T) {
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(`console: {enabled: true, extraArgs: ["--console-oidc-provider-name=Corporate SSO"], affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: Exists}]}]}}}}
verifier: {extraArgs: [--kube-api-qps=50], tolerations: [{key: edge, operator: Exists, effect: NoSchedule}]}
extraArgs: [--apikey-workers=4]
nodeSelector: {pool: operators}
imagePullSecrets: [{name: registry-credentials}]
priorityClassName: clearance-critical
podLabels: {team: platform, app.kubernetes.io/component: other}
podAnnotations: {example.com/owner: platform, prometheus.io/port: "9999"}
scrapeAnnotations: true
`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := parseChart(t, env.HelmTemplate(t, "-f", values))
	for _, tc := range []struct {
		deployment   string
		extraArg     string
		nodeSelector bool
		tolerations  bool
		affinity     bool
		scrape       bool
	}{
		{"clearance", "--apikey-workers=4", true, false, false, true},
		{"clearance-verifier", "--kube-api-qps=50", false, true, false, true},
		{"clearance-console", "--console-oidc-provider-name=Corporate SSO", false, false, true, false},
	} {
		d := r.deployment(tc.deployment)
		if d == nil {
			t.Fatalf("no Deployment %s", tc.deployment)
		}
		pod := d.Spec.Template
		args := argsOf(d)
		for _, other := range []string{"--apikey-workers=4", "--kube-api-qps=50", "--console-oidc-provider-name=Corporate SSO"} {
			if slices.Contains(args, other) != (other == tc.extraArg) {
				t.Errorf("%s: its args %v, want %s of its extraArgs and no other component's", tc.deployment, args, tc.extraArg)
			}
		}
		for k, v := range d.Spec.Selector.MatchLabels {
			if pod.Labels[k] != v {
				t.Errorf("%s: the pods' label %s is %q, its selector wants %q", tc.deployment, k, pod.Labels[k], v)
			}
		}
		if pod.Labels["team"] != "platform" || pod.Annotations["example.com/owner"] != "platform" {
			t.Errorf("%s: podLabels and podAnnotations did not reach the pods: %v, %v", tc.deployment, pod.Labels, pod.Annotations)
		}
		if pod.Spec.PriorityClassName != "clearance-critical" || len(pod.Spec.ImagePullSecrets) != 1 || pod.Spec.ImagePullSecrets[0].Name != "registry-credentials" {
			t.Errorf("%s: priorityClassName %q, imagePullSecrets %v", tc.deployment, pod.Spec.PriorityClassName, pod.Spec.ImagePullSecrets)
		}
		if got := pod.Spec.NodeSelector["pool"] == "operators"; got != tc.nodeSelector {
			t.Errorf("%s: nodeSelector %v", tc.deployment, pod.Spec.NodeSelector)
		}
		if got := len(pod.Spec.Tolerations) == 1 && pod.Spec.Tolerations[0].Key == "edge"; got != tc.tolerations {
			t.Errorf("%s: tolerations %v", tc.deployment, pod.Spec.Tolerations)
		}
		if got := pod.Spec.Affinity != nil && pod.Spec.Affinity.NodeAffinity != nil; got != tc.affinity {
			t.Errorf("%s: affinity %+v", tc.deployment, pod.Spec.Affinity)
		}
		if got := pod.Annotations["prometheus.io/scrape"] == "true" && pod.Annotations["prometheus.io/port"] == "8080"; got != tc.scrape {
			t.Errorf("%s: scrape annotations %v, want them: %v (on port 8080, whatever podAnnotations say)", tc.deployment, pod.Annotations, tc.scrape)
		}
		d.Namespace = env.Namespace(t, "scheduling")
		if err := env.Client.Create(context.Background(), d, client.DryRunAll); err != nil {
			t.Errorf("the apiserver refuses Deployment %s: %v", tc.deployment, err)
		}
	}

	byDefault := parseChart(t, env.HelmTemplate(t, "--set", "console.enabled=true"))
	for _, d := range byDefault.deployments {
		pod := d.Spec.Template
		if pod.Spec.PriorityClassName != "" || pod.Spec.ImagePullSecrets != nil || pod.Spec.NodeSelector != nil ||
			pod.Spec.Tolerations != nil || pod.Spec.Affinity != nil || pod.Annotations != nil {
			t.Errorf("by default %s carries %+v, annotations %v", d.Name, pod.Spec, pod.Annotations)
		}
		if len(pod.Labels) != len(d.Spec.Selector.MatchLabels) {
			t.Errorf("by default %s's pods carry labels %v beyond their selector's %v", d.Name, pod.Labels, d.Spec.Selector.MatchLabels)
		}
	}
}
