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
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"

	"github.com/clearance-dev/clearance/internal/oauth"
)

// The authorization code grant with PKCE (package oauth, docs/oauth.md), mounted when the
// console's consent page is configured (OAuthOptions.ConsentURL). The verifier gives it what
// only the verifier knows: OAuth clients and grants from its index (grants.go), access tokens
// bound to the consent's connection (jwt.go), confidential clients' keys checked as any key is,
// and the token keys from the signing keys Secret. Tokens it issues are decided on the data path
// like any other (decide.go), and die with their connection.

// initCodeGrant builds the grant's handler, or nothing without a consent page.
func (v *Verifier) initCodeGrant() error {
	o := &v.opts.OAuth
	if o.ConsentURL == "" {
		return nil
	}
	h, err := oauth.New(oauth.Config{
		Issuer:       o.Issuer,
		ConsentURL:   o.ConsentURL,
		Directory:    grantDirectory{v},
		Tokens:       grantIssuer{v},
		Authenticate: v.authenticateAppKey,
		Keys:         grantKeys{v},
		Store:        o.CodeStore,
		Clock:        v.clock,
		OnReuse:      v.grantReused,
	})
	if err != nil {
		return err
	}
	v.oauth.code = h
	return nil
}

// serveCodeGrant answers the authorization endpoint and the console's and the browser's steps
// after it; false for any other path, or when the grant is not mounted.
func (v *Verifier) serveCodeGrant(w http.ResponseWriter, r *http.Request, now time.Time) bool {
	if v.oauth.code == nil || !strings.HasPrefix(r.URL.Path, oauth.AuthorizePath) {
		return false
	}
	switch p := r.URL.Path; {
	case p == oauth.AuthorizePath, p == oauth.AuthorizeDonePath, strings.HasPrefix(p, oauth.AuthorizeRequestsPath):
	default:
		return false
	}
	if rs := v.unavailable(now); rs != rOK {
		// Not an OAuth redirect: the verifier cannot tell yet which client may be sent where.
		w.Header()[hRetryAfter] = header("5")
		http.Error(w, "the authorization server cannot answer now ("+rs.String()+"); try again in a few seconds", http.StatusServiceUnavailable)
		return true
	}
	v.oauth.code.ServeHTTP(w, r)
	v.oauth.requests.WithLabelValues("authorize", "served").Inc()
	return true
}

// codeGrantToken hands the token endpoint's grant types authorization_code and refresh_token
// to the grant's handler; false for the others.
func (v *Verifier) codeGrantToken(w http.ResponseWriter, r *http.Request, form map[string][]string, now time.Time) bool {
	if v.oauth.code == nil {
		return false
	}
	switch gt := form["grant_type"]; {
	case len(gt) == 1 && (gt[0] == "authorization_code" || gt[0] == "refresh_token"):
	default:
		return false
	}
	if oe := v.unavailableNow(now, true); oe != nil {
		v.writeOAuthError(w, endpointToken, oe)
		return true
	}
	r.PostForm, r.Form = form, form
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	v.oauth.code.Token(sw, r)
	result := "ok"
	if sw.status != http.StatusOK {
		result = "error"
	}
	v.oauth.requests.WithLabelValues(endpointToken, result).Inc()
	return true
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// authenticateAppKey checks a confidential client's secret: a key of the Application whose ID
// is the client_id, good now (authenticate, as for any request).
func (v *Verifier) authenticateAppKey(_ *http.Request, applicationID, secret string) error {
	req := request{token: secret, cred: credFound}
	if looksLikeJWT(secret) {
		return errNotAKey
	}
	d := authenticate(&req, v.rules.format, v.index, v.clock.Now())
	if d.reason != rOK || d.app == nil || d.app.id != applicationID {
		return errNotAKey
	}
	return nil
}

type codeGrantError string

func (e codeGrantError) Error() string { return string(e) }

const (
	errNotAKey   codeGrantError = "the client secret is not a key of this application in force now"
	errNoGrant   codeGrantError = "the grant is no longer in force"
	errNoKeysYet codeGrantError = "no token signing keys are loaded"
	errAppGone   codeGrantError = "the application is gone"
)

// grantReused tells the org that granted: a Warning Event on its OrgConnection (when the
// verifier runs with a manager), and a log line. Neither holds a token.
func (v *Verifier) grantReused(g oauth.Grant, what string) {
	v.log.Info("OAuth token reuse: what it issued is revoked", "org", g.Org, "applicationID", g.ApplicationID, "connectionUID", g.ConnectionUID, "what", what)
	if v.events == nil {
		return
	}
	uid := types.UID(g.ConnectionUID)
	grants := &v.index.grants
	grants.mu.RLock()
	c := grants.conns[uid]
	grants.mu.RUnlock()
	if c == nil {
		return // disconnected meanwhile: nothing left to tell
	}
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: c.org, Name: c.name, UID: uid}}
	conn.SetGroupVersionKind(v1.GroupVersion.WithKind("OrgConnection"))
	v.events.Eventf(conn, nil, corev1.EventTypeWarning, "OAuthTokenReused", "Revoke", "application %s: %s", g.ApplicationID, what)
}

// grantDirectory is the index as the grant sees it.
type grantDirectory struct{ v *Verifier }

func (d grantDirectory) Client(applicationID string) (oauth.Client, bool) {
	c, ok := d.v.OAuthClient(applicationID)
	if !ok {
		return oauth.Client{}, false
	}
	return oauth.Client{ApplicationID: c.ApplicationID, Namespace: c.Namespace, Description: c.Description, Enabled: c.Enabled,
		Registration: c.Registration}, true
}

func (d grantDirectory) Consent(requestID, applicationID string) (oauth.Grant, bool) {
	g, ok := d.v.Consent(requestID, applicationID)
	return grantOf(g), ok
}

func (d grantDirectory) WaitConsent(ctx context.Context, requestID, applicationID string) (oauth.Grant, bool) {
	g, ok := d.v.WaitConsent(ctx, requestID, applicationID)
	return grantOf(g), ok
}

func (d grantDirectory) InForce(org, connectionUID, applicationID, applicationUID string) (string, bool) {
	role, ok := d.v.GrantInForce(org, connectionUID, applicationID, applicationUID)
	return string(role), ok
}

func grantOf(g Grant) oauth.Grant {
	return oauth.Grant{Org: g.Org, ConnectionUID: g.ConnectionUID, ApplicationID: g.ApplicationID, ApplicationUID: g.ApplicationUID,
		Role: string(g.Role), ConsentedBy: g.ConsentedBy}
}

// grantIssuer mints the grant's access tokens: bound to the consent's connection and the
// Application object, no key (issueGrantToken), with the permission scopes asked for (the
// scopes of OpenID Connect and offline_access say nothing of what the token may do).
type grantIssuer struct{ v *Verifier }

func (i grantIssuer) IssueAccessToken(_ context.Context, g oauth.Grant, scopes []string, now time.Time) (string, time.Time, error) {
	v := i.v
	keys := v.oauth.keys.Load()
	if keys == nil {
		return "", time.Time{}, errNoKeysYet
	}
	if _, ok := v.GrantInForce(g.Org, g.ConnectionUID, g.ApplicationID, g.ApplicationUID); !ok {
		return "", time.Time{}, errNoGrant
	}
	app := v.index.applicationByID(g.ApplicationID)
	if app == nil || string(app.uid) != g.ApplicationUID {
		return "", time.Time{}, errAppGone
	}
	perms := slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return slices.Contains(oauth.Scopes, s) })
	exp := now.Add(v.opts.OAuth.TokenTTL).Truncate(time.Second)
	tok, err := v.issueGrantToken(keys, app, strings.Join(perms, " "), g.Org, types.UID(g.ConnectionUID), now, exp)
	return tok, exp, err
}

// grantKeys are the token keys of the signing keys Secret, as loaded now.
type grantKeys struct{ v *Verifier }

func (k grantKeys) RefreshKey() []byte {
	if keys := k.v.oauth.keys.Load(); keys != nil {
		return keys.refresh
	}
	return nil
}

func (k grantKeys) IDTokenKey() *oauth.SigningKey {
	if keys := k.v.oauth.keys.Load(); keys != nil {
		return keys.idToken
	}
	return nil
}
