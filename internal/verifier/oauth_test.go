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
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/signingkey"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// The world's token signing keys: a set the signing-key controller would write, loaded as the
// verifier's informer would load its Secret.
func (w *world) newSigningKeys() signingkey.Set {
	w.t.Helper()
	set, err := signingkey.NewSet(w.clk.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	w.loadSigningKeys(set)
	return set
}

func (w *world) loadSigningKeys(set signingkey.Set) {
	w.t.Helper()
	if err := w.v.SetSigningKeys(signingSecret(w.t, set)); err != nil {
		w.t.Fatal(err)
	}
	for _, k := range set.Published() {
		w.private = append(w.private, privatePart(k))
	}
}

func signingSecret(t testing.TB, set signingkey.Set) *corev1.Secret {
	t.Helper()
	data, ann, err := set.Data()
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clearance-system", Name: signingkey.DefaultSecretName, Annotations: ann},
		Data:       data,
	}
}

// privatePart is the JWK "d" of a signing key, as it would appear if it leaked.
func privatePart(k *jose.JSONWebKey) string {
	b, _ := k.Key.(*ecdsa.PrivateKey).Bytes()
	return base64.RawURLEncoding.EncodeToString(b)
}

// requestToken asks the token endpoint for a token with the key's access key and secret key,
// by HTTP Basic (basic) or in the body; params are extra form parameters, name, value pairs.
func (w *world) requestToken(k keyformat.Key, basic bool, params ...string) *httptest.ResponseRecorder {
	w.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i+1 < len(params); i += 2 {
		if params[i+1] == "" {
			form.Del(params[i])
			continue
		}
		form.Set(params[i], params[i+1])
	}
	headers := []string{"Content-Type", "application/x-www-form-urlencoded"}
	if basic {
		auth := url.QueryEscape(keyformat.AccessKey(k)) + ":" + url.QueryEscape(keyformat.SecretKey(k))
		headers = append(headers, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(auth)))
	} else {
		form.Set("client_id", keyformat.AccessKey(k))
		form.Set("client_secret", keyformat.SecretKey(k))
	}
	return w.do(http.MethodPost, PathToken, form.Encode(), headers...)
}

// token gets an access token for the world's key, failing the test otherwise.
func (w *world) accessToken(params ...string) (string, TokenResponse) {
	w.t.Helper()
	rec := w.requestToken(w.token, true, params...)
	if rec.Code != http.StatusOK {
		w.t.Fatalf("token endpoint: %d %s", rec.Code, rec.Body.String())
	}
	var resp TokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		w.t.Fatal(err)
	}
	w.issued = append(w.issued, resp.AccessToken)
	return resp.AccessToken, resp
}

func (w *world) bearer(tok, query string) *httptest.ResponseRecorder {
	w.t.Helper()
	target := PathAuthorize + "?org=" + grantOrg
	if query != "" {
		target += "&" + query
	}
	return w.do(http.MethodGet, target, "", "Authorization", "Bearer "+tok)
}

// oauthErr checks an OAuth error answer.
func oauthErr(t testing.TB, rec *httptest.ResponseRecorder, status int, code string) OAuthError {
	t.Helper()
	var e OAuthError
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("status %d, body %q is not an OAuth error: %v", rec.Code, rec.Body.String(), err)
	}
	if rec.Code != status || e.Error != code {
		t.Fatalf("got %d %q (%s), want %d %q", rec.Code, e.Error, e.Description, status, code)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	return e
}

// claimsOf reads a token's header and claims without verifying it.
func claimsOf(t testing.TB, tok string) (jose.Header, map[string]any) {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := parsed.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return parsed.Headers[0], c
}

func TestAPartnerGetsATokenWithEitherClientAuthenticationAndCallsWithIt(t *testing.T) {
	w := newWorld(t)
	set := w.newSigningKeys()
	for _, basic := range []bool{true, false} {
		rec := w.requestToken(w.token, basic)
		if rec.Code != http.StatusOK {
			t.Fatalf("basic=%v: %d %s", basic, rec.Code, rec.Body.String())
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Pragma") != "no-cache" {
			t.Errorf("a token answer must not be cached: %v", rec.Header())
		}
		var resp TokenResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		w.issued = append(w.issued, resp.AccessToken)
		if resp.TokenType != "Bearer" || resp.ExpiresIn != 300 || resp.Scope != "" {
			t.Errorf("basic=%v: token_type %q, expires_in %d, scope %q; want Bearer, 300, none", basic, resp.TokenType, resp.ExpiresIn, resp.Scope)
		}
		h, c := claimsOf(t, resp.AccessToken)
		if h.ExtraHeaders[jose.HeaderType] != "at+jwt" || h.Algorithm != "ES256" || h.KeyID != set.Current.KeyID {
			t.Errorf("header typ %v, alg %s, kid %s; want at+jwt, ES256, the current key %s", h.ExtraHeaders[jose.HeaderType], h.Algorithm, h.KeyID, set.Current.KeyID)
		}
		want := map[string]any{"iss": DefaultIssuer, "aud": DefaultIssuer, "sub": appID, "client_id": keyformat.AccessKey(w.token),
			"key_id": w.token.KeyID, "iat": float64(epoch.Unix()), "exp": float64(epoch.Add(5 * time.Minute).Unix())}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("claim %s = %v, want %v", k, c[k], v)
			}
		}
		if jti, _ := c["jti"].(string); len(jti) < 20 {
			t.Errorf("jti %q is too short to be unique", jti)
		}

		// The token works like the key: same answer, same headers.
		byToken, byKey := w.bearer(resp.AccessToken, "minRole=Analyst"), w.authorize(w.token.Token, "minRole=Analyst")
		expect(t, byToken, http.StatusOK, "")
		for _, hname := range []string{"X-Clearance-Application-Id", "X-Clearance-Org", "X-Clearance-Role", "X-Clearance-Key-Id", "X-Ratelimit-Limit"} {
			if byToken.Header().Get(hname) != byKey.Header().Get(hname) {
				t.Errorf("%s: %q by token, %q by key", hname, byToken.Header().Get(hname), byKey.Header().Get(hname))
			}
		}
		// And in the JSON API.
		rec = w.do(http.MethodPost, PathVerify, `{"key":"`+resp.AccessToken+`","org":"`+grantOrg+`"}`)
		if !strings.Contains(rec.Body.String(), `"valid":true`) || !strings.Contains(rec.Body.String(), `"applicationId":"`+appID+`"`) {
			t.Errorf("keys:verify with the token: %s", rec.Body.String())
		}
	}
}

func TestTheTokenEndpointAnswersErrorsAsRFC6749Says(t *testing.T) {
	w := newWorld(t)
	w.newSigningKeys()
	w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:read", "dashboards:*"} })
	wrong := w.mint()
	form := func(kv ...string) string {
		f := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Add(kv[i], kv[i+1])
		}
		return f.Encode()
	}
	post := []string{"Content-Type", "application/x-www-form-urlencoded"}
	id, secret := keyformat.AccessKey(w.token), keyformat.SecretKey(w.token)
	for _, tc := range []struct {
		name   string
		rec    func() *httptest.ResponseRecorder
		status int
		code   string
	}{
		{"a wrong secret", func() *httptest.ResponseRecorder {
			return w.requestToken(keyformat.Key{Token: keyformat.AccessKey(w.token) + "_" + keyformat.SecretKey(wrong)}, true)
		}, 401, errInvalidClient},
		{"a wrong secret in the body", func() *httptest.ResponseRecorder {
			return w.requestToken(keyformat.Key{Token: keyformat.AccessKey(w.token) + "_" + keyformat.SecretKey(wrong)}, false)
		}, 401, errInvalidClient},
		{"an unknown key", func() *httptest.ResponseRecorder { return w.requestToken(wrong, true) }, 401, errInvalidClient},
		{"no client authentication", func() *httptest.ResponseRecorder {
			return w.do(http.MethodPost, PathToken, form("grant_type", "client_credentials"), post...)
		}, 401, errInvalidClient},
		{"a Bearer header instead", func() *httptest.ResponseRecorder {
			return w.do(http.MethodPost, PathToken, form("grant_type", "client_credentials"), append(post, "Authorization", "Bearer "+w.token.Token)...)
		}, 401, errInvalidClient},
		{"only the client id", func() *httptest.ResponseRecorder {
			return w.do(http.MethodPost, PathToken, form("grant_type", "client_credentials", "client_id", id), post...)
		}, 401, errInvalidClient},
		{"both methods", func() *httptest.ResponseRecorder {
			rec := httptest.NewRequest(http.MethodPost, PathToken, nil)
			rec.SetBasicAuth(id, secret)
			return w.do(http.MethodPost, PathToken, form("grant_type", "client_credentials", "client_secret", secret),
				append(post, "Authorization", rec.Header.Get("Authorization"))...)
		}, 400, errInvalidRequest},
		{"a wider scope", func() *httptest.ResponseRecorder {
			return w.requestToken(w.token, true, "scope", "reports:read reports:write")
		}, 400, errInvalidScope},
		{"a wildcard wider than the key's", func() *httptest.ResponseRecorder { return w.requestToken(w.token, true, "scope", "reports:*") }, 400, errInvalidScope},
		{"a scope with a forbidden character", func() *httptest.ResponseRecorder { return w.requestToken(w.token, true, "scope", `reports:"read"`) }, 400, errInvalidScope},
		{"another grant type", func() *httptest.ResponseRecorder { return w.requestToken(w.token, true, "grant_type", "password") }, 400, errUnsupportedGrantType},
		{"no grant type", func() *httptest.ResponseRecorder { return w.requestToken(w.token, true, "grant_type", "") }, 400, errInvalidRequest},
		{"a parameter twice", func() *httptest.ResponseRecorder {
			return w.do(http.MethodPost, PathToken, form("grant_type", "client_credentials", "grant_type", "client_credentials", "client_id", id, "client_secret", secret), post...)
		}, 400, errInvalidRequest},
		{"JSON instead of a form", func() *httptest.ResponseRecorder {
			return w.do(http.MethodPost, PathToken, `{"grant_type":"client_credentials"}`, "Content-Type", "application/json")
		}, 400, errInvalidRequest},
		{"the secret in the URL", func() *httptest.ResponseRecorder {
			return w.do(http.MethodPost, PathToken+"?client_secret=x", form("grant_type", "client_credentials"), post...)
		}, 400, errInvalidRequest},
		{"GET", func() *httptest.ResponseRecorder { return w.do(http.MethodGet, PathToken, "") }, 405, errInvalidRequest},
		{"an org that did not connect the application", func() *httptest.ResponseRecorder { return w.requestToken(w.token, true, "org", "initech") }, 400, errInvalidTarget},
		{"org and resource disagreeing", func() *httptest.ResponseRecorder {
			return w.requestToken(w.token, true, "org", grantOrg, "resource", "initech")
		}, 400, errInvalidRequest},
		{"an org that is no namespace name", func() *httptest.ResponseRecorder { return w.requestToken(w.token, true, "audience", "https://x/y") }, 400, errInvalidTarget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.rec()
			oauthErr(t, rec, tc.status, tc.code)
			if tc.status == 401 && rec.Header().Get("WWW-Authenticate") != `Basic realm="clearance"` {
				t.Errorf("401 without the Basic challenge: %v", rec.Header())
			}
		})
	}

	// Narrower scopes are fine, and the token says which.
	_, resp := w.accessToken("scope", "dashboards:sales reports:read")
	if resp.Scope != "dashboards:sales reports:read" {
		t.Errorf("scope %q", resp.Scope)
	}
	// None asked: the key's own.
	if _, resp := w.accessToken(); resp.Scope != "reports:read dashboards:*" {
		t.Errorf("default scope %q, want the key's", resp.Scope)
	}
	// A key that is not good is an invalid client, and the description says why.
	w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = new(false) })
	if e := oauthErr(t, w.requestToken(w.token, false), 401, errInvalidClient); !strings.Contains(e.Description, ReasonKeyDisabled) {
		t.Errorf("description %q does not say the key is disabled", e.Description)
	}
}

func TestAnAccessTokenIsRefusedTheInstantItsKeyStops(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stop   func(w *world)
		reason string
	}{
		{"the key is disabled", func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = new(false) }) }, ReasonKeyDisabled},
		{"the key expires", func(w *world) {
			w.updateKey(func(k *v1.APIKey) { k.Spec.ExpiresAt = &metav1.Time{Time: epoch.Add(time.Minute)} })
			w.step(time.Minute)
		}, ReasonKeyExpired},
		{"the key is rotated out after its overlap", func(w *world) {
			next := w.mint()
			w.updateKey(func(k *v1.APIKey) {
				k.Status.PreviousKeys = []v1.PreviousKey{{KeyID: k.Status.KeyID, Hash: k.Status.Hash, ValidUntil: metav1.NewTime(epoch.Add(time.Minute))}}
				k.Status.KeyID, k.Status.Hash = next.KeyID, keyformat.Hash(next.Token)
			})
			w.step(time.Minute)
		}, ReasonKeyRotated},
		{"the APIKey is deleted", func(w *world) { w.v.Remove(w.key) }, ReasonKeyRevoked},
		{"the APIKey is being deleted", func(w *world) {
			w.updateKey(func(k *v1.APIKey) { k.DeletionTimestamp = &metav1.Time{Time: epoch} })
		}, ReasonKeyRevoked},
		{"its Application is switched off", func(w *world) { w.updateApp(func(a *v1.Application) { a.Spec.Enabled = new(false) }) }, ReasonApplicationDisabled},
		{"its Application is deleted and applied again", func(w *world) { w.replaceApp() }, ReasonKeyRevoked},
		{"its key is replaced under the same id", func(w *world) {
			other := w.mint()
			w.updateKey(func(k *v1.APIKey) { k.Status.Hash = keyformat.Hash(other.Token) })
		}, ReasonKeyRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.newSigningKeys()
			tok, _ := w.accessToken()
			expect(t, w.bearer(tok, ""), http.StatusOK, "")
			tc.stop(w)
			rec := w.bearer(tok, "")
			expect(t, rec, http.StatusUnauthorized, tc.reason)
			if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="clearance", error="invalid_token"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
		})
	}
}

func TestForgedAndStaleTokensAreRefused(t *testing.T) {
	w := newWorld(t)
	set := w.newSigningKeys()
	good, _ := w.accessToken()
	_, goodClaims := claimsOf(t, good)
	other, err := signingkey.NewSet(epoch)
	if err != nil {
		t.Fatal(err)
	}
	// sign makes a token with the claims of a good one, changed by mutate, signed by key.
	sign := func(key *jose.JSONWebKey, typ string, mutate func(map[string]any)) string {
		t.Helper()
		c := map[string]any{}
		for k, v := range goodClaims {
			c[k] = v
		}
		if mutate != nil {
			mutate(c)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(signer).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	payload := strings.Split(good, ".")[1]
	for _, tc := range []struct {
		name, token string
		status      int
		reason      string
	}{
		{"the good one", good, 200, ""},
		{"signed by another key", sign(other.Current, "at+jwt", nil), 401, ReasonTokenInvalid},
		{"signed by another key under our kid", func() string {
			k := *other.Current
			k.KeyID = set.Current.KeyID
			return sign(&k, "at+jwt", nil)
		}(), 401, ReasonTokenInvalid},
		{"alg none", b64(`{"alg":"none","typ":"at+jwt","kid":"`+set.Current.KeyID+`"}`) + "." + payload + ".", 401, ReasonTokenInvalid},
		{"HS256 with the public key as secret", b64(`{"alg":"HS256","typ":"at+jwt"}`) + "." + payload + ".c2ln", 401, ReasonTokenInvalid},
		{"another audience", sign(set.Current, "at+jwt", func(c map[string]any) { c["aud"] = "https://other.example" }), 401, ReasonTokenInvalid},
		{"typ JWT (an ID token, say)", sign(set.Current, "JWT", nil), 401, ReasonTokenInvalid},
		{"no exp", sign(set.Current, "at+jwt", func(c map[string]any) { delete(c, "exp") }), 401, ReasonTokenInvalid},
		{"expired", sign(set.Current, "at+jwt", func(c map[string]any) { c["exp"] = epoch.Unix() }), 401, ReasonTokenExpired},
		{"issued in the future", sign(set.Current, "at+jwt", func(c map[string]any) { c["iat"] = epoch.Add(time.Hour).Unix() }), 401, ReasonTokenInvalid},
		{"another key's id", sign(set.Current, "at+jwt", func(c map[string]any) { c["key_id"] = w.mint().KeyID }), 401, ReasonKeyRevoked},
		{"a key_ref that is not the key's", sign(set.Current, "at+jwt", func(c map[string]any) { c["key_ref"] = b64("0123456789abcdef") }), 401, ReasonKeyRevoked},
		{"a tampered payload", strings.Replace(good, payload, b64(`{"iss":"`+DefaultIssuer+`","sub":"`+otherAppID+`"}`), 1), 401, ReasonTokenInvalid},
		// Not ours at all (a client's token for its upstream, garbage): not a key either.
		{"another issuer's JWT", sign(other.Current, "at+jwt", func(c map[string]any) { c["iss"] = "https://idp.example" }), 401, ReasonKeyMalformed},
		{"two dots of garbage", "eyJ.garbage.x", 401, ReasonKeyMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := w.bearer(tc.token, "")
			expect(t, rec, tc.status, tc.reason)
			if tc.status == 401 && tc.reason != ReasonKeyMalformed && rec.Header().Get("WWW-Authenticate") != `Bearer realm="clearance", error="invalid_token"` {
				t.Errorf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
	// A good token at its exp is expired, exactly.
	w.step(5*time.Minute - time.Nanosecond)
	expect(t, w.bearer(good, ""), http.StatusOK, "")
	w.step(time.Nanosecond)
	expect(t, w.bearer(good, ""), http.StatusUnauthorized, ReasonTokenExpired)
}

func TestSigningKeyRotationKeepsTokensValidUntilTheirExp(t *testing.T) {
	w := newWorld(t)
	set := w.newSigningKeys()
	before, _ := w.accessToken()

	rotated, err := set.Rotate(w.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.loadSigningKeys(rotated)
	after, _ := w.accessToken()
	if h, _ := claimsOf(t, after); h.KeyID != set.Next.KeyID {
		t.Errorf("after the rotation tokens are signed by %s, want the key published as next before (%s)", h.KeyID, set.Next.KeyID)
	}
	expect(t, w.bearer(before, ""), http.StatusOK, "")
	expect(t, w.bearer(after, ""), http.StatusOK, "")

	var jwks jose.JSONWebKeySet
	rec := w.do(http.MethodGet, PathJWKS, "")
	if err := json.Unmarshal(rec.Body.Bytes(), &jwks); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range jwks.Keys {
		if !k.IsPublic() {
			t.Errorf("the JWKS publishes a private key (%s)", k.KeyID)
		}
		kids = append(kids, k.KeyID)
	}
	for _, want := range []string{set.Current.KeyID, rotated.Current.KeyID, rotated.Next.KeyID} {
		if !slices.Contains(kids, want) {
			t.Errorf("the JWKS %v lacks %s", kids, want)
		}
	}

	// A verifier that saw the rotation late still accepts the new tokens: their key was
	// published as next.
	late := newWorld(t)
	late.v.Apply(w.key) // the same APIKey (same UID), so the same key
	late.loadSigningKeys(set)
	expect(t, late.bearer(after, ""), http.StatusOK, "")

	// The token from before the rotation lives until its exp, then no longer.
	w.step(5 * time.Minute)
	expect(t, w.bearer(before, ""), http.StatusUnauthorized, ReasonTokenExpired)
}

func TestATokenNarrowsWhatItsKeyMayDo(t *testing.T) {
	w := newWorld(t)
	w.newSigningKeys()
	w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:read", "reports:write"} })
	tok, _ := w.accessToken("scope", "reports:read", "org", grantOrg)
	expect(t, w.bearer(tok, "scope=reports:read"), http.StatusOK, "")
	expect(t, w.bearer(tok, "scope=reports:write"), http.StatusForbidden, ReasonScopeMissing)
	// The key's scopes narrowed later narrow its tokens too.
	w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:write"} })
	expect(t, w.bearer(tok, "scope=reports:read"), http.StatusForbidden, ReasonScopeMissing)

	// A token for one org is good there only.
	w.v.Apply(connection("initech", "acme-bi", appID, v1.RoleObserver, ownerOrg, true))
	rec := w.do(http.MethodGet, PathAuthorize+"?org=initech", "", "Authorization", "Bearer "+tok)
	expect(t, rec, http.StatusForbidden, ReasonTokenOrgMismatch)
	anyOrg, _ := w.accessToken()
	expect(t, w.do(http.MethodGet, PathAuthorize+"?org=initech", "", "Authorization", "Bearer "+anyOrg), http.StatusOK, "")
}

func TestTokensSpendTheirKeysRateLimit(t *testing.T) {
	w := newWorld(t)
	w.newSigningKeys()
	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 3, Period: metav1.Duration{Duration: time.Hour}}}
	})
	tok, _ := w.accessToken()                                    // 1
	expect(t, w.bearer(tok, ""), http.StatusOK, "")              // 2
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "") // 3: the key itself, same budget
	rec := w.bearer(tok, "")
	expect(t, rec, http.StatusTooManyRequests, ReasonRateLimited)
	rec = w.requestToken(w.token, true)
	oauthErr(t, rec, http.StatusTooManyRequests, errUnavailable)
	if rec.Header().Get("Retry-After") == "" || rec.Header().Get("X-Ratelimit-Remaining") != "0" {
		t.Errorf("a rate-limited token request lacks Retry-After or the bucket's state: %v", rec.Header())
	}
}

func TestRevokingATokenRefusesItOnThisReplicaUntilItsExp(t *testing.T) {
	w := newWorld(t)
	w.newSigningKeys()
	tok, _ := w.accessToken()
	other, _ := w.accessToken()
	revoke := func(k keyformat.Key, token string) *httptest.ResponseRecorder {
		return w.do(http.MethodPost, PathRevoke, url.Values{"token": {token}, "token_type_hint": {"access_token"},
			"client_id": {keyformat.AccessKey(k)}, "client_secret": {keyformat.SecretKey(k)}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded")
	}
	if rec := revoke(w.token, tok); rec.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body.String())
	}
	expect(t, w.bearer(tok, ""), http.StatusUnauthorized, ReasonTokenRevoked)
	expect(t, w.bearer(other, ""), http.StatusOK, "")
	// Again, or garbage: nothing to do, still 200 (RFC 7009 §2.2).
	for _, tk := range []string{tok, "not-a-token", "eyJ.x.y"} {
		if rec := revoke(w.token, tk); rec.Code != http.StatusOK {
			t.Errorf("revoking %q: %d %s", tk, rec.Code, rec.Body.String())
		}
	}
	// A wrong secret cannot revoke anything.
	oauthErr(t, revoke(w.mint(), other), http.StatusUnauthorized, errInvalidClient)

	// Another Application's key cannot revoke this one's token.
	stranger := w.mint()
	w.v.Apply(&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "initech", Name: "etl", UID: "uid-etl"},
		Spec: v1.ApplicationSpec{Description: "ETL"}, Status: v1.ApplicationStatus{ApplicationID: otherAppID}})
	w.v.Apply(&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: "initech", Name: "etl", UID: "uid-etl-key"}, Spec: v1.APIKeySpec{ApplicationName: "etl"},
		Status: v1.APIKeyStatus{KeyID: stranger.KeyID, Hash: keyformat.Hash(stranger.Token), State: v1.KeyActive}})
	oauthErr(t, revoke(stranger, other), http.StatusBadRequest, errInvalidRequest)
	expect(t, w.bearer(other, ""), http.StatusOK, "")

	// The list is bounded: full of live tokens, a revocation is refused (503) rather than
	// forgotten; once they expire, there is room again.
	w.v.oauth.revoked.max = 1
	oauthErr(t, revoke(w.token, other), http.StatusServiceUnavailable, errUnavailable)
	w.step(5 * time.Minute)
	fresh, _ := w.accessToken()
	if rec := revoke(w.token, fresh); rec.Code != http.StatusOK {
		t.Fatalf("revoking once the list has expired entries: %d %s", rec.Code, rec.Body.String())
	}
	expect(t, w.bearer(fresh, ""), http.StatusUnauthorized, ReasonTokenRevoked)
}

func TestIntrospectionSaysWhetherATokenIsActiveNow(t *testing.T) {
	w := newWorld(t)
	w.newSigningKeys()
	tok, _ := w.accessToken("scope", "reports:read", "org", grantOrg)
	introspect := func(k keyformat.Key, token string) Introspection {
		t.Helper()
		rec := w.do(http.MethodPost, PathIntrospect, url.Values{"token": {token}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded", "Authorization", basicAuth(k))
		if rec.Code != http.StatusOK {
			t.Fatalf("introspect: %d %s", rec.Code, rec.Body.String())
		}
		var in Introspection
		if err := json.Unmarshal(rec.Body.Bytes(), &in); err != nil {
			t.Fatal(err)
		}
		return in
	}
	in := introspect(w.token, tok)
	want := Introspection{Active: true, Scope: "reports:read", ClientID: keyformat.AccessKey(w.token), TokenType: "Bearer",
		Exp: epoch.Add(5 * time.Minute).Unix(), Iat: epoch.Unix(), Sub: appID, Aud: DefaultIssuer, Iss: DefaultIssuer, Jti: in.Jti,
		Org: grantOrg, KeyID: w.token.KeyID}
	if in != want || in.Jti == "" {
		t.Errorf("introspection\n got %+v\nwant %+v", in, want)
	}
	if got := introspect(w.token, "garbage"); got.Active {
		t.Error("garbage is active")
	}
	w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = new(false) })
	// The key is disabled, so it can no longer authenticate either: another key of the
	// application asks.
	second := w.mint()
	w.v.Apply(&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ownerOrg, Name: "second", UID: "uid-second"}, Spec: v1.APIKeySpec{ApplicationName: appName},
		Status: v1.APIKeyStatus{KeyID: second.KeyID, Hash: keyformat.Hash(second.Token), State: v1.KeyActive}})
	if got := introspect(second, tok); got.Active {
		t.Errorf("a token of a disabled key is active: %+v", got)
	}
	oauthErr(t, w.do(http.MethodPost, PathIntrospect, url.Values{"token": {tok}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded", "Authorization", basicAuth(w.token)), http.StatusUnauthorized, errInvalidClient)
}

func basicAuth(k keyformat.Key) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(keyformat.AccessKey(k))+":"+url.QueryEscape(keyformat.SecretKey(k))))
}

func TestWithoutSigningKeysTokensAreRefusedClearly(t *testing.T) {
	w := newWorld(t)
	oauthErr(t, w.requestToken(w.token, true), http.StatusServiceUnavailable, errUnavailable)
	oauthErr(t, w.do(http.MethodGet, PathJWKS, ""), http.StatusServiceUnavailable, errUnavailable)
	set, err := signingkey.NewSet(epoch)
	if err != nil {
		t.Fatal(err)
	}
	// A token that may well be good cannot be checked: 503, not 401.
	w.loadSigningKeys(set)
	tok, _ := w.accessToken()
	w.v.ClearSigningKeys()
	expect(t, w.bearer(tok, ""), http.StatusServiceUnavailable, ReasonSigningKeysUnavailable)
	// keys:verify says so by its status too: it could not answer, rather than valid false.
	expect(t, w.do(http.MethodPost, PathVerify, `{"key":"`+tok+`","org":"`+grantOrg+`"}`), http.StatusServiceUnavailable, ReasonSigningKeysUnavailable)
	// Keys are still served by key.
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")

	// A Secret that holds no valid set is refused and the keys before stay.
	w.loadSigningKeys(set)
	bad := signingSecret(t, set)
	bad.Data[signingkey.DataCurrent] = []byte(`{"kty":"oct","k":"c2VjcmV0"}`)
	if err := w.v.SetSigningKeys(bad); err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("an invalid Secret: %v", err)
	}
	expect(t, w.bearer(tok, ""), http.StatusOK, "")
}

func TestDiscoveryNamesTheEndpointsAndTheJWKS(t *testing.T) {
	w := newWorld(t)
	w.newSigningKeys()
	rec := w.do(http.MethodGet, PathMetadata, "")
	var meta map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &meta); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body.String(), err)
	}
	for k, v := range map[string]string{"issuer": DefaultIssuer, "token_endpoint": DefaultIssuer + PathToken, "jwks_uri": DefaultIssuer + PathJWKS,
		"revocation_endpoint": DefaultIssuer + PathRevoke, "introspection_endpoint": DefaultIssuer + PathIntrospect} {
		if meta[k] != v {
			t.Errorf("%s = %v, want %s", k, meta[k], v)
		}
	}
	if g, _ := json.Marshal(meta["grant_types_supported"]); string(g) != `["client_credentials"]` {
		t.Errorf("grant_types_supported %s", g)
	}
	if g, _ := json.Marshal(meta["token_endpoint_auth_methods_supported"]); string(g) != `["client_secret_basic","client_secret_post"]` {
		t.Errorf("token_endpoint_auth_methods_supported %s", g)
	}
	rec = w.do(http.MethodGet, PathJWKS, "")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"d"`) {
		t.Errorf("JWKS %d %s", rec.Code, rec.Body.String())
	}
	if rec := w.do(http.MethodPost, PathJWKS, ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST JWKS: %d", rec.Code)
	}

	// An issuer configured for partners names the endpoints as they reach them.
	v, err := New(Options{Clock: w.clk, Format: w.format, Registerer: prometheus.NewRegistry(), OAuth: OAuthOptions{Issuer: "https://api.acme.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(v.oauth.metadata), `"token_endpoint":"https://api.acme.example/oauth2/token"`) {
		t.Errorf("metadata %s", v.oauth.metadata)
	}
	for _, bad := range []OAuthOptions{{Issuer: "api.acme.example"}, {Issuer: "https://x/?a=b"}, {TokenTTL: 2 * time.Hour}} {
		if _, err := New(Options{Clock: w.clk, Format: w.format, Registerer: prometheus.NewRegistry(), OAuth: bad}); err == nil {
			t.Errorf("options %+v accepted", bad)
		}
	}
}

func TestNoOAuthAnswerLogLineOrMetricHoldsATokenASecretOrASigningKey(t *testing.T) {
	w := newWorld(t)
	var logs testenv.LogText
	logger := funcr.New(logs.Write, funcr.Options{Verbosity: 10})
	w.v.log, w.v.index.log = logger, logger
	set := w.newSigningKeys()

	tok, _ := w.accessToken("scope", "", "org", grantOrg)
	w.requestToken(keyformat.Key{Token: keyformat.AccessKey(w.token) + "_" + keyformat.SecretKey(w.mint())}, false)
	w.requestToken(w.token, true, "scope", "reports:write x")
	w.bearer(tok, "")
	w.bearer(tok+"x", "")
	w.do(http.MethodPost, PathVerify, `{"key":"`+tok+`","org":"initech"}`)
	w.do(http.MethodPost, PathIntrospect, url.Values{"token": {tok}}.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Authorization", basicAuth(w.token))
	w.do(http.MethodPost, PathRevoke, url.Values{"token": {tok}}.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Authorization", basicAuth(w.token))
	w.bearer(tok, "")
	w.do(http.MethodGet, PathJWKS, "")
	// Things that log: keys loaded, rotated, a broken Secret, keys removed.
	rotated, err := set.Rotate(epoch)
	if err != nil {
		t.Fatal(err)
	}
	w.loadSigningKeys(rotated)
	bad := signingSecret(t, rotated)
	bad.Data[signingkey.DataNext] = []byte(`{"kty":"EC","crv":"P-256","d":"` + privatePart(rotated.Next) + `"}`)
	if err := w.v.SetSigningKeys(bad); err != nil {
		logger.Error(err, "loading signing keys")
	}
	w.v.ClearSigningKeys()
	w.bearer(tok, "")

	var metrics strings.Builder
	families, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&metrics, f); err != nil {
			t.Fatal(err)
		}
	}
	text := logs.String() + metrics.String()
	if !strings.Contains(text, "clearance_verifier_oauth_requests_total") || !strings.Contains(logs.String(), "signing keys") {
		t.Fatalf("expected OAuth log lines and metrics to check:\n%s", text)
	}
	secrets := append([]string{tok, strings.Split(tok, ".")[2]}, w.private...)
	for _, k := range w.minted {
		secrets = append(secrets, k.Token, k.Secret, keyformat.SecretKey(k))
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("a log line or metric holds a token, a client secret or a private key:\n%s", text)
			break
		}
	}
	// The answers are checked by the world's cleanup: no client secret or private key in any,
	// no access token outside the token endpoint's.
}

// TestOneOrgCannotFillTheRevocationListForEveryone: the replica's list of revoked tokens is
// bounded, and the Applications of one org may hold at most a tenth of it, so a tenant revoking
// token after token meets its own bound (503) while another org's revocations still land.
func TestOneOrgCannotFillTheRevocationListForEveryone(t *testing.T) {
	w := newWorld(t)
	w.newSigningKeys()
	w.v.oauth.revoked.max = 20 // two for each org
	revoke := func(k keyformat.Key, token string) *httptest.ResponseRecorder {
		return w.do(http.MethodPost, PathRevoke, url.Values{"token": {token}, "client_id": {keyformat.AccessKey(k)}, "client_secret": {keyformat.SecretKey(k)}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded")
	}
	for i := range 2 {
		tok, _ := w.accessToken()
		if rec := revoke(w.token, tok); rec.Code != http.StatusOK {
			t.Fatalf("revoking the org's token %d: %d %s", i, rec.Code, rec.Body.String())
		}
	}
	third, _ := w.accessToken()
	oauthErr(t, revoke(w.token, third), http.StatusServiceUnavailable, errUnavailable)
	expect(t, w.bearer(third, ""), http.StatusOK, "")

	// Another org's Application still revokes its own token.
	stranger := w.mint()
	w.v.Apply(&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "initech", Name: "etl", UID: "uid-etl"},
		Spec: v1.ApplicationSpec{Description: "ETL"}, Status: v1.ApplicationStatus{ApplicationID: otherAppID}})
	w.v.Apply(&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: "initech", Name: "etl", UID: "uid-etl-key"}, Spec: v1.APIKeySpec{ApplicationName: "etl"},
		Status: v1.APIKeyStatus{KeyID: stranger.KeyID, Hash: keyformat.Hash(stranger.Token), State: v1.KeyActive}})
	rec := w.requestToken(stranger, true)
	if rec.Code != http.StatusOK {
		t.Fatalf("the other org's token: %d %s", rec.Code, rec.Body.String())
	}
	var theirs TokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &theirs); err != nil {
		t.Fatal(err)
	}
	if rec := revoke(stranger, theirs.AccessToken); rec.Code != http.StatusOK {
		t.Errorf("the other org revoking its token while the first org's share is full: %d %s", rec.Code, rec.Body.String())
	}
	// Once the first org's tokens expire, its share is free again.
	w.step(5 * time.Minute)
	fresh, _ := w.accessToken()
	if rec := revoke(w.token, fresh); rec.Code != http.StatusOK {
		t.Errorf("revoking after the org's earlier tokens expired: %d %s", rec.Code, rec.Body.String())
	}
}
