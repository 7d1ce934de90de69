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

package controllers

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

func TestConnectionResolvesToTheOneApplicationHoldingItsID(t *testing.T) {
	const id = "app_0025burfp0j7epb0hqfcuw340g"
	holder := func(ns, name string) v1.Application {
		return v1.Application{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       v1.ApplicationSpec{Description: "Acme BI export"},
		}
	}
	tests := []struct {
		name         string
		pinned       string
		holders      []v1.Application
		wantApp      string // namespace/name, "" for none
		wantReason   string
		wantContains []string
	}{
		{
			name:         "unpinned and no Application holds the ID yet",
			wantReason:   v1.ReasonApplicationNotFound,
			wantContains: []string{"no Application has ID " + id, "resolves by itself"},
		},
		{
			name:    "unpinned and one Application holds the ID",
			holders: []v1.Application{holder("acme", "bi")},
			wantApp: "acme/bi",
		},
		{
			name:         "unpinned and two Applications claim the ID",
			holders:      []v1.Application{holder("acme", "bi"), holder("evil", "bi-clone")},
			wantReason:   v1.ReasonConflict,
			wantContains: []string{"2 Applications hold ID " + id, "org acme", "org evil", "until only one does"},
		},
		{
			name:    "pinned and the holder is in the pinned namespace",
			pinned:  "acme",
			holders: []v1.Application{holder("acme", "bi")},
			wantApp: "acme/bi",
		},
		{
			name:    "pinned: the holder in the pinned namespace wins over a later claim elsewhere",
			pinned:  "acme",
			holders: []v1.Application{holder("evil", "bi-clone"), holder("acme", "bi")},
			wantApp: "acme/bi",
		},
		{
			name:         "pinned but the only holder is in another namespace",
			pinned:       "acme",
			holders:      []v1.Application{holder("evil", "bi-clone")},
			wantReason:   v1.ReasonConflict,
			wantContains: []string{"held by Application evil/bi-clone", "org acme", "delete and re-create this OrgConnection"},
		},
		{
			name:         "pinned and no Application holds the ID any more",
			pinned:       "acme",
			wantReason:   v1.ReasonApplicationNotFound,
			wantContains: []string{id, "org acme", "no longer exists"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := &v1.OrgConnection{
				ObjectMeta: metav1.ObjectMeta{Namespace: "partner", Name: "acme-bi"},
				Spec:       v1.OrgConnectionSpec{ApplicationID: id, Role: v1.RoleObserver},
				Status:     v1.OrgConnectionStatus{ApplicationNamespace: tt.pinned},
			}
			app, reason, message := resolveConnection(conn, tt.holders)
			if tt.wantApp != "" {
				if app == nil || app.Namespace+"/"+app.Name != tt.wantApp {
					t.Fatalf("resolveConnection = %v (%s: %q), want %s", app, reason, message, tt.wantApp)
				}
				if reason != "" || message != "" {
					t.Errorf("resolved with reason %q, message %q; want none", reason, message)
				}
				// The result points into holders, so the caller reads the live object.
				found := false
				for i := range tt.holders {
					found = found || app == &tt.holders[i]
				}
				if !found {
					t.Errorf("resolveConnection returned a copy, not an element of holders")
				}
				return
			}
			if app != nil {
				t.Fatalf("resolveConnection = %s/%s, want none (%s)", app.Namespace, app.Name, tt.wantReason)
			}
			if reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", reason, tt.wantReason)
			}
			for _, s := range tt.wantContains {
				if !strings.Contains(message, s) {
					t.Errorf("message %q does not mention %q", message, s)
				}
			}
		})
	}
}

// TestOneConnectionOfAnApplicationIsInForceInAnOrgWhateverTheCacheOrder: of an org's
// connections of one application, the one in force is never one being deleted; it is a Ready
// one whenever there is one (a valid grant is never replaced by a newer connection), then the
// oldest, then the first by name; and it is the same one whatever order the cache lists them in,
// so every pass and every replica agrees on which one grants the role.
func TestOneConnectionOfAnApplicationIsInForceInAnOrgWhateverTheCacheOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 12))
	t0 := metav1.NewTime(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	describe := func(conns []v1.OrgConnection) string {
		var b strings.Builder
		for _, c := range conns {
			fmt.Fprintf(&b, "\n  %s created %s ready %t deleting %t", c.Name, c.CreationTimestamp.Format(time.TimeOnly), ready(c.Status.Conditions), c.DeletionTimestamp != nil)
		}
		return b.String()
	}
	for range 5000 {
		conns := make([]v1.OrgConnection, 1+rng.IntN(5))
		for i, n := range rng.Perm(len(conns)) {
			c := &conns[i]
			c.Name = fmt.Sprintf("conn-%d", n)
			c.CreationTimestamp = metav1.NewTime(t0.Add(time.Duration(rng.IntN(3)) * time.Second))
			status := metav1.ConditionFalse
			if rng.IntN(2) == 0 {
				status = metav1.ConditionTrue
			}
			c.Status.Conditions = []metav1.Condition{{Type: v1.ConditionReady, Status: status, Reason: v1.ReasonConnected}}
			if rng.IntN(4) == 0 {
				c.DeletionTimestamp = &t0
			}
		}
		// What the rule says, spelled out: live ones, Ready first, then oldest, then by name.
		var want *v1.OrgConnection
		for i := range conns {
			c := &conns[i]
			switch {
			case c.DeletionTimestamp != nil:
			case want == nil,
				ready(c.Status.Conditions) && !ready(want.Status.Conditions),
				ready(c.Status.Conditions) == ready(want.Status.Conditions) && c.CreationTimestamp.Before(&want.CreationTimestamp),
				ready(c.Status.Conditions) == ready(want.Status.Conditions) && c.CreationTimestamp.Equal(&want.CreationTimestamp) && c.Name < want.Name:
				want = c
			}
		}
		for range 3 {
			listed := slices.Clone(conns)
			rng.Shuffle(len(listed), func(i, j int) { listed[i], listed[j] = listed[j], listed[i] })
			got := inForce(listed)
			switch {
			case want == nil && got != nil:
				t.Fatalf("%s is in force, but every connection is being deleted:%s", got.Name, describe(listed))
			case want != nil && (got == nil || got.Name != want.Name):
				t.Fatalf("in force: %v, want %s, of:%s", got, want.Name, describe(listed))
			}
		}
	}
}
