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
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
)

// loginCookie holds the random value the sign-in form's CSRF token is derived from (__Host-,
// as sessionCookie).
const loginCookie = "__Host-clearance-console-login"

// signInData is what the sign-in page shows.
type signInData struct {
	CSRF string
	// Next is where signing in leads: a consent page (consentReturn), or the org picker.
	Next string
	// OIDC names the OpenID Connect provider offered beside the token form; empty: none.
	OIDC string
}

// consentReturn says whether next may follow a sign-in: only the console's own consent page
// for a well-formed request, never another site or path.
func consentReturn(next string) bool {
	id, ok := strings.CutPrefix(next, PathConsent+"?request=")
	return ok && requestIDPattern.MatchString(id)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if sess, err := s.current(w, r); err == nil && sess != nil {
		http.Redirect(w, r, "/applications", http.StatusSeeOther)
		return
	}
	s.renderSignIn(w, r, http.StatusOK, "")
}

// renderSignIn shows the sign-in form with a fresh login CSRF token.
func (s *Server) renderSignIn(w http.ResponseWriter, r *http.Request, status int, problem string) {
	value := randomToken()
	s.setCookie(w, loginCookie, value, 30*time.Minute)
	next := ""
	if n := r.URL.Query().Get("next"); consentReturn(n) {
		next = n
	} else if n := r.PostFormValue("next"); consentReturn(n) {
		next = n
	}
	data := signInData{CSRF: loginCSRF(s.loginKey, value), Next: next}
	if s.oidc != nil {
		data.OIDC = s.oidc.opts.ProviderName
	}
	s.render(w, status, "login", &page{Title: "Sign in", Error: problem, Data: data})
}

// login starts a session for a pasted token once the apiserver accepts it.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	c, err := r.Cookie(loginCookie)
	if err != nil || r.ParseForm() != nil ||
		subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(loginCSRF(s.loginKey, c.Value))) != 1 {
		s.forbidden(w, nil)
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	token = strings.TrimPrefix(token, "Bearer ")
	if token == "" {
		s.renderSignIn(w, r, http.StatusBadRequest, "Paste a Kubernetes bearer token, e.g. the output of kubectl create token.")
		return
	}
	sess, err := s.newSession(r.Context(), token, false)
	if err != nil {
		msg := "The Kubernetes API did not accept this token: " + apiMessage(err) + ". Paste a current token, e.g. from kubectl create token."
		if !apierrors.IsUnauthorized(err) {
			msg = "Could not check the token with the Kubernetes API: " + apiMessage(err)
		}
		s.renderSignIn(w, r, http.StatusUnauthorized, msg)
		return
	}
	s.clearCookie(w, loginCookie)
	s.setCookie(w, sessionCookie, sess.id, s.opts.MaxAge)
	to := "/org"
	if next := r.PostForm.Get("next"); consentReturn(next) {
		to = next
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess *session) {
	s.endSession(w, sess)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// endSession forgets sess, and the tokens of an OIDC session, and clears its cookie.
func (s *Server) endSession(w http.ResponseWriter, sess *session) {
	s.sessions.remove(sess.id)
	if sess.oidc != nil {
		sess.oidc.forget()
	}
	s.clearCookie(w, sessionCookie)
}

// orgData is the org picker: the namespaces the person may list, or a field to type one.
type orgData struct {
	Orgs     []string
	CanList  bool
	ListNote string
}

func (s *Server) orgPage(w http.ResponseWriter, r *http.Request, sess *session) {
	s.renderOrgPage(w, r, sess, http.StatusOK, "")
}

func (s *Server) renderOrgPage(w http.ResponseWriter, r *http.Request, sess *session, status int, problem string) {
	p := newPage(r, sess, "Choose an org", "org")
	p.Error = problem
	data := orgData{}
	if orgs, err := listOrgs(r.Context(), sess); err != nil {
		data.ListNote = "You may not list namespaces (" + apiMessage(err) + "), so type the org you belong to."
	} else {
		data.CanList, data.Orgs = true, orgs
	}
	p.Data = data
	s.render(w, status, "org", p)
}

func (s *Server) pickOrg(w http.ResponseWriter, r *http.Request, sess *session) {
	org := strings.TrimSpace(r.PostForm.Get("org"))
	if errs := validation.IsDNS1123Label(org); len(errs) > 0 {
		s.renderOrgPage(w, r, sess, http.StatusBadRequest, "\""+org+"\" is not an org (a namespace name): "+errs[0])
		return
	}
	sess.setOrg(org)
	http.Redirect(w, r, "/applications", http.StatusSeeOther)
}

// listOrgs lists the namespaces the person may list, but the system's, sorted.
func listOrgs(ctx context.Context, sess *session) ([]string, error) {
	var list corev1.NamespaceList
	if err := sess.client.List(ctx, &list); err != nil {
		return nil, err
	}
	var orgs []string
	for _, ns := range list.Items {
		if !strings.HasPrefix(ns.Name, "kube-") {
			orgs = append(orgs, ns.Name)
		}
	}
	slices.Sort(orgs)
	return orgs, nil
}
