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
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// registered is one webhook of the configurations Configurations returns.
type registered struct {
	name      string
	config    admissionregistrationv1.WebhookClientConfig
	namespace *metav1.LabelSelector
}

func registeredWebhooks(v *admissionregistrationv1.ValidatingWebhookConfiguration, m *admissionregistrationv1.MutatingWebhookConfiguration) []registered {
	var out []registered
	for _, w := range v.Webhooks {
		out = append(out, registered{w.Name, w.ClientConfig, w.NamespaceSelector})
	}
	for _, w := range m.Webhooks {
		out = append(out, registered{w.Name, w.ClientConfig, w.NamespaceSelector})
	}
	return out
}

func shippedManifests(t *testing.T) []byte {
	t.Helper()
	manifests, err := os.ReadFile(filepath.Join(env.Root, "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return manifests
}

// TestEveryWebhookSparesKubeSystemAndTheOperatorsNamespaceAndCallsTheOperatorAtItsPath: what an
// operator running outside the cluster registers calls it at base+path, whether or not the base
// ends in a slash, for every webhook of both configurations, and never for an object in
// kube-system or in the operator's own namespace. Manifests without both configurations are an
// error, not a half registration.
func TestEveryWebhookSparesKubeSystemAndTheOperatorsNamespaceAndCallsTheOperatorAtItsPath(t *testing.T) {
	manifests := shippedManifests(t)
	paths := []string{createdByPath, orgConnectionPath, applicationPath, apiKeyPath}
	for _, base := range []string{"https://localhost:9443", "https://localhost:9443/"} {
		for _, operatorNS := range []string{"clearance-system", "ops"} {
			v, m, err := Configurations(manifests, base, operatorNS)
			if err != nil {
				t.Fatal(err)
			}
			hooks := registeredWebhooks(v, m)
			if len(v.Webhooks) == 0 || len(m.Webhooks) == 0 {
				t.Fatalf("registered %d validating and %d mutating webhooks", len(v.Webhooks), len(m.Webhooks))
			}
			var called []string
			for _, h := range hooks {
				if h.config.URL == nil || h.config.Service != nil {
					t.Errorf("%s (base %s): client config %+v, want a URL", h.name, base, h.config)
					continue
				}
				called = append(called, strings.TrimPrefix(*h.config.URL, "https://localhost:9443"))
				sel, err := metav1.LabelSelectorAsSelector(h.namespace)
				if err != nil || h.namespace == nil {
					t.Errorf("%s: namespace selector %v: %v", h.name, h.namespace, err)
					continue
				}
				for ns, want := range map[string]bool{"kube-system": false, operatorNS: false, "acme": true, "default": true} {
					if got := sel.Matches(labels.Set{"kubernetes.io/metadata.name": ns}); got != want {
						t.Errorf("%s with the operator in %s: called for namespace %s: %t, want %t", h.name, operatorNS, ns, got, want)
					}
				}
			}
			slices.Sort(called)
			if want := slices.Sorted(slices.Values(paths)); !slices.Equal(called, want) {
				t.Errorf("base %s: webhooks called at %q, want %q", base, called, want)
			}
		}
	}
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		var kept [][]byte
		for _, doc := range bytes.Split(manifests, []byte("\n---\n")) {
			if !bytes.Contains(doc, []byte("kind: "+kind)) {
				kept = append(kept, doc)
			}
		}
		if _, _, err := Configurations(bytes.Join(kept, []byte("\n---\n")), "https://localhost:9443", "ops"); err == nil {
			t.Errorf("manifests without a %s were registered", kind)
		}
	}
}

// TestRegisteringTheWebhooksAgainKeepsTheCAInjectedIntoThem: an operator that starts again
// registers its configurations again (here at another URL) and keeps the CA bundle injected into
// every webhook, so no admission call fails its TLS handshake meanwhile (failing open, that is
// with the webhooks' rules silently off).
func TestRegisteringTheWebhooksAgainKeepsTheCAInjectedIntoThem(t *testing.T) {
	ctx := context.Background()
	manifests := shippedManifests(t)
	at := func(base string) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration) {
		t.Helper()
		v, m, err := Configurations(manifests, base, "ops")
		if err != nil {
			t.Fatal(err)
		}
		// Without rules the apiserver never calls them: the rest of the suite is not slowed.
		for i := range v.Webhooks {
			v.Webhooks[i].Rules = nil
		}
		for i := range m.Webhooks {
			m.Webhooks[i].Rules = nil
		}
		return v, m
	}
	v, m := at("https://localhost:1")
	t.Cleanup(func() {
		for _, obj := range []client.Object{v, m} {
			if err := env.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		}
	})
	if err := Register(ctx, env.Client, v, m); err != nil {
		t.Fatal(err)
	}
	data, _, err := certificateData(certRotator("ops", "localhost"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca := data["ca.crt"]
	for _, w := range []rotator.WebhookInfo{{Name: ValidatingConfigurationName, Type: rotator.Validating}, {Name: MutatingConfigurationName, Type: rotator.Mutating}} {
		if err := injectCABundle(ctx, env.Client, w, ca); err != nil {
			t.Fatal(err)
		}
	}
	v2, m2 := at("https://localhost:2")
	if err := Register(ctx, env.Client, v2, m2); err != nil {
		t.Fatalf("registering again: %v", err)
	}
	for _, obj := range OwnConfigurations() {
		name := obj.GetName()
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
			t.Fatal(err)
		}
		for i, cfg := range clientConfigs(obj) {
			if !bytes.Equal(cfg.CABundle, ca) {
				t.Errorf("%s webhook %d lost its CA bundle when registered again", name, i)
			}
			if cfg.URL == nil || !strings.HasPrefix(*cfg.URL, "https://localhost:2/") {
				t.Errorf("%s webhook %d calls %v, want the new URL", name, i, cfg.URL)
			}
		}
	}
}
