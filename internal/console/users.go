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

package console

import (
	"net/http"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// The Users page: a People tab (who holds which Clearance role in the org) and an Applications
// tab (the applications the org created, with their keys, and those it connected).

const (
	tabPeople       = "people"
	tabApplications = "applications"
)

// usersData is the Users page.
type usersData struct {
	Tab       string
	CanPeople bool // may list the org's RoleBindings: the People tab is shown
	People    []personRole
	PeopleErr string
	Apps      applicationsData
	// OpenKeys names the application whose keys dialog opens with the page (after a change
	// made in that dialog).
	OpenKeys string
}

// personRole is one subject of a RoleBinding to one of Clearance's ClusterRoles.
type personRole struct {
	Kind, Name, Namespace, Binding string
	Role                           v1.Role
}

// applicationsData is the Applications tab: what this org created and what it connected.
type applicationsData struct {
	Created       []v1.Application
	CreatedError  string
	Connected     []v1.OrgConnection
	ConnectError  string
	CanCreate     bool
	CanRename     bool
	CanInvalidate bool
	CanConnect    bool
	CanEditRole   bool
	CanDisconnect bool
}

var listRoleBindings = permission{verb: "list", group: rbacv1.GroupName, resource: "rolebindings"}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, org, q := r.Context(), sess.currentOrg(), r.URL.Query()
	perms := allowed(ctx, sess, org, listRoleBindings, clearance("create", "applications"), clearance("patch", "applications"),
		clearance("patch", "apikeys"), clearance("create", "orgconnections"), clearance("patch", "orgconnections"), clearance("delete", "orgconnections"))
	data := usersData{Tab: q.Get("tab"), CanPeople: perms[listRoleBindings]}
	if data.Tab != tabPeople && data.Tab != tabApplications {
		data.Tab = tabApplications
		if data.CanPeople {
			data.Tab = tabPeople
		}
	}
	p := newPage(r, sess, "Users", "users")
	if data.Tab == tabPeople {
		p.Title = "Users · People"
		if data.CanPeople {
			data.People, data.PeopleErr = people(r, sess)
		}
	} else {
		p.Title = "Users · Applications"
		data.Apps = applications(r, sess, perms)
		if app := q.Get("keys"); app != "" && len(validation.IsDNS1123Subdomain(app)) == 0 {
			// The keys dialog opens again after a change made in it; its fragment shows the
			// messages of that change, so they stay for it.
			data.OpenKeys = app
			for _, f := range p.Flashes {
				sess.addFlash(f.Kind, f.Text)
			}
			p.Flashes = nil
		}
	}
	p.Data = data
	s.render(w, http.StatusOK, "users", p)
}

// people reads who holds which Clearance role in the org: the subjects of the RoleBindings in
// its namespace that bind one of Clearance's ClusterRoles, highest role first.
func people(r *http.Request, sess *session) ([]personRole, string) {
	var bindings rbacv1.RoleBindingList
	if err := sess.client.List(r.Context(), &bindings, client.InNamespace(sess.currentOrg())); err != nil {
		return nil, apiMessage(err)
	}
	var out []personRole
	for _, b := range bindings.Items {
		role, ok := v1.RoleOfClusterRole(b.RoleRef.Name)
		if !ok || b.RoleRef.Kind != "ClusterRole" {
			continue
		}
		for _, sub := range b.Subjects {
			out = append(out, personRole{Kind: sub.Kind, Name: sub.Name, Namespace: sub.Namespace, Binding: b.Name, Role: role})
		}
	}
	slices.SortFunc(out, func(a, b personRole) int {
		if a.Role != b.Role {
			return b.Role.Rank() - a.Role.Rank()
		}
		return strings.Compare(a.Kind+"/"+a.Name, b.Kind+"/"+b.Name)
	})
	return out, ""
}

// applications reads the Applications tab with the person's own credentials.
func applications(r *http.Request, sess *session, perms map[permission]bool) applicationsData {
	ctx, org := r.Context(), sess.currentOrg()
	data := applicationsData{}
	var apps v1.ApplicationList
	if err := sess.client.List(ctx, &apps, client.InNamespace(org)); err != nil {
		data.CreatedError = apiMessage(err)
	}
	data.Created = apps.Items
	slices.SortFunc(data.Created, func(a, b v1.Application) int { return strings.Compare(a.Name, b.Name) })
	var conns v1.OrgConnectionList
	if err := sess.client.List(ctx, &conns, client.InNamespace(org)); err != nil {
		data.ConnectError = apiMessage(err)
	}
	data.Connected = conns.Items
	slices.SortFunc(data.Connected, func(a, b v1.OrgConnection) int { return strings.Compare(a.Name, b.Name) })
	data.CanCreate = perms[clearance("create", "applications")]
	data.CanRename = perms[clearance("patch", "applications")]
	data.CanInvalidate = perms[clearance("patch", "apikeys")]
	data.CanConnect = perms[clearance("create", "orgconnections")]
	data.CanEditRole = perms[clearance("patch", "orgconnections")]
	data.CanDisconnect = perms[clearance("delete", "orgconnections")]
	return data
}

// rolesPage says what each role allows an application connected with it and a person bound to
// its ClusterRole, from the role texts of the API package.
func (s *Server) rolesPage(w http.ResponseWriter, r *http.Request, sess *session) {
	p := newPage(r, sess, "Roles and permissions", "users")
	p.Data = v1.Roles
	s.render(w, http.StatusOK, "roles", p)
}

// renameData is the rename form of one application.
type renameData struct {
	App         v1.Application
	Description string
}

func (s *Server) renamePage(w http.ResponseWriter, r *http.Request, sess *session) {
	app, ok := s.getApplication(w, r, sess)
	if !ok {
		return
	}
	p := newPage(r, sess, "Rename application", "users")
	p.Data = renameData{App: *app, Description: app.Spec.Description}
	s.render(w, http.StatusOK, "rename", p)
}

func (s *Server) rename(w http.ResponseWriter, r *http.Request, sess *session) {
	app, ok := s.getApplication(w, r, sess)
	if !ok {
		return
	}
	description := r.PostForm.Get("description")
	if err := ops.RenameApplication(r.Context(), sess.client, app, description); err != nil {
		p := newPage(r, sess, "Rename application", "users")
		p.Error, p.Data = apiMessage(err), renameData{App: *app, Description: description}
		s.render(w, statusOf(err), "rename", p)
		return
	}
	done(w, r, sess, pathApplications, "Renamed application "+app.Name+" to "+app.Spec.Description+".")
}

// invalidateData is the confirmation of invalidating every key of an application.
type invalidateData struct {
	App  v1.Application
	Keys int
}

func (s *Server) invalidatePage(w http.ResponseWriter, r *http.Request, sess *session) {
	app, ok := s.getApplication(w, r, sess)
	if !ok {
		return
	}
	s.renderInvalidate(w, r, sess, app, http.StatusOK, "")
}

func (s *Server) renderInvalidate(w http.ResponseWriter, r *http.Request, sess *session, app *v1.Application, status int, problem string) {
	keys, err := ops.KeysOf(r.Context(), sess.client, app.Namespace, app.Name)
	if err != nil && problem == "" {
		problem = apiMessage(err)
	}
	p := newPage(r, sess, "Invalidate all keys", "users")
	p.Error, p.Data = problem, invalidateData{App: *app, Keys: len(keys)}
	s.render(w, status, "invalidate", p)
}

func (s *Server) invalidate(w http.ResponseWriter, r *http.Request, sess *session) {
	app, ok := s.getApplication(w, r, sess)
	if !ok {
		return
	}
	asked, err := ops.InvalidateKeys(r.Context(), sess.client, app.Namespace, app.Name, s.opts.Clock.Now())
	if err != nil {
		s.renderInvalidate(w, r, sess, app, statusOf(err), apiMessage(err))
		return
	}
	msg := "Invalidating every key of " + app.Spec.Description + ": each is replaced now and stops working as soon as its new key is minted."
	if len(asked) == 0 {
		msg = app.Spec.Description + " has no key to invalidate."
	}
	done(w, r, sess, keysReturn(r, app.Name), msg)
}

// keysReturn is where a change to the keys of app returns: the keys dialog on the Users page
// when it was made there, the keys page otherwise.
func keysReturn(r *http.Request, app string) string {
	if r.PostForm.Get("in") == "dialog" {
		return pathApplications + "&keys=" + app
	}
	return "/applications/" + app + "/keys"
}
