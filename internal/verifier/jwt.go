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

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"k8s.io/apimachinery/pkg/types"
)

// OAuth access tokens: JWTs in the RFC 9068 profile, signed with ES256 by the current token
// signing key (signingkeys.go). A token names the key that obtained it (key_id, and key_ref, a
// digest of its stored hash), and a request that presents the token is decided as if it
// presented that key (findKey → authenticate → decide): the token dies the instant its key
// does (disabled, expired, rotated out, deleted, its Application disabled), whatever its exp.

// accessTokenType is the typ header of access tokens (RFC 9068 §2.1).
const accessTokenType = "at+jwt"

// tokenLeeway is how far iat may be in the future (another replica's clock may be a little
// ahead). exp has none: a token is expired at exp exactly.
const tokenLeeway = 30 * time.Second

// accessClaims are the claims of an access token (RFC 9068 §2.2).
type accessClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	// KeyID and KeyRef name the key that obtained the token: its key id, and keyRef of its
	// stored hash, so a key id later claimed by another hash does not match. A token an org
	// admin's consent led to (the authorization code grant) names no key: it is bound to its
	// connection (Conn) and to the Application object (AppUID) instead.
	KeyID  string `json:"key_id,omitempty"`
	KeyRef string `json:"key_ref,omitempty"`
	AppUID string `json:"app_uid,omitempty"`
	// Org, when the client named one, is the only org the token is good for.
	Org string `json:"org,omitempty"`
	// Conn, on a token an org admin's consent led to (the authorization code grant), is the UID
	// of the OrgConnection that consent created or updated: the token is good only while that
	// very connection grants the application a role, not another made later in its place.
	Conn string `json:"conn,omitempty"`
}

// keyRef is a reference to a key's stored hash that a token can carry: the first 16 bytes of
// SHA-256 over a label and the hash. It reveals nothing about the key (the hash does not) and
// lets the verifier tell the key that obtained a token from another with the same id.
type keyRef [16]byte

func keyRefOf(row *keyRow, otherHash string) keyRef {
	h := sha256.New()
	h.Write([]byte("clearance.dev/oauth key_ref\x00"))
	if row.otherHash {
		h.Write([]byte(otherHash))
	} else {
		h.Write(row.digest[:])
	}
	var ref keyRef
	copy(ref[:], h.Sum(nil))
	return ref
}

// refOf is the reference of a key found by lookupKey, for a token it obtains.
func (ix *index) refOf(e keyView) keyRef {
	other := ""
	if e.row.otherHash {
		id, _ := keyIDOf(e.keyID)
		other = ix.keyStore.otherHash(id, e.row.owner.slot)
	}
	return keyRefOf(&e.row, other)
}

func (ix *index) lookupKeyRef(keyID string, ref keyRef) (keyView, bool) {
	id, ok := keyIDOf(keyID)
	if !ok {
		return keyView{}, false
	}
	s := ix.keyStore
	row, ok := s.keys.get(id)
	if !ok || row.conflict {
		return keyView{}, false
	}
	other := ""
	if row.otherHash {
		other = s.otherHash(id, row.owner.slot)
	}
	want := keyRefOf(&row, other)
	if subtle.ConstantTimeCompare(want[:], ref[:]) != 1 {
		return keyView{}, false
	}
	return s.view(keyID, row)
}

// grant is what a verified access token says about the request.
type grant struct {
	keyID  string // "": no key obtained the token (the authorization code grant): conn and appUID bind it
	appUID types.UID
	ref    keyRef
	scopes []string  // nil: every scope of the key
	org    string    // "": every org connected to the key's Application
	conn   types.UID // "": any connection of org; else only this one (accessClaims.Conn)
	claims *accessClaims
}

// key finds the key that obtained the token. A key that is gone (its APIKey deleted, or a
// rotated-out key dropped after its overlap) revokes the token.
func (g *grant) key(lk lookup) (keyView, reason) {
	e, ok := lk.lookupKeyRef(g.keyID, g.ref)
	if !ok {
		return keyView{}, rKeyRevoked
	}
	return e, rOK
}

// looksLikeJWT tells an access token from a key: keys never hold a dot, a JWS has two.
func looksLikeJWT(token string) bool {
	return strings.HasPrefix(token, "eyJ") && strings.Count(token, ".") == 2
}

// readBearer verifies an access token presented instead of a key, and sets req.grant (or
// req.grantErr); a key, or a JWT some other issuer made (a client's token for its upstream), is
// left to findKey, which finds it malformed as a key. It runs before decide, which stays pure:
// the signature, the claims and this replica's revocation list are checked here.
func (v *Verifier) readBearer(req *request, now time.Time) {
	if req.cred != credFound || !looksLikeJWT(req.token) || !v.claimsOurIssuer(req.token) {
		return
	}
	g, r := v.verifyAccessToken(req.token, now)
	if r != rOK {
		req.grantErr = r
		return
	}
	req.grant = g
}

// claimsOurIssuer reads, unverified, whether a JWT says this verifier issued it; only then is
// it checked as an access token (and refused as token_invalid if it is not a good one).
func (v *Verifier) claimsOurIssuer(raw string) bool {
	_, rest, _ := strings.Cut(raw, ".")
	payload, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return false
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	return json.Unmarshal(b, &c) == nil && c.Issuer == v.opts.OAuth.Issuer
}

// verifyAccessToken checks an access token: ES256 only (alg none or any other is refused while
// parsing), typ at+jwt, signed by a published key, this issuer and audience, not expired, not
// revoked on this replica, and naming a key.
func (v *Verifier) verifyAccessToken(raw string, now time.Time) (*grant, reason) {
	keys := v.oauth.keys.Load()
	if keys == nil {
		return nil, rSigningKeysUnavailable
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, rTokenInvalid
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, accessTokenType) &&
		!strings.EqualFold(typ, "application/"+accessTokenType) {
		return nil, rTokenInvalid
	}
	pub, ok := keys.verify[h.KeyID]
	if !ok {
		return nil, rTokenInvalid
	}
	var c accessClaims
	if err := tok.Claims(pub, &c); err != nil {
		return nil, rTokenInvalid
	}
	if c.Expiry == nil || c.IssuedAt == nil || c.ID == "" || c.Subject == "" {
		return nil, rTokenInvalid
	}
	if c.KeyID == "" && (c.Conn == "" || c.AppUID == "" || c.KeyRef != "") {
		return nil, rTokenInvalid // a token names the key that obtained it, or the grant that did
	}
	err = c.ValidateWithLeeway(jwt.Expected{Issuer: v.opts.OAuth.Issuer, AnyAudience: jwt.Audience{v.opts.OAuth.Audience}, Time: now}, tokenLeeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, rTokenExpired
	case err != nil:
		return nil, rTokenInvalid
	case !now.Before(c.Expiry.Time()):
		return nil, rTokenExpired
	}
	var ref keyRef
	if c.KeyID != "" {
		if b, err := base64.RawURLEncoding.DecodeString(c.KeyRef); err != nil || len(b) != len(ref) {
			return nil, rTokenInvalid
		} else {
			copy(ref[:], b)
		}
	}
	if v.oauth.revoked.has(c.ID) {
		return nil, rTokenRevoked
	}
	if c.Conn != "" && c.Org == "" {
		return nil, rTokenInvalid // a connection is in one org: a token bound to one names it
	}
	g := &grant{keyID: c.KeyID, ref: ref, org: c.Org, conn: types.UID(c.Conn), appUID: types.UID(c.AppUID), claims: &c}
	if c.Scope != "" {
		g.scopes = strings.Fields(c.Scope)
	}
	return g, rOK
}

// issueGrantToken signs an access token an org admin's consent led to: no key obtained it; it
// is good only while the connection conn of org grants the Application (the object app) a
// role, with scope narrowing what the role allows.
func (v *Verifier) issueGrantToken(keys *tokenKeys, app *appEntry, scope, org string, conn types.UID, now, exp time.Time) (string, error) {
	c, err := v.newClaims(app.id, scope, org, conn, now, exp)
	if err != nil {
		return "", err
	}
	c.ClientID = app.id
	c.AppUID = string(app.uid)
	return jwt.Signed(keys.signer).Claims(c).Serialize()
}

func (v *Verifier) newClaims(appID, scope, org string, conn types.UID, now, exp time.Time) (*accessClaims, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return nil, err
	}
	return &accessClaims{
		Claims: jwt.Claims{
			Issuer:   v.opts.OAuth.Issuer,
			Subject:  appID,
			Audience: jwt.Audience{v.opts.OAuth.Audience},
			Expiry:   jwt.NewNumericDate(exp),
			IssuedAt: jwt.NewNumericDate(now),
			ID:       base64.RawURLEncoding.EncodeToString(jti),
		},
		Scope: scope,
		Org:   org,
		Conn:  string(conn),
	}, nil
}

// issueAccessToken signs an access token for the key e of the Application with ID appID; with
// conn, good only while that OrgConnection of org grants the application a role.
func (v *Verifier) issueAccessToken(keys *tokenKeys, e keyView, appID, scope, org string, conn types.UID, now, exp time.Time) (string, error) {
	c, err := v.newClaims(appID, scope, org, conn, now, exp)
	if err != nil {
		return "", err
	}
	ref := v.index.refOf(e)
	c.ClientID = v.rules.format.Prefix + e.keyID
	c.KeyID = e.keyID
	c.KeyRef = base64.RawURLEncoding.EncodeToString(ref[:])
	return jwt.Signed(keys.signer).Claims(c).Serialize()
}
