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
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clearance-dev/clearance/docs"
	"github.com/clearance-dev/clearance/internal/oauth"
)

// The verifier's OAuth endpoints (docs/oauth.md): options, routing, errors and forms shared by
// client credentials (clientcredentials.go), the authorization code grant (codegrant.go, on
// package oauth), revocation and introspection (tokenstatus.go), the JWKS and discovery.

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

const endpointToken, endpointRevoke, endpointIntrospect = "token", "revoke", "introspect"

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

// openAPIDocument is docs/openapi.json, served at /openapi.json.
var openAPIDocument = docs.OpenAPI
