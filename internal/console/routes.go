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
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// contentSecurityPolicy allows nothing but the console's own files: no inline script or style,
// no framing, forms posted only to itself.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// maxFormBytes bounds a form post.
const maxFormBytes = 64 << 10

// pathApplications is the Applications tab of the Users page, where changes to applications and
// connections return.
const pathApplications = "/users?tab=applications"

// page is what every template gets.
type page struct {
	// Fragment renders only the page's "dialog" template, for console.js to show in a <dialog>
	// (?fragment=1); the whole page works the same without script.
	Fragment bool
	Title    string
	Nav      string // which menu entry is current
	User     string
	Org      string
	CSRF     string
	SignOut  bool // a sign-in form session, which the console can end
	Flashes  []flash
	Error    string
	Warnings []string
	Data     any
}

var funcs = template.FuncMap{
	"when": func(t *metav1.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"date":      func(t metav1.Time) string { return t.UTC().Format("2006-01-02") },
	"enabled":   func(k v1.APIKey) bool { return k.IsEnabled() },
	"join":      strings.Join,
	"roleLabel": func(r v1.Role) string { return roleLabel(r) },
}

// handlerFunc is a page that needs a signed-in person.
type handlerFunc func(w http.ResponseWriter, r *http.Request, sess *session)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET "+PathOIDCStart, s.oidcStart)
	mux.HandleFunc("GET "+PathOIDCCallback, s.oidcCallback)
	mux.Handle("POST /logout", s.signedIn(s.logout))
	// The Users page is home; the old Applications page's address leads to its tab.
	mux.Handle("GET /{$}", s.signedIn(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, pathApplications, http.StatusSeeOther)
	}))
	mux.Handle("GET /applications", s.signedIn(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, pathApplications, http.StatusSeeOther)
	}))
	mux.Handle("GET /org", s.signedIn(s.orgPage))
	mux.Handle("POST /org", s.signedIn(s.pickOrg))

	mux.Handle("GET /users", s.inOrg(s.usersPage))
	mux.Handle("GET /roles", s.signedIn(s.rolesPage))
	mux.Handle("GET /applications/new", s.inOrg(s.newApplicationPage))
	mux.Handle("POST /applications/new", s.inOrg(s.createApplication))
	mux.Handle("GET /applications/{app}/rename", s.inOrg(s.renamePage))
	mux.Handle("POST /applications/{app}/rename", s.inOrg(s.rename))
	mux.Handle("GET /applications/{app}/invalidate", s.inOrg(s.invalidatePage))
	mux.Handle("POST /applications/{app}/invalidate", s.inOrg(s.invalidate))
	mux.Handle("GET /applications/{app}/keys", s.inOrg(s.keysPage))
	mux.Handle("POST /applications/{app}/keys", s.inOrg(s.generateKey))
	mux.Handle("POST /applications/{app}/keys/{key}/copy", s.inOrg(s.copyKey))
	mux.Handle("POST /applications/{app}/keys/{key}/enabled", s.inOrg(s.setKeyEnabled))
	mux.Handle("GET /applications/{app}/keys/{key}/{action}", s.inOrg(s.confirmKeyAction))
	mux.Handle("POST /applications/{app}/keys/{key}/{action}", s.inOrg(s.keyAction))

	mux.Handle("GET /connections/new", s.inOrg(s.connectPage))
	mux.Handle("POST /connections/new", s.inOrg(s.connect))
	mux.Handle("GET /connections/{conn}/role", s.inOrg(s.rolePage))
	mux.Handle("POST /connections/{conn}/role", s.inOrg(s.setRole))
	mux.Handle("GET /connections/{conn}/disconnect", s.inOrg(s.disconnectPage))
	mux.Handle("POST /connections/{conn}/disconnect", s.inOrg(s.disconnect))

	mux.Handle("GET /metrics", s.inOrg(s.metricsPage))
	mux.Handle("POST /metrics", s.inOrg(s.toggleMetric))

	mux.Handle("GET /activity", s.inOrg(s.activityPage))
	mux.Handle("/developers", s.signedIn(s.developers))

	mux.HandleFunc("GET "+PathConsent, s.consentPage)
	mux.Handle("POST "+PathConsent, s.signedIn(s.consent))
	return securityHeaders(mux)
}

// securityHeaders sets what every answer carries: a strict Content-Security-Policy, no
// framing, no referrer, no caching of pages (a generated key is shown once).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// sessionCookie names the session cookie. Browsers take a __Host- cookie only with Secure,
// Path=/ and no Domain, from a secure origin — https, or http to loopback, which they count as
// secure (make run) — so a sibling domain or a plain-HTTP page cannot plant one, and it is never
// sent over plain HTTP but to loopback.
const sessionCookie = "__Host-clearance-console"

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// current returns the request's live session: the one its cookie names or, when the console
// trusts an auth proxy in front, the one for the bearer token the proxy forwards (made on first
// sight). Without that trust an Authorization header is ignored. An OIDC session's ID token is
// renewed here when it is about to expire; one that cannot be renewed ends (errSignInEnded).
func (s *Server) current(w http.ResponseWriter, r *http.Request) (*session, error) {
	var sess *session
	if c, err := r.Cookie(sessionCookie); err == nil {
		sess = s.sessions.get(c.Value)
	}
	if sess != nil && sess.oidc != nil {
		if err := s.oidc.renew(r.Context(), sess.oidc); err != nil {
			s.opts.Log.Info("an OpenID Connect session ended: its ID token could not be renewed", "user", sess.user)
			s.endSession(w, sess)
			return nil, err
		}
	}
	if !s.opts.TrustAuthProxy {
		return sess, nil
	}
	token, ok := bearerToken(r)
	if !ok {
		if sess != nil && sess.fromProxy {
			return nil, nil // the proxy stopped vouching for this browser
		}
		return sess, nil
	}
	if sess != nil && subtle.ConstantTimeCompare(sess.tokenSum[:], sumOf(token)) == 1 {
		return sess, nil
	}
	if sess != nil {
		s.sessions.remove(sess.id)
	}
	sess, err := s.newSession(r.Context(), token, true)
	if err != nil {
		return nil, err
	}
	s.setCookie(w, sessionCookie, sess.id, s.opts.MaxAge)
	return sess, nil
}

func sumOf(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// bearerToken is the token of an Authorization: Bearer header, as an auth proxy such as
// oauth2-proxy sets it.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// signedIn runs h for a signed-in person; others are sent to the sign-in page. Every POST must
// carry the session's CSRF token, or it is refused with 403 before anything else happens.
func (s *Server) signedIn(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.current(w, r)
		if ended := (*errSignInEnded)(nil); errors.As(err, &ended) {
			s.renderSignIn(w, r, http.StatusUnauthorized, ended.Error())
			return
		} else if err != nil {
			s.renderSignIn(w, r, http.StatusUnauthorized, "The Kubernetes API did not accept the token your proxy sent: "+apiMessage(err))
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if sess == nil || r.ParseForm() != nil || !sess.validCSRF(r.PostForm.Get("csrf")) {
				s.forbidden(w, sess)
				return
			}
		}
		if sess == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		ctx := withWarnings(r.Context(), &warnings{})
		h(w, r.WithContext(ctx), sess)
	})
}

// forbidden refuses a post that did not come from one of the console's own forms.
func (s *Server) forbidden(w http.ResponseWriter, sess *session) {
	p := &page{Title: "Request refused", Error: "This form was not sent from a page of this console session (its CSRF token is missing or wrong), so nothing was changed. Go back, reload the page and try again."}
	if sess != nil {
		p.User, p.Org, p.CSRF, p.SignOut = sess.user, sess.currentOrg(), sess.csrf, !sess.fromProxy
	}
	s.render(w, http.StatusForbidden, "message", p)
}

// inOrg is signedIn for pages about one org: without a chosen org it asks for one first.
func (s *Server) inOrg(h handlerFunc) http.Handler {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request, sess *session) {
		if sess.currentOrg() == "" {
			http.Redirect(w, r, "/org", http.StatusSeeOther)
			return
		}
		h(w, r, sess)
	})
}

// newPage fills what every page shows about the session.
func newPage(r *http.Request, sess *session, title, nav string) *page {
	return &page{Fragment: r.Method == http.MethodGet && r.URL.Query().Get("fragment") == "1", Title: title, Nav: nav, User: sess.user, Org: sess.currentOrg(), CSRF: sess.csrf,
		SignOut: !sess.fromProxy, Flashes: sess.takeFlashes(), Warnings: requestWarnings(r.Context())}
}

// requestWarnings are the admission warnings collected so far in this request.
func requestWarnings(ctx context.Context) []string {
	if w, ok := ctx.Value(warningsKey{}).(*warnings); ok {
		return w.all()
	}
	return nil
}

// done ends a successful post: the message and the warnings the apiserver returned go to the
// next page, which the browser is sent to (post/redirect/get).
func done(w http.ResponseWriter, r *http.Request, sess *session, to, message string) {
	if message != "" {
		sess.addFlash("ok", message)
	}
	sess.addFlash("warning", requestWarnings(r.Context())...)
	http.Redirect(w, r, to, http.StatusSeeOther)
}
