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
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestGrantsFollowTheObjects: the OAuth client an Application ID names, the grant a consent
// created and whether it is in force follow every change the informers deliver, and are gone
// the moment the objects are.
func TestGrantsFollowTheObjects(t *testing.T) {
	w := newWorld(t)
	if _, ok := w.v.OAuthClient(appID); ok {
		t.Fatal("an Application without spec.oauth is no OAuth client")
	}
	w.updateApp(func(a *v1.Application) {
		a.Spec.OAuth = &v1.OAuthClient{ClientType: v1.OAuthPublic, RedirectURIs: []string{"http://127.0.0.1/cb"}}
	})
	c, ok := w.v.OAuthClient(appID)
	if !ok || c.Namespace != ownerOrg || c.Description != "Acme BI export" || !c.Enabled || c.Registration.ClientType != v1.OAuthPublic ||
		!c.Registration.AllowsRedirect("http://127.0.0.1:4711/cb") {
		t.Fatalf("OAuthClient(%s) = %+v, %v", appID, c, ok)
	}
	if _, ok := w.v.OAuthClient(otherAppID); ok {
		t.Error("an unknown Application ID is no client")
	}

	// No consent yet: the connection of newWorld carries none.
	if _, ok := w.v.Consent("req-1", appID); ok {
		t.Error("a consent nobody gave")
	}
	consented := w.conn.DeepCopy()
	consented.Annotations = map[string]string{v1.AnnotationConsent: "req-1", v1.AnnotationConsentedBy: "ada"}
	w.v.Apply(consented)
	g, ok := w.v.Consent("req-1", appID)
	if want := (Grant{Org: grantOrg, ConnectionUID: string(w.conn.UID), ApplicationID: appID, ApplicationUID: string(w.app.UID), Role: v1.RoleAnalyst,
		ConsentedBy: "ada"}); !ok || g != want {
		t.Fatalf("Consent = %+v, %v, want %+v", g, ok, want)
	}
	if _, ok := w.v.Consent("req-1", otherAppID); ok {
		t.Error("a consent is for its own application only")
	}
	if role, ok := w.v.GrantInForce(grantOrg, g.ConnectionUID, appID, g.ApplicationUID); !ok || role != v1.RoleAnalyst {
		t.Errorf("GrantInForce = %q, %v", role, ok)
	}

	// Another org's connection claiming the same request makes it nobody's.
	copycat := connection("initech", "acme-bi", appID, v1.RoleOrgAdmin, ownerOrg, true)
	copycat.Annotations = map[string]string{v1.AnnotationConsent: "req-1", v1.AnnotationConsentedBy: "mallory"}
	w.v.Apply(copycat)
	if _, ok := w.v.Consent("req-1", appID); ok {
		t.Error("two connections claiming one request: no consent")
	}
	w.v.Remove(copycat)
	if _, ok := w.v.Consent("req-1", appID); !ok {
		t.Error("the claim withdrawn, the consent is back")
	}

	// A consent without the apiserver's record of who gave it is none.
	unrecorded := consented.DeepCopy()
	unrecorded.Annotations = map[string]string{v1.AnnotationConsent: "req-2"}
	w.v.Apply(unrecorded)
	if _, ok := w.v.Consent("req-2", appID); ok {
		t.Error("a consent without consented-by")
	}
	if _, ok := w.v.Consent("req-1", appID); ok {
		t.Error("the connection now names another request: req-1 is gone")
	}
	w.v.Apply(consented)

	// Switching the Application off, deleting the connection or the Application: not in force.
	w.updateApp(func(a *v1.Application) { a.Spec.Enabled = ptr(false) })
	if _, ok := w.v.GrantInForce(grantOrg, g.ConnectionUID, appID, g.ApplicationUID); ok {
		t.Error("in force with the Application switched off")
	}
	w.updateApp(func(a *v1.Application) { a.Spec.Enabled = nil })
	if _, ok := w.v.GrantInForce(grantOrg, g.ConnectionUID, appID, g.ApplicationUID); !ok {
		t.Error("switched on again, in force again")
	}
	if _, ok := w.v.GrantInForce("initech", g.ConnectionUID, appID, g.ApplicationUID); ok {
		t.Error("a grant is in force in its own org only")
	}
	deleting := consented.DeepCopy()
	deleting.DeletionTimestamp = ptr(metav1.Now())
	w.v.Apply(deleting)
	if _, ok := w.v.GrantInForce(grantOrg, g.ConnectionUID, appID, g.ApplicationUID); ok {
		t.Error("in force while its connection is being deleted")
	}
	w.v.Remove(deleting)
	if _, ok := w.v.GrantInForce(grantOrg, g.ConnectionUID, appID, g.ApplicationUID); ok {
		t.Error("in force after its connection is gone")
	}
	if _, ok := w.v.Consent("req-1", appID); ok {
		t.Error("a consent outlives its connection")
	}
	w.v.Apply(consented)
	w.v.Remove(w.app)
	if _, ok := w.v.OAuthClient(appID); ok {
		t.Error("a deleted Application is no client")
	}
	if _, ok := w.v.GrantInForce(grantOrg, g.ConnectionUID, appID, g.ApplicationUID); ok {
		t.Error("in force after its Application is gone")
	}
}

// TestATokenBoundToAConnectionDiesWithIt: a token an org admin's consent led to names the
// OrgConnection that consent made; disconnecting (deleting it) revokes the token at once, and
// connecting the application again (a new object, a new UID) does not bring it back. It is good
// in its own org only, and a token naming a connection but no org is no token.
func TestATokenBoundToAConnectionDiesWithIt(t *testing.T) {
	w := newWorld(t)
	w.newSigningKeys()
	keys := w.v.oauth.keys.Load()
	e, ok := w.v.index.lookupKey(w.token.KeyID, w.token.Token)
	if !ok {
		t.Fatal("the world's key is not in the index")
	}
	now := w.clk.Now()
	issue := func(org string, conn types.UID) string {
		tok, err := w.v.issueAccessToken(keys, e, appID, "", org, conn, now, now.Add(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		w.issued = append(w.issued, tok)
		return tok
	}
	active := func(token string) bool {
		t.Helper()
		rec := w.do(http.MethodPost, PathIntrospect, url.Values{"token": {token}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded", "Authorization", basicAuth(w.token))
		var in Introspection
		if err := json.Unmarshal(rec.Body.Bytes(), &in); rec.Code != http.StatusOK || err != nil {
			t.Fatalf("introspect: %d %s", rec.Code, rec.Body.String())
		}
		return in.Active
	}
	bound := issue(grantOrg, w.conn.UID)
	expect(t, w.bearer(bound, ""), http.StatusOK, "")
	if !active(bound) {
		t.Error("introspection: a token of a connection in force is inactive")
	}
	expect(t, w.do(http.MethodGet, PathAuthorize+"?org=initech", "", "Authorization", "Bearer "+bound), http.StatusForbidden, ReasonTokenOrgMismatch)

	w.v.Remove(w.conn)
	expect(t, w.bearer(bound, ""), http.StatusForbidden, ReasonOrgNotConnected)
	again := connection(grantOrg, "acme-bi-again", appID, v1.RoleAnalyst, ownerOrg, true)
	w.v.Apply(again)
	expect(t, w.bearer(bound, ""), http.StatusUnauthorized, ReasonTokenRevoked)
	if active(bound) {
		t.Error("introspection: a token of a deleted connection is active")
	}
	// A token of the new connection works; one bound to no connection follows whichever is there.
	expect(t, w.bearer(issue(grantOrg, again.UID), ""), http.StatusOK, "")
	expect(t, w.bearer(issue(grantOrg, ""), ""), http.StatusOK, "")
	expect(t, w.bearer(issue("", "uid-somewhere"), ""), http.StatusUnauthorized, ReasonTokenInvalid)
}

// TestWaitingForAConsentEndsWhenTheIndexSeesIt: the verifier's consent callback may run before
// its informer delivered the connection the console just wrote; it waits for that change, and
// gives up when its context ends.
func TestWaitingForAConsentEndsWhenTheIndexSeesIt(t *testing.T) {
	w := newWorld(t)
	consented := w.conn.DeepCopy()
	consented.Annotations = map[string]string{v1.AnnotationConsent: "req-late", v1.AnnotationConsentedBy: "ada"}
	got := make(chan Grant, 1)
	go func() {
		g, ok := w.v.WaitConsent(context.Background(), "req-late", appID)
		if ok {
			got <- g
		}
		close(got)
	}()
	w.v.Apply(metricSet(grantOrg, "unrelated", nil)) // other objects change first
	w.v.Apply(consented)
	if g := <-got; g.ConsentedBy != "ada" || g.ConnectionUID != string(w.conn.UID) {
		t.Errorf("WaitConsent = %+v", g)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := w.v.WaitConsent(ctx, "req-never", appID); ok {
		t.Error("a consent nobody gave, with the context ended")
	}
}

// TestAGrantIsInForceExactlyWhileItsConnectionAnswersRequests: whatever state the connection a
// token is bound to is in (Ready, not Ready, being deleted, gone, Ready again), introspection
// and GrantInForce say the token is active exactly when /v1/authorize answers it 200: a resource
// server that introspects never accepts a token the verifier itself refuses.
func TestAGrantIsInForceExactlyWhileItsConnectionAnswersRequests(t *testing.T) {
	w := newWorld(t)
	w.newSigningKeys()
	keys := w.v.oauth.keys.Load()
	e, ok := w.v.index.lookupKey(w.token.KeyID, w.token.Token)
	if !ok {
		t.Fatal("the world's key is not in the index")
	}
	now := w.clk.Now()
	tok, err := w.v.issueAccessToken(keys, e, appID, "", grantOrg, w.conn.UID, now, now.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	w.issued = append(w.issued, tok)
	ready := connection(grantOrg, "acme-bi", appID, v1.RoleAnalyst, ownerOrg, true)
	notReady := connection(grantOrg, "acme-bi", appID, v1.RoleAnalyst, ownerOrg, false)
	deleting := ready.DeepCopy()
	deleting.DeletionTimestamp = ptr(metav1.NewTime(epoch))
	for _, step := range []struct {
		name  string
		apply func()
	}{
		{"Ready", func() { w.v.Apply(ready) }},
		{"not Ready", func() { w.v.Apply(notReady) }},
		{"Ready again", func() { w.v.Apply(ready) }},
		{"being deleted", func() { w.v.Apply(deleting) }},
		{"gone", func() { w.v.Remove(deleting) }},
	} {
		step.apply()
		answered := w.bearer(tok, "").Code == http.StatusOK
		rec := w.do(http.MethodPost, PathIntrospect, url.Values{"token": {tok}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded", "Authorization", basicAuth(w.token))
		var in Introspection
		if err := json.Unmarshal(rec.Body.Bytes(), &in); rec.Code != http.StatusOK || err != nil {
			t.Fatalf("%s: introspect: %d %s", step.name, rec.Code, rec.Body.String())
		}
		_, inForce := w.v.GrantInForce(grantOrg, string(w.conn.UID), appID, string(w.app.UID))
		if in.Active != answered || inForce != answered {
			t.Errorf("connection %s: /v1/authorize 200 %v, introspection active %v, GrantInForce %v", step.name, answered, in.Active, inForce)
		}
	}
}
