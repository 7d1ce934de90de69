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
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// minRefreshKey is the least length of a refresh key: 256 bits.
const minRefreshKey = 32

// A refresh token is <family>.<generation>.<mac>, the mac an HMAC-SHA256 under RefreshKey of
// the family and generation (256 bits). The family record holds no token and no secret: the
// current token is recomputed from its generation, so a token rotated a moment ago can be
// answered again with the same next token.
func (h *Handler) refreshToken(family string, gen uint64) string {
	g := strconv.FormatUint(gen, 10)
	return family + "." + g + "." + base64.RawURLEncoding.EncodeToString(h.refreshMAC(family, g))
}

// refreshMAC is nil while no refresh key (of at least 32 bytes) is loaded: then no token is
// made or accepted.
func (h *Handler) refreshMAC(family, gen string) []byte {
	key := h.cfg.Keys.RefreshKey()
	if len(key) < minRefreshKey {
		return nil
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(family + "." + gen))
	return m.Sum(nil)
}

// parseRefresh checks a token's mac and returns its family and generation.
func (h *Handler) parseRefresh(tok string) (family string, gen uint64, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", 0, false
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(parts[2]) // one spelling per mac
	want := h.refreshMAC(parts[0], parts[1])
	if err != nil || want == nil || !hmac.Equal(mac, want) {
		return "", 0, false
	}
	gen, err = strconv.ParseUint(parts[1], 10, 64)
	return parts[0], gen, err == nil
}

// refreshStep is what a presented generation means for the family as stored.
type refreshStep int

const (
	stepRotate refreshStep = iota // the current token: move to the next generation
	stepRepeat                    // the previous one, within the leeway: answer the current token again
	stepRevoke                    // an older one, or the previous after the leeway: reuse
)

// decideRefresh is the rotation rule, pure.
func decideRefresh(f Family, gen uint64, now time.Time, leeway time.Duration) refreshStep {
	switch {
	case gen == f.Generation:
		return stepRotate
	case gen+1 == f.Generation && now.Sub(f.RotatedAt) <= leeway:
		return stepRepeat
	}
	return stepRevoke
}

// refresh rotates a family's token. The grant must still be in force; reuse of a rotated token
// revokes the family.
func (h *Handler) refresh(w http.ResponseWriter, r *http.Request, c Client) {
	ctx, now := r.Context(), h.cfg.Clock.Now()
	id, gen, ok := h.parseRefresh(r.PostForm.Get("refresh_token"))
	if !ok {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
		return
	}
	f, err := h.cfg.Store.Family(ctx, id)
	if err != nil || f.ClientID != c.ApplicationID {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown or revoked refresh token")
		return
	}
	if !f.CreatedAt.IsZero() && now.Sub(f.CreatedAt) >= h.cfg.RefreshMaxLifetime {
		h.revoke(w, r, id, "the refresh token reached its family's lifetime: ask for consent again")
		return
	}
	g := f.Grant
	role, ok := h.cfg.Directory.InForce(g.Org, g.ConnectionUID, g.ApplicationID, g.ApplicationUID)
	if !ok {
		h.revoke(w, r, id, "the grant is no longer in force")
		return
	}
	g.Role = role
	scopes, ok := narrowScopes(f.Scopes, r.PostForm.Get("scope"))
	if !ok {
		tokenError(w, http.StatusBadRequest, "invalid_scope", "scope must be within the granted scopes")
		return
	}
	next, ok := h.rotate(w, r, f, gen, now)
	if !ok {
		return
	}
	resp, ok := h.tokens(w, r, g, scopes, now)
	if !ok {
		return
	}
	resp.RefreshToken = next
	writeJSON(w, resp)
}

// rotate applies decideRefresh, retrying when a concurrent refresh moved the family first.
func (h *Handler) rotate(w http.ResponseWriter, r *http.Request, f Family, gen uint64, now time.Time) (string, bool) {
	for range 4 {
		switch decideRefresh(f, gen, now, h.cfg.RefreshLeeway) {
		case stepRepeat:
			return h.refreshToken(f.ID, f.Generation), true
		case stepRevoke:
			h.revoke(w, r, f.ID, "the refresh token was already used; its family is revoked")
			h.reused(f.Grant, "a refresh token was presented again after it was rotated: every refresh token of this consent is revoked, and the application must ask for consent again")
			return "", false
		}
		nf, err := h.cfg.Store.RotateFamily(r.Context(), f.ID, gen, now, h.cfg.RefreshTTL)
		if err == nil {
			return h.refreshToken(f.ID, nf.Generation), true
		}
		if !errors.Is(err, ErrConflict) {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown or revoked refresh token")
			return "", false
		}
		if f, err = h.cfg.Store.Family(r.Context(), f.ID); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown or revoked refresh token")
			return "", false
		}
	}
	tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "try again")
	return "", false
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, family, why string) {
	if err := h.cfg.Store.RevokeFamily(r.Context(), family, h.cfg.RefreshTTL); err != nil {
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "try again")
		return
	}
	tokenError(w, http.StatusBadRequest, "invalid_grant", why)
}

// narrowScopes is the requested scope when it is within granted (RFC 6749 §6), else granted.
// A token without a permission scope is good for every permission of the role, so a request
// keeping none of the granted permission scopes (offline_access alone) would widen the token,
// not narrow it: refused.
func narrowScopes(granted []string, requested string) ([]string, bool) {
	if requested == "" {
		return granted, true
	}
	want := strings.Fields(requested)
	for _, s := range want {
		if !slices.Contains(granted, s) {
			return nil, false
		}
	}
	if slices.ContainsFunc(granted, isPermission) && !slices.ContainsFunc(want, isPermission) {
		return nil, false
	}
	return want, true
}

// isPermission says whether a scope limits what a token may do: every scope but Scopes.
func isPermission(scope string) bool { return !slices.Contains(Scopes, scope) }
