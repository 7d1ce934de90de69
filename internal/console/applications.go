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

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// applicationsData is the Applications page: what this org created and what it connected.
type applicationsData struct {
	Created       []v1.Application
	CreatedError  string
	Connected     []v1.OrgConnection
	ConnectError  string
	CanCreate     bool
	CanConnect    bool
	CanEditRole   bool
	CanDisconnect bool
}

func (s *Server) applicationsPage(w http.ResponseWriter, r *http.Request, sess *session) {
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
	perms := allowed(ctx, sess, org, clearance("create", "applications"), clearance("create", "orgconnections"),
		clearance("patch", "orgconnections"), clearance("delete", "orgconnections"))
	data.CanCreate = perms[clearance("create", "applications")]
	data.CanConnect = perms[clearance("create", "orgconnections")]
	data.CanEditRole = perms[clearance("patch", "orgconnections")]
	data.CanDisconnect = perms[clearance("delete", "orgconnections")]
	p := newPage(r, sess, "Applications", "applications")
	p.Data = data
	s.render(w, http.StatusOK, "applications", p)
}

// newApplicationData is the form to create an application, as last filled.
type newApplicationData struct {
	Description, Name string
}

func (s *Server) newApplicationPage(w http.ResponseWriter, r *http.Request, sess *session) {
	p := newPage(r, sess, "Create application", "applications")
	p.Data = newApplicationData{}
	s.render(w, http.StatusOK, "application-new", p)
}

func (s *Server) createApplication(w http.ResponseWriter, r *http.Request, sess *session) {
	form := newApplicationData{Description: r.PostForm.Get("description"), Name: strings.TrimSpace(r.PostForm.Get("name"))}
	app, err := ops.CreateApplication(r.Context(), sess.client, sess.currentOrg(), form.Name, form.Description)
	if err != nil {
		p := newPage(r, sess, "Create application", "applications")
		p.Error, p.Data = apiMessage(err), form
		s.render(w, statusOf(err), "application-new", p)
		return
	}
	done(w, r, sess, "/applications", "Created application "+app.Name+"; its Application ID appears on its card as soon as the operator has allocated it.")
}

// roleChoice is one option of a role select.
type roleChoice struct {
	Role     v1.Role
	Label    string
	Selected bool
}

// roleLabels are the roles as the product page names them.
var roleLabels = map[v1.Role]string{
	v1.RoleObserver:   "Observer (recommended, read-only)",
	v1.RoleAnalyst:    "Analyst",
	v1.RoleTechnician: "Technician",
	v1.RoleOrgAdmin:   "Org Admin",
}

// assignable are the roles the person may assign in org: those they hold bind on, the rule
// the apiserver's role assignment policy applies (bindRole); at or below keep, a role a
// connection already has, may always stay or be lowered to.
func assignable(r *http.Request, sess *session, keep v1.Role, selected v1.Role) []roleChoice {
	return assignableIn(r, sess, sess.currentOrg(), keep, selected)
}

// assignableIn is assignable in org rather than the session's current org.
func assignableIn(r *http.Request, sess *session, org string, keep v1.Role, selected v1.Role) []roleChoice {
	perms := make([]permission, 0, len(v1.Roles))
	for _, role := range v1.Roles {
		perms = append(perms, bindRole(role))
	}
	may := allowed(r.Context(), sess, org, perms...)
	var out []roleChoice
	for _, role := range v1.Roles {
		if may[bindRole(role)] || role.Rank() <= keep.Rank() {
			out = append(out, roleChoice{Role: role, Label: roleLabels[role], Selected: role == selected})
		}
	}
	return out
}

// connectData is the form to connect an application by ID.
type connectData struct {
	ApplicationID string
	Roles         []roleChoice
}

func (s *Server) connectPage(w http.ResponseWriter, r *http.Request, sess *session) {
	p := newPage(r, sess, "Connect an application", "applications")
	p.Data = connectData{Roles: assignable(r, sess, "", v1.RoleObserver)}
	s.render(w, http.StatusOK, "connect", p)
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request, sess *session) {
	id := strings.TrimSpace(r.PostForm.Get("applicationID"))
	role := v1.Role(r.PostForm.Get("role"))
	conn, err := ops.Connect(r.Context(), sess.client, sess.currentOrg(), id, role, ops.ConnectOptions{})
	if err != nil {
		p := newPage(r, sess, "Connect an application", "applications")
		p.Error = apiMessage(err)
		p.Data = connectData{ApplicationID: id, Roles: assignable(r, sess, "", role)}
		s.render(w, statusOf(err), "connect", p)
		return
	}
	done(w, r, sess, "/applications", "Connected application "+id+" to "+conn.Namespace+" as "+string(role)+".")
}

// connectionData is one connection with the choices of its edit-role form.
type connectionData struct {
	Conn  v1.OrgConnection
	Roles []roleChoice
}

// getConnection reads the connection named in the path, or renders the denial.
func (s *Server) getConnection(w http.ResponseWriter, r *http.Request, sess *session) (*v1.OrgConnection, bool) {
	conn := &v1.OrgConnection{}
	if err := sess.client.Get(r.Context(), client.ObjectKey{Namespace: sess.currentOrg(), Name: r.PathValue("conn")}, conn); err != nil {
		p := newPage(r, sess, "Connection", "applications")
		p.Error = apiMessage(err)
		s.render(w, statusOf(err), "message", p)
		return nil, false
	}
	return conn, true
}

func (s *Server) rolePage(w http.ResponseWriter, r *http.Request, sess *session) {
	conn, ok := s.getConnection(w, r, sess)
	if !ok {
		return
	}
	p := newPage(r, sess, "Edit role", "applications")
	p.Data = connectionData{Conn: *conn, Roles: assignable(r, sess, conn.Spec.Role, conn.Spec.Role)}
	s.render(w, http.StatusOK, "role", p)
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request, sess *session) {
	conn, ok := s.getConnection(w, r, sess)
	if !ok {
		return
	}
	role := v1.Role(r.PostForm.Get("role"))
	old := conn.Spec.Role
	if err := ops.SetRole(r.Context(), sess.client, conn, role); err != nil {
		p := newPage(r, sess, "Edit role", "applications")
		p.Error = apiMessage(err)
		p.Data = connectionData{Conn: *conn, Roles: assignable(r, sess, old, role)}
		s.render(w, statusOf(err), "role", p)
		return
	}
	done(w, r, sess, "/applications", "Application "+conn.Spec.ApplicationID+" now has role "+string(conn.Spec.Role)+" in "+conn.Namespace+".")
}

func (s *Server) disconnectPage(w http.ResponseWriter, r *http.Request, sess *session) {
	conn, ok := s.getConnection(w, r, sess)
	if !ok {
		return
	}
	p := newPage(r, sess, "Disconnect application", "applications")
	p.Data = connectionData{Conn: *conn}
	s.render(w, http.StatusOK, "disconnect", p)
}

func (s *Server) disconnect(w http.ResponseWriter, r *http.Request, sess *session) {
	conn, ok := s.getConnection(w, r, sess)
	if !ok {
		return
	}
	if err := ops.Disconnect(r.Context(), sess.client, conn); err != nil {
		p := newPage(r, sess, "Disconnect application", "applications")
		p.Error = apiMessage(err)
		p.Data = connectionData{Conn: *conn}
		s.render(w, statusOf(err), "disconnect", p)
		return
	}
	done(w, r, sess, "/applications", "Disconnected application "+conn.Spec.ApplicationID+" from "+conn.Namespace+"; the application itself is untouched.")
}
