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

package testenv

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/clock"
	"sigs.k8s.io/yaml"
)

// OIDCPrefix is what the apiserver puts before the usernames and groups of the test OIDC
// provider's ID tokens (its AuthenticationConfiguration's claim mappings), as a cluster keeps
// them apart from ServiceAccounts and certificate users.
const OIDCPrefix = "oidc:"

// OIDCProvider is a real OpenID Connect provider (github.com/oauth2-proxy/mockoidc: discovery,
// authorization code with PKCE, refresh, JWKS; it signs in whoever QueueUser names next, with no
// login page) on a loopback port over TLS with a certificate of its own CA. The apiserver of an
// Env started with Options.OIDC trusts it through --authentication-config: a JWT authenticator
// for Issuer with audience ClientID, username from the email claim and groups from the groups
// claim, both prefixed with OIDCPrefix.
type OIDCProvider struct {
	Mock *mockoidc.MockOIDC
	// Issuer is its issuer URL (https://127.0.0.1:PORT/oidc).
	Issuer string
	// ClientID is the one client it knows, the audience the apiserver accepts; ClientSecret
	// its secret, also in the file ClientSecretFile.
	ClientID, ClientSecret, ClientSecretFile string
	// CAFile holds the PEM certificate that verifies its serving certificate; CAPEM is the same.
	CAFile string
	CAPEM  []byte
	// CertSPKI is the base64 SHA-256 of its certificate's public key, for Chromium's
	// --ignore-certificate-errors-spki-list (a browser trusting this certificate only).
	CertSPKI string
	// AuthenticationConfig is the file given to kube-apiserver's --authentication-config.
	AuthenticationConfig string
	// Issued is every code and token it gave out (ID, access and refresh tokens): registered
	// with the leak check, and for a test's own checks.
	Issued SecretLog
	// TokenRequests counts calls to its token endpoint (code exchanges and refreshes).
	TokenRequests atomic.Int64

	dir string
	mu  sync.Mutex
	// expiryClock, when set, dates the expiry of the ID tokens it issues (see SetExpiryClock).
	expiryClock clock.PassiveClock
}

// StartOIDCProvider starts a provider on loopback over TLS and writes its files (CA, client
// secret, the apiserver's AuthenticationConfiguration) into a directory of its own.
func StartOIDCProvider() (*OIDCProvider, error) {
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "clearance-oidc-")
	if err != nil {
		return nil, err
	}
	p := &OIDCProvider{Mock: m, ClientID: m.ClientID, ClientSecret: m.ClientSecret, CAPEM: certPEM,
		CertSPKI: base64.StdEncoding.EncodeToString(spki[:]), dir: dir,
		CAFile: filepath.Join(dir, "ca.crt"), ClientSecretFile: filepath.Join(dir, "client-secret"),
		AuthenticationConfig: filepath.Join(dir, "authentication-config.yaml")}
	if err := m.AddMiddleware(p.record); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if err := m.Start(tls.NewListener(ln, cfg), cfg); err != nil {
		_ = ln.Close()
		return nil, err
	}
	p.Issuer = m.Issuer()
	if err := p.writeFiles(); err != nil {
		_ = p.Stop()
		return nil, err
	}
	p.Issued.Add("the OIDC client secret", p.ClientSecret)
	CollectSecretsForLeakCheck(p.Issued.All)
	return p, nil
}

// writeFiles writes the CA, the client secret and the AuthenticationConfiguration.
func (p *OIDCProvider) writeFiles() error {
	authn, err := yaml.Marshal(map[string]any{
		"apiVersion": "apiserver.config.k8s.io/v1",
		"kind":       "AuthenticationConfiguration",
		"jwt": []any{map[string]any{
			"issuer": map[string]any{"url": p.Issuer, "audiences": []string{p.ClientID}, "certificateAuthority": string(p.CAPEM)},
			"claimMappings": map[string]any{
				"username": map[string]any{"claim": "email", "prefix": OIDCPrefix},
				"groups":   map[string]any{"claim": "groups", "prefix": OIDCPrefix},
			},
		}},
	})
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(p.CAFile, p.CAPEM, 0o600),
		os.WriteFile(p.ClientSecretFile, []byte(p.ClientSecret+"\n"), 0o600),
		os.WriteFile(p.AuthenticationConfig, authn, 0o600))
}

// Stop ends the provider and removes its files.
func (p *OIDCProvider) Stop() error {
	err := p.Mock.Shutdown()
	_ = os.RemoveAll(p.dir)
	return err
}

// QueueUser makes name@example.com, in these groups, the person the next authorization
// request signs in; the apiserver knows them as Username(name).
func (p *OIDCProvider) QueueUser(name string, groups ...string) { p.queueUser(name, "", groups) }

// QueueUserWithNonce is QueueUser, but the ID token of that sign-in carries nonce instead of
// the one its authorization request sent: an ID token minted for another sign-in, as a relying
// party must refuse it.
func (p *OIDCProvider) QueueUserWithNonce(name, nonce string) { p.queueUser(name, nonce, nil) }

func (p *OIDCProvider) queueUser(name, nonce string, groups []string) {
	p.Mock.QueueUser(&clockedUser{p: p, nonce: nonce, MockUser: &mockoidc.MockUser{Subject: name, Email: name + "@example.com",
		EmailVerified: true, PreferredUsername: name, Groups: groups}})
}

// Username is the Kubernetes username of the person QueueUser(name) signs in.
func (p *OIDCProvider) Username(name string) string { return OIDCPrefix + name + "@example.com" }

// SetExpiryClock dates the expiry of the ID tokens issued from now on by c (the clock a
// console under test runs on) when c is ahead of the real clock: their lifetime (Mock.AccessTTL)
// after c's now, while they are still issued and valid from the real now. Stepping c then brings a
// token near its expiry for that console, and a fresh one is valid for both it and the
// apiserver, which runs on the real clock: no test waits for a token to age.
func (p *OIDCProvider) SetExpiryClock(c clock.PassiveClock) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expiryClock = c
}

// clockedUser is a MockUser whose ID tokens expire by the provider's expiry clock.
type clockedUser struct {
	*mockoidc.MockUser
	p *OIDCProvider
	// nonce, when set, replaces the nonce of the sign-in (QueueUserWithNonce).
	nonce string
}

func (u *clockedUser) Claims(scopes []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	u.p.mu.Lock()
	c := u.p.expiryClock
	u.p.mu.Unlock()
	// Never earlier than by the real clock: the apiserver must accept every token it issues.
	if c != nil && c.Now().After(base.IssuedAt.Time) {
		base.ExpiresAt = jwt.NewNumericDate(c.Now().Add(u.p.Mock.AccessTTL))
	}
	if u.nonce != "" {
		base.Nonce = u.nonce
	}
	return u.MockUser.Claims(scopes, base)
}

// record remembers the codes the authorization endpoint hands out and the tokens the token
// endpoint answers with, and counts token requests.
func (p *OIDCProvider) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		switch r.URL.Path {
		case mockoidc.AuthorizationEndpoint:
			if u, err := url.Parse(rec.Header().Get("Location")); err == nil {
				p.Issued.Add("an OIDC authorization code", u.Query().Get("code"))
			}
		case mockoidc.TokenEndpoint:
			p.TokenRequests.Add(1)
			var tokens struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
				IDToken      string `json:"id_token"`
			}
			if json.Unmarshal(rec.Body.Bytes(), &tokens) == nil {
				p.Issued.Add("an OIDC ID token", tokens.IDToken)
				p.Issued.Add("an OIDC access token", tokens.AccessToken)
				p.Issued.Add("an OIDC refresh token", tokens.RefreshToken)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// HTTPClient is a client that trusts the provider's certificate.
func (p *OIDCProvider) HTTPClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CAPEM)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// String names the provider in logs and failures.
func (p *OIDCProvider) String() string {
	return fmt.Sprintf("the test OIDC provider at %s (client %s)", p.Issuer, p.ClientID)
}
