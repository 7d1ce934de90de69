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
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/webhook"
)

// TestTheOperatorWritesNoWebhookConfigurationButItsOwn: update or patch of any webhook
// configuration would let the operator's credentials switch off another product's admission or
// send every Pod to a webhook of their choosing. Its ClusterRole (config/rbac, which the chart
// copies) reads them all and writes only its two, by name, and creates and deletes none. The
// operator, as that ServiceAccount with its webhooks, still registers over the two
// configurations the chart would have made, injects its CA and becomes ready; asked to create
// them itself, it says what it lacks.
func TestTheOperatorWritesNoWebhookConfigurationButItsOwn(t *testing.T) {
	ctx := context.Background()
	operator, _, err := env.OperatorIdentity()
	if err != nil {
		t.Fatal(err)
	}
	resources := map[string]string{
		"validatingwebhookconfigurations": webhook.ValidatingConfigurationName,
		"mutatingwebhookconfigurations":   webhook.MutatingConfigurationName,
	}
	allowed := func(verb, resource, name string) bool {
		return env.Review(t, authorizationv1.SubjectAccessReviewSpec{
			User:   testenv.OperatorUser,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:clearance-system"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: admissionregistrationv1.GroupName, Version: "v1", Resource: resource, Verb: verb, Name: name,
			},
		}).Allowed
	}
	others := []string{"", "gatekeeper-validating-webhook-configuration", "kyverno-resource-mutating-webhook-cfg", "clearance-validating-webhook-configuration-2"}
	for resource, own := range resources {
		for _, verb := range []string{"get", "list", "watch"} {
			if !allowed(verb, resource, "") {
				t.Errorf("the operator may not %s %s: the certificate rotator's cache lists them", verb, resource)
			}
		}
		for _, verb := range []string{"update", "patch"} {
			if !allowed(verb, resource, own) {
				t.Errorf("the operator may not %s %s %s: it could not inject its CA", verb, resource, own)
			}
			for _, name := range append(others, otherOwn(resources, resource)) {
				if allowed(verb, resource, name) {
					t.Errorf("the operator may %s %s %q, which is not its own", verb, resource, name)
				}
			}
		}
		for _, name := range append(others, own) {
			for _, verb := range []string{"create", "delete", "deletecollection"} {
				if allowed(verb, resource, name) {
					t.Errorf("the operator may %s %s %q", verb, resource, name)
				}
			}
		}
	}

	// Registering with nothing there: refused by the apiserver, and the error says why and
	// what to do.
	for _, o := range webhook.OwnConfigurations() {
		if err := env.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			t.Fatal(err)
		}
	}
	manifests, err := os.ReadFile(filepath.Join(env.Root, "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	validating, mutating, err := webhook.Configurations(manifests, "https://localhost:1", "clearance-system")
	if err != nil {
		t.Fatal(err)
	}
	asOperator, err := client.New(operator, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	err = webhook.Register(ctx, asOperator, validating.DeepCopy(), mutating.DeepCopy())
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "make run uses yours") {
		t.Fatalf("registering without the configurations, as the operator: %v, want a refusal saying what it lacks", err)
	}

	// The operator process as its ServiceAccount, with its webhooks: StartOperator returns once
	// /readyz answers, which means the served certificate verifies against the CA the operator
	// injected into both configurations (written by name).
	t.Cleanup(func() {
		// Left behind, they would send the other tests' requests to a stopped process.
		for _, o := range webhook.OwnConfigurations() {
			if err := env.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				t.Error(err)
			}
		}
	})
	op, err := env.StartOperator(testenv.OperatorOptions{Name: "webhook-rbac", WithWebhooks: true, ServiceAccount: true})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Stop()
	for _, o := range webhook.OwnConfigurations() {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		if n := webhookCount(o); n == 0 {
			t.Errorf("%s has no webhooks after the operator registered", o.GetName())
		}
	}
}

// otherOwn is the operator's configuration of the other kind than resource: its name under
// resource is still not its own.
func otherOwn(resources map[string]string, resource string) string {
	for r, name := range resources {
		if r != resource {
			return name
		}
	}
	return ""
}

func webhookCount(o client.Object) int {
	switch c := o.(type) {
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		return len(c.Webhooks)
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		return len(c.Webhooks)
	}
	return 0
}
