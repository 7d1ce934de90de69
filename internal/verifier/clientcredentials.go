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

// OAuth 2.0 client credentials for partner applications (docs/oauth.md): a key's access key is
// the client_id and its secret key the client_secret. The token endpoint authenticates the key
// exactly as /v1/authorize would (decideToken, on authenticate in decide.go), spends one request
// of its rate limit (admit) and signs a short-lived access token (jwt.go).

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

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

// TokenResponse is the successful answer of the token endpoint (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

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
	tr, oe := readTokenRequest(form)
	if oe != nil {
		return nil, oe
	}
	if oe := v.unavailableNow(now, true); oe != nil {
		return nil, oe
	}
	key, oe := v.clientKey(r, form)
	if oe != nil {
		return nil, oe
	}
	d, scopes, oe := decideToken(tr, key, &v.rules, v.index, now)
	if oe != nil {
		return nil, oe
	}
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
	raw, err := v.issueAccessToken(keys, d.key, d.app.id, scope, tr.org, "", now, exp)
	if err != nil {
		v.log.Error(err, "signing an access token failed")
		return nil, &oauthError{status: http.StatusServiceUnavailable, code: errUnavailable, desc: "signing the token failed", retryAfter: 5}
	}
	return &TokenResponse{AccessToken: raw, TokenType: "Bearer", ExpiresIn: max(int64(exp.Sub(now)/time.Second), 0), Scope: scope}, nil
}

// tokenRequest is what a client-credentials request asks for, as its form says.
type tokenRequest struct {
	org    string   // the one org the token is for; "" every org connected to the application
	scopes []string // the scopes asked for; none: the key's
}

// readTokenRequest checks the grant and reads the org and scopes a form asks for.
func readTokenRequest(form url.Values) (tokenRequest, *oauthError) {
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return tokenRequest{}, badRequest(errInvalidRequest, "grant_type is missing: send grant_type=client_credentials")
	case "authorization_code", "refresh_token":
		return tokenRequest{}, badRequest(errUnsupportedGrantType, "grant_type="+gt+" is served only with the console's consent page configured (--oauth-consent-url)")
	default:
		return tokenRequest{}, badRequest(errUnsupportedGrantType, "grant_type must be client_credentials, authorization_code or refresh_token")
	}
	org, oe := requestedOrg(form)
	if oe != nil {
		return tokenRequest{}, oe
	}
	scopes, oe := requestedScopes(form.Get("scope"))
	if oe != nil {
		return tokenRequest{}, oe
	}
	return tokenRequest{org: org, scopes: scopes}, nil
}

// decideToken is the token endpoint's decision for the key a client presented, pure like
// decide: the key good now (authenticate, refused as invalid_client with its reason), the
// scopes asked for within the key's (they narrow it, never widen it; none asked: the key's),
// the org asked for one that connected the application. An allowed decision carries the
// key's general budget, which one token spends (admit), like any request of the key.
func decideToken(tr tokenRequest, key request, rl *rules, lk lookup, now time.Time) (decision, []string, *oauthError) {
	d := authenticate(&key, rl.format, lk, now)
	if d.reason != rOK {
		return d, nil, &oauthError{status: http.StatusUnauthorized, code: errInvalidClient, desc: "the key is not good: " + d.reason.String()}
	}
	for _, s := range tr.scopes {
		if !scopeAllowed(d.key.scopes, s) {
			return d, nil, badRequest(errInvalidScope, "scope "+s+" is not among the key's scopes")
		}
	}
	scopes := tr.scopes
	if len(scopes) == 0 {
		scopes = d.key.scopes
	}
	if tr.org != "" && lk.connection(tr.org, d.app.id, d.app.namespace) == nil {
		return d, nil, badRequest(errInvalidTarget, "org "+tr.org+" has not connected this application")
	}
	d.limit, d.limited = effectiveLimit(d.app.rateLimits, d.key.limits, defaultBucket)
	return d, scopes, nil
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
