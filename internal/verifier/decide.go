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
	key    *keyEntry
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
	e, ok := v.index.keys.get(parsed.KeyID)
	if !ok || e.conflict || !hashMatches(e, req.token) {
		return decision{reason: rKeyUnknown}
	}
	d := decision{key: e}

	// The key is in force now.
	if r := keyInForce(e, now); r != rOK {
		d.reason = r
		return d
	}

	// Its Application is there and has its ID.
	app, ok := v.index.apps.get(nsName{e.owner.namespace, e.owner.applicationName})
	if !ok || app.deleting {
		d.reason = rKeyRevoked
		return d
	}
	if app.id == "" {
		d.reason = rKeyInactive
		return d
	}
	d.app = app

	// The org granted the Application a role, high enough.
	conn := v.index.connection(req.params.org, app.id, e.owner.namespace)
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
	if req.params.scope != "" && !scopeAllowed(e.owner.scopes, req.params.scope) {
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
	if cfg, ok := effectiveLimit(app.rateLimits, e.owner.rateLimits, bucket); ok {
		d.rate = e.owner.usage.limiter(bucket, cfg, now).take(now)
		if !d.rate.allowed {
			d.reason = rRateLimited
			return d
		}
	}

	v.usage.record(e.owner.usage, now)
	d.reason = rOK
	return d
}

// defaultBucket is the rate-limit bucket of requests that do not name one.
const defaultBucket = "general"

// keyInForce checks the APIKey's life: not being deleted, enabled, not expired at now (the
// expiry instant itself is expired), a rotated-out key still within its overlap, and a state in
// which keys work. spec.enabled is read directly, so disabling takes effect without waiting for
// the controller to update the state.
func keyInForce(e *keyEntry, now time.Time) reason {
	o := e.owner
	switch {
	case o.deleting:
		return rKeyRevoked
	case !o.enabled || o.state == v1.KeyDisabled:
		return rKeyDisabled
	case o.state == v1.KeyExpired, !o.expiresAt.IsZero() && !now.Before(o.expiresAt):
		return rKeyExpired
	case e.previous && !now.Before(e.validUntil):
		return rKeyRotated
	case o.state != v1.KeyActive && o.state != v1.KeyRotating:
		return rKeyInactive
	}
	return rOK
}

// hashMatches compares the presented token with the stored hash in constant time.
func hashMatches(e *keyEntry, token string) bool {
	if e.hash != "" {
		return keyformat.Verify(token, e.hash)
	}
	var sum [sha256.Size]byte
	if len(token) <= maxStackToken {
		var buf [maxStackToken]byte // keeps the copy of the token off the heap
		sum = sha256.Sum256(buf[:copy(buf[:], token)])
	} else {
		sum = sha256.Sum256([]byte(token))
	}
	return subtle.ConstantTimeCompare(sum[:], e.digest[:]) == 1
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
