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
	"net/http"
	"net/url"
	"strings"

	"github.com/clearance-dev/clearance/internal/keyformat"
)

// Canonical header names, used as map keys directly so the hot path canonicalizes nothing.
const (
	hAuthorization     = "Authorization"
	hXAPIKey           = "X-Api-Key"
	hAccessKey         = "Accesskey"
	hSecretKey         = "Secretkey"
	hWebSocketProtocol = "Sec-Websocket-Protocol"
	hOrigin            = "Origin"
	hClearanceOrg      = "X-Clearance-Org"
	hClearanceMinRole  = "X-Clearance-Min-Role"
	hClearanceScope    = "X-Clearance-Scope"
	hClearanceMetric   = "X-Clearance-Metric"
	hClearanceBucket   = "X-Clearance-Bucket"
	hOriginalMethod    = "X-Original-Method"
	hForwardedMethod   = "X-Forwarded-Method"
	hACRequestMethod   = "Access-Control-Request-Method"
)

// webSocketKeyPrefix marks the Sec-WebSocket-Protocol entry that carries a key, for browsers,
// which cannot set other headers on a WebSocket handshake.
const webSocketKeyPrefix = "clearance.key."

// credStatus says what the request's headers held.
type credStatus uint8

const (
	credMissing credStatus = iota
	credFound
	credMalformed
)

// credentials finds the key in the request headers. The first form present wins, in this order:
//
//	Authorization: api-key K        (explicit, so it wins over everything)
//	X-API-Key: K
//	accessKey: A + secretKey: S     (joined with Format.Join)
//	Authorization: Bearer K
//	Sec-WebSocket-Protocol: ..., clearance.key.K, ...
//
// X-API-Key comes before Bearer so a client can send its user's bearer token to the upstream
// and the Clearance key beside it. A form given twice (two header lines, two clearance.key.
// entries) is malformed rather than guessed at, as is half a pair. The token is returned as a
// substring of the header; nothing here logs or copies it.
func credentials(h http.Header, f keyformat.Format) (string, credStatus) {
	var bearer string
	bearerSeen := false
	if vs := h[hAuthorization]; len(vs) > 0 {
		if len(vs) > 1 {
			return "", credMalformed
		}
		scheme, token, _ := strings.Cut(strings.TrimSpace(vs[0]), " ")
		token = strings.TrimSpace(token)
		switch {
		case strings.EqualFold(scheme, "api-key"):
			return nonEmpty(token)
		case strings.EqualFold(scheme, "bearer"):
			bearer, bearerSeen = token, true
		}
	}
	if vs := h[hXAPIKey]; len(vs) > 0 {
		if len(vs) > 1 {
			return "", credMalformed
		}
		return nonEmpty(strings.TrimSpace(vs[0]))
	}
	access, secret := h[hAccessKey], h[hSecretKey]
	if len(access) > 0 || len(secret) > 0 {
		if len(access) != 1 || len(secret) != 1 {
			return "", credMalformed
		}
		return nonEmpty(f.Join(strings.TrimSpace(access[0]), strings.TrimSpace(secret[0])))
	}
	if bearerSeen {
		return nonEmpty(bearer)
	}
	if vs := h[hWebSocketProtocol]; len(vs) > 0 {
		found, n := "", 0
		for _, v := range vs {
			for v != "" {
				var item string
				item, v, _ = strings.Cut(v, ",")
				if k, ok := strings.CutPrefix(strings.TrimSpace(item), webSocketKeyPrefix); ok {
					found = k
					n++
				}
			}
		}
		switch {
		case n == 1:
			return nonEmpty(found)
		case n > 1:
			return "", credMalformed
		}
	}
	return "", credMissing
}

// findKey looks up the key a request presents: the key itself, whose secret must match its
// stored hash, or, for an OAuth access token whose signature was verified (readBearer), the key
// that obtained it, by its key id and digest reference (jwt.go). Nothing about a key is in the
// view unless its secret or the token's signature matched.
func findKey(req *request, format keyformat.Format, lk lookup) (keyView, reason) {
	switch {
	case req.cred == credMissing:
		return keyView{}, rKeyMissing
	case req.cred == credMalformed:
		return keyView{}, rKeyMalformed
	case req.grantErr != rOK:
		return keyView{}, req.grantErr
	case req.grant != nil:
		return req.grant.key(lk)
	}
	parsed, err := format.Parse(req.token)
	if err != nil {
		return keyView{}, rKeyMalformed
	}
	e, ok := lk.lookupKey(parsed.KeyID, req.token)
	if !ok {
		return keyView{}, rKeyUnknown
	}
	return e, rOK
}

func nonEmpty(token string) (string, credStatus) {
	if token == "" {
		return "", credMalformed
	}
	return token, credFound
}

// authorizeRequest gathers what a forward-auth decision needs from the auth request's headers
// and query: its parameters and the key. With envoyForm (Envoy's ext_authz appends the
// client's path and query to /v1/authorize) the parameters come from X-Clearance-* headers
// only; otherwise from the auth request's own query, and the org may also come from
// X-Clearance-Org, which must then agree with org=.
func authorizeRequest(h http.Header, rawQuery string, envoyForm bool, f keyformat.Format) (request, reason) {
	var req request
	var rs reason
	if envoyForm {
		req.params, rs = headerParams(h)
	} else {
		req.params, rs = queryParams(rawQuery)
		if rs == rOK {
			switch org := h[hClearanceOrg]; {
			case len(org) > 1:
				rs = rInvalidParameter
			case len(org) == 1 && req.params.org == "":
				req.params.org = org[0]
			case len(org) == 1 && org[0] != req.params.org:
				rs = rOrgConflict
			}
		}
	}
	if rs != rOK {
		return request{}, rs
	}
	var ok bool
	if req.transports, ok = parseTransport(req.params.transport); !ok {
		return request{}, rInvalidParameter
	}
	req.token, req.cred = credentials(h, f)
	return req, rOK
}

// verifyRequest is what a keys:verify body asks: the key and the same parameters. A transport
// that is not one of transportNames is invalid_parameter.
func verifyRequest(body *VerifyRequest) (request, reason) {
	sig := signals{own: strings.TrimSpace(body.Method)}
	req := request{
		token:  strings.TrimSpace(body.Key),
		params: params{org: body.Org, minRole: body.MinRole, scope: body.Scope, metric: body.Metric, bucket: body.Bucket, transport: body.Transport},
		write:  sig.access() == accessWrite,
	}
	var ok bool
	if req.transports, ok = parseTransport(body.Transport); !ok {
		return request{}, rInvalidParameter
	}
	if req.token != "" {
		req.cred = credFound
	}
	return req, rOK
}

// params are what a forward-auth request asks about the key.
type params struct {
	org, minRole, scope, metric, bucket string
	// transport is the transport the route serves (transport=), for routes whose requests do
	// not say it in their headers (a long-polling endpoint): one of transportNames.
	transport string
}

// queryParams reads org, minRole, scope, metric, bucket and transport from the auth request's own query
// (set per route by whoever configured the proxy). It splits the query by hand so the common
// case (nothing escaped) allocates nothing. A parameter given twice is refused: the proxy
// configuration and the client must never be able to disagree silently.
func queryParams(raw string) (params, reason) {
	var p params
	var seen uint8
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		var dst *string
		var bit uint8
		switch k {
		case "org":
			dst, bit = &p.org, 1
		case "minRole":
			dst, bit = &p.minRole, 2
		case "scope":
			dst, bit = &p.scope, 4
		case "metric":
			dst, bit = &p.metric, 8
		case "bucket":
			dst, bit = &p.bucket, 16
		case "transport":
			dst, bit = &p.transport, 32
		default:
			continue
		}
		if seen&bit != 0 {
			return params{}, rInvalidParameter
		}
		seen |= bit
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return params{}, rInvalidParameter
			}
			v = u
		}
		*dst = v
	}
	return p, rOK
}

// headerParams reads the parameters from X-Clearance-* headers, for Envoy's ext_authz, whose
// auth request carries the client's own path and query (so those cannot be trusted) and which
// adds headers of the operator's choosing instead.
func headerParams(h http.Header) (params, reason) {
	var p params
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{hClearanceOrg, &p.org}, {hClearanceMinRole, &p.minRole}, {hClearanceScope, &p.scope},
		{hClearanceMetric, &p.metric}, {hClearanceBucket, &p.bucket}, {hClearanceTransport, &p.transport},
	} {
		switch vs := h[f.name]; len(vs) {
		case 0:
		case 1:
			*f.dst = strings.TrimSpace(vs[0])
		default:
			return params{}, rInvalidParameter
		}
	}
	return p, rOK
}

// firstHeader is the single value of a header, "" when absent or repeated.
func firstHeader(h http.Header, name string) string {
	if vs := h[name]; len(vs) == 1 {
		return vs[0]
	}
	return ""
}
