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
	"strings"
	"testing"

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
