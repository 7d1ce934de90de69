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

package v1alpha1_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestRoleTextsAreTheOnesDocsAPIShows: docs/api.md renders each Role constant's doc comment,
// which must be the constant's name and the role's Summary, the text the console's roles page
// shows, so the two cannot drift; and each role's ClusterRole is one the chart ships. (make generate renders docs/api.md from the comments.)
func TestRoleTextsAreTheOnesDocsAPIShows(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	roles, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "people_roles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range v1.Roles {
		if !strings.Contains(string(roles), "\n  name: "+r.ClusterRole()+"\n") {
			t.Errorf("config/rbac/people_roles.yaml has no ClusterRole %s for role %s", r.ClusterRole(), r)
		}
		if r.Title() == "" || r.Summary() == "" || r.ClusterRole() == "" || len(r.ApplicationMay()) == 0 || len(r.PeopleMay()) == 0 {
			t.Errorf("role %s lacks a text", r)
			continue
		}
		row := "| `" + string(r) + "` | Role" + string(r) + " " + r.Summary() + "<br /> |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/api.md lacks the row %q: make the doc comment of Role%s say %q and run make generate", row, r, r.Summary())
		}
		if got, ok := v1.RoleOfClusterRole(r.ClusterRole()); !ok || got != r {
			t.Errorf("ClusterRole %s is role %q, want %s", r.ClusterRole(), got, r)
		}
	}
	if _, ok := v1.RoleOfClusterRole("admin"); ok {
		t.Error("the built-in admin ClusterRole counts as a Clearance role")
	}
}
