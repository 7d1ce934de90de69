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
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// newApplicationData is the form to create an application, as last filled.
type newApplicationData struct {
	Description, Name string
	// FirstKey: create the application's first API key with it (on by default: every
	// application has its own key).
	FirstKey bool
	// CanKey: the person may create APIKeys, so the form offers the first key, with the
	// permission catalog's checkboxes (PermissionsError: why there are none).
	CanKey           bool
	Permissions      []permissionChoice
	PermissionsError string
}

func (s *Server) newApplicationPage(w http.ResponseWriter, r *http.Request, sess *session) {
	p := newPage(r, sess, "Create application", "users")
	form := newApplicationData{FirstKey: true}
	s.offerFirstKey(r, sess, &form)
	if len(form.Permissions) == 0 {
		form.FirstKey = false // no permission to give it: the form says why
	}
	p.Data = form
	s.render(w, http.StatusOK, "application-new", p)
}

// offerFirstKey fills what the form offers for the first key, if the person may create keys.
func (s *Server) offerFirstKey(r *http.Request, sess *session, form *newApplicationData) {
	form.CanKey = mayCreateKeys(r, sess)
	if !form.CanKey {
		form.FirstKey = false
		return
	}
	form.Permissions, form.PermissionsError = s.permissionChoices(r, sess)
}

// firstKeyTTL is the lifetime of an application's first key: the first that Generate new key
// offers (90 days).
const firstKeyTTL = 2160 * time.Hour

func mayCreateKeys(r *http.Request, sess *session) bool {
	return allowed(r.Context(), sess, sess.currentOrg(), clearance("create", "apikeys"))[clearance("create", "apikeys")]
}

// createApplication creates the application and, when asked, its first key, which it shows once
// as Generate new key does.
func (s *Server) createApplication(w http.ResponseWriter, r *http.Request, sess *session) {
	form := newApplicationData{Description: r.PostForm.Get("description"), Name: strings.TrimSpace(r.PostForm.Get("name")),
		FirstKey: r.PostForm.Get("firstKey") == "true"}
	refuse := func(status int, msg string) {
		p := newPage(r, sess, "Create application", "users")
		s.offerFirstKey(r, sess, &form)
		p.Error, p.Data = msg, form
		s.render(w, status, "application-new", p)
	}
	scopes := r.PostForm["scope"]
	if form.FirstKey && len(scopes) == 0 {
		// Refused before the application exists, as Generate new key refuses it.
		refuse(http.StatusBadRequest, noPermissionTicked+" Or untick Create its first API key.")
		return
	}
	app, err := ops.CreateApplication(r.Context(), sess.client, sess.currentOrg(), form.Name, form.Description)
	if err != nil {
		refuse(statusOf(err), apiMessage(err))
		return
	}
	msg := "Created application " + app.Spec.Description + "; its Application ID appears in the table as soon as the operator has allocated it."
	if !form.FirstKey {
		done(w, r, sess, pathApplications, msg)
		return
	}
	sess.addFlash("ok", msg)
	s.mintAndShow(w, r, sess, app, ops.KeyOptions{Description: "first key", TTL: firstKeyTTL, Scopes: scopes, RequireScopes: true})
}

// roleChoice is one option of a role select.
type roleChoice struct {
	Role     v1.Role
	Label    string
	Selected bool
}

// roleLabel is a role as a role select offers it.
func roleLabel(r v1.Role) string {
	if r == v1.RoleObserver {
		return r.Title() + " (recommended, read-only)"
	}
	return r.Title()
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
			out = append(out, roleChoice{Role: role, Label: roleLabel(role), Selected: role == selected})
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
	p := newPage(r, sess, "Connect an application", "users")
	p.Data = connectData{Roles: assignable(r, sess, "", v1.RoleObserver)}
	s.render(w, http.StatusOK, "connect", p)
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request, sess *session) {
	id := strings.TrimSpace(r.PostForm.Get("applicationID"))
	role := v1.Role(r.PostForm.Get("role"))
	conn, err := ops.Connect(r.Context(), sess.client, sess.currentOrg(), id, role, ops.ConnectOptions{})
	if err != nil {
		p := newPage(r, sess, "Connect an application", "users")
		p.Error = apiMessage(err)
		p.Data = connectData{ApplicationID: id, Roles: assignable(r, sess, "", role)}
		s.render(w, statusOf(err), "connect", p)
		return
	}
	done(w, r, sess, pathApplications, "Connected application "+id+" to "+conn.Namespace+" as "+string(role)+".")
}

// connectionData is one connection with the choices of its edit-role form.
type connectionData struct {
	Conn       v1.OrgConnection
	Roles      []roleChoice
	Transports []transportChoice
}

// transportChoice is one checkbox of the Edit role dialog: a transport the connection allows
// (ticked) or refuses.
type transportChoice struct {
	Transport v1.Transport
	Label     string
	Allowed   bool
}

// transportLabels name the transports as people read them.
var transportLabels = map[v1.Transport]string{
	v1.TransportWebSockets:       "WebSockets",
	v1.TransportServerSentEvents: "Server-Sent Events",
	v1.TransportLongPolling:      "Long polling",
}

// transportChoices are the connection's transports as checkboxes, in v1.Transports' order.
func transportChoices(conn *v1.OrgConnection) []transportChoice {
	out := make([]transportChoice, 0, len(v1.Transports))
	for _, t := range v1.Transports {
		out = append(out, transportChoice{Transport: t, Label: transportLabels[t], Allowed: conn.Spec.TransportAllowed(t)})
	}
	return out
}

// transportChanges are the transports whose checkbox differs from the connection: the ticked
// ones it refuses, to allow, and the unticked ones it allows, to refuse. A form without the
// transports fieldset changes none.
func transportChanges(r *http.Request, conn *v1.OrgConnection) map[v1.Transport]v1.TransportPolicy {
	if r.PostForm.Get("transports") == "" {
		return nil
	}
	ticked := r.PostForm["transport"]
	changes := map[v1.Transport]v1.TransportPolicy{}
	for _, t := range v1.Transports {
		want := slices.Contains(ticked, string(t))
		if want != conn.Spec.TransportAllowed(t) {
			changes[t] = v1.TransportRefused
			if want {
				changes[t] = v1.TransportAllowed
			}
		}
	}
	return changes
}

// getConnection reads the connection named in the path, or renders the denial.
func (s *Server) getConnection(w http.ResponseWriter, r *http.Request, sess *session) (*v1.OrgConnection, bool) {
	conn := &v1.OrgConnection{}
	if err := sess.client.Get(r.Context(), client.ObjectKey{Namespace: sess.currentOrg(), Name: r.PathValue("conn")}, conn); err != nil {
		p := newPage(r, sess, "Connection", "users")
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
	p := newPage(r, sess, "Edit role", "users")
	p.Data = connectionData{Conn: *conn, Roles: assignable(r, sess, conn.Spec.Role, conn.Spec.Role), Transports: transportChoices(conn)}
	s.render(w, http.StatusOK, "role", p)
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request, sess *session) {
	conn, ok := s.getConnection(w, r, sess)
	if !ok {
		return
	}
	role := v1.Role(r.PostForm.Get("role"))
	old := conn.Spec.Role
	changes := transportChanges(r, conn)
	refused := func(err error) {
		p := newPage(r, sess, "Edit role", "users")
		p.Error = apiMessage(err)
		p.Data = connectionData{Conn: *conn, Roles: assignable(r, sess, old, role), Transports: transportChoices(conn)}
		s.render(w, statusOf(err), "role", p)
	}
	if err := ops.SetRole(r.Context(), sess.client, conn, role); err != nil {
		refused(err)
		return
	}
	if err := ops.SetTransports(r.Context(), sess.client, conn, changes); err != nil {
		old = conn.Spec.Role // saved: the page shows it, and what the transports still are
		refused(fmt.Errorf("role %s saved, but the transports were not changed: %w", conn.Spec.Role, err))
		return
	}
	msg := "Application " + conn.Spec.ApplicationID + " now has role " + string(conn.Spec.Role) + " in " + conn.Namespace + "."
	if refusedTransports := refusedLabels(conn); refusedTransports != "" {
		msg += " Refused transports: " + refusedTransports + "."
	}
	done(w, r, sess, pathApplications, msg)
}

// refusedLabels names the transports the connection refuses, "" when it allows all.
func refusedLabels(conn *v1.OrgConnection) string {
	var refused []string
	for _, t := range v1.Transports {
		if !conn.Spec.TransportAllowed(t) {
			refused = append(refused, transportLabels[t])
		}
	}
	return strings.Join(refused, ", ")
}

func (s *Server) disconnectPage(w http.ResponseWriter, r *http.Request, sess *session) {
	conn, ok := s.getConnection(w, r, sess)
	if !ok {
		return
	}
	p := newPage(r, sess, "Disconnect application", "users")
	p.Data = connectionData{Conn: *conn}
	s.render(w, http.StatusOK, "disconnect", p)
}

func (s *Server) disconnect(w http.ResponseWriter, r *http.Request, sess *session) {
	conn, ok := s.getConnection(w, r, sess)
	if !ok {
		return
	}
	if err := ops.Disconnect(r.Context(), sess.client, conn); err != nil {
		p := newPage(r, sess, "Disconnect application", "users")
		p.Error = apiMessage(err)
		p.Data = connectionData{Conn: *conn}
		s.render(w, statusOf(err), "disconnect", p)
		return
	}
	done(w, r, sess, pathApplications, "Disconnected application "+conn.Spec.ApplicationID+" from "+conn.Namespace+"; the application itself is untouched.")
}
