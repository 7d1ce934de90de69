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
	"strings"
	"time"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// The decision: which answer the rules give a request, from the request, a read-only lookup
// of the index and the time. It spends nothing and records nothing; admit.go does what an
// allowed request costs, http.go renders the answer.

// request is everything a decision needs from an HTTP request, gathered first (credentials.go).
type request struct {
	token  string
	cred   credStatus
	params params
	// write says the request being authorized may change something: its method is not GET,
	// HEAD or OPTIONS, or is unknown. It sets the least role when minRole is not given.
	write bool
	// origin is the browser Origin header; checked only by forward-auth, whose requests come
	// from browsers. "" means not a browser.
	origin string
	// grant is what a verified OAuth access token says (jwt.go); nil when the token is a key.
	// grantErr is why a presented access token was refused before any lookup.
	grant    *grant
	grantErr reason
	// transports are the transports the request opens (transports.go); each must be one its
	// connection allows.
	transports transportSet
}

// decision is the answer the rules give, with what was found on the way for the response
// headers. rOK means allowed as far as the rules go: a rate limit that applies (limited) is
// spent afterwards, by admit, and may still turn it into rate_limited.
type decision struct {
	reason reason
	key    keyView
	app    *appEntry
	conn   *connEntry
	// limit is the bucket an allowed request spends one token from; none when !limited.
	limit   rateLimit
	limited bool
	// bearer: the request presented an OAuth access token, so a 401 challenges for Bearer.
	bearer bool
	// tally counts the answer for the org and application it was decided on: the connection's
	// once found, else the Application's once its key or token led to it (tallies.go).
	tally *decisionTally
}

// rules are the verifier's settings the decision applies: how keys are formed and the least
// role of a request that may change something.
type rules struct {
	format keyformat.Format
	// writeRank is the rank of the least role of a request whose method is not safe
	// (--write-min-role).
	writeRank int
	// defaultOrigins are the allow-list's system default entries, allowed for every Application
	// (--default-allowed-origins); nil when there are none.
	defaultOrigins map[string]struct{}
}

// originAllowed says whether a browser at origin may use app's keys: one of its own allowed
// origins, or a system default entry.
func (r *rules) originAllowed(app *appEntry, origin string) bool {
	_, ok := app.origins[origin]
	return ok || r.defaultOrigin(origin)
}

// defaultOrigin says whether origin is one of the allow-list's system default entries.
func (r *rules) defaultOrigin(origin string) bool {
	_, ok := r.defaultOrigins[origin]
	return ok
}

// leastRank is the rank a request asks for: minRole when given (an explicit minRole wins,
// lower or higher), otherwise the write role for a request that may change something and
// Observer for one that only reads ("Observer is read-only access"). An unknown minRole is -1,
// refused by the caller.
func (r *rules) leastRank(minRole string, write bool) int {
	switch {
	case minRole != "":
		return v1.Role(minRole).Rank()
	case write:
		return r.writeRank
	}
	return v1.RoleObserver.Rank()
}

// decide answers one request at now. It applies the rules in a fixed order: what is wrong with
// the request itself (400), with the key (401), with what the key asks for (403); an allowed
// request carries the rate limit that applies to it (429 is admit's, when the budget is spent).
// A key's state is revealed only after its secret matched, so a guessed key id tells nothing.
// It reads the index through lk only and changes nothing: the same inputs give the same answer.
func decide(req *request, rl *rules, lk lookup, now time.Time) decision {
	// The request to the verifier must say which org, and ask for a role that exists.
	if req.params.org == "" {
		return decision{reason: rOrgMissing}
	}
	minRank := rl.leastRank(req.params.minRole, req.write)
	if minRank < 0 {
		return decision{reason: rInvalidParameter}
	}

	d := authenticate(req, rl.format, lk, now)
	if d.reason != rOK {
		return d
	}
	e, app := d.key, d.app

	// An access token issued for one org is good for that org only.
	if req.grant != nil && req.grant.org != "" && req.grant.org != req.params.org {
		d.reason = rTokenOrgMismatch
		return d
	}

	// The org granted the Application a role, high enough.
	conn := lk.connection(req.params.org, app.id, app.namespace)
	if conn == nil {
		d.reason = rOrgNotConnected
		return d
	}
	d.tally = conn.tally
	// A token an org admin's consent led to lives only as long as that very connection: once
	// it is deleted (disconnected), the token is revoked, whatever connects the application
	// again.
	if req.grant != nil && req.grant.conn != "" && conn.uid != req.grant.conn {
		d.reason = rTokenRevoked
		return d
	}
	d.conn = conn
	if conn.rank < minRank {
		d.reason = rRoleInsufficient
		return d
	}

	// The connection allows the transports the request opens (WebSockets, SSE, long polling).
	if req.transports&conn.refused != 0 {
		d.reason = rTransportNotAllowed
		return d
	}

	// The key's scopes include the one asked for (and an access token's scopes, which may be
	// narrower).
	if req.params.scope != "" && (!scopeAllowed(e.scopes, req.params.scope) ||
		req.grant != nil && !scopeAllowed(req.grant.scopes, req.params.scope)) {
		d.reason = rScopeMissing
		return d
	}

	// The metric asked for is enabled for this connection.
	if req.params.metric != "" && !lk.metricEnabled(conn.org, conn.metricSets, req.params.metric) {
		d.reason = rMetricNotEnabled
		return d
	}

	// A browser's origin is one the Application allows.
	if req.origin != "" && !rl.originAllowed(app, req.origin) {
		d.reason = rOriginNotAllowed
		return d
	}

	// Allowed. Which bucket it spends from, if any limit applies: admit spends it.
	bucket := req.params.bucket
	if bucket == "" {
		bucket = defaultBucket
	}
	d.limit, d.limited = effectiveLimit(app.rateLimits, e.limits, bucket)
	d.reason = rOK
	return d
}

// authenticate finds the key a request presents (the key itself, or the key that obtained its
// access token: findKey) and checks that it is good now, whatever is asked of it: its
// Application the very one it was minted for, the key in force, the Application with its ID,
// enabled. The token endpoint (oauth.go) asks only this.
func authenticate(req *request, format keyformat.Format, lk lookup, now time.Time) decision {
	if req.grant != nil && req.grant.keyID == "" {
		return authenticateGrant(req.grant, lk)
	}
	// The key: present, well-formed, known, and its secret matches the stored hash.
	e, r := findKey(req, format, lk)
	d := decision{key: e, reason: r, bearer: req.grant != nil || req.grantErr != rOK}
	if r != rOK {
		return d
	}

	// Its Application is there, and is the object the key was minted for: a deleted
	// Application's keys are revoked for good, whatever is applied later under its name (even
	// with its pinned ID). Final, so it comes before what the key's own state may undo.
	app := lk.application(e.namespace, e.appName)
	if app != nil {
		d.tally = app.tally
	}
	if app == nil || app.deleting || e.appUID != (uidKey{}) && e.appUID != app.uidKey {
		d.reason = rKeyRevoked
		return d
	}

	// The key is in force now.
	if r := keyInForce(e, now); r != rOK {
		d.reason = r
		return d
	}

	// Its Application has its ID and is switched on.
	if app.id == "" {
		d.reason = rKeyInactive
		return d
	}
	if !app.enabled {
		d.reason = rApplicationDisabled
		return d
	}
	d.app = app
	return d
}

// authenticateGrant checks an access token no key obtained (an org admin's consent led to it,
// the authorization code grant): its Application is the very object it was issued to, not
// being deleted, and switched on. Its connection is decide's to check, as for any request.
func authenticateGrant(g *grant, lk lookup) decision {
	d := decision{bearer: true}
	app := lk.applicationByID(g.claims.Subject)
	if app != nil {
		d.tally = app.tally
	}
	switch {
	case app == nil || app.deleting || app.uid != g.appUID || app.id != g.claims.Subject:
		d.reason = rTokenRevoked
	case !app.enabled:
		d.reason = rApplicationDisabled
	default:
		d.app = app
	}
	return d
}

// defaultBucket is the rate-limit bucket of requests that do not name one.
const defaultBucket = "general"

// keyInForce checks the APIKey's life: not being deleted nor failed (revoked with its
// Application), enabled, not expired at now (the
// expiry instant itself is expired), a rotated-out key still within its overlap, and a state in
// which keys work. spec.enabled is read directly, so disabling takes effect without waiting for
// the controller to update the state.
func keyInForce(e keyView, now time.Time) reason {
	o := e.owner
	switch {
	case o.deleting, o.state == stateFailed: // a minted key fails only when its Application is gone
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
