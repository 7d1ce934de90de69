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

// Package oauth is the verifier's OAuth 2.0 authorization code grant with PKCE (S256 only) and
// rotating refresh tokens (docs/oauth.md). zitadel's op library parses and validates the
// authorization request; consent is the console's, recorded as an OrgConnection the package
// learns of through a Directory; access tokens are minted by an Issuer the package is given.
//
// Wiring: mount the Handler for AuthorizePath, AuthorizeDonePath and AuthorizeRequestsPath, and
// call Handler.Token from the token endpoint for grant_type authorization_code and
// refresh_token. Discovery lists GrantTypes, ResponseTypes, CodeChallengeMethods and
// TokenEndpointAuthMethods. Replicas share a Store (RedisStore) and the same Keys.
package oauth

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"net/http"
	"time"

	"k8s.io/utils/clock"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// Paths the Handler serves, and what discovery lists for this grant.
const (
	AuthorizePath     = "/oauth2/authorize"
	AuthorizeDonePath = "/oauth2/authorize/done"
	// AuthorizeRequestsPath + <id> is where the console asks what a request is (RequestInfo).
	AuthorizeRequestsPath = "/oauth2/authorize/requests/"
)

var (
	// GrantTypes are the grant types Token answers.
	GrantTypes = []string{"authorization_code", "refresh_token"}
	// ResponseTypes are the response types the authorization endpoint accepts.
	ResponseTypes = []string{"code"}
	// TokenEndpointAuthMethods are how clients authenticate for these grants: confidential
	// clients with one of their Application's keys, public clients not at all (PKCE only).
	TokenEndpointAuthMethods = []string{"client_secret_basic", "client_secret_post", "none"}
	// CodeChallengeMethods are the PKCE methods accepted: S256 only, for every client.
	CodeChallengeMethods = []string{"S256"}
	// Scopes are the scopes with a meaning of their own here; any other scope a client asks
	// for is a permission scope of its Application, and narrows what its tokens may do.
	Scopes = []string{ScopeOpenID, ScopeOfflineAccess}
)

// Scopes of OpenID Connect and RFC 6749 that this package acts on.
const (
	ScopeOpenID        = "openid"         // an ID token whose sub is who consented
	ScopeOfflineAccess = "offline_access" // a refresh token
)

// Client is an Application registered as an OAuth client; its client_id is the Application ID.
type Client struct {
	ApplicationID string
	Namespace     string
	Description   string
	Enabled       bool
	Registration  v1.OAuthClient
}

// Grant is a consent turned into an OrgConnection: the org that granted the application a role,
// the connection holding it, and who consented, as the apiserver recorded it.
type Grant struct {
	Org           string
	ConnectionUID string
	ApplicationID string
	// ApplicationUID is the Application object consented to: the grant is that object's, not
	// another's applied later under the same (pinned) ID.
	ApplicationUID string
	Role           string
	ConsentedBy    string
}

// Directory is all the package knows of clients and grants.
type Directory interface {
	// Client is the OAuth registration of the Application with this ID; ok false when there is
	// none or the Application has no spec.oauth.
	Client(applicationID string) (c Client, ok bool)
	// Consent is the grant recorded for the authorization request id of the application
	// applicationID: the org's OrgConnection carrying annotation access.clearance.dev/consent=id,
	// with the apiserver-recorded consenter. ok false until it exists.
	Consent(requestID, applicationID string) (g Grant, ok bool)
	// InForce says whether the grant (connection UID in org, for this application) is still in
	// force now: the connection exists and is not being deleted, the Application holding the ID
	// is the very object consented to (applicationUID) and is enabled. It returns the
	// connection's current role.
	InForce(org, connectionUID, applicationID, applicationUID string) (role string, ok bool)
}

// ConsentWaiter is a Directory that can wait for a consent to be recorded: the console sends
// the browser back as soon as the apiserver accepted the connection, which the verifier's index
// may not hold yet. The callback waits at most Config.ConsentWait, then answers 409.
type ConsentWaiter interface {
	WaitConsent(ctx context.Context, requestID, applicationID string) (g Grant, ok bool)
}

// Issuer mints access tokens: the verifier's at+jwt signer, bound to the grant's connection.
type Issuer interface {
	IssueAccessToken(ctx context.Context, g Grant, scopes []string, now time.Time) (token string, expiresAt time.Time, err error)
}

// ClientAuthenticator checks a confidential client's secret (one of its Application's API keys)
// at the token endpoint; nil error means authenticated.
type ClientAuthenticator func(r *http.Request, applicationID, clientSecret string) error

// SigningKey signs ID tokens (scope openid) with ES256.
type SigningKey struct {
	Key *ecdsa.PrivateKey
	KID string
}

// KeySource is where the Handler reads its keys at each use: the verifier loads them from the
// signing keys Secret, which may arrive after the Handler is made and rotates.
type KeySource interface {
	// RefreshKey (at least 32 bytes, the same on every replica) derives refresh tokens; nil
	// while none is loaded, and the token endpoint answers 503.
	RefreshKey() []byte
	// IDTokenKey signs ID tokens (scope openid); nil while none is loaded.
	IDTokenKey() *SigningKey
}

// StaticKeys is a KeySource that never changes.
type StaticKeys struct {
	Refresh []byte
	ID      *SigningKey
}

// RefreshKey is k.Refresh.
func (k StaticKeys) RefreshKey() []byte { return k.Refresh }

// IDTokenKey is k.ID.
func (k StaticKeys) IDTokenKey() *SigningKey { return k.ID }

// Config is what New needs. Zero durations take the defaults.
type Config struct {
	// Issuer is the verifier's issuer URL: ID tokens' iss and the RFC 9207 iss parameter.
	Issuer string
	// ConsentURL is the console's consent page; the browser is sent to ConsentURL?request=<id>.
	ConsentURL string
	// Directory is where clients and grants are looked up.
	Directory Directory
	// Tokens mints access tokens.
	Tokens Issuer
	// Authenticate checks confidential clients' secrets.
	Authenticate ClientAuthenticator
	// Keys are the keys the tokens need; they may be loaded (and rotate) after New.
	Keys KeySource
	// OnReuse, when set, is told of each reuse that revoked what a grant had issued: a code
	// redeemed twice, a rotated refresh token presented after the leeway. What looks like a
	// stolen token is worth telling the org that granted (the verifier records an Event).
	OnReuse func(g Grant, what string)
	// Store holds authorization requests, codes and refresh families. Default: a MemoryStore.
	Store Store
	// Clock is where every decision on time reads it. Default: the real clock.
	Clock clock.PassiveClock

	RequestTTL time.Duration // default 10 min
	CodeTTL    time.Duration // default 60 s, at most 60 s
	RefreshTTL time.Duration // idle lifetime of a refresh family; default 30 days
	// RefreshMaxLifetime is how long a refresh family lives however often it is used: then the
	// application must ask an org admin for consent again. Default 90 days.
	RefreshMaxLifetime time.Duration
	RefreshLeeway      time.Duration // a just-rotated token still answers; default 10 s
	IDTokenTTL         time.Duration // default 5 min
	ConsentWait        time.Duration // how long the callback waits for a consent (ConsentWaiter); default 5 s
}

// Defaults.
const (
	DefaultRequestTTL         = 10 * time.Minute
	DefaultCodeTTL            = 60 * time.Second
	DefaultRefreshTTL         = 30 * 24 * time.Hour
	DefaultRefreshMaxLifetime = 90 * 24 * time.Hour
	DefaultRefreshLeeway      = 10 * time.Second
	DefaultIDTokenTTL         = 5 * time.Minute
	DefaultConsentWait        = 5 * time.Second
)

func (c *Config) defaults() error {
	if c.Issuer == "" || c.ConsentURL == "" || c.Directory == nil || c.Tokens == nil || c.Authenticate == nil || c.Keys == nil {
		return errors.New("oauth: Issuer, ConsentURL, Directory, Tokens, Authenticate and Keys are required")
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Store == nil {
		c.Store = NewMemoryStore(c.Clock)
	}
	setDefault(&c.RequestTTL, DefaultRequestTTL)
	setDefault(&c.CodeTTL, DefaultCodeTTL)
	c.CodeTTL = min(c.CodeTTL, DefaultCodeTTL)
	setDefault(&c.RefreshTTL, DefaultRefreshTTL)
	setDefault(&c.RefreshMaxLifetime, DefaultRefreshMaxLifetime)
	setDefault(&c.RefreshLeeway, DefaultRefreshLeeway)
	setDefault(&c.IDTokenTTL, DefaultIDTokenTTL)
	setDefault(&c.ConsentWait, DefaultConsentWait)
	return nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}
