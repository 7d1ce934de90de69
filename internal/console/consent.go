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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/oauth"
	"github.com/clearance-dev/clearance/internal/ops"
)

// The OAuth consent page (docs/oauth.md). A partner's app sends an org admin's browser to the
// verifier's authorize endpoint, which sends it here with the authorization request's ID. The
// page shows what the verifier says the request is (which application, whose, which scopes),
// and the person picks an org and a role they may assign. Allow creates or updates the org's
// OrgConnection with the person's own credentials, marked with the request's ID: the apiserver
// records who consented, and the verifier issues the code once it sees that connection. The
// console holds no power here either: it writes what the person may write, and nothing it says
// is trusted by the verifier.

// Paths of the consent page and, on the verifier, of what it talks to.
const (
	PathConsent          = "/oauth2/consent"
	verifierRequestsPath = "/oauth2/authorize/requests/"
	verifierDonePath     = "/oauth2/authorize/done"
)

// requestIDPattern is what an authorization request ID may look like (the clearance-consent
// policy takes the same characters).
var requestIDPattern = regexp.MustCompile(`^[-_.A-Za-z0-9]{1,128}$`)

// AuthorizationRequest is what the verifier says an authorization request asks.
type AuthorizationRequest struct {
	ApplicationID string    `json:"applicationID"`
	Description   string    `json:"description"`
	OwnerOrg      string    `json:"ownerOrg"`
	Scopes        []string  `json:"scopes"`
	ExpiresAt     time.Time `json:"expiresAt"`
}

// errNoRequest is a request the verifier does not know (never made, expired or used).
var errNoRequest = errors.New("unknown or expired authorization request")

// lookupRequest asks the verifier about request id.
func (s *Server) lookupRequest(ctx context.Context, id string) (*AuthorizationRequest, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.VerifierURL+verifierRequestsPath+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.verifier.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNoRequest
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("the verifier answered %s", resp.Status)
	}
	var out AuthorizationRequest
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return nil, fmt.Errorf("the verifier's answer is not an authorization request: %w", err)
	}
	return &out, nil
}

// consentData is what the consent page shows.
type consentData struct {
	RequestID string
	Request   *AuthorizationRequest
	Roles     []roleChoice
	Orgs      []string
	Existing  v1.Role // the role the org's connection already has, if any
	// Permissions are the permission scopes asked for (openid and offline_access say nothing
	// about what tokens may do); none means every permission of the role.
	Permissions []string
	// Offline is a request for a refresh token (offline_access).
	Offline bool
}

// consentPage shows the request and the choices. A browser arriving from the partner's site
// carries no SameSite=Strict session cookie: the page reloads itself once from the console's
// own origin, which brings the cookie along, before asking anyone to sign in.
func (s *Server) consentPage(w http.ResponseWriter, r *http.Request) {
	if s.opts.VerifierURL == "" {
		s.render(w, http.StatusNotFound, "message", &page{Title: "Consent", Error: "This console takes no OAuth consent: it was started without --console-verifier-url."})
		return
	}
	id := r.URL.Query().Get("request")
	if !requestIDPattern.MatchString(id) {
		s.render(w, http.StatusBadRequest, "message", &page{Title: "Consent", Error: "This link names no authorization request: go back to the application and connect it again."})
		return
	}
	sess, err := s.current(w, r)
	if err != nil || sess == nil {
		if r.URL.Query().Get("hop") == "" {
			s.render(w, http.StatusOK, "consent-hop", &page{Title: "Consent", Data: PathConsent + "?request=" + url.QueryEscape(id) + "&hop=1"})
			return
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(PathConsent+"?request="+id), http.StatusSeeOther)
		return
	}
	// The org is this page's choice, carried by its forms: a link cannot change the session's
	// current org (a GET changes nothing).
	org := sess.currentOrg()
	if o := r.URL.Query().Get("org"); o != "" {
		org = o
	}
	s.renderConsent(w, r.WithContext(withWarnings(r.Context(), &warnings{})), sess, id, org, http.StatusOK, "")
}

func (s *Server) renderConsent(w http.ResponseWriter, r *http.Request, sess *session, id, org string, status int, problem string) {
	ar, err := s.lookupRequest(r.Context(), id)
	if err != nil {
		s.requestGone(w, r, sess, err)
		return
	}
	p := newPage(r, sess, "Allow access", "")
	if len(validation.IsDNS1123Label(org)) > 0 {
		org = ""
	}
	p.Org = org
	p.Error = problem
	data := consentData{RequestID: id, Request: ar,
		Permissions: slices.DeleteFunc(slices.Clone(ar.Scopes), func(s string) bool { return slices.Contains(oauth.Scopes, s) }),
		Offline:     slices.Contains(ar.Scopes, oauth.ScopeOfflineAccess)}
	data.Orgs, _ = listOrgs(r.Context(), sess)
	if org != "" {
		var conn v1.OrgConnection
		if err := sess.client.Get(r.Context(), client.ObjectKey{Namespace: org, Name: ops.ConnectionName(ar.ApplicationID)}, &conn); err == nil {
			data.Existing = conn.Spec.Role
		}
		selected := data.Existing
		if selected == "" {
			selected = v1.RoleObserver
		}
		// Only the roles the person may bind, even below the connection's role: consenting at a
		// role needs bind on it (the apiserver's policy clearance-consent), as assigning it does.
		data.Roles = assignableIn(r, sess, org, "", selected)
	}
	p.Data = data
	s.render(w, status, "consent", p)
}

// backToVerifier answers a consent with a page that sends the browser back to the verifier by
// itself (a meta refresh, and a link), rather than a redirect. Browsers hold every redirect that
// follows a form's post to the page's Content-Security-Policy form-action (Chromium does), and
// the verifier redirects on to the partner's app, an origin the console cannot know (any port
// of a loopback redirect URI): the browser would stop there and the app never get its answer.
// A refresh is a navigation of its own, which form-action does not govern, so the consent
// page's forms keep posting to the console alone.
func (s *Server) backToVerifier(w http.ResponseWriter, r *http.Request, sess *session, to string) {
	p := newPage(r, sess, "Allow access", "")
	p.Data = to
	s.render(w, http.StatusOK, "consent-return", p)
}

// requestGone answers a consent for a request the verifier cannot tell about.
func (s *Server) requestGone(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	p := newPage(r, sess, "Allow access", "")
	p.Error = "This authorization request cannot be answered (" + err.Error() + "): go back to the application and connect it again."
	s.render(w, http.StatusNotFound, "message", p)
}

// consent answers Allow or Deny.
func (s *Server) consent(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PostForm.Get("request")
	if !requestIDPattern.MatchString(id) {
		s.render(w, http.StatusBadRequest, "message", newPage(r, sess, "Consent", ""))
		return
	}
	done := s.opts.VerifierURL + verifierDonePath + "?request=" + url.QueryEscape(id)
	if r.PostForm.Get("decision") != "allow" {
		s.backToVerifier(w, r, sess, done+"&error=access_denied")
		return
	}
	org := r.PostForm.Get("org")
	if errs := validation.IsDNS1123Label(org); len(errs) > 0 {
		s.renderConsent(w, r, sess, id, "", http.StatusBadRequest, "Choose the org you grant access to.")
		return
	}
	ar, err := s.lookupRequest(r.Context(), id)
	if err != nil {
		s.requestGone(w, r, sess, err)
		return
	}
	role := v1.Role(r.PostForm.Get("role"))
	if !slices.Contains(v1.Roles, role) {
		s.renderConsent(w, r, sess, id, org, http.StatusBadRequest, "Pick one of the roles offered.")
		return
	}
	if err := grant(r.Context(), sess.client, org, ar.ApplicationID, role, id); err != nil {
		s.renderConsent(w, r, sess, id, org, statusOf(err), apiMessage(err))
		return
	}
	s.backToVerifier(w, r, sess, done)
}

// grant creates the org's connection of the application with role, or sets the role of the
// one there, marking it with the consent to request id, with the person's own client.
func grant(ctx context.Context, c client.Client, org, applicationID string, role v1.Role, id string) error {
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: ops.ConnectionName(applicationID),
		Annotations: map[string]string{v1.AnnotationConsent: id}},
		Spec: v1.OrgConnectionSpec{ApplicationID: applicationID, Role: role}}
	err := c.Get(ctx, client.ObjectKeyFromObject(conn), &v1.OrgConnection{})
	switch {
	case apierrors.IsNotFound(err):
		if err := c.Create(ctx, conn); !apierrors.IsAlreadyExists(err) {
			return err
		}
	case err != nil:
		return err
	}
	return c.Patch(ctx, conn, mergePatch(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{v1.AnnotationConsent: id}},
		"spec":     map[string]any{"role": role},
	}))
}

// mergePatch changes only the fields named.
func mergePatch(patch map[string]any) client.Patch {
	data, _ := json.Marshal(patch) // maps of strings always marshal
	return client.RawPatch(types.MergePatchType, data)
}
