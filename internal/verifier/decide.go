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
	"crypto/sha256"
	"crypto/subtle"
	"strings"
	"time"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// request is everything a decision needs from an HTTP request, gathered first.
type request struct {
	token  string
	cred   credStatus
	params params
	// origin is the browser Origin header; checked only by forward-auth, whose requests come
	// from browsers. "" means not a browser.
	origin string
}

// decision is the answer, with what was found on the way for the response headers.
type decision struct {
	reason reason
	key    keyView
	app    *appEntry
	conn   *connEntry
	rate   rateResult
}

// decide answers one request at now. It gathers from the index and applies the rules in a fixed
// order: what is wrong with the request itself (400), with the key (401), with what the key asks
// for (403), with the budget (429). A key's state is revealed only after its secret matched, so
// a guessed key id tells nothing.
func (v *Verifier) decide(req *request, now time.Time) decision {
	// The request to the verifier must say which org, and ask for a role that exists.
	if req.params.org == "" {
		return decision{reason: rOrgMissing}
	}
	minRank := -1
	if req.params.minRole != "" {
		if minRank = v1.Role(req.params.minRole).Rank(); minRank < 0 {
			return decision{reason: rInvalidParameter}
		}
	}

	// The key: present, well-formed, known, and its secret matches the stored hash.
	switch req.cred {
	case credMissing:
		return decision{reason: rKeyMissing}
	case credMalformed:
		return decision{reason: rKeyMalformed}
	}
	parsed, err := v.format.Parse(req.token)
	if err != nil {
		return decision{reason: rKeyMalformed}
	}
	e, ok := v.index.lookupKey(parsed.KeyID, req.token)
	if !ok {
		return decision{reason: rKeyUnknown}
	}
	d := decision{key: e}

	// The key is in force now.
	if r := keyInForce(e, now); r != rOK {
		d.reason = r
		return d
	}

	// Its Application is there and has its ID.
	app, ok := v.index.apps.get(nsName{e.namespace, e.appName})
	if !ok || app.deleting {
		d.reason = rKeyRevoked
		return d
	}
	if app.id == "" {
		d.reason = rKeyInactive
		return d
	}
	if !app.enabled {
		d.reason = rApplicationDisabled
		return d
	}
	d.app = app

	// The org granted the Application a role, high enough.
	conn := v.index.connection(req.params.org, app.id, e.namespace)
	if conn == nil {
		d.reason = rOrgNotConnected
		return d
	}
	d.conn = conn
	if conn.rank < minRank {
		d.reason = rRoleInsufficient
		return d
	}

	// The key's scopes include the one asked for.
	if req.params.scope != "" && !scopeAllowed(e.scopes, req.params.scope) {
		d.reason = rScopeMissing
		return d
	}

	// The metric asked for is enabled for this connection.
	if req.params.metric != "" && !v.index.metricEnabled(conn.org, conn.metricSets, req.params.metric) {
		d.reason = rMetricNotEnabled
		return d
	}

	// A browser's origin is one the Application allows.
	if req.origin != "" {
		if _, ok := app.origins[req.origin]; !ok {
			d.reason = rOriginNotAllowed
			return d
		}
	}

	// The key has budget left in the bucket.
	bucket := req.params.bucket
	if bucket == "" {
		bucket = defaultBucket
	}
	if cfg, ok := effectiveLimit(app.rateLimits, e.limits, bucket); ok {
		d.rate = e.usage.take(cfg, now)
		if !d.rate.allowed {
			d.reason = rRateLimited
			return d
		}
	}

	v.usage.record(e.row.owner, e.usage, now)
	d.reason = rOK
	return d
}

// defaultBucket is the rate-limit bucket of requests that do not name one.
const defaultBucket = "general"

// keyInForce checks the APIKey's life: not being deleted, enabled, not expired at now (the
// expiry instant itself is expired), a rotated-out key still within its overlap, and a state in
// which keys work. spec.enabled is read directly, so disabling takes effect without waiting for
// the controller to update the state.
func keyInForce(e keyView, now time.Time) reason {
	o := e.owner
	switch {
	case o.deleting:
		return rKeyRevoked
	case !o.enabled || o.state == stateDisabled:
		return rKeyDisabled
	case o.state == stateExpired, o.expiresAt.reached(now):
		return rKeyExpired
	case e.row.previous && e.row.validUntil.reached(now):
		return rKeyRotated
	case o.state != stateActive && o.state != stateRotating:
		return rKeyInactive
	}
	return rOK
}

// keyView is a key as one request sees it: its row, its APIKey's row, and what those refer to.
type keyView struct {
	keyID     string // from the request's token
	row       keyRow
	owner     ownerRow
	namespace string
	appName   string
	scopes    []string
	limits    map[string]rateLimit
	usage     *keyUsage
}

// lookupKey finds the key with keyID whose hash token matches, refusing conflicts.
func (ix *index) lookupKey(keyID, token string) (keyView, bool) {
	id, ok := keyIDOf(keyID)
	if !ok {
		return keyView{}, false
	}
	s := ix.keyStore
	row, ok := s.keys.get(id)
	if !ok || row.conflict {
		return keyView{}, false
	}
	if row.otherHash {
		if !keyformat.Verify(token, s.otherHash(id, row.owner.slot)) {
			return keyView{}, false
		}
	} else if !digestMatches(&row.digest, token) {
		return keyView{}, false
	}
	owner, ok := s.owner(row.owner)
	if !ok {
		return keyView{}, false // its APIKey went away meanwhile
	}
	return keyView{
		keyID:     keyID,
		row:       row,
		owner:     owner,
		namespace: s.strs.get(owner.namespace),
		appName:   s.strs.get(owner.appName),
		scopes:    s.scopeSets.get(owner.scopes),
		limits:    s.limitSets.get(owner.limits),
		usage:     s.usage(row.owner),
	}, true
}

// expiresAt is when the key stops working by itself: its APIKey's expiry, or the end of a
// rotated-out key's overlap if that is earlier. Unset: never.
func (e keyView) expiresAt() instant {
	exp := e.owner.expiresAt
	if e.row.previous && e.row.validUntil.before(exp) { // before an unset instant: always
		exp = e.row.validUntil
	}
	return exp
}

// digestMatches compares the presented token with the stored SHA-256 in constant time.
func digestMatches(digest *[sha256.Size]byte, token string) bool {
	var sum [sha256.Size]byte
	if len(token) <= maxStackToken {
		var buf [maxStackToken]byte // keeps the copy of the token off the heap
		sum = sha256.Sum256(buf[:copy(buf[:], token)])
	} else {
		sum = sha256.Sum256([]byte(token))
	}
	return subtle.ConstantTimeCompare(sum[:], digest[:]) == 1
}

// maxStackToken covers every valid key (the longest prefix is 17 characters, the rest 62).
const maxStackToken = 96

// scopeAllowed reports whether a key with scopes may act with scope. A key without scopes has
// every scope its role allows; "reports:*" grants every scope under "reports:".
func scopeAllowed(scopes []string, scope string) bool {
	if len(scopes) == 0 {
		return true
	}
	for _, s := range scopes {
		if s == scope {
			return true
		}
		if prefix, ok := strings.CutSuffix(s, "*"); ok && strings.HasSuffix(prefix, ":") &&
			strings.HasPrefix(scope, prefix) && len(scope) > len(prefix) {
			return true
		}
	}
	return false
}
