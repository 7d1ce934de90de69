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

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

const (
	createdByPath     = "/mutate-created-by"
	orgConnectionPath = "/validate-access-clearance-dev-v1alpha1-orgconnection"
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
// the generated configurations against a real apiserver: a label edit calls no webhook, a
// role change calls the validator only, an edit of the created-by annotation the mutator.
func TestTheApiserverCallsAWebhookOnlyWhenItHasSomethingToJudge(t *testing.T) {
	peopleRoles(t)
	org := env.Namespace(t, "conditions")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	c := conn(org, "bi", newID(), v1.RoleObserver)
	ctx := context.Background()
	if err := ada.c.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	patch := func(body string) error {
		return ada.c.Patch(ctx, c.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(body)))
	}
	steps := []struct {
		what      string
		patch     string
		wantErr   bool
		createdBy float64
		validator float64
	}{
		{what: "a label edit", patch: `{"metadata":{"labels":{"team":"bi"}}}`},
		{what: "an annotation edit", patch: `{"metadata":{"annotations":{"note":"quarterly review"}}}`},
		{what: "a role change", patch: `{"spec":{"role":"Analyst"}}`, validator: 1},
		{what: "a created-by edit", patch: `{"metadata":{"annotations":{"access.clearance.dev/created-by":"mallory"}}}`, wantErr: true, createdBy: 1},
	}
	for _, s := range steps {
		before := webhookCalls(t)
		err := patch(s.patch)
		if (err != nil) != s.wantErr {
			t.Errorf("%s: error %v, want an error: %t", s.what, err, s.wantErr)
		}
		after := webhookCalls(t)
		if got := after[createdByPath] - before[createdByPath]; got != s.createdBy {
			t.Errorf("%s called the created-by mutator %g times, want %g", s.what, got, s.createdBy)
		}
		if got := after[orgConnectionPath] - before[orgConnectionPath]; got != s.validator {
			t.Errorf("%s called the OrgConnection validator %g times, want %g", s.what, got, s.validator)
		}
	}
}
