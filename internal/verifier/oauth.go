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
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/clearance-dev/clearance/docs"
	"github.com/clearance-dev/clearance/internal/oauth"
)

// OAuth 2.0 client credentials for partner applications (docs/oauth.md): a key's access key is
// the client_id and its secret key the client_secret. The token endpoint authenticates the key
// exactly as /v1/authorize would (authenticate in decide.go), spends one request of its rate
// limit and signs a short-lived access token (jwt.go). Discovery (RFC 8414), the JWKS,
// revocation (RFC 7009) and introspection (RFC 7662) complete it.

// Paths of the OAuth endpoints and the API description.
const (
	PathToken      = "/oauth2/token"
	PathRevoke     = "/oauth2/revoke"
	PathIntrospect = "/oauth2/introspect"
	PathJWKS       = "/oauth2/jwks"
	PathMetadata   = "/.well-known/oauth-authorization-server"
	// PathOpenIDConfiguration is OpenID Connect discovery, served with the authorization code
	// grant.
	PathOpenIDConfiguration = "/.well-known/openid-configuration"
	PathOpenAPI             = "/openapi.json"
)

// Defaults and bounds of OAuthOptions.
const (
	DefaultIssuer         = "http://clearance-verifier.clearance-system.svc:8090"
	DefaultTokenTTL       = 5 * time.Minute
	MaxTokenTTL           = time.Hour
	DefaultRevocationList = 100_000
)

// OAuthOptions configure the token endpoint and access tokens.
type OAuthOptions struct {
	// Issuer is the authorization server's identifier (iss, and the base of the endpoints'
	// URLs in the discovery document): an http(s) URL with no query or fragment, as partners
	// reach the verifier (--oauth-issuer). Default DefaultIssuer.
	Issuer string
	// Audience is the aud of every access token, and the only one accepted (--oauth-audience).
	// Default: Issuer.
	Audience string
	// TokenTTL is the lifetime of access tokens (--oauth-token-ttl), at most MaxTokenTTL; a
	// token never outlives the key that obtained it. Default DefaultTokenTTL.
	TokenTTL time.Duration
	// SigningSecret is the Secret the signing-key controller keeps the keys in
	// (--oauth-signing-secret, in --namespace). Empty: SetupWithManager watches nothing and keys
	// come from SetSigningKeys (tests).
	SigningSecret types.NamespacedName
	// RevocationListSize bounds the access tokens revoked with /oauth2/revoke that this replica
	// remembers until their exp. Default DefaultRevocationList.
	RevocationListSize int
	// ConsentURL is the console's consent page (--oauth-consent-url, the console's URL and
	// /oauth2/consent). Set, the verifier serves the authorization code grant (codegrant.go);
	// empty, client credentials only.
	ConsentURL string
	// CodeStore holds the authorization code grant's requests, codes and refresh families;
	// replicas share it (an oauth.RedisStore on the rate-limit store's Redis). Default: this
	// replica's memory, right for one replica only.
	CodeStore oauth.Store
}

func (o *OAuthOptions) defaults() error {
	if o.Issuer == "" {
		o.Issuer = DefaultIssuer
	}
	u, err := url.Parse(o.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("verifier: OAuth issuer %q must be an http or https URL without query or fragment, as partners reach the verifier", o.Issuer)
	}
	o.Issuer = strings.TrimSuffix(o.Issuer, "/")
	if o.Audience == "" {
		o.Audience = o.Issuer
	}
	switch {
	case o.TokenTTL == 0:
		o.TokenTTL = DefaultTokenTTL
	case o.TokenTTL < time.Second || o.TokenTTL > MaxTokenTTL:
		return fmt.Errorf("verifier: OAuth token lifetime %s must be between 1s and %s", o.TokenTTL, MaxTokenTTL)
	}
	if o.RevocationListSize == 0 {
		o.RevocationListSize = DefaultRevocationList
	}
	if o.RevocationListSize < 0 {
		return fmt.Errorf("verifier: OAuth revocation list size must be positive, got %d", o.RevocationListSize)
	}
	if o.ConsentURL != "" {
		if u, err := url.Parse(o.ConsentURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("verifier: OAuth consent URL %q must be an http or https URL without fragment: the console's /oauth2/consent", o.ConsentURL)
		}
	}
	return nil
}

// oauthState is the verifier's OAuth part.
type oauthState struct {
	keys    atomic.Pointer[tokenKeys]
	revoked revocationList
	// requests counts OAuth endpoint answers by endpoint and result (ok, or the OAuth error).
	requests *prometheus.CounterVec
	metadata []byte // RFC 8414
	openid   []byte // OpenID Connect discovery
	// code is the authorization code grant; nil when it is not served (codegrant.go).
	code *oauth.Handler
}

func (v *Verifier) initOAuth(reg prometheus.Registerer) error {
	o := &v.opts.OAuth
	if err := o.defaults(); err != nil {
		return err
	}
	v.oauth.revoked.max = o.RevocationListSize
	v.oauth.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clearance_verifier_oauth_requests_total",
		Help: "OAuth endpoint answers by endpoint (token, revoke, introspect) and result (ok, or the OAuth error code).",
	}, []string{"endpoint", "result"})
	if err := reg.Register(v.oauth.requests); err != nil {
		return err
	}
	if err := v.initCodeGrant(); err != nil {
		return err
	}
	meta := map[string]any{
		"issuer":                                        o.Issuer,
		"token_endpoint":                                o.Issuer + PathToken,
		"jwks_uri":                                      o.Issuer + PathJWKS,
		"revocation_endpoint":                           o.Issuer + PathRevoke,
		"introspection_endpoint":                        o.Issuer + PathIntrospect,
		"grant_types_supported":                         []string{"client_credentials"},
		"response_types_supported":                      []string{},
		"token_endpoint_auth_methods_supported":         authMethods,
		"revocation_endpoint_auth_methods_supported":    authMethods,
		"introspection_endpoint_auth_methods_supported": authMethods,
		"service_documentation":                         "https://github.com/clearance-dev/clearance/blob/main/docs/oauth.md",
	}
	if v.oauth.code != nil {
		// The authorization code grant: exactly what package oauth answers.
		meta["authorization_endpoint"] = o.Issuer + oauth.AuthorizePath
		meta["grant_types_supported"] = append([]string{"client_credentials"}, oauth.GrantTypes...)
		meta["response_types_supported"] = oauth.ResponseTypes
		meta["response_modes_supported"] = []string{"query"}
		meta["code_challenge_methods_supported"] = oauth.CodeChallengeMethods
		meta["token_endpoint_auth_methods_supported"] = oauth.TokenEndpointAuthMethods
		meta["scopes_supported"] = oauth.Scopes
		meta["authorization_response_iss_parameter_supported"] = true
	}
	var err error
	if v.oauth.metadata, err = json.Marshal(meta); err != nil {
		return err
	}
	if v.oauth.code != nil {
		meta["subject_types_supported"] = []string{"public"}
		meta["id_token_signing_alg_values_supported"] = []string{"ES256"}
		meta["claims_supported"] = []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce"}
		if v.oauth.openid, err = json.Marshal(meta); err != nil {
			return err
		}
	}
	return nil
}

var authMethods = []string{"client_secret_basic", "client_secret_post"}

// serveOAuth answers the OAuth endpoints; false for any other path.
func (v *Verifier) serveOAuth(w http.ResponseWriter, r *http.Request, now time.Time) bool {
	if v.serveCodeGrant(w, r, now) {
		return true
	}
	switch p := r.URL.Path; {
	case p == PathOpenIDConfiguration && v.oauth.openid != nil:
		v.serveStatic(w, r, v.oauth.openid, "public, max-age=300")
	case p == PathToken:
		v.serveToken(w, r, now)
	case p == PathRevoke:
		v.serveRevoke(w, r, now)
	case p == PathIntrospect:
		v.serveIntrospect(w, r, now)
	case p == PathJWKS:
		v.serveJWKS(w, r)
	case p == PathMetadata || strings.HasPrefix(p, PathMetadata+"/"):
		v.serveStatic(w, r, v.oauth.metadata, "public, max-age=300")
	case p == PathOpenAPI:
		v.serveStatic(w, r, openAPIDocument, "public, max-age=300")
	default:
		return false
	}
	return true
}

// oauthError is an error response of RFC 6749 §5.2 (and RFC 7009, 7662, 8707).
type oauthError struct {
	status int
	code   string
	desc   string
	// retryAfter, when > 0, is sent as Retry-After (429).
	retryAfter int64
	rate       rateResult
	now        time.Time // when rate was taken
}

// OAuth error codes.
const (
	errInvalidRequest       = "invalid_request"
	errInvalidClient        = "invalid_client"
	errInvalidScope         = "invalid_scope"
	errInvalidTarget        = "invalid_target"
	errUnsupportedGrantType = "unsupported_grant_type"
	errUnavailable          = "temporarily_unavailable"
)

func badRequest(code, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: desc}
}

// OAuthError is the JSON body of an OAuth error response.
type OAuthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// writeOAuthError renders an error: 401 invalid_client challenges for HTTP Basic, the scheme
// of client_secret_basic (RFC 6749 §5.2), 503 and 429 carry Retry-After.
func (v *Verifier) writeOAuthError(w http.ResponseWriter, endpoint string, e *oauthError) {
	out := w.Header()
	out[hContentType] = vJSON
	out[hCacheControl] = vNoStore
	out[hPragma] = vNoCache
	switch e.status {
	case http.StatusUnauthorized:
		out[hWWWAuthenticate] = vBasicChallenge
	case http.StatusMethodNotAllowed:
		out[hAllow] = vAllowPost
	case http.StatusTooManyRequests:
		setRateHeaders(out, e.rate, e.now)
	}
	if e.retryAfter > 0 {
		out[hRetryAfter] = header(strconv.FormatInt(e.retryAfter, 10))
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(OAuthError{Error: e.code, Description: e.desc})
	v.oauth.requests.WithLabelValues(endpoint, e.code).Inc()
}

func (v *Verifier) writeOAuthJSON(w http.ResponseWriter, endpoint string, body any) {
	out := w.Header()
	out[hContentType] = vJSON
	out[hCacheControl] = vNoStore
	out[hPragma] = vNoCache
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(body)
	v.oauth.requests.WithLabelValues(endpoint, "ok").Inc()
}

const (
	hPragma = "Pragma"
	// maxOAuthBody bounds a form body: credentials, a token and a few parameters.
	maxOAuthBody = 16 << 10
)

var (
	vNoCache        = header("no-cache")
	vBasicChallenge = header(`Basic realm="clearance"`)
)

// oauthForm reads the form of an OAuth POST: the body only (RFC 6749 §3.2), each parameter at
// most once, and no credentials in the query string.
func oauthForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, &oauthError{status: http.StatusMethodNotAllowed, code: errInvalidRequest, desc: "use POST with a form body"}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest(errInvalidRequest, "the body must be application/x-www-form-urlencoded")
	}
	if q := r.URL.Query(); q.Has("client_secret") || q.Has("token") {
		return nil, badRequest(errInvalidRequest, "credentials and tokens go in the body, never in the URL")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOAuthBody))
	if err != nil {
		return nil, badRequest(errInvalidRequest, "the body is unreadable or larger than 16 KiB")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest(errInvalidRequest, "the body is not a valid form")
	}
	for name, vs := range form {
		if len(vs) > 1 {
			return nil, badRequest(errInvalidRequest, "parameter "+name+" is given more than once")
		}
	}
	return form, nil
}

// clientKey authenticates the client of an OAuth request, by client_secret_basic or
// client_secret_post (one of them, RFC 6749 §2.3), and returns the key it presents as a request
// for authenticate. Which method was used decides nothing else: both answer a failure with 401
// and a Basic challenge.
func (v *Verifier) clientKey(r *http.Request, form url.Values) (request, *oauthError) {
	invalid := func(desc string) (request, *oauthError) {
		return request{}, &oauthError{status: http.StatusUnauthorized, code: errInvalidClient, desc: desc}
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if auth := r.Header.Get("Authorization"); auth != "" {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return invalid("client authentication must be HTTP Basic (client_secret_basic) or client_id and client_secret in the body (client_secret_post)")
		}
		if form.Has("client_secret") {
			return request{}, badRequest(errInvalidRequest, "use one client authentication method: HTTP Basic or client_secret in the body, not both")
		}
		// RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return invalid("the Basic credentials are not form-encoded")
		}
		if id != "" && id != u {
			return request{}, badRequest(errInvalidRequest, "client_id in the body differs from the one in the Authorization header")
		}
		id, secret = u, p
	}
	if id == "" || secret == "" {
		return invalid("client authentication is missing: send the key's access key as client_id and its secret key as client_secret")
	}
	token := v.rules.format.Join(id, secret)
	if token == "" {
		return invalid("client_id must be a key's access key and client_secret its secret key")
	}
	return request{token: token, cred: credFound}, nil
}

// authenticateClient authenticates the client and checks that its key is good now, as
// authenticate does for a presented key. Refusals are invalid_client with the reason.
func (v *Verifier) authenticateClient(r *http.Request, form url.Values, now time.Time) (decision, *oauthError) {
	req, oe := v.clientKey(r, form)
	if oe != nil {
		return decision{}, oe
	}
	d := authenticate(&req, v.rules.format, v.index, now)
	if d.reason != rOK {
		return d, &oauthError{status: http.StatusUnauthorized, code: errInvalidClient, desc: "the key is not good: " + d.reason.String()}
	}
	return d, nil
}

// unavailableNow is the 503 of an endpoint that cannot answer truthfully now: the index is not
// loaded or stale, or (needKeys) no signing keys are loaded.
func (v *Verifier) unavailableNow(now time.Time, needKeys bool) *oauthError {
	if rs := v.unavailable(now); rs != rOK {
		return &oauthError{status: http.StatusServiceUnavailable, code: errUnavailable, desc: "the verifier cannot answer now: " + rs.String(), retryAfter: 5}
	}
	if needKeys && v.oauth.keys.Load() == nil {
		return &oauthError{status: http.StatusServiceUnavailable, code: errUnavailable,
			desc: "no token signing keys are loaded (" + ReasonSigningKeysUnavailable + "): is the operator's signing-key controller running?", retryAfter: 5}
	}
	return nil
}

// TokenResponse is the successful answer of the token endpoint (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

const endpointToken, endpointRevoke, endpointIntrospect = "token", "revoke", "introspect"

// serveToken is the token endpoint, client_credentials only (RFC 6749 §4.4).
func (v *Verifier) serveToken(w http.ResponseWriter, r *http.Request, now time.Time) {
	form, oe := oauthForm(w, r)
	if oe != nil {
		v.writeOAuthError(w, endpointToken, oe)
		return
	}
	if v.codeGrantToken(w, r, form, now) {
		return
	}
	resp, oe := v.token(form, r, now)
	if oe != nil {
		v.writeOAuthError(w, endpointToken, oe)
		return
	}
	v.writeOAuthJSON(w, endpointToken, resp)
}

func (v *Verifier) token(form url.Values, r *http.Request, now time.Time) (*TokenResponse, *oauthError) {
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return nil, badRequest(errInvalidRequest, "grant_type is missing: send grant_type=client_credentials")
	case "authorization_code", "refresh_token":
		return nil, badRequest(errUnsupportedGrantType, "grant_type="+gt+" is served only with the console's consent page configured (--oauth-consent-url)")
	default:
		return nil, badRequest(errUnsupportedGrantType, "grant_type must be client_credentials, authorization_code or refresh_token")
	}
	org, oe := requestedOrg(form)
	if oe != nil {
		return nil, oe
	}
	scopes, oe := requestedScopes(form.Get("scope"))
	if oe != nil {
		return nil, oe
	}
	if oe := v.unavailableNow(now, true); oe != nil {
		return nil, oe
	}
	d, oe := v.authenticateClient(r, form, now)
	if oe != nil {
		return nil, oe
	}
	// The scopes asked for narrow the key's, never widen them; none asked: the key's.
	for _, s := range scopes {
		if !scopeAllowed(d.key.scopes, s) {
			return nil, badRequest(errInvalidScope, "scope "+s+" is not among the key's scopes")
		}
	}
	if len(scopes) == 0 {
		scopes = d.key.scopes
	}
	if org != "" && v.index.connection(org, d.app.id, d.key.namespace) == nil {
		return nil, badRequest(errInvalidTarget, "org "+org+" has not connected this application")
	}
	// One use of the key, from its general budget, like any request it makes.
	d.limit, d.limited = effectiveLimit(d.app.rateLimits, d.key.limits, defaultBucket)
	a := admit(d, v.index.keyStore, &v.usage, now)
	if a.reason == rRateLimited {
		return nil, &oauthError{status: http.StatusTooManyRequests, code: errUnavailable, rate: a.rate, now: now, retryAfter: max(a.rate.retryAfter, 1),
			desc: "rate limited: the key's " + defaultBucket + " budget is spent; retry after Retry-After seconds"}
	}
	keys := v.oauth.keys.Load()
	if keys == nil {
		return nil, v.unavailableNow(now, true)
	}
	exp := now.Add(v.opts.OAuth.TokenTTL)
	if ke := d.key.expiresAt(); ke.set && ke.time().Before(exp) {
		exp = ke.time() // a token never outlives its key
	}
	exp = exp.Truncate(time.Second) // NumericDate has whole seconds
	scope := strings.Join(scopes, " ")
	raw, err := v.issueAccessToken(keys, d.key, d.app.id, scope, org, "", now, exp)
	if err != nil {
		v.log.Error(err, "signing an access token failed")
		return nil, &oauthError{status: http.StatusServiceUnavailable, code: errUnavailable, desc: "signing the token failed", retryAfter: 5}
	}
	return &TokenResponse{AccessToken: raw, TokenType: "Bearer", ExpiresIn: max(int64(exp.Sub(now)/time.Second), 0), Scope: scope}, nil
}

// requestedOrg is the org a token is asked for: org, resource (RFC 8707) or audience, which
// must agree; "" when none is named.
func requestedOrg(form url.Values) (string, *oauthError) {
	org := ""
	for _, name := range []string{"org", "resource", "audience"} {
		v := form.Get(name)
		if v == "" {
			continue
		}
		if org != "" && v != org {
			return "", badRequest(errInvalidRequest, "org, resource and audience name different orgs")
		}
		org = v
	}
	if org != "" && len(validation.IsDNS1123Label(org)) > 0 {
		return "", badRequest(errInvalidTarget, "the org must be a namespace name (a DNS label)")
	}
	return org, nil
}

// scopeToken is a scope-token of RFC 6749 §3.3.
var scopeToken = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)

// requestedScopes splits the scope parameter (space-delimited), without duplicates.
func requestedScopes(param string) ([]string, *oauthError) {
	var out []string
	for _, s := range strings.Split(param, " ") {
		switch {
		case s == "":
			continue
		case !scopeToken.MatchString(s):
			return nil, badRequest(errInvalidScope, "a scope has a character RFC 6749 does not allow")
		}
		dup := false
		for _, o := range out {
			dup = dup || o == s
		}
		if !dup {
			out = append(out, s)
		}
	}
	if len(out) > 64 {
		return nil, badRequest(errInvalidScope, "more than 64 scopes")
	}
	return out, nil
}

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
	if !v.oauth.revoked.add(g.claims.ID, g.claims.Expiry.Time(), now) {
		return &oauthError{status: http.StatusServiceUnavailable, code: errUnavailable, retryAfter: 5,
			desc: "this replica remembers as many revoked tokens as it may; disable or rotate the key to end its tokens"}
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
	if td := authenticate(&req, v.rules.format, v.index, now); td.reason != rOK {
		return inactive, nil
	}
	if g := req.grant; g.conn != "" {
		if _, ok := v.GrantInForce(g.org, string(g.conn), g.claims.Subject); !ok {
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

// serveJWKS publishes the public token signing keys: current, next and previous.
func (v *Verifier) serveJWKS(w http.ResponseWriter, r *http.Request) {
	keys := v.oauth.keys.Load()
	if keys == nil {
		v.writeOAuthError(w, "jwks", &oauthError{status: http.StatusServiceUnavailable, code: errUnavailable, retryAfter: 5,
			desc: "no token signing keys are loaded (" + ReasonSigningKeysUnavailable + ")"})
		return
	}
	v.serveStatic(w, r, keys.jwks, "public, max-age=300")
}

// serveStatic answers GET or HEAD with a JSON document.
func (v *Verifier) serveStatic(w http.ResponseWriter, r *http.Request, doc []byte, cacheControl string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		out := w.Header()
		out[hAllow] = header("GET, HEAD")
		out[hContentType] = vJSON
		w.WriteHeader(http.StatusMethodNotAllowed)
		_ = json.NewEncoder(w).Encode(OAuthError{Error: errInvalidRequest, Description: "use GET"})
		return
	}
	out := w.Header()
	out[hContentType] = vJSON
	out[hCacheControl] = header(cacheControl)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(doc)
	}
}

// revocationList is this replica's memory of access tokens revoked with /oauth2/revoke: jti →
// exp, each kept until its exp, at most max at once. It is per replica and in memory: another
// replica, or this one after a restart, accepts the token until its exp unless its key stops.
type revocationList struct {
	n   atomic.Int64 // entries, so the common case (none) takes no lock
	mu  sync.RWMutex
	m   map[string]int64 // jti → exp, unix seconds
	max int
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

// add remembers jti until exp; false when the list is full of tokens not yet expired.
func (l *revocationList) add(jti string, exp, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]int64{}
	}
	if _, ok := l.m[jti]; ok {
		return true
	}
	if len(l.m) >= l.max {
		for k, e := range l.m {
			if e <= now.Unix() {
				delete(l.m, k)
			}
		}
	}
	if len(l.m) >= l.max {
		return false
	}
	l.m[jti] = exp.Unix()
	l.n.Store(int64(len(l.m)))
	return true
}

// openAPIDocument is docs/openapi.json, served at /openapi.json.
var openAPIDocument = docs.OpenAPI
