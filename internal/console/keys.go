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
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// keysData is the keys dialog of one application.
type keysData struct {
	App         v1.Application
	Keys        []keyRow
	KeysError   string
	CanGenerate bool
	CanChange   bool
	CanRevoke   bool
	CanRead     bool
	Expiries    []expiryChoice
	// Permissions are the catalog's, one checkbox each on the generate form; PermissionsError
	// says why there are none to pick (a key then cannot be generated here).
	Permissions      []permissionChoice
	PermissionsError string
}

// permissionChoice is one checkbox of the generate form, ticked again when a refused form
// comes back.
type permissionChoice struct {
	ops.Permission
	Ticked bool
}

// keyRow is one key of the keys dialog; CanCopy: the person may get its Secret, so the dialog
// offers to copy it (the key itself is fetched on click, never put in the page).
type keyRow struct {
	v1.APIKey
	CanCopy bool
}

// expiryChoice is one lifetime a new key may get (spec.ttl); none never expires.
type expiryChoice struct {
	Value, Label string
}

var expiries = []expiryChoice{
	{"2160h", "90 days"}, {"720h", "30 days"}, {"8760h", "1 year"}, {"", "Never (not recommended)"},
}

// getApplication reads the application named in the path, or renders the denial.
func (s *Server) getApplication(w http.ResponseWriter, r *http.Request, sess *session) (*v1.Application, bool) {
	app := &v1.Application{}
	if err := sess.client.Get(r.Context(), client.ObjectKey{Namespace: sess.currentOrg(), Name: r.PathValue("app")}, app); err != nil {
		p := newPage(r, sess, "Application", "users")
		p.Error = apiMessage(err)
		s.render(w, statusOf(err), "message", p)
		return nil, false
	}
	return app, true
}

func (s *Server) keysPage(w http.ResponseWriter, r *http.Request, sess *session) {
	app, ok := s.getApplication(w, r, sess)
	if !ok {
		return
	}
	s.renderKeys(w, r, sess, app, http.StatusOK, "")
}

func (s *Server) renderKeys(w http.ResponseWriter, r *http.Request, sess *session, app *v1.Application, status int, problem string) {
	ctx, org := r.Context(), sess.currentOrg()
	data := keysData{App: *app, Expiries: expiries}
	keys, err := ops.KeysOf(ctx, sess.client, org, app.Name)
	if err != nil {
		data.KeysError = apiMessage(err)
	}
	may := allowed(ctx, sess, org, clearance("create", "apikeys"), clearance("patch", "apikeys"), clearance("delete", "apikeys"), readSecrets)
	if !may[readSecrets] {
		// RBAC may grant some Secrets by name: ask for each key's own.
		var each []permission
		for i := range keys {
			each = append(each, readSecret(ops.KeySecretName(&keys[i])))
		}
		maps.Copy(may, allowed(ctx, sess, org, each...))
	}
	for _, k := range keys {
		copyable := k.Status.Masked != "" && k.Status.State != v1.KeyExpired
		data.Keys = append(data.Keys, keyRow{APIKey: k, CanCopy: copyable && (may[readSecrets] || may[readSecret(ops.KeySecretName(&k))])})
	}
	data.CanGenerate = may[clearance("create", "apikeys")]
	data.CanChange = may[clearance("patch", "apikeys")]
	data.CanRevoke = may[clearance("delete", "apikeys")]
	data.CanRead = may[readSecrets]
	if data.CanGenerate {
		s.fillPermissions(r, sess, &data)
	}
	p := newPage(r, sess, "API keys of "+app.Spec.Description, "users")
	p.Error, p.Data = problem, data
	s.render(w, status, "keys", p)
}

// fillPermissions reads the permission catalog with the person's own credentials for the
// generate form's checkboxes.
func (s *Server) fillPermissions(r *http.Request, sess *session, data *keysData) {
	data.Permissions, data.PermissionsError = s.permissionChoices(r, sess)
}

// permissionChoices are the checkboxes of the permission catalog, read with the person's own
// credentials, ticked as the form posted last; or why there are none.
func (s *Server) permissionChoices(r *http.Request, sess *session) ([]permissionChoice, string) {
	catalog, err := ops.ReadPermissions(r.Context(), sess.client, s.opts.CatalogNamespace)
	if err != nil {
		return nil, "New keys pick their permissions from the catalog, but " + err.Error() + "."
	}
	var out []permissionChoice
	for _, p := range catalog.Permissions {
		out = append(out, permissionChoice{Permission: p, Ticked: slices.Contains(r.PostForm["scope"], p.Name)})
	}
	if len(out) == 0 {
		return nil, "The permission catalog " + catalog.Source + " lists no permission, so no key can be generated here: the platform team adds them."
	}
	return out, ""
}

// noPermissionTicked is the refusal of a key without permissions: none ticked is refused, not
// everything its application's role allows.
const noPermissionTicked = "Tick at least one permission: a key gets only the permissions ticked, and none is not taken to mean all."

// newKeyData is the page that shows a generated key, once.
type newKeyData struct {
	App    v1.Application
	Key    v1.APIKey
	Token  string // the plaintext: on this page only, never logged or kept
	Note   string
	Copied bool
}

// generateKey creates an APIKey, waits for the operator to mint it and, if the person may read
// Secrets, shows the key from its Secret on this answer only (no redirect, nothing cached).
func (s *Server) generateKey(w http.ResponseWriter, r *http.Request, sess *session) {
	app, ok := s.getApplication(w, r, sess)
	if !ok {
		return
	}
	opts := ops.KeyOptions{Description: r.PostForm.Get("description"), Scopes: r.PostForm["scope"], RequireScopes: true}
	if ttl := r.PostForm.Get("ttl"); ttl != "" {
		d, err := time.ParseDuration(ttl)
		if err != nil {
			s.renderKeys(w, r, sess, app, http.StatusBadRequest, "The expiry "+ttl+" is not a duration: pick one of the choices.")
			return
		}
		opts.TTL = d
	}
	s.mintAndShow(w, r, sess, app, opts)
}

// mintAndShow creates a key of app, waits for the operator to mint it and, if the person may
// read its Secret, shows it on this answer only (no redirect, nothing cached).
func (s *Server) mintAndShow(w http.ResponseWriter, r *http.Request, sess *session, app *v1.Application, opts ops.KeyOptions) {
	ctx := r.Context()
	key, err := ops.CreateKey(ctx, sess.client, app.Namespace, app.Name, opts)
	switch {
	case errors.Is(err, ops.ErrNoPermissions):
		s.renderKeys(w, r, sess, app, http.StatusBadRequest, noPermissionTicked)
		return
	case err != nil:
		s.renderKeys(w, r, sess, app, statusOf(err), apiMessage(err))
		return
	}
	data := newKeyData{App: *app, Key: *key}
	minted, err := ops.WaitForKey(ctx, sess.client, key, s.opts.KeyWaitTimeout)
	switch done, usable := ops.KeySettled(minted); {
	case errors.Is(err, ops.ErrKeyDeleted):
		data.Note = "The key was deleted before it was minted."
	case err != nil:
		data.Note = "The key was created, but the console could not follow it: " + apiMessage(err)
	case !done:
		data.Note = "The key was created but the operator has not minted it yet (state " + stateOf(minted) + "): check that the Clearance operator is running, then open the keys again."
	case !usable:
		data.Note = "The key is " + string(minted.Status.State) + ": " + readyMessage(minted) + "."
	default:
		data.Key = *minted
		data.Token, data.Note = s.readToken(r, sess, minted)
	}
	p := newPage(r, sess, "New key", "users")
	p.Data = data
	s.render(w, http.StatusCreated, "key-new", p)
}

// readToken reads the new key from its Secret with the person's own credentials: only someone
// who may read Secrets in the org sees it.
func (s *Server) readToken(r *http.Request, sess *session, key *v1.APIKey) (token, note string) {
	var secret corev1.Secret
	name := ops.KeySecretName(key)
	err := sess.client.Get(r.Context(), client.ObjectKey{Namespace: key.Namespace, Name: name}, &secret)
	switch {
	case apierrors.IsForbidden(err):
		return "", "You may not read Secrets in " + key.Namespace + ", so the console cannot show the key (" + apiMessage(err) + "). Workloads mount Secret " + name + "; someone who may read it can copy the key from there."
	case err != nil:
		return "", "The key was minted, but its Secret " + name + " could not be read: " + apiMessage(err)
	}
	return ops.KeyMaterial(&secret)[v1.SecretKeyToken], ""
}

func stateOf(key *v1.APIKey) string {
	if key.Status.State == "" {
		return string(v1.KeyPending)
	}
	return string(key.Status.State)
}

func readyMessage(key *v1.APIKey) string {
	for _, c := range key.Status.Conditions {
		if c.Type == v1.ConditionReady {
			return c.Message
		}
	}
	return "no Ready condition yet"
}

// keyAction is one change to a key, behind a confirmation step.
type keyAction struct {
	Name    string // the path segment
	Title   string // the confirm button
	Explain string // what happens, on the confirmation page
	Danger  bool
	do      func(s *Server, r *http.Request, sess *session, key *v1.APIKey) error
	done    string
}

var keyActions = map[string]keyAction{
	"rotate": {Name: "rotate", Title: "Rotate key",
		Explain: "The operator mints a new key into the same Secret. The current key keeps working for the rotation overlap of this key (none if it sets no rotation), so workloads have time to pick up the new one.",
		do: func(s *Server, r *http.Request, sess *session, key *v1.APIKey) error {
			return ops.RequestRotation(r.Context(), sess.client, key, s.opts.Clock.Now(), false)
		}, done: "Rotation requested"},
	"rotate-now": {Name: "rotate-now", Title: "Rotate now and end the current key", Danger: true,
		Explain: "The operator mints a new key into the same Secret, and the current key (with any earlier key still in its overlap) stops working as soon as it has: invalidate keys and secrets in one step.",
		do: func(s *Server, r *http.Request, sess *session, key *v1.APIKey) error {
			return ops.RequestRotation(r.Context(), sess.client, key, s.opts.Clock.Now(), true)
		}, done: "Immediate rotation requested"},
	"disable": {Name: "disable", Title: "Disable key", Danger: true,
		Explain: "The key is refused from now on, but kept with its Secret: enabling it again makes the same key work again.",
		do: func(_ *Server, r *http.Request, sess *session, key *v1.APIKey) error {
			return ops.SetKeyEnabled(r.Context(), sess.client, key, false)
		}, done: "Disabled"},
	"enable": {Name: "enable", Title: "Enable key",
		Explain: "The same key works again (unless it expired meanwhile).",
		do: func(_ *Server, r *http.Request, sess *session, key *v1.APIKey) error {
			return ops.SetKeyEnabled(r.Context(), sess.client, key, true)
		}, done: "Enabled"},
	"revoke": {Name: "revoke", Title: "Revoke key for good", Danger: true,
		Explain: "The APIKey is deleted: its key (and any previous key still in its overlap) stops working at once and never comes back, and its Secret is deleted with it.",
		do: func(_ *Server, r *http.Request, sess *session, key *v1.APIKey) error {
			return ops.Revoke(r.Context(), sess.client, key)
		}, done: "Revoked"},
}

// keyActionData is the confirmation page of a key action.
type keyActionData struct {
	App    v1.Application
	Key    v1.APIKey
	Action keyAction
}

// getKey reads the application and the key named in the path and the action asked for.
func (s *Server) getKey(w http.ResponseWriter, r *http.Request, sess *session) (*keyActionData, bool) {
	action, ok := keyActions[r.PathValue("action")]
	if !ok {
		http.NotFound(w, r)
		return nil, false
	}
	app, key, ok := s.getAppKey(w, r, sess)
	if !ok {
		return nil, false
	}
	return &keyActionData{App: *app, Key: *key, Action: action}, true
}

// getAppKey reads the application and its key named in the path, or renders the denial.
func (s *Server) getAppKey(w http.ResponseWriter, r *http.Request, sess *session) (*v1.Application, *v1.APIKey, bool) {
	app, ok := s.getApplication(w, r, sess)
	if !ok {
		return nil, nil, false
	}
	key := &v1.APIKey{}
	err := sess.client.Get(r.Context(), client.ObjectKey{Namespace: app.Namespace, Name: r.PathValue("key")}, key)
	if err == nil && key.Spec.ApplicationName != app.Name {
		err = apierrors.NewNotFound(v1.GroupVersion.WithResource("apikeys").GroupResource(), key.Name)
	}
	if err != nil {
		s.renderKeys(w, r, sess, app, statusOf(err), apiMessage(err))
		return nil, nil, false
	}
	return app, key, true
}

// maskedName is how a key is named to people: masked, or by its object name before minting.
func maskedName(key *v1.APIKey) string {
	if key.Status.Masked != "" {
		return key.Status.Masked
	}
	return key.Name
}

// setKeyEnabled is the Enabled checkbox of a key: it switches spec.enabled.
func (s *Server) setKeyEnabled(w http.ResponseWriter, r *http.Request, sess *session) {
	app, key, ok := s.getAppKey(w, r, sess)
	if !ok {
		return
	}
	on := r.PostForm.Get("enabled") == "true"
	if err := ops.SetKeyEnabled(r.Context(), sess.client, key, on); err != nil {
		s.renderKeys(w, r, sess, app, statusOf(err), apiMessage(err))
		return
	}
	msg := "Disabled key " + maskedName(key) + ": it is refused until enabled again."
	if on {
		msg = "Enabled key " + maskedName(key) + "."
	}
	done(w, r, sess, keysReturn(r, app.Name), msg)
}

// copyKey answers the copy icon of a key: the key, read from its Secret with the person's own
// credentials, to a script asking for JSON (console.js puts it on the clipboard and forgets it),
// or on a page of its own without script. It is a POST (with the CSRF token) answered with
// Cache-Control: no-store, so no other site can make a browser fetch it and nothing keeps it.
// Someone who may not get the Secret is refused before it is read.
func (s *Server) copyKey(w http.ResponseWriter, r *http.Request, sess *session) {
	asJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	fail := func(status int, msg string) {
		if asJSON {
			writeJSON(w, status, map[string]string{"error": msg})
			return
		}
		p := newPage(r, sess, "Copy key", "users")
		p.Error = msg
		s.render(w, status, "message", p)
	}
	app, ok := s.getApplication(w, r, sess)
	if !ok {
		return
	}
	key := &v1.APIKey{}
	err := sess.client.Get(r.Context(), client.ObjectKey{Namespace: app.Namespace, Name: r.PathValue("key")}, key)
	if err == nil && key.Spec.ApplicationName != app.Name {
		err = apierrors.NewNotFound(v1.GroupVersion.WithResource("apikeys").GroupResource(), key.Name)
	}
	if err != nil {
		fail(statusOf(err), apiMessage(err))
		return
	}
	name := ops.KeySecretName(key)
	if !allowed(r.Context(), sess, key.Namespace, readSecret(name))[readSecret(name)] {
		fail(http.StatusForbidden, "You may not read Secret "+name+" in "+key.Namespace+", so the console does not copy its key: ask someone who may, or mount the Secret in your workload.")
		return
	}
	token, note := s.readToken(r, sess, key)
	if token == "" {
		if note == "" {
			note = "Secret " + name + " holds no key now (the key is " + stateOf(key) + "): generate a new key."
		}
		fail(http.StatusConflict, note)
		return
	}
	if asJSON {
		writeJSON(w, http.StatusOK, map[string]string{"key": token})
		return
	}
	p := newPage(r, sess, "Copy key", "users")
	p.Data = newKeyData{App: *app, Key: *key, Token: token, Copied: true}
	s.render(w, http.StatusOK, "key-new", p)
}

// writeJSON answers a script of the console.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) confirmKeyAction(w http.ResponseWriter, r *http.Request, sess *session) {
	data, ok := s.getKey(w, r, sess)
	if !ok {
		return
	}
	p := newPage(r, sess, data.Action.Title, "users")
	p.Data = data
	s.render(w, http.StatusOK, "key-action", p)
}

func (s *Server) keyAction(w http.ResponseWriter, r *http.Request, sess *session) {
	data, ok := s.getKey(w, r, sess)
	if !ok {
		return
	}
	key := data.Key.DeepCopy()
	if err := data.Action.do(s, r, sess, key); err != nil {
		p := newPage(r, sess, data.Action.Title, "users")
		p.Error, p.Data = apiMessage(err), data
		s.render(w, statusOf(err), "key-action", p)
		return
	}
	done(w, r, sess, keysReturn(r, data.App.Name), data.Action.done+": key "+maskedName(&data.Key)+".")
}

// statusOf is the HTTP status a page answers with for an API error.
func statusOf(err error) int {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code >= 400 {
		return int(status.Status().Code)
	}
	return http.StatusBadGateway
}
