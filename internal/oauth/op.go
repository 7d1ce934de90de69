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

package oauth

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// opStorage is what op.Authorize asks of storage: the client, and saving the request after
// our own checks. op serves nothing else here (the token endpoint and the callback are ours),
// so the rest of op.Storage refuses.
type opStorage struct {
	refuse
	h *Handler
}

var _ op.Storage = (*opStorage)(nil)

// GetClientByClientID is the Application's registration, when it is enabled.
func (s *opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.h.cfg.Directory.Client(id)
	if !ok || !c.Enabled {
		return nil, errUnknownClient
	}
	return &opClient{c: c, consentURL: s.h.cfg.ConsentURL}, nil
}

// CreateAuthRequest stores a request op validated, after the rules op does not apply: S256
// PKCE for every client, and the redirect as AllowsRedirect matches it.
func (s *opStorage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, ok := s.h.cfg.Directory.Client(r.ClientID)
	if !ok || !c.Enabled || !c.Registration.AllowsRedirect(r.RedirectURI) {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("the redirect_uri is not registered for this client")
	}
	if r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 || len(r.CodeChallenge) != 43 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method=S256 is required")
	}
	if slices.Contains(r.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrInteractionRequired().WithDescription("an org admin must consent: prompt=none cannot be answered")
	}
	if r.ResponseMode != "" && r.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported")
	}
	req := AuthRequest{ID: rand.Text(), ClientID: r.ClientID, RedirectURI: r.RedirectURI, State: r.State,
		Nonce: r.Nonce, CodeChallenge: r.CodeChallenge, Scopes: r.Scopes, CreatedAt: s.h.cfg.Clock.Now()}
	if err := s.h.cfg.Store.SaveRequest(ctx, req, s.h.cfg.RequestTTL); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return &opAuthRequest{req}, nil
}

var (
	errUnknownClient = errors.New("no enabled OAuth client has this client_id")
	errUnsupported   = errors.New("not served by op here")
)

// opClient is a Client as op sees it.
type opClient struct {
	c          Client
	consentURL string
}

func (c *opClient) GetID() string                    { return c.c.ApplicationID }
func (c *opClient) RedirectURIs() []string           { return c.c.Registration.RedirectURIs }
func (c *opClient) PostLogoutRedirectURIs() []string { return nil }

// ApplicationType is Native for every client: op then accepts https, loopback (any port) and
// private-use scheme redirects, the set the registration allows; AllowsRedirect has the last
// word, before op runs and again in CreateAuthRequest.
func (c *opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeNative }
func (c *opClient) AuthMethod() oidc.AuthMethod {
	if c.c.Registration.ClientType == "Public" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *opClient) LoginURL(id string) string {
	return c.consentURL + "?request=" + url.QueryEscape(id)
}
func (c *opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *opClient) IDTokenLifetime() time.Duration      { return DefaultIDTokenTTL }
func (c *opClient) DevMode() bool                       { return false }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed keeps every scope: what a scope grants is the Issuer's to decide.
func (c *opClient) IsScopeAllowed(string) bool           { return true }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *opClient) ClockSkew() time.Duration             { return 0 }

// opAuthRequest is a stored AuthRequest as op sees it.
type opAuthRequest struct{ r AuthRequest }

func (a *opAuthRequest) GetID() string                      { return a.r.ID }
func (a *opAuthRequest) GetACR() string                     { return "" }
func (a *opAuthRequest) GetAMR() []string                   { return nil }
func (a *opAuthRequest) GetAudience() []string              { return []string{a.r.ClientID} }
func (a *opAuthRequest) GetAuthTime() time.Time             { return a.r.CreatedAt }
func (a *opAuthRequest) GetClientID() string                { return a.r.ClientID }
func (a *opAuthRequest) GetNonce() string                   { return a.r.Nonce }
func (a *opAuthRequest) GetRedirectURI() string             { return a.r.RedirectURI }
func (a *opAuthRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseTypeCode }
func (a *opAuthRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseModeQuery }
func (a *opAuthRequest) GetScopes() []string                { return a.r.Scopes }
func (a *opAuthRequest) GetState() string                   { return a.r.State }
func (a *opAuthRequest) GetSubject() string                 { return "" }
func (a *opAuthRequest) Done() bool                         { return false }
func (a *opAuthRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: a.r.CodeChallenge, Method: oidc.CodeChallengeMethodS256}
}

// refuse is the part of op.Storage op never reaches here.
type refuse struct{}

func (refuse) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}
func (refuse) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}
func (refuse) SaveAuthCode(context.Context, string, string) error { return errUnsupported }
func (refuse) DeleteAuthRequest(context.Context, string) error    { return errUnsupported }
func (refuse) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return "", time.Time{}, errUnsupported
}
func (refuse) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errUnsupported
}
func (refuse) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}
func (refuse) TerminateSession(context.Context, string, string) error { return errUnsupported }
func (refuse) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrServerError()
}
func (refuse) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}
func (refuse) SigningKey(context.Context) (op.SigningKey, error) { return nil, errUnsupported }
func (refuse) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}
func (refuse) KeySet(context.Context) ([]op.Key, error)                      { return nil, nil }
func (refuse) AuthorizeClientIDSecret(context.Context, string, string) error { return errUnsupported }
func (refuse) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return errUnsupported
}
func (refuse) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errUnsupported
}
func (refuse) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errUnsupported
}
func (refuse) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, errUnsupported
}
func (refuse) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}
func (refuse) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errUnsupported
}
func (refuse) Health(context.Context) error { return nil }
