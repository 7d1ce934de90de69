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
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Token answers grant_type authorization_code and refresh_token on the verifier's token
// endpoint (the verifier keeps client_credentials and calls Token for these two).
func (h *Handler) Token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "the form cannot be parsed")
		return
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			tokenError(w, http.StatusBadRequest, "invalid_request", "parameter "+k+" is repeated")
			return
		}
	}
	c, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if len(h.cfg.Keys.RefreshKey()) < minRefreshKey {
		w.Header().Set("Retry-After", "5")
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the token keys are not loaded yet; retry in a few seconds")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		h.exchangeCode(w, r, c)
	case "refresh_token":
		h.refresh(w, r, c)
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token here")
	}
}

// authenticate finds the client: a confidential one by one of its Application's keys (HTTP
// Basic or client_secret_post), a public one by its client_id alone (its proof is PKCE).
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (Client, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || r.PostForm.Has("client_secret") ||
			(r.PostForm.Has("client_id") && r.PostForm.Get("client_id") != id) {
			tokenError(w, http.StatusBadRequest, "invalid_request", "use one client authentication method")
			return Client{}, false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, ok := h.cfg.Directory.Client(id)
	switch {
	case !ok || !c.Enabled:
	case c.Registration.ClientType == "Public" && secret == "":
		return c, true
	case c.Registration.ClientType != "Public" && secret != "" && h.cfg.Authenticate(r, id, secret) == nil:
		return c, true
	}
	if basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
	}
	tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
	return Client{}, false
}

// exchangeCode redeems a code once. A second redemption revokes the refresh family the first
// one created (RFC 6749 §4.1.2: the code was stolen).
func (h *Handler) exchangeCode(w http.ResponseWriter, r *http.Request, c Client) {
	ctx, f, now := r.Context(), r.PostForm, h.cfg.Clock.Now()
	rec, err := h.cfg.Store.RedeemCode(ctx, hashCode(f.Get("code")), h.cfg.RequestTTL)
	if errors.Is(err, ErrRedeemed) {
		if err := h.cfg.Store.RevokeFamily(ctx, rec.FamilyID, h.cfg.RefreshTTL); err != nil {
			tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "try again")
			return
		}
		h.reused(rec.Grant, "an authorization code was redeemed a second time: the tokens its first redemption gave are revoked")
		tokenError(w, http.StatusBadRequest, "invalid_grant", "the code was already used; the tokens it gave are revoked")
		return
	}
	if err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown or expired code")
		return
	}
	if reason := codeRefusal(rec, c, f, now, h.cfg.CodeTTL); reason != "" {
		tokenError(w, http.StatusBadRequest, "invalid_grant", reason)
		return
	}
	g := rec.Grant
	role, ok := h.cfg.Directory.InForce(g.Org, g.ConnectionUID, g.ApplicationID, g.ApplicationUID)
	if !ok {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "the grant is no longer in force")
		return
	}
	g.Role = role
	fam := Family{ID: rec.FamilyID, ClientID: c.ApplicationID, Grant: g, Scopes: rec.Request.Scopes, RotatedAt: now, CreatedAt: now}
	offline := slices.Contains(fam.Scopes, ScopeOfflineAccess)
	if offline {
		if err := h.cfg.Store.CreateFamily(ctx, fam, h.cfg.RefreshTTL); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "the code was already used")
			return
		}
	}
	resp, ok := h.tokens(w, r, g, fam.Scopes, now)
	if !ok {
		return
	}
	if offline {
		resp.RefreshToken = h.refreshToken(fam.ID, 0)
	}
	if k := h.cfg.Keys.IDTokenKey(); slices.Contains(fam.Scopes, ScopeOpenID) && k != nil {
		if resp.IDToken, err = h.idToken(k, rec, now); err != nil {
			tokenError(w, http.StatusInternalServerError, "server_error", "the ID token cannot be signed")
			return
		}
	}
	writeJSON(w, resp)
}

// codeRefusal says why a redeemed code gives no tokens, or "": it is bound to its client,
// redirect_uri and PKCE challenge, and lives CodeTTL.
func codeRefusal(rec CodeRecord, c Client, f url.Values, now time.Time, ttl time.Duration) string {
	switch {
	case now.Sub(rec.IssuedAt) > ttl:
		return "the code expired"
	case rec.Request.ClientID != c.ApplicationID:
		return "the code was issued to another client"
	case f.Get("redirect_uri") != rec.Request.RedirectURI:
		return "redirect_uri differs from the authorization request's"
	case !pkceMatches(f.Get("code_verifier"), rec.Request.CodeChallenge):
		return "code_verifier does not match the code_challenge"
	}
	return ""
}

// pkceMatches checks an RFC 7636 S256 verifier against its challenge.
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 || strings.Trim(verifier,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != "" {
		return false
	}
	s := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(s[:])), []byte(challenge)) == 1
}

// tokenResponse is RFC 6749 §5.1's.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// tokens has the Issuer mint the access token.
func (h *Handler) tokens(w http.ResponseWriter, r *http.Request, g Grant, scopes []string, now time.Time) (*tokenResponse, bool) {
	at, exp, err := h.cfg.Tokens.IssueAccessToken(r.Context(), g, scopes, now)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the access token cannot be issued now; retry in a few seconds")
		return nil, false
	}
	return &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(exp.Sub(now).Seconds()),
		Scope: strings.Join(scopes, " ")}, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// tokenError is an RFC 6749 §5.2 error.
func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// reused tells OnReuse, if set.
func (h *Handler) reused(g Grant, what string) {
	if h.cfg.OnReuse != nil {
		h.cfg.OnReuse(g, what)
	}
}
