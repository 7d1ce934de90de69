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

package v1alpha1

// What each role means, written once: the console's roles and permissions page shows these
// texts, and each Role constant's doc comment (which docs/api.md renders) is its name followed
// by its Summary, which TestRoleTextsAreTheOnesDocsAPIShows checks.

// roleText is what one role means.
// +kubebuilder:object:generate=false
type roleText struct {
	title, summary, clusterRole string
	application, people         []string
}

var roleTexts = map[Role]roleText{
	RoleObserver: {
		title:       "Observer",
		summary:     "reads only: a connected application may send requests that change nothing (GET, HEAD, OPTIONS); the recommended default.",
		clusterRole: "clearance-observer",
		application: []string{
			"Read requests (GET, HEAD, OPTIONS) to the org's APIs, for the metrics its connection allows.",
			"Nothing that changes data.",
		},
		people: []string{
			"See the org's applications, their keys (masked, never in full), its connections and its metric sets.",
			"See the org's activity.",
		},
	},
	RoleAnalyst: {
		title:       "Analyst",
		summary:     "reads and changes data: also requests with any other method, which need Analyst unless the verifier's --write-min-role says otherwise.",
		clusterRole: "clearance-analyst",
		application: []string{
			"Everything an Observer may.",
			"Requests that change data (POST, PUT, PATCH, DELETE and any other method).",
		},
		people: []string{
			"Everything an Observer may.",
		},
	},
	RoleTechnician: {
		title:       "Technician",
		summary:     "adds what the org's APIs reserve for technicians (minRole=Technician), such as operating devices and configuration.",
		clusterRole: "clearance-technician",
		application: []string{
			"Everything an Analyst may.",
			"Requests an API reserves for technicians (minRole=Technician), such as operating devices and configuration.",
		},
		people: []string{
			"Everything an Observer may.",
			"Edit the role of connected applications, up to Technician.",
			"Switch metrics on and off.",
		},
	},
	RoleOrgAdmin: {
		title:       "Org Admin",
		summary:     "may do everything, including what the org's APIs reserve for org admins (minRole=OrgAdmin).",
		clusterRole: "clearance-org-admin",
		application: []string{
			"Everything a Technician may.",
			"Requests an API reserves for org admins (minRole=OrgAdmin).",
		},
		people: []string{
			"Everything a Technician may.",
			"Create and rename applications; generate, enable, disable, rotate and revoke their keys; invalidate all keys of an application.",
			"Connect applications with any role, edit their role and disconnect them.",
			"With the built-in admin role it aggregates into: copy keys from their Secrets and see who holds which role.",
		},
	},
}

// Title is the role as people read it, e.g. Org Admin.
func (r Role) Title() string { return roleTexts[r].title }

// Summary says in one line what the role allows a connected application.
func (r Role) Summary() string { return roleTexts[r].summary }

// ClusterRole is the ClusterRole people are bound to, in an org's namespace, to hold the role.
func (r Role) ClusterRole() string { return roleTexts[r].clusterRole }

// ApplicationMay lists what an application connected with the role may do in the org.
func (r Role) ApplicationMay() []string { return roleTexts[r].application }

// PeopleMay lists what a person bound to the role's ClusterRole may do in the org.
func (r Role) PeopleMay() []string { return roleTexts[r].people }

// RoleOfClusterRole is the role a person bound to ClusterRole name holds, if it is one of
// Clearance's.
func RoleOfClusterRole(name string) (Role, bool) {
	for _, r := range Roles {
		if roleTexts[r].clusterRole == name {
			return r, true
		}
	}
	return "", false
}
