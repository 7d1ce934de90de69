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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

const (
	createdByPath     = "/mutate-created-by"
	orgConnectionPath = "/validate-access-clearance-dev-v1alpha1-orgconnection"
	applicationPath   = "/validate-access-clearance-dev-v1alpha1-application"
	apiKeyPath        = "/validate-access-clearance-dev-v1alpha1-apikey"
)

// webhookCalls is how many requests each webhook path has served in this process (the
// server's own controller_runtime_webhook_requests_total).
func webhookCalls(t *testing.T) map[string]float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "controller_runtime_webhook_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "webhook" {
					calls[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return calls
}

// TestTheApiserverCallsAWebhookOnlyWhenItHasSomethingToJudge checks the match conditions in
// the generated configurations against a real apiserver: an ordinary key create, a role change,
// a label, annotation or created-by edit call no webhook (the apiserver's policies judge them);
// a connection create calls the uniqueness check, a pinned ID the Application validator, rate
// limits the APIKey validator, and a create naming another creator the created-by mutator.
func TestTheApiserverCallsAWebhookOnlyWhenItHasSomethingToJudge(t *testing.T) {
	peopleRoles(t)
	org := env.Namespace(t, "conditions")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	ctx := context.Background()
	c := conn(org, "bi", newID(), v1.RoleObserver)
	patch := func(body string) func() error {
		return func() error {
			return ada.c.Patch(ctx, c.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(body)))
		}
	}
	create := func(o client.Object) func() error { return func() error { return ada.c.Create(ctx, o) } }
	key := func(name string, limits ...v1.RateLimit) *v1.APIKey {
		return &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name},
			Spec: v1.APIKeySpec{ApplicationName: "bi", TTL: &metav1.Duration{Duration: time.Hour}, RateLimits: limits}}
	}
	forged := key("forged")
	forged.Annotations = map[string]string{v1.AnnotationCreatedBy: "mallory"}
	steps := []struct {
		what    string
		do      func() error
		wantErr bool
		calls   map[string]float64
	}{
		{what: "a connection create", do: create(c), calls: map[string]float64{orgConnectionPath: 1}},
		{what: "a label edit", do: patch(`{"metadata":{"labels":{"team":"bi"}}}`)},
		{what: "an annotation edit", do: patch(`{"metadata":{"annotations":{"note":"quarterly review"}}}`)},
		{what: "a role change", do: patch(`{"spec":{"role":"Analyst"}}`)},
		{what: "a created-by edit", do: patch(`{"metadata":{"annotations":{"access.clearance.dev/created-by":"mallory"}}}`), wantErr: true},
		{what: "an Application create", do: create(&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "BI"}})},
		{what: "an Application create pinning its ID", do: create(&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "pinned"},
			Spec: v1.ApplicationSpec{Description: "BI", ApplicationID: newID()}}), calls: map[string]float64{applicationPath: 1}},
		{what: "an APIKey create", do: create(key("plain"))},
		// Refused by the webhook: Application bi defines no bucket "general".
		{what: "an APIKey create with rate limits", do: create(key("limited", v1.RateLimit{Name: "general", Limit: 1, Period: metav1.Duration{Duration: time.Hour}})),
			wantErr: true, calls: map[string]float64{apiKeyPath: 1}},
		{what: "an APIKey create naming another creator", do: create(forged), calls: map[string]float64{createdByPath: 1}},
	}
	for _, s := range steps {
		before := webhookCalls(t)
		err := s.do()
		if (err != nil) != s.wantErr {
			t.Errorf("%s: error %v, want an error: %t", s.what, err, s.wantErr)
		}
		after := webhookCalls(t)
		for _, path := range []string{createdByPath, orgConnectionPath, applicationPath, apiKeyPath} {
			if got := after[path] - before[path]; got != s.calls[path] {
				t.Errorf("%s called %s %g times, want %g", s.what, path, got, s.calls[path])
			}
		}
	}
	if forged.Annotations[v1.AnnotationCreatedBy] != "ada" {
		t.Errorf("the key created naming mallory records %q, want ada", forged.Annotations[v1.AnnotationCreatedBy])
	}
}
