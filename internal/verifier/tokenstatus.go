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

package verifier

// Revocation (RFC 7009) and introspection (RFC 7662) of access tokens.

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// serveRevoke is token revocation (RFC 7009). The revoked token's jti is remembered by this
// replica until its exp (revocationList); a token that is not valid, not ours or already expired
// needs no revoking and is answered 200 too. Revoking is per replica: to end every token of a
// key on every replica at once, disable or rotate the key.
func (v *Verifier) serveRevoke(w http.ResponseWriter, r *http.Request, now time.Time) {
	oe := v.revoke(w, r, now)
	if oe != nil {
		v.writeOAuthError(w, endpointRevoke, oe)
		return
	}
	out := w.Header()
	out[hCacheControl] = vNoStore
	w.WriteHeader(http.StatusOK)
	v.oauth.requests.WithLabelValues(endpointRevoke, "ok").Inc()
}

func (v *Verifier) revoke(w http.ResponseWriter, r *http.Request, now time.Time) *oauthError {
	form, oe := oauthForm(w, r)
	if oe != nil {
		return oe
	}
	raw := form.Get("token")
	if raw == "" {
		return badRequest(errInvalidRequest, "token is missing")
	}
	if oe := v.unavailableNow(now, false); oe != nil {
		return oe
	}
	d, oe := v.authenticateClient(r, form, now)
	if oe != nil {
		return oe
	}
	g, rs := v.verifyAccessToken(raw, now)
	if rs != rOK || g == nil {
		return nil // invalid, expired, already revoked: nothing to do (RFC 7009 §2.2)
	}
	if g.claims.Subject != d.app.id {
		return badRequest(errInvalidRequest, "the token was not issued to this client's application")
	}
	if !v.oauth.revoked.add(g.claims.ID, d.app.namespace, g.claims.Expiry.Time(), now) {
		return &oauthError{status: http.StatusServiceUnavailable, code: errUnavailable, retryAfter: 5,
			desc: "this replica remembers as many revoked tokens as it may (a tenth of them for the Applications of one org); disable or rotate the key to end its tokens"}
	}
	return nil
}

// Introspection is the answer of the introspection endpoint (RFC 7662 §2.2).
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       string `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
	Org       string `json:"org,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
}

// serveIntrospect is token introspection (RFC 7662). A client may introspect the tokens of its
// own Application; any other token is answered inactive, like one that is not valid. Active
// means now: signature, exp, this replica's revocation list and the key that obtained it.
func (v *Verifier) serveIntrospect(w http.ResponseWriter, r *http.Request, now time.Time) {
	resp, oe := v.introspect(w, r, now)
	if oe != nil {
		v.writeOAuthError(w, endpointIntrospect, oe)
		return
	}
	v.writeOAuthJSON(w, endpointIntrospect, resp)
}

func (v *Verifier) introspect(w http.ResponseWriter, r *http.Request, now time.Time) (*Introspection, *oauthError) {
	form, oe := oauthForm(w, r)
	if oe != nil {
		return nil, oe
	}
	raw := form.Get("token")
	if raw == "" {
		return nil, badRequest(errInvalidRequest, "token is missing")
	}
	if oe := v.unavailableNow(now, false); oe != nil {
		return nil, oe
	}
	d, oe := v.authenticateClient(r, form, now)
	if oe != nil {
		return nil, oe
	}
	inactive := &Introspection{Active: false}
	req := request{token: raw, cred: credFound}
	if !looksLikeJWT(raw) {
		return inactive, nil
	}
	v.readBearer(&req, now)
	if req.grant == nil || req.grant.claims.Subject != d.app.id {
		return inactive, nil
	}
	td := authenticate(&req, v.rules.format, v.index, now)
	if td.reason != rOK {
		return inactive, nil
	}
	if g := req.grant; g.conn != "" {
		if _, ok := v.GrantInForce(g.org, string(g.conn), g.claims.Subject, string(td.app.uid)); !ok {
			return inactive, nil // the connection it was bound to is gone
		}
	}
	c := req.grant.claims
	aud := ""
	if len(c.Audience) > 0 {
		aud = c.Audience[0]
	}
	return &Introspection{Active: true, Scope: c.Scope, ClientID: c.ClientID, TokenType: "Bearer", Exp: c.Expiry.Time().Unix(),
		Iat: c.IssuedAt.Time().Unix(), Sub: c.Subject, Aud: aud, Iss: c.Issuer, Jti: c.ID, Org: c.Org, KeyID: c.KeyID}, nil
}

// revocationList is this replica's memory of access tokens revoked with /oauth2/revoke: jti →
// exp, each kept until its exp, at most max at once, and at most a tenth of them revoked by the
// Applications of one org (the owner), so no tenant can fill it for everyone. It is per
// replica and in memory: another replica, or this one after a restart, accepts the token until
// its exp unless its key stops.
type revocationList struct {
	n       atomic.Int64 // entries, so the common case (none) takes no lock
	mu      sync.RWMutex
	m       map[string]revokedToken // jti →
	byOwner map[string]int          // entries per owner
	max     int
}

type revokedToken struct {
	exp   int64 // unix seconds
	owner string
}

func (l *revocationList) has(jti string) bool {
	if l.n.Load() == 0 {
		return false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.m[jti]
	return ok
}

// ownerShare is the most entries one owner may hold.
func (l *revocationList) ownerShare() int { return max(1, l.max/10) }

// add remembers jti, revoked by an Application of org owner, until exp; false when the list,
// or the owner's share of it, is full of tokens not yet expired.
func (l *revocationList) add(jti, owner string, exp, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m, l.byOwner = map[string]revokedToken{}, map[string]int{}
	}
	if _, ok := l.m[jti]; ok {
		return true
	}
	if len(l.m) >= l.max || l.byOwner[owner] >= l.ownerShare() {
		for k, e := range l.m {
			if e.exp <= now.Unix() {
				delete(l.m, k)
				if l.byOwner[e.owner]--; l.byOwner[e.owner] == 0 {
					delete(l.byOwner, e.owner)
				}
			}
		}
		l.n.Store(int64(len(l.m)))
	}
	if len(l.m) >= l.max || l.byOwner[owner] >= l.ownerShare() {
		return false
	}
	l.m[jti] = revokedToken{exp: exp.Unix(), owner: owner}
	l.byOwner[owner]++
	l.n.Store(int64(len(l.m)))
	return true
}
