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

package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Handler serves the authorization endpoint and its consent callback (mount it for
// AuthorizePath and AuthorizeDonePath) and, through Token, the code and refresh grants.
type Handler struct {
	cfg      Config
	provider *op.Provider
}

// New checks cfg, fills its defaults and builds the Handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg}
	var key [32]byte // op's code encryption; unused, since codes here are random and stored
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	opts := []op.Option{}
	if strings.HasPrefix(cfg.Issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	p, err := op.NewProvider(&op.Config{CryptoKey: key, CodeMethodS256: true, GrantTypeRefreshToken: true},
		&opStorage{h: h}, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oauth: %w", err)
	}
	h.provider = p
	return h, nil
}

// ServeHTTP answers AuthorizePath, AuthorizeDonePath and AuthorizeRequestsPath.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == AuthorizePath:
		h.authorize(w, r)
	case r.URL.Path == AuthorizeDonePath:
		h.done(w, r)
	case strings.HasPrefix(r.URL.Path, AuthorizeRequestsPath):
		h.requestInfo(w, r)
	default:
		http.NotFound(w, r)
	}
}

// MaxAuthorizeRequest bounds an authorization request, its query and form body together. Anyone
// may send one, and what it stores for RequestTTL (state, nonce, scopes) is the browser's to
// choose; the parameters of RFC 6749 §4.1.1 and OpenID Connect fit many times over, and so does
// the URL a proxy passes on (nginx's default header buffer is 8 KiB).
const MaxAuthorizeRequest = 8 << 10

// authorize refuses, with a page and never a redirect, a request whose client or redirect_uri
// is not one we may send a browser to; the rest is op's (parse, validate, CreateAuthRequest,
// then the consent page).
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		errorPage(w, http.StatusMethodNotAllowed, "the authorization endpoint takes GET or POST")
		return
	}
	if len(r.URL.RawQuery) > MaxAuthorizeRequest {
		errorPage(w, http.StatusBadRequest, "the authorization request is larger than 8 KiB")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, int64(MaxAuthorizeRequest-len(r.URL.RawQuery)))
	if err := r.ParseForm(); err != nil {
		errorPage(w, http.StatusBadRequest, "the authorization request cannot be parsed, or is larger than 8 KiB")
		return
	}
	if len(r.Form["client_id"]) != 1 || len(r.Form["redirect_uri"]) != 1 || r.Form.Has("request") || r.Form.Has("request_uri") {
		errorPage(w, http.StatusBadRequest, "the authorization request needs exactly one client_id and one redirect_uri, and no request object")
		return
	}
	c, ok := h.cfg.Directory.Client(r.Form.Get("client_id"))
	if !ok || !c.Enabled {
		errorPage(w, http.StatusBadRequest, "client_id names no enabled OAuth client")
		return
	}
	redirect := r.Form.Get("redirect_uri")
	if !c.Registration.AllowsRedirect(redirect) {
		errorPage(w, http.StatusBadRequest, "the redirect_uri is not registered for this client")
		return
	}
	op.Authorize(&issWriter{ResponseWriter: w, redirect: redirect, issuer: h.cfg.Issuer}, r, h.provider)
}

// done is where the console sends the browser back: with error=access_denied after Deny, or
// once the consent (an OrgConnection) is recorded. Only the first answer to a request counts.
func (h *Handler) done(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		errorPage(w, http.StatusMethodNotAllowed, "the consent callback takes GET")
		return
	}
	ctx, q := r.Context(), r.URL.Query()
	req, err := h.cfg.Store.Request(ctx, q.Get("request"))
	if err != nil {
		errorPage(w, http.StatusBadRequest, "unknown, expired or already answered authorization request")
		return
	}
	c, ok := h.cfg.Directory.Client(req.ClientID)
	if !ok || !c.Enabled || !c.Registration.AllowsRedirect(req.RedirectURI) {
		errorPage(w, http.StatusBadRequest, "the client is no longer registered, enabled, or allowed this redirect_uri")
		return
	}
	if q.Get("error") == "access_denied" {
		if _, err := h.cfg.Store.TakeRequest(ctx, req.ID); err != nil {
			errorPage(w, http.StatusBadRequest, "the authorization request was already answered")
			return
		}
		h.redirect(w, r, req, oidc.ErrAccessDenied().WithDescription("the org admin denied the request"))
		return
	}
	g, ok := h.cfg.Directory.Consent(req.ID, req.ClientID)
	if cw, can := h.cfg.Directory.(ConsentWaiter); !ok && can {
		wait, cancel := context.WithTimeout(ctx, h.cfg.ConsentWait)
		g, ok = cw.WaitConsent(wait, req.ID, req.ClientID)
		cancel()
	}
	if !ok {
		errorPage(w, http.StatusConflict, "consent not recorded yet: try again in a moment")
		return
	}
	if g.ApplicationID != req.ClientID {
		errorPage(w, http.StatusBadRequest, "the recorded consent is for another application")
		return
	}
	if _, err := h.cfg.Store.TakeRequest(ctx, req.ID); err != nil {
		errorPage(w, http.StatusBadRequest, "the authorization request was already answered")
		return
	}
	code := rand.Text() + rand.Text() // 2×130 bits
	rec := CodeRecord{Request: req, Grant: g, FamilyID: rand.Text(), IssuedAt: h.cfg.Clock.Now()}
	if err := h.cfg.Store.SaveCode(ctx, hashCode(code), rec, h.cfg.CodeTTL); err != nil {
		h.redirect(w, r, req, oidc.ErrServerError())
		return
	}
	h.redirect(w, r, req, &op.CodeResponseType{Code: code, State: req.State})
}

// RequestInfo is what the console's consent page shows of an authorization request.
type RequestInfo struct {
	ApplicationID string    `json:"applicationID"`
	Description   string    `json:"description"`
	OwnerOrg      string    `json:"ownerOrg"`
	Scopes        []string  `json:"scopes"`
	ExpiresAt     time.Time `json:"expiresAt"`
}

// requestInfo answers the console's GET AuthorizeRequestsPath<id>: 404 for a request unknown,
// expired, answered, or whose client is no longer usable.
func (h *Handler) requestInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	req, err := h.cfg.Store.Request(r.Context(), strings.TrimPrefix(r.URL.Path, AuthorizeRequestsPath))
	if errors.Is(err, ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, "the request store is unavailable", http.StatusServiceUnavailable)
		return
	}
	c, ok := h.cfg.Directory.Client(req.ClientID)
	if !ok || !c.Enabled {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, RequestInfo{ApplicationID: c.ApplicationID, Description: c.Description, OwnerOrg: c.Namespace,
		Scopes: req.Scopes, ExpiresAt: req.CreatedAt.Add(h.cfg.RequestTTL)})
}

// redirect sends the browser to the request's (validated) redirect_uri with the response
// (a code or an *oidc.Error), the state and, per RFC 9207, iss.
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, req AuthRequest, response any) {
	var e *oidc.Error
	if errors.As(anyError(response), &e) {
		e.State = req.State
	}
	u, err := op.AuthResponseURL(req.RedirectURI, oidc.ResponseTypeCode, oidc.ResponseModeQuery, response, h.provider.Encoder())
	if err != nil {
		errorPage(w, http.StatusInternalServerError, "the redirect cannot be built")
		return
	}
	http.Redirect(w, r, withIss(u, h.cfg.Issuer), http.StatusFound)
}

func anyError(v any) error {
	if e, ok := v.(error); ok {
		return e
	}
	return nil
}

// withIss adds the RFC 9207 iss parameter to a redirect URL's query.
func withIss(location, issuer string) string {
	u, err := url.Parse(location)
	if err != nil {
		return location
	}
	q := u.Query()
	q.Set("iss", issuer)
	u.RawQuery = q.Encode()
	return u.String()
}

// issWriter adds iss to the error redirects op sends to the validated redirect_uri.
type issWriter struct {
	http.ResponseWriter
	redirect, issuer string
}

func (w *issWriter) WriteHeader(code int) {
	if loc := w.Header().Get("Location"); code == http.StatusFound && strings.HasPrefix(loc, w.redirect) && strings.Contains(loc, "error=") {
		w.Header().Set("Location", withIss(loc, w.issuer))
	}
	w.ResponseWriter.WriteHeader(code)
}

// errorPage is the answer when the browser must not be sent anywhere.
func errorPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "Authorization failed: "+msg, status)
}

// hashCode is how a code is keyed in the Store, so a store dump holds no redeemable code.
func hashCode(code string) string {
	s := sha256.Sum256([]byte(code))
	return base64.RawURLEncoding.EncodeToString(s[:])
}
