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

import "net/http"

// Reasons are the machine-readable answers in response bodies ({"valid":false,"reason":...}),
// in the X-Clearance-Reason header of refusals and in the reason label of the decisions metric.
// They are part of the contract: docs/verifier.md lists them, clients may switch on them.
const (
	// ReasonOK is the reason label of accepted requests (bodies omit it).
	ReasonOK = "ok"

	// 401: the key itself is not good.
	ReasonKeyMissing   = "key_missing"   // no key in any accepted header
	ReasonKeyMalformed = "key_malformed" // not shaped like a key, wrong prefix, bad checksum, ambiguous headers
	ReasonKeyUnknown   = "key_unknown"   // no such key id, or the secret does not match its hash
	ReasonKeyDisabled  = "key_disabled"  // spec.enabled is false
	ReasonKeyExpired   = "key_expired"   // now >= expiresAt
	ReasonKeyRotated   = "key_rotated"   // a rotated-out key after its overlap ended
	ReasonKeyInactive  = "key_inactive"  // state Pending, or the application has no ID yet
	ReasonKeyRevoked   = "key_revoked"   // the APIKey or its Application is deleted or being deleted, or the Application is not the one the key was minted for (deleted and applied again)

	ReasonApplicationDisabled = "application_disabled" // the key's Application has spec.enabled false

	// 403: the key is good, but not for this request.
	ReasonOrgNotConnected  = "org_not_connected"  // no Ready OrgConnection in the org for the key's application
	ReasonRoleInsufficient = "role_insufficient"  // the connection's role is below minRole
	ReasonScopeMissing     = "scope_missing"      // the key's scopes do not include scope
	ReasonMetricNotEnabled = "metric_not_enabled" // metric is not enabled in the connection's MetricSets
	ReasonOriginNotAllowed = "origin_not_allowed" // browser Origin not in the application's allowedOrigins
	// transport_not_allowed: the request opens a WebSocket, a Server-Sent Events stream or a long
	// poll, and the connection's spec.transports refuses it.
	ReasonTransportNotAllowed = "transport_not_allowed"

	// 429.
	ReasonRateLimited = "rate_limited"

	// 400, 404, 405: the request to the verifier is wrong (a configuration error, usually).
	ReasonOrgMissing       = "org_missing"        // neither org= nor X-Clearance-Org
	ReasonOrgConflict      = "org_conflict"       // org= and X-Clearance-Org disagree
	ReasonInvalidParameter = "invalid_parameter"  // unknown minRole, a parameter given twice, bad escaping
	ReasonBadRequest       = "bad_request"        // keys:verify body is not the expected JSON; /v1/preflight asked something other than a preflight
	ReasonNotFound         = "not_found"          // unknown path
	ReasonMethodNotAllowed = "method_not_allowed" // keys:verify with another method than POST

	// 503: the verifier cannot answer truthfully.
	ReasonStale    = "stale"     // no contact with the apiserver for longer than --max-staleness
	ReasonNotReady = "not_ready" // the index has not loaded yet

	// OAuth access tokens presented as Authorization: Bearer (jwt.go). The key that obtained a
	// token is checked as if it were presented itself, with the key_* reasons above.
	ReasonTokenInvalid           = "token_invalid"            // 401: not a token this verifier signed, wrong typ, issuer or audience
	ReasonTokenExpired           = "token_expired"            // 401: now >= exp
	ReasonTokenRevoked           = "token_revoked"            // 401: revoked with /oauth2/revoke (on this replica)
	ReasonTokenOrgMismatch       = "token_org_mismatch"       // 403: the token was issued for another org
	ReasonSigningKeysUnavailable = "signing_keys_unavailable" // 503: no token signing keys loaded, so no token can be checked
)

// reason indexes the per-reason tables (status, bodies, counters) so the hot path never hashes
// a string to find them.
type reason uint8

const (
	rOK reason = iota
	rKeyMissing
	rKeyMalformed
	rKeyUnknown
	rKeyDisabled
	rKeyExpired
	rKeyRotated
	rKeyInactive
	rKeyRevoked
	rApplicationDisabled
	rOrgNotConnected
	rRoleInsufficient
	rScopeMissing
	rMetricNotEnabled
	rOriginNotAllowed
	rTransportNotAllowed
	rRateLimited
	rOrgMissing
	rOrgConflict
	rInvalidParameter
	rBadRequest
	rNotFound
	rMethodNotAllowed
	rStale
	rNotReady
	rTokenInvalid
	rTokenExpired
	rTokenRevoked
	rTokenOrgMismatch
	rSigningKeysUnavailable
	numReasons
)

var reasonNames = [numReasons]string{
	rOK:                  ReasonOK,
	rKeyMissing:          ReasonKeyMissing,
	rKeyMalformed:        ReasonKeyMalformed,
	rKeyUnknown:          ReasonKeyUnknown,
	rKeyDisabled:         ReasonKeyDisabled,
	rKeyExpired:          ReasonKeyExpired,
	rKeyRotated:          ReasonKeyRotated,
	rKeyInactive:         ReasonKeyInactive,
	rKeyRevoked:          ReasonKeyRevoked,
	rApplicationDisabled: ReasonApplicationDisabled,
	rOrgNotConnected:     ReasonOrgNotConnected,
	rRoleInsufficient:    ReasonRoleInsufficient,
	rScopeMissing:        ReasonScopeMissing,
	rMetricNotEnabled:    ReasonMetricNotEnabled,
	rOriginNotAllowed:    ReasonOriginNotAllowed,
	rTransportNotAllowed: ReasonTransportNotAllowed,
	rRateLimited:         ReasonRateLimited,
	rOrgMissing:          ReasonOrgMissing,
	rOrgConflict:         ReasonOrgConflict,
	rInvalidParameter:    ReasonInvalidParameter,
	rBadRequest:          ReasonBadRequest,
	rNotFound:            ReasonNotFound,
	rMethodNotAllowed:    ReasonMethodNotAllowed,
	rStale:               ReasonStale,
	rNotReady:            ReasonNotReady,

	rTokenInvalid:           ReasonTokenInvalid,
	rTokenExpired:           ReasonTokenExpired,
	rTokenRevoked:           ReasonTokenRevoked,
	rTokenOrgMismatch:       ReasonTokenOrgMismatch,
	rSigningKeysUnavailable: ReasonSigningKeysUnavailable,
}

var reasonStatuses = [numReasons]int{
	rOK:                  http.StatusOK,
	rKeyMissing:          http.StatusUnauthorized,
	rKeyMalformed:        http.StatusUnauthorized,
	rKeyUnknown:          http.StatusUnauthorized,
	rKeyDisabled:         http.StatusUnauthorized,
	rKeyExpired:          http.StatusUnauthorized,
	rKeyRotated:          http.StatusUnauthorized,
	rKeyInactive:         http.StatusUnauthorized,
	rKeyRevoked:          http.StatusUnauthorized,
	rApplicationDisabled: http.StatusUnauthorized,
	rOrgNotConnected:     http.StatusForbidden,
	rRoleInsufficient:    http.StatusForbidden,
	rScopeMissing:        http.StatusForbidden,
	rMetricNotEnabled:    http.StatusForbidden,
	rOriginNotAllowed:    http.StatusForbidden,
	rTransportNotAllowed: http.StatusForbidden,
	rRateLimited:         http.StatusTooManyRequests,
	rOrgMissing:          http.StatusBadRequest,
	rOrgConflict:         http.StatusBadRequest,
	rInvalidParameter:    http.StatusBadRequest,
	rBadRequest:          http.StatusBadRequest,
	rNotFound:            http.StatusNotFound,
	rMethodNotAllowed:    http.StatusMethodNotAllowed,
	rStale:               http.StatusServiceUnavailable,
	rNotReady:            http.StatusServiceUnavailable,

	rTokenInvalid:           http.StatusUnauthorized,
	rTokenExpired:           http.StatusUnauthorized,
	rTokenRevoked:           http.StatusUnauthorized,
	rTokenOrgMismatch:       http.StatusForbidden,
	rSigningKeysUnavailable: http.StatusServiceUnavailable,
}

func (r reason) String() string { return reasonNames[r] }

// status is the HTTP status of a forward-auth answer with this reason.
func (r reason) status() int { return reasonStatuses[r] }

// Precomputed response pieces, so no refusal or acceptance formats anything.
var (
	okBody        = []byte(`{"valid":true}`)
	reasonBodies  [numReasons][]byte
	reasonHeaders [numReasons][]string
)

func init() {
	for r := reason(0); r < numReasons; r++ {
		reasonBodies[r] = []byte(`{"valid":false,"reason":"` + reasonNames[r] + `"}`)
		reasonHeaders[r] = []string{reasonNames[r]}
	}
}
