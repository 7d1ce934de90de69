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
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// hook is what must agree between the generated manifests and the chart.
type hook struct {
	path            string
	operations      []string
	resources       []string
	matchConditions string
	objectSelector  string
	failurePolicy   string
}

func hooksOf(validating *admissionregistrationv1.ValidatingWebhookConfiguration, mutating *admissionregistrationv1.MutatingWebhookConfiguration, path func(admissionregistrationv1.WebhookClientConfig) string) map[string]hook {
	out := map[string]hook{}
	add := func(name string, cc admissionregistrationv1.WebhookClientConfig, rules []admissionregistrationv1.RuleWithOperations, conds []admissionregistrationv1.MatchCondition, objects *metav1.LabelSelector, failure *admissionregistrationv1.FailurePolicyType) {
		var h hook
		if failure != nil {
			h.failurePolicy = string(*failure)
		}
		h.path = path(cc)
		h.matchConditions = fmt.Sprint(conds)
		h.objectSelector = objects.String()
		for _, r := range rules {
			for _, op := range r.Operations {
				h.operations = append(h.operations, string(op))
			}
			h.resources = append(h.resources, r.Resources...)
		}
		slices.Sort(h.operations)
		slices.Sort(h.resources)
		out[name] = h
	}
	for _, w := range validating.Webhooks {
		add(w.Name, w.ClientConfig, w.Rules, w.MatchConditions, w.ObjectSelector, w.FailurePolicy)
	}
	for _, w := range mutating.Webhooks {
		add(w.Name, w.ClientConfig, w.Rules, w.MatchConditions, w.ObjectSelector, w.FailurePolicy)
	}
	return out
}

// TestTheChartRegistersEveryGeneratedWebhook keeps the chart's hand-written webhook
// configurations in step with the markers: same webhooks, paths, operations, resources, match
// conditions, object selectors and failure policies, each away from kube-system, and each
// called only when the field its rule reads is set or changed (a match condition, or create
// only).
func TestTheChartRegistersEveryGeneratedWebhook(t *testing.T) {
	out := env.HelmTemplate(t)
	var chartV *admissionregistrationv1.ValidatingWebhookConfiguration
	var chartM *admissionregistrationv1.MutatingWebhookConfiguration
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
		case "ValidatingWebhookConfiguration":
			chartV = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			err = yaml.Unmarshal(doc, chartV)
		case "MutatingWebhookConfiguration":
			chartM = &admissionregistrationv1.MutatingWebhookConfiguration{}
			err = yaml.Unmarshal(doc, chartM)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if chartV == nil || chartM == nil {
		t.Fatal("the chart renders no webhook configurations")
	}
	manifests, err := os.ReadFile(filepath.Join(env.Root, "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	genV, genM, err := Configurations(manifests, "https://x", "clearance-system")
	if err != nil {
		t.Fatal(err)
	}
	byURL := func(cc admissionregistrationv1.WebhookClientConfig) string {
		return strings.TrimPrefix(*cc.URL, "https://x")
	}
	byService := func(cc admissionregistrationv1.WebhookClientConfig) string {
		if cc.Service == nil || cc.Service.Path == nil || cc.Service.Name != "clearance-webhook" || cc.Service.Namespace != "clearance-system" {
			return "not the clearance-webhook Service"
		}
		return *cc.Service.Path
	}
	want, got := hooksOf(genV, genM, byURL), hooksOf(chartV, chartM, byService)
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("the chart lacks webhook %s", name)
			continue
		}
		if g.path != w.path || !slices.Equal(g.operations, w.operations) || !slices.Equal(g.resources, w.resources) ||
			g.matchConditions != w.matchConditions || g.objectSelector != w.objectSelector || g.failurePolicy != w.failurePolicy {
			t.Errorf("webhook %s: chart %+v, markers %+v", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("the chart registers %s, which no marker declares", name)
		}
	}
	for _, w := range chartV.Webhooks {
		if w.NamespaceSelector == nil {
			t.Errorf("webhook %s must exclude kube-system", w.Name)
		}
		if len(w.MatchConditions) == 0 && !slices.Equal(hooksOf(&admissionregistrationv1.ValidatingWebhookConfiguration{Webhooks: []admissionregistrationv1.ValidatingWebhook{w}},
			&admissionregistrationv1.MutatingWebhookConfiguration{}, byService)[w.Name].operations, []string{"CREATE"}) {
			t.Errorf("webhook %s is called on every update: give it a match condition on the field its rule reads", w.Name)
		}
	}
	for _, w := range chartM.Webhooks {
		if w.NamespaceSelector == nil || len(w.MatchConditions) == 0 {
			t.Errorf("webhook %s must exclude kube-system and be called only when the create names another creator", w.Name)
		}
	}
}
