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

package console

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"
)

// renewingProvider is an OpenID Connect provider on a loopback TLS port whose token endpoint
// answers every refresh with an ID token for subject, signed with its own key.
type renewingProvider struct {
	*httptest.Server
	key     *rsa.PrivateKey
	mu      sync.Mutex
	subject string
}

func newRenewingProvider(t *testing.T) *renewingProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &renewingProvider{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": p.URL, "authorization_endpoint": p.URL + "/auth",
			"token_endpoint": p.URL + "/token", "jwks_uri": p.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		b64 := base64.RawURLEncoding.EncodeToString
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
		p.mu.Lock()
		sub := p.subject
		p.mu.Unlock()
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": p.URL, "aud": "console", "sub": sub,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		tok.Header["kid"] = "k"
		signed, err := tok.SignedString(key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "access", "token_type": "Bearer", "expires_in": 3600,
			"refresh_token": "next-refresh", "id_token": signed})
	})
	p.Server = httptest.NewTLSServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *renewingProvider) renewsFor(subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subject = subject
}

// TestARenewalForSomeoneElseEndsTheSession: a session signed in as one person renews its ID
// token with the provider; an ID token the provider signed, valid in every other way, for any
// other subject (another person, the same name in other case or with a space, a prefix, none)
// ends the session, and the session keeps neither the new token nor the new refresh token. A
// renewal for the person themselves is taken.
func TestARenewalForSomeoneElseEndsTheSession(t *testing.T) {
	p := newRenewingProvider(t)
	roots := x509.NewCertPool()
	roots.AddCert(p.Certificate())
	clock := clocktesting.NewFakeClock(time.Now())
	c, err := newOIDCClient(OIDCOptions{IssuerURL: p.URL, ClientID: "console", ClientSecret: "s", RootCAs: roots,
		RedirectURL: "http://127.0.0.1:8095/login/oidc/callback", ProviderName: "Test"}, clock)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{"mallory", "Alice", "alice ", " alice", "alic", "alice2", ""} {
		p.renewsFor(other)
		tokens := &oidcTokens{idToken: "alice-id-token", expiry: clock.Now().Add(time.Minute), refresh: "alice-refresh", subject: "alice"}
		var ended *errSignInEnded
		if err := c.renew(context.Background(), tokens); !errors.As(err, &ended) || !strings.Contains(err.Error(), "renewed it for someone else") {
			t.Errorf("a renewal for subject %q: %v, want the session ended as renewed for someone else", other, err)
		}
		if tokens.idToken != "alice-id-token" || tokens.refresh != "alice-refresh" {
			t.Errorf("a renewal for subject %q replaced the session's tokens", other)
		}
	}
	p.renewsFor("alice")
	tokens := &oidcTokens{idToken: "alice-id-token", expiry: clock.Now().Add(time.Minute), refresh: "alice-refresh", subject: "alice"}
	if err := c.renew(context.Background(), tokens); err != nil || tokens.idToken == "alice-id-token" || tokens.refresh != "next-refresh" {
		t.Errorf("a renewal for the person themselves: %v, token replaced %t, refresh token replaced %t", err, tokens.idToken != "alice-id-token", tokens.refresh == "next-refresh")
	}
}
