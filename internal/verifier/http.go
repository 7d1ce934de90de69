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
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Paths the verifier serves.
const (
	PathAuthorize = "/v1/authorize"
	PathVerify    = "/v1/keys:verify"
	// PathPreflight answers CORS preflights only, for proxies whose auth request is always a
	// GET (Caddy, HAProxy, Traefik): they send their OPTIONS requests here.
	PathPreflight = "/v1/preflight"
)

// Response header names, canonical so they are map keys as they are.
const (
	hContentType      = "Content-Type"
	hCacheControl     = "Cache-Control"
	hWWWAuthenticate  = "Www-Authenticate"
	hRetryAfter       = "Retry-After"
	hReason           = "X-Clearance-Reason"
	hApplicationID    = "X-Clearance-Application-Id"
	hRole             = "X-Clearance-Role"
	hKeyID            = "X-Clearance-Key-Id"
	hRateLimitLimit   = "X-Ratelimit-Limit"
	hRateLimitRemain  = "X-Ratelimit-Remaining"
	hRateLimitReset   = "X-Ratelimit-Reset"
	hRateLimitPolicy  = "Ratelimit-Policy"
	hRateLimit        = "Ratelimit"
	hAllow            = "Allow"
	hVary             = "Vary"
	hACAllowOrigin    = "Access-Control-Allow-Origin"
	hACAllowMethods   = "Access-Control-Allow-Methods"
	hACAllowHeaders   = "Access-Control-Allow-Headers"
	hACExposeHeaders  = "Access-Control-Expose-Headers"
	hACMaxAge         = "Access-Control-Max-Age"
	hACRequestHeaders = "Access-Control-Request-Headers"
)

// Constant header values, shared by every response (capacity full: an Add copies).
var (
	vJSON            = header("application/json")
	vNoStore         = header("no-store")
	vWWWAuthenticate = header(`api-key realm="clearance"`)
	vBearerChallenge = header(`Bearer realm="clearance", error="invalid_token"`)
	vAllowPost       = header(http.MethodPost)
	vVaryOrigin      = header("Origin")
	vVaryPreflight   = header("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	vAllowMethods    = header("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
	vAllowHeaders    = header("Authorization, X-API-Key, accessKey, secretKey, X-Clearance-Org, Content-Type, Sec-WebSocket-Protocol")
	vExposeHeaders   = header("X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, RateLimit, RateLimit-Policy, Retry-After, " +
		"X-Clearance-Application-Id, X-Clearance-Org, X-Clearance-Role, X-Clearance-Key-Id, X-Clearance-Reason")
	vMaxAge = header("600")
)

// The HTTP edge: routing, and rendering answers (status, headers, body, the decisions metric)
// in one place. What a request asks is read in credentials.go; whether the verifier can answer
// at all in staleness.go; the answer in decide.go and admit.go.

// ServeHTTP routes to forward-auth, the JSON API, or 404.
func (v *Verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := v.clock.Now()
	switch p := r.URL.Path; {
	case p == PathAuthorize:
		v.serveAuthorize(w, r, start, false)
		v.metrics.latencyAuthorize.Observe(v.clock.Since(start).Seconds())
	case strings.HasPrefix(p, PathAuthorize+"/"):
		v.serveAuthorize(w, r, start, true)
		v.metrics.latencyAuthorize.Observe(v.clock.Since(start).Seconds())
	case p == PathVerify:
		v.serveVerify(w, r, start)
		v.metrics.latencyVerify.Observe(v.clock.Since(start).Seconds())
	case p == PathPreflight:
		v.servePreflight(w, r, start)
		v.metrics.latencyAuthorize.Observe(v.clock.Since(start).Seconds())
	default:
		if !v.serveOAuth(w, r, start) {
			v.refuse(w, refusal(rNotFound))
		}
	}
}

// serveAuthorize is forward-auth: whether the verifier can answer, a CORS preflight, what the
// request asks (with envoyForm from X-Clearance-* headers only, see authorizeRequest), the
// decision, its cost, the answer.
func (v *Verifier) serveAuthorize(w http.ResponseWriter, r *http.Request, now time.Time, envoyForm bool) {
	if rs := v.unavailable(now); rs != rOK {
		v.refuse(w, refusal(rs))
		return
	}
	h := r.Header
	if len(h[hOrigin]) > 1 {
		v.refuse(w, refusal(rOriginNotAllowed)) // no browser sends two
		return
	}
	origin := firstHeader(h, hOrigin)
	sig := requestSignals(r)
	acc := sig.access()
	if acc == accessPreflight {
		v.preflight(w, origin)
		return
	}
	req, rs := authorizeRequest(h, r.URL.RawQuery, envoyForm, v.rules.format)
	if rs != rOK {
		v.refuse(w, refusal(rs))
		return
	}
	req.origin = origin
	req.write = acc == accessWrite
	req.transports |= sig.transports
	v.readBearer(&req, now)
	a := admit(decide(&req, &v.rules, v.index, now), v.index.keyStore, &v.usage, now)
	a.org, a.access = req.params.org, acc.String()
	v.writeAuthorize(w, &a, origin)
}

// writeAuthorize renders a forward-auth answer: a refusal, or 200 with the key's application,
// the org, the role, the key id, the bucket's state and, for a browser, CORS headers.
func (v *Verifier) writeAuthorize(w http.ResponseWriter, a *answer, origin string) {
	if a.reason != rOK {
		v.refuse(w, *a)
		return
	}
	out := w.Header()
	out[hContentType] = vJSON
	out[hCacheControl] = vNoStore
	out[hApplicationID] = a.app.idHeader
	out[hClearanceOrg] = a.conn.orgHeader
	out[hRole] = a.conn.roleHeader
	if a.key.keyID != "" {
		out[hKeyID] = []string{a.key.keyID}
	}
	setRateHeaders(out, a.rate, a.at)
	if origin != "" {
		setCORS(out, origin)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(okBody)
	v.metrics.decisions[rOK].Inc()
	a.tally.count(rOK)
	if v.dlog != nil {
		v.logDecision(a, rOK)
	}
}

// refuse answers a refusal: the status of the reason, a short JSON body, X-Clearance-Reason,
// WWW-Authenticate on 401 and the rate-limit headers with Retry-After on 429.
func (v *Verifier) refuse(w http.ResponseWriter, a answer) {
	out := w.Header()
	out[hContentType] = vJSON
	out[hCacheControl] = vNoStore
	out[hReason] = reasonHeaders[a.reason]
	status := a.reason.status()
	switch status {
	case http.StatusUnauthorized:
		out[hWWWAuthenticate] = vWWWAuthenticate
		if a.bearer {
			out[hWWWAuthenticate] = vBearerChallenge
		}
	case http.StatusTooManyRequests:
		setRateHeaders(out, a.rate, a.at)
		out[hRetryAfter] = header(strconv.FormatInt(a.rate.retryAfter, 10))
	case http.StatusMethodNotAllowed:
		out[hAllow] = vAllowPost
	}
	w.WriteHeader(status)
	_, _ = w.Write(reasonBodies[a.reason])
	v.metrics.decisions[a.reason].Inc()
	a.tally.count(a.reason)
	if v.dlog != nil {
		v.logDecision(&a, a.reason)
	}
}

// setRateHeaders writes the legacy X-RateLimit-* headers and the IETF RateLimit and
// RateLimit-Policy fields, for a decision made at at. X-RateLimit-Reset is the instant the
// bucket is full again, in epoch seconds (as GitHub and most APIs send it); RateLimit's t is the
// same as seconds from now, as the IETF draft has it.
func setRateHeaders(out http.Header, rr rateResult, at time.Time) {
	if !rr.limited {
		return
	}
	// One string holds the three dynamic values; the headers are slices of it.
	var buf [112]byte
	b := strconv.AppendInt(buf[:0], rr.remaining, 10)
	r1 := len(b)
	b = strconv.AppendInt(b, resetAt(at, rr.reset), 10)
	r2 := len(b)
	b = append(b, '"')
	b = append(b, rr.conf.cfg.name...)
	b = append(b, `";r=`...)
	b = append(b, b[:r1]...)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, rr.reset, 10)
	s := string(b)
	vals := &[3]string{s[:r1], s[r1:r2], s[r2:]}
	out[hRateLimitLimit] = rr.conf.limitHeader
	out[hRateLimitRemain] = vals[0:1:1]
	out[hRateLimitReset] = vals[1:2:2]
	out[hRateLimitPolicy] = rr.conf.policyHeader
	out[hRateLimit] = vals[2:3:3]
}

// resetAt is the epoch second by which a bucket full in reset seconds from at is full: rounded
// up, so a client waiting until then never finds it short.
func resetAt(at time.Time, reset int64) int64 {
	const second = int64(time.Second)
	return (at.UnixNano() + reset*second + second - 1) / second
}

// servePreflight answers a proxy that routed a request here because it is an OPTIONS request:
// the proxy's choice of path stands for the auth request's own method (always GET from Caddy,
// HAProxy's HTTP client and Traefik), and every other signal must still say OPTIONS and the
// request carry an Origin and Access-Control-Request-Method. It never authorizes anything else:
// whatever is not a preflight is 400 bad_request.
func (v *Verifier) servePreflight(w http.ResponseWriter, r *http.Request, now time.Time) {
	if rs := v.unavailable(now); rs != rOK {
		v.refuse(w, refusal(rs))
		return
	}
	if len(r.Header[hOrigin]) > 1 {
		v.refuse(w, refusal(rOriginNotAllowed))
		return
	}
	sig := requestSignals(r)
	sig.own = http.MethodOptions
	if sig.access() != accessPreflight {
		v.refuse(w, refusal(rBadRequest))
		return
	}
	v.preflight(w, firstHeader(r.Header, hOrigin))
}

// preflight answers a CORS preflight. Preflights carry no key, so no Application can be picked:
// the origin must be allowed by some Application or be a system default entry, and the request
// that follows is checked against its own key's Application. 204 is a 2xx, so forward-auth
// proxies let it through.
func (v *Verifier) preflight(w http.ResponseWriter, origin string) {
	if !v.rules.defaultOrigin(origin) && !v.index.originKnown(origin) {
		v.refuse(w, refusal(rOriginNotAllowed))
		return
	}
	out := w.Header()
	out[hCacheControl] = vNoStore
	out[hACAllowOrigin] = header(origin)
	out[hACAllowMethods] = vAllowMethods
	out[hACAllowHeaders] = vAllowHeaders
	out[hACMaxAge] = vMaxAge
	out[hVary] = vVaryPreflight
	w.WriteHeader(http.StatusNoContent)
	v.metrics.decisions[rOK].Inc()
	if v.dlog != nil {
		v.logDecision(&answer{access: accessPreflight.String()}, rOK)
	}
}

// logDecision offers the decision log an answer with reason r (decisionlog.go): the org
// asked, the Application and key id it was decided on, and the decision's time (now, for a
// refusal made before any decision).
func (v *Verifier) logDecision(a *answer, r reason) {
	e := decisionEntry{at: a.at, org: loggedOrg(a.org, a.conn), keyID: a.key.keyID, reason: r, access: a.access}
	if e.at.IsZero() {
		e.at = v.clock.Now()
	}
	if a.app != nil {
		e.app = a.app.id
	}
	v.dlog.offer(e)
}

// loggedOrg is the org a request asked for as a queued decision entry holds it: the
// connection's own string when the decision found it, else a copy of it when it is a namespace
// name (a DNS-1123 label, at most 63 bytes), else "". The request's string is the client's:
// kept, it would hold the whole query or header (up to the 64 KiB header limit) while the entry
// waits; and what is no namespace name names no org and may be anything a client put where the
// org goes, its key included (a key holds an underscore, which no namespace name does; cut to
// 63 bytes it would still hold its whole secret), or invalid UTF-8, which would make the OTLP
// exporter refuse the whole batch.
func loggedOrg(asked string, conn *connEntry) string {
	if conn != nil && conn.org == asked {
		return conn.org
	}
	if len(validation.IsDNS1123Label(asked)) > 0 {
		return ""
	}
	return strings.Clone(asked)
}

func setCORS(out http.Header, origin string) {
	out[hACAllowOrigin] = header(origin)
	out[hACExposeHeaders] = vExposeHeaders
	out[hVary] = vVaryOrigin
}

// VerifyRequest is the body of POST /v1/keys:verify.
type VerifyRequest struct {
	Key     string `json:"key"`
	Org     string `json:"org"`
	MinRole string `json:"minRole,omitempty"`
	Scope   string `json:"scope,omitempty"`
	Metric  string `json:"metric,omitempty"`
	Bucket  string `json:"bucket,omitempty"`
	// Method is the method of the request being checked: GET, HEAD and OPTIONS need Observer,
	// any other method (or none) the write role, unless MinRole is given.
	Method string `json:"method,omitempty"`
	// Transport is the transport the request being checked opens, if any: webSockets,
	// serverSentEvents or longPolling. The connection must allow it.
	Transport string `json:"transport,omitempty"`
}

// VerifyResponse is the answer of POST /v1/keys:verify. A refused key gets valid=false and a
// reason only (and ratelimit when rate-limited); nothing about the key's application leaks.
type VerifyResponse struct {
	Valid         bool       `json:"valid"`
	Reason        string     `json:"reason,omitempty"`
	ApplicationID string     `json:"applicationId,omitempty"`
	Org           string     `json:"org,omitempty"`
	Role          string     `json:"role,omitempty"`
	KeyID         string     `json:"keyId,omitempty"`
	Scopes        []string   `json:"scopes,omitempty"`
	ExpiresAt     *time.Time `json:"expiresAt,omitempty"`
	RateLimit     *RateLimit `json:"ratelimit,omitempty"`
}

// RateLimit is the state of the request's bucket after this request.
type RateLimit struct {
	Bucket    string `json:"bucket"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
	// Reset is the seconds until the bucket is full again; ResetAt the same instant in epoch
	// seconds (the X-RateLimit-Reset header).
	Reset      int64 `json:"reset"`
	ResetAt    int64 `json:"resetAt"`
	RetryAfter int64 `json:"retryAfter,omitempty"`
}

// maxVerifyBody bounds the JSON body; a key and five short parameters fit many times over.
const maxVerifyBody = 16 << 10

// serveVerify is the JSON API. The HTTP status says whether the verifier could answer (200, or
// 400/405/503); valid and reason say what it answered, with the same reasons as forward-auth.
func (v *Verifier) serveVerify(w http.ResponseWriter, r *http.Request, now time.Time) {
	if r.Method != http.MethodPost {
		v.refuse(w, refusal(rMethodNotAllowed))
		return
	}
	if rs := v.unavailable(now); rs != rOK {
		v.refuse(w, refusal(rs))
		return
	}
	var body VerifyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxVerifyBody))
	if err := dec.Decode(&body); err != nil {
		v.refuse(w, refusal(rBadRequest))
		return
	}
	// One object and nothing after it but white space: a body joined from strings could
	// otherwise end the object early and append another, whose minRole or scope would be lost.
	if _, err := dec.Token(); err != io.EOF {
		v.refuse(w, refusal(rBadRequest))
		return
	}
	req, rs := verifyRequest(&body)
	if rs != rOK {
		v.refuse(w, refusal(rs))
		return
	}
	v.readBearer(&req, now)
	a := admit(decide(&req, &v.rules, v.index, now), v.index.keyStore, &v.usage, now)
	a.org, a.access = req.params.org, accessRead.String()
	if req.write {
		a.access = accessWrite.String()
	}
	v.writeVerify(w, &a)
}

// writeVerify renders a keys:verify answer: 200 with valid and the key's details, or valid
// false and the reason only (and the bucket's state when rate-limited); a request the verifier
// could not answer (400, 503) as a refusal.
func (v *Verifier) writeVerify(w http.ResponseWriter, a *answer) {
	switch a.reason.status() {
	case http.StatusBadRequest, http.StatusServiceUnavailable:
		v.refuse(w, *a)
		return
	}
	resp := VerifyResponse{Valid: a.reason == rOK}
	if a.rate.limited {
		resp.RateLimit = &RateLimit{Bucket: a.rate.conf.cfg.name, Limit: a.rate.conf.cfg.limit, Remaining: a.rate.remaining,
			Reset: a.rate.reset, ResetAt: resetAt(a.at, a.rate.reset), RetryAfter: a.rate.retryAfter}
	}
	if resp.Valid {
		resp.ApplicationID, resp.Org, resp.Role, resp.KeyID = a.app.id, a.conn.org, string(a.conn.role), a.key.keyID
		resp.Scopes = a.key.scopes
		if exp := a.key.expiresAt(); exp.set {
			t := exp.time()
			resp.ExpiresAt = &t
		}
	} else {
		resp.Reason = a.reason.String()
	}
	out := w.Header()
	out[hContentType] = vJSON
	out[hCacheControl] = vNoStore
	setRateHeaders(out, a.rate, a.at)
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(&resp)
	v.metrics.decisions[a.reason].Inc()
	a.tally.count(a.reason)
	if v.dlog != nil {
		v.logDecision(a, a.reason)
	}
}
