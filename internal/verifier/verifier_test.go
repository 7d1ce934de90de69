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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

func TestAValidKeyIsAcceptedWithItsApplicationOrgRoleAndKeyID(t *testing.T) {
	w := newWorld(t)
	rec := w.authorize(w.token.Token, "")
	expect(t, rec, http.StatusOK, "")
	for name, want := range map[string]string{
		"X-Clearance-Application-Id": appID,
		"X-Clearance-Org":            grantOrg,
		"X-Clearance-Role":           string(v1.RoleAnalyst),
		"X-Clearance-Key-Id":         w.token.KeyID,
		"Content-Type":               "application/json",
		"Cache-Control":              "no-store",
	} {
		if got := rec.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := rec.Body.String(); got != `{"valid":true}` {
		t.Errorf("body %s", got)
	}
}

func TestClientsMaySendTheKeyInEveryDocumentedForm(t *testing.T) {
	w := newWorld(t)
	k := w.token
	for name, headers := range map[string][]string{
		"Authorization api-key":                         {"Authorization", "api-key " + k.Token},
		"Authorization API-Key, any case":               {"Authorization", "API-Key " + k.Token},
		"Authorization Bearer":                          {"Authorization", "Bearer " + k.Token},
		"X-API-Key":                                     {"X-API-Key", k.Token},
		"accessKey and secretKey":                       {"accessKey", keyformat.AccessKey(k), "secretKey", keyformat.SecretKey(k)},
		"WebSocket subprotocol":                         {"Sec-WebSocket-Protocol", "clearance.v1, clearance.key." + k.Token},
		"WebSocket subprotocol, two lines":              {"Sec-WebSocket-Protocol", "clearance.v1", "Sec-WebSocket-Protocol", "clearance.key." + k.Token},
		"X-API-Key beside an upstream bearer token":     {"Authorization", "Bearer eyJhbGciOi.upstream.jwt", "X-API-Key", k.Token},
		"WebSocket handshake with the key in X-API-Key": {"Upgrade", "websocket", "Connection", "Upgrade", "X-API-Key", k.Token},
	} {
		t.Run(name, func(t *testing.T) {
			expect(t, w.authorize("", "", headers...), http.StatusOK, "")
		})
	}
}

func TestAMissingKeyIsAskedForWithWWWAuthenticate(t *testing.T) {
	w := newWorld(t)
	for name, headers := range map[string][]string{
		"no headers":                  nil,
		"basic auth for someone else": {"Authorization", "Basic dXNlcjpwYXNz"},
		"websocket without a key":     {"Sec-WebSocket-Protocol", "clearance.v1"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := w.authorize("", "", headers...)
			expect(t, rec, http.StatusUnauthorized, ReasonKeyMissing)
			if got := rec.Header().Get("WWW-Authenticate"); got != `api-key realm="clearance"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
		})
	}
}

func TestBrokenOrAmbiguousKeysAreRefusedWithoutALookup(t *testing.T) {
	w := newWorld(t)
	k := w.token
	typo := k.Token[:20] + flip(k.Token[20]) + k.Token[21:]
	for name, headers := range map[string][]string{
		"a typo fails the checksum":          {"X-API-Key", typo},
		"another prefix":                     {"X-API-Key", "ghp_" + k.Token[4:]},
		"truncated":                          {"X-API-Key", k.Token[:40]},
		"empty api-key":                      {"Authorization", "api-key "},
		"two Authorization headers":          {"Authorization", "api-key " + k.Token, "Authorization", "api-key " + k.Token},
		"two X-API-Key headers":              {"X-API-Key", k.Token, "X-API-Key", k.Token},
		"accessKey without secretKey":        {"accessKey", keyformat.AccessKey(k)},
		"two accessKey headers":              {"accessKey", keyformat.AccessKey(k), "accessKey", keyformat.AccessKey(k), "secretKey", keyformat.SecretKey(k)},
		"two secretKey headers":              {"accessKey", keyformat.AccessKey(k), "secretKey", keyformat.SecretKey(k), "secretKey", keyformat.SecretKey(k)},
		"pair split at the wrong place":      {"accessKey", keyformat.AccessKey(k) + "_", "secretKey", keyformat.SecretKey(k)[1:]},
		"two keys in the WebSocket protocol": {"Sec-WebSocket-Protocol", "clearance.key." + k.Token + ", clearance.key." + k.Token},
		"a foreign bearer token":             {"Authorization", "Bearer eyJhbGciOi.upstream.jwt"},
	} {
		t.Run(name, func(t *testing.T) {
			expect(t, w.authorize("", "", headers...), http.StatusUnauthorized, ReasonKeyMalformed)
		})
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestAWrongSecretLooksExactlyLikeAnUnknownKey(t *testing.T) {
	w := newWorld(t)
	// Same key id, another secret: GenerateFrom reads the key id from the first 9 bytes.
	seed := bytes.Repeat([]byte{7}, 41)
	real, _ := w.format.GenerateFrom(bytes.NewReader(seed))
	seed[40] = 8
	forged, _ := w.format.GenerateFrom(bytes.NewReader(seed))
	w.minted = append(w.minted, real, forged)
	if real.KeyID != forged.KeyID || real.Token == forged.Token {
		t.Fatal("fixture: want the same key id with another secret")
	}
	w.updateKey(func(k *v1.APIKey) { k.Status.KeyID, k.Status.Hash = real.KeyID, keyformat.Hash(real.Token) })
	expect(t, w.authorize(real.Token, ""), http.StatusOK, "")

	wrongSecret := w.authorize(forged.Token, "")
	unknown := w.authorize(w.mint().Token, "")
	expect(t, wrongSecret, http.StatusUnauthorized, ReasonKeyUnknown)
	expect(t, unknown, http.StatusUnauthorized, ReasonKeyUnknown)
	if wrongSecret.Body.String() != unknown.Body.String() {
		t.Error("a wrong secret must be indistinguishable from an unknown key")
	}

	// Even a disabled key reveals its state only to a caller who holds its secret.
	w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = ptr(false) })
	expect(t, w.authorize(forged.Token, ""), http.StatusUnauthorized, ReasonKeyUnknown)
}

func ptr[T any](v T) *T { return &v }

func TestAKeyStopsWorkingAtTheExactInstantItExpires(t *testing.T) {
	w := newWorld(t)
	expiry := epoch.Add(time.Hour)
	w.updateKey(func(k *v1.APIKey) { k.Status.ExpiresAt = &metav1.Time{Time: expiry} })

	w.setTime(expiry.Add(-time.Nanosecond))
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	w.setTime(expiry)
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyExpired)
}

func TestShorteningSpecExpiresAtTakesEffectBeforeTheControllerCatchesUp(t *testing.T) {
	w := newWorld(t)
	w.updateKey(func(k *v1.APIKey) {
		k.Status.ExpiresAt = &metav1.Time{Time: epoch.Add(24 * time.Hour)}
		k.Spec.ExpiresAt = &metav1.Time{Time: epoch.Add(time.Minute)}
	})
	w.step(time.Minute)
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyExpired)
}

func TestDuringRotationOldAndNewKeysBothWorkThenOnlyTheNewOne(t *testing.T) {
	w := newWorld(t)
	old := w.token
	fresh := w.mint()
	validUntil := epoch.Add(24 * time.Hour)
	w.updateKey(func(k *v1.APIKey) {
		k.Status.PreviousKeys = []v1.PreviousKey{{KeyID: old.KeyID, Hash: keyformat.Hash(old.Token), ValidUntil: metav1.Time{Time: validUntil}}}
		k.Status.KeyID, k.Status.Hash, k.Status.State = fresh.KeyID, keyformat.Hash(fresh.Token), v1.KeyRotating
	})
	expect(t, w.authorize(old.Token, ""), http.StatusOK, "")
	expect(t, w.authorize(fresh.Token, ""), http.StatusOK, "")

	w.setTime(validUntil)
	expect(t, w.authorize(old.Token, ""), http.StatusUnauthorized, ReasonKeyRotated)
	expect(t, w.authorize(fresh.Token, ""), http.StatusOK, "")

	// When the controller drops the previous key, it is unknown.
	w.updateKey(func(k *v1.APIKey) { k.Status.PreviousKeys = nil; k.Status.State = v1.KeyActive })
	expect(t, w.authorize(old.Token, ""), http.StatusUnauthorized, ReasonKeyUnknown)
}

func TestDisablingAKeyRefusesItAtOnceAndReEnablingRestoresTheSameKey(t *testing.T) {
	w := newWorld(t)
	// spec.enabled alone is enough: no waiting for the controller to write state Disabled.
	w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = ptr(false) })
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyDisabled)
	w.updateKey(func(k *v1.APIKey) { k.Status.State = v1.KeyDisabled })
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyDisabled)
	w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = ptr(true); k.Status.State = v1.KeyActive })
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
}

func TestKeysInStatesThatDoNotWorkAreRefused(t *testing.T) {
	for state, want := range map[v1.KeyState]string{
		v1.KeyPending:  ReasonKeyInactive,
		v1.KeyFailed:   ReasonKeyRevoked, // a minted key fails only when its Application is gone
		"":             ReasonKeyInactive,
		v1.KeyExpired:  ReasonKeyExpired,
		v1.KeyDisabled: ReasonKeyDisabled,
	} {
		t.Run(string(state), func(t *testing.T) {
			w := newWorld(t)
			w.updateKey(func(k *v1.APIKey) { k.Status.State = state })
			expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, want)
		})
	}
}

func TestDeletingAKeyOrItsApplicationRevokesTheKey(t *testing.T) {
	w := newWorld(t)
	now := metav1.NewTime(epoch)
	w.updateKey(func(k *v1.APIKey) { k.DeletionTimestamp = &now })
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyRevoked)
	w.updateKey(func(k *v1.APIKey) { k.DeletionTimestamp = nil })
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")

	w.updateApp(func(a *v1.Application) { a.DeletionTimestamp = &now })
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyRevoked)
	w.v.Remove(w.app)
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyRevoked)

	w.updateApp(func(a *v1.Application) { a.DeletionTimestamp = nil })
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	w.v.Remove(w.key)
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyUnknown)
}

// replaceApp deletes the world's Application and applies it again from the same manifest, as
// GitOps self-heal does: the same name, the same pinned ID, another object (another UID).
func (w *world) replaceApp() {
	w.v.Remove(w.app)
	a := w.app.DeepCopy()
	a.UID = w.app.UID + "-again"
	a.Spec.ApplicationID = appID
	w.app = a
	w.v.Apply(a)
}

// TestAKeyOfADeletedApplicationNeverWorksForOneAppliedAgain: the key records the UID of the
// Application it was minted for. Deleted and applied again under the same name with the same
// pinned ID, the Application is another object: the key, and every access token obtained with
// it, is refused for good, through forward-auth, keys:verify and the token endpoint, whatever
// the key's own state says. A key minted for the new Application works; a key minted before
// the UID was recorded is taken for the Application of its name until the operator records it.
func TestAKeyOfADeletedApplicationNeverWorksForOneAppliedAgain(t *testing.T) {
	w := newWorld(t)
	w.newSigningKeys()
	tok, _ := w.accessToken()
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	expect(t, w.bearer(tok, ""), http.StatusOK, "")

	w.replaceApp()
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyRevoked)
	expect(t, w.bearer(tok, ""), http.StatusUnauthorized, ReasonKeyRevoked)
	rec := w.do(http.MethodPost, PathVerify, `{"key":"`+w.token.Token+`","org":"`+grantOrg+`"}`, "Content-Type", "application/json")
	expect(t, rec, http.StatusOK, "")
	if !strings.Contains(rec.Body.String(), `"reason":"`+ReasonKeyRevoked+`"`) {
		t.Errorf("keys:verify answered %s, want reason %s", rec.Body.String(), ReasonKeyRevoked)
	}
	if rec := w.requestToken(w.token, true); rec.Code != http.StatusUnauthorized {
		t.Errorf("the token endpoint answered %d to the revoked key, want 401: %s", rec.Code, rec.Body.String())
	}
	// Whatever the APIKey says of itself afterwards: enabled again, state Active, rotated.
	w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = new(true); k.Status.State = v1.KeyActive })
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyRevoked)
	expect(t, w.bearer(tok, ""), http.StatusUnauthorized, ReasonKeyRevoked)

	fresh := w.mint()
	w.v.Apply(&v1.APIKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: ownerOrg, Name: "prod-again", UID: "uid-key-again"},
		Spec:       v1.APIKeySpec{ApplicationName: appName},
		Status: v1.APIKeyStatus{KeyID: fresh.KeyID, Hash: keyformat.Hash(fresh.Token), State: v1.KeyActive,
			ApplicationID: appID, ApplicationUID: w.app.UID},
	})
	expect(t, w.authorize(fresh.Token, ""), http.StatusOK, "")

	// The upgrade window: no UID recorded, so the key is judged by its Application's name.
	w.updateKey(func(k *v1.APIKey) { k.Status.ApplicationUID = "" })
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
}

func TestSwitchingTheApplicationOffRefusesItsKeysAndOnRestoresTheSameKeys(t *testing.T) {
	w := newWorld(t)
	second := w.mint()
	other := w.key.DeepCopy()
	other.Name, other.UID = "staging", "uid-key-staging"
	other.Status.KeyID, other.Status.Hash = second.KeyID, keyformat.Hash(second.Token)
	w.v.Apply(other)
	w.updateApp(func(a *v1.Application) { a.Spec.Enabled = ptr(false) })
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonApplicationDisabled)
	expect(t, w.authorize(second.Token, ""), http.StatusUnauthorized, ReasonApplicationDisabled)
	w.updateApp(func(a *v1.Application) { a.Spec.Enabled = nil }) // unset means on
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	expect(t, w.authorize(second.Token, ""), http.StatusOK, "")
}

func TestAKeyWorksOnlyInOrgsThatConnectedItsApplication(t *testing.T) {
	w := newWorld(t)
	wrongOrg := w.do(http.MethodGet, PathAuthorize+"?org=initech", "", "X-API-Key", w.token.Token)
	expect(t, wrongOrg, http.StatusForbidden, ReasonOrgNotConnected)
	// Its own org did not connect it either: an Application by itself has access to nothing.
	own := w.do(http.MethodGet, PathAuthorize+"?org="+ownerOrg, "", "X-API-Key", w.token.Token)
	expect(t, own, http.StatusForbidden, ReasonOrgNotConnected)

	// A connection that is not Ready does not count.
	w.v.Apply(connection(grantOrg, "acme-bi", appID, v1.RoleAnalyst, ownerOrg, false))
	expect(t, w.authorize(w.token.Token, ""), http.StatusForbidden, ReasonOrgNotConnected)
	// Nor one resolved to an Application of another org that claims the same ID.
	w.v.Apply(connection(grantOrg, "acme-bi", appID, v1.RoleAnalyst, "mallory", true))
	expect(t, w.authorize(w.token.Token, ""), http.StatusForbidden, ReasonOrgNotConnected)
	// Ready again, then disconnected.
	w.v.Apply(w.conn)
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	w.v.Remove(w.conn)
	expect(t, w.authorize(w.token.Token, ""), http.StatusForbidden, ReasonOrgNotConnected)
}

func TestARoleBelowMinRoleIsForbidden(t *testing.T) {
	w := newWorld(t)
	for minRole, status := range map[string]int{
		"Observer": http.StatusOK, "Analyst": http.StatusOK,
		"Technician": http.StatusForbidden, "OrgAdmin": http.StatusForbidden,
	} {
		rec := w.authorize(w.token.Token, "minRole="+minRole)
		if rec.Code != status {
			t.Errorf("minRole=%s: %d, want %d", minRole, rec.Code, status)
		}
		if status == http.StatusForbidden {
			expect(t, rec, status, ReasonRoleInsufficient)
		}
	}
	expect(t, w.authorize(w.token.Token, "minRole=Root"), http.StatusBadRequest, ReasonInvalidParameter)

	// Editing the connection's role (a patch) takes effect on the next request.
	up := w.conn.DeepCopy()
	up.Spec.Role = v1.RoleTechnician
	w.v.Apply(up)
	rec := w.authorize(w.token.Token, "minRole=Technician")
	expect(t, rec, http.StatusOK, "")
	if got := rec.Header().Get("X-Clearance-Role"); got != "Technician" {
		t.Errorf("X-Clearance-Role %q", got)
	}
}

func TestTheMethodSetsTheLeastRoleSoObserversOnlyRead(t *testing.T) {
	w := newWorld(t)
	observer := w.conn.DeepCopy()
	observer.Spec.Role = v1.RoleObserver
	w.v.Apply(observer)

	for _, tc := range []struct {
		name    string
		method  string
		query   string
		headers []string
		want    int
	}{
		{name: "GET reads", method: http.MethodGet, want: http.StatusOK},
		{name: "HEAD reads", method: http.MethodHead, want: http.StatusOK},
		{name: "POST may write", method: http.MethodPost, want: http.StatusForbidden},
		{name: "nginx forwards POST on its GET subrequest", method: http.MethodGet,
			headers: []string{"X-Original-Method", "POST"}, want: http.StatusForbidden},
		{name: "Traefik and Caddy forward DELETE", method: http.MethodGet,
			headers: []string{"X-Forwarded-Method", "DELETE"}, want: http.StatusForbidden},
		{name: "forwarded GET", method: http.MethodGet,
			headers: []string{"X-Forwarded-Method", "GET"}, want: http.StatusOK},
		{name: "a client's GET beside the proxy's PATCH gains nothing", method: http.MethodGet,
			headers: []string{"X-Forwarded-Method", "GET", "X-Original-Method", "PATCH"}, want: http.StatusForbidden},
		{name: "a repeated header counts every value", method: http.MethodGet,
			headers: []string{"X-Original-Method", "GET", "X-Original-Method", "PUT"}, want: http.StatusForbidden},
		{name: "methods are case-sensitive", method: http.MethodGet,
			headers: []string{"X-Original-Method", "get"}, want: http.StatusForbidden},
		{name: "an explicit minRole wins, lower", method: http.MethodPost, query: "minRole=Observer", want: http.StatusOK},
		{name: "an explicit minRole wins, higher", method: http.MethodGet, query: "minRole=Analyst", want: http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := PathAuthorize + "?org=" + grantOrg
			if tc.query != "" {
				target += "&" + tc.query
			}
			rec := w.do(tc.method, target, "", append([]string{"X-API-Key", w.token.Token}, tc.headers...)...)
			if tc.want == http.StatusForbidden {
				expect(t, rec, tc.want, ReasonRoleInsufficient)
			} else {
				expect(t, rec, tc.want, "")
			}
		})
	}

	// The JSON API: method says what the request being checked is; none may be a write.
	verify := func(method string) VerifyResponse {
		t.Helper()
		body, _ := json.Marshal(VerifyRequest{Key: w.token.Token, Org: grantOrg, Method: method})
		var resp VerifyResponse
		if err := json.Unmarshal(w.do(http.MethodPost, PathVerify, string(body)).Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := verify("GET"); !r.Valid {
		t.Errorf("keys:verify method GET for an Observer: %+v, want valid", r)
	}
	for _, m := range []string{"POST", ""} {
		if r := verify(m); r.Valid || r.Reason != ReasonRoleInsufficient {
			t.Errorf("keys:verify method %q for an Observer: %+v, want role_insufficient", m, r)
		}
	}

	// The write role is a setting: Analyst by default, Technician here.
	w.v.rules.writeRank = v1.RoleTechnician.Rank()
	analyst := observer.DeepCopy()
	analyst.Spec.Role = v1.RoleAnalyst
	w.v.Apply(analyst)
	expect(t, w.do(http.MethodPost, PathAuthorize+"?org="+grantOrg, "", "X-API-Key", w.token.Token), http.StatusForbidden, ReasonRoleInsufficient)
	expect(t, w.do(http.MethodGet, PathAuthorize+"?org="+grantOrg, "", "X-API-Key", w.token.Token), http.StatusOK, "")
}

func TestAWriteMinRoleThatIsNotARoleIsRefused(t *testing.T) {
	f, _ := keyformat.New(keyformat.DefaultPrefix)
	_, err := New(Options{Format: f, Registerer: prometheus.NewRegistry(), WriteMinRole: "Admin"})
	if err == nil || !strings.Contains(err.Error(), `"Admin" is not a role`) {
		t.Fatalf("New with WriteMinRole Admin: %v, want an error naming it", err)
	}
}

func TestAScopedKeyMayOnlyActWithinItsScopes(t *testing.T) {
	w := newWorld(t)
	expect(t, w.authorize(w.token.Token, "scope=anything:at-all"), http.StatusOK, "") // no scopes: all its role allows
	w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:read", "exports:*"} })
	for scope, ok := range map[string]bool{
		"reports:read": true, "reports:write": false, "exports:csv": true, "exports:csv:gz": true,
		"exports": false, "exports:": false, "reports:*": false, "": true,
	} {
		rec := w.authorize(w.token.Token, "scope="+scope)
		if ok {
			expect(t, rec, http.StatusOK, "")
		} else {
			expect(t, rec, http.StatusForbidden, ReasonScopeMissing)
		}
	}
}

func TestAMetricMustBeEnabledForTheConnection(t *testing.T) {
	w := newWorld(t)
	// No metricSets on the connection: every MetricSet of the org.
	expect(t, w.authorize(w.token.Token, "metric=occupancy.current"), http.StatusOK, "")
	expect(t, w.authorize(w.token.Token, "metric=dwell.p99"), http.StatusOK, "")
	expect(t, w.authorize(w.token.Token, "metric=dwell.p95"), http.StatusForbidden, ReasonMetricNotEnabled) // listed, disabled
	expect(t, w.authorize(w.token.Token, "metric=unheard.of"), http.StatusForbidden, ReasonMetricNotEnabled)

	limited := w.conn.DeepCopy()
	limited.Spec.MetricSets = []string{"default"}
	w.v.Apply(limited)
	expect(t, w.authorize(w.token.Token, "metric=occupancy.current"), http.StatusOK, "")
	expect(t, w.authorize(w.token.Token, "metric=dwell.p99"), http.StatusForbidden, ReasonMetricNotEnabled)

	// Disabling the metric in its MetricSet refuses it on the next request.
	w.v.Apply(metricSet(grantOrg, "default", map[string]bool{"occupancy.current": false}))
	expect(t, w.authorize(w.token.Token, "metric=occupancy.current"), http.StatusForbidden, ReasonMetricNotEnabled)
}

func TestBrowsersAreServedOnlyFromAllowedOrigins(t *testing.T) {
	w := newWorld(t)
	rec := w.authorize(w.token.Token, "", "Origin", origin)
	expect(t, rec, http.StatusOK, "")
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
	if got := rec.Header().Get("Access-Control-Expose-Headers"); !strings.Contains(got, "X-RateLimit-Remaining") {
		t.Errorf("Access-Control-Expose-Headers %q", got)
	}
	evil := w.authorize(w.token.Token, "", "Origin", "https://evil.example")
	expect(t, evil, http.StatusForbidden, ReasonOriginNotAllowed)
	if evil.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Error("a refused origin must not be allowed by CORS")
	}
	twice := w.authorize(w.token.Token, "", "Origin", origin, "Origin", "https://evil.example")
	expect(t, twice, http.StatusForbidden, ReasonOriginNotAllowed)
	// No Origin: not a browser, allowed.
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
}

// The allow-list's system default entries (--default-allowed-origins) are the platform team's:
// they serve every Application's keys, whatever its spec.allowedOrigins say, so no org can
// remove them; and they add nothing else, not even an origin one character away.
func TestTheAllowListsDefaultEntryServesEveryApplication(t *testing.T) {
	const product = "https://app.clearance.example"
	w := newWorld(t, func(o *Options) { o.DefaultAllowedOrigins = []string{product} })
	served := func(when string) {
		t.Helper()
		rec := w.authorize(w.token.Token, "", "Origin", product)
		if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != product {
			t.Fatalf("%s: the default entry got %d, Access-Control-Allow-Origin %q", when, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
		acrm := []string{"Origin", product, "Access-Control-Request-Method", "GET"}
		if got := w.do(http.MethodOptions, PathAuthorize+"?org="+grantOrg, "", acrm...); got.Code != http.StatusNoContent || got.Header().Get("Access-Control-Allow-Origin") != product {
			t.Errorf("%s: a preflight from the default entry: %d", when, got.Code)
		}
		if got := w.do(http.MethodOptions, PathPreflight, "", acrm...).Code; got != http.StatusNoContent {
			t.Errorf("%s: /v1/preflight from the default entry: %d", when, got)
		}
	}
	served("beside the Application's own origin")
	expect(t, w.authorize(w.token.Token, "", "Origin", origin), http.StatusOK, "")

	// What an org can do to its Application: list the entry itself, then take it out, then
	// allow no origin at all. The entry serves its keys throughout; its own origin goes.
	w.updateApp(func(a *v1.Application) { a.Spec.AllowedOrigins = []string{origin, product} })
	served("listed by the Application too")
	w.updateApp(func(a *v1.Application) { a.Spec.AllowedOrigins = []string{origin} })
	served("taken out of the Application's list")
	w.updateApp(func(a *v1.Application) { a.Spec.AllowedOrigins = nil })
	served("with no allowed origin of the Application's own")
	expect(t, w.authorize(w.token.Token, "", "Origin", origin), http.StatusForbidden, ReasonOriginNotAllowed)

	// Nothing else is added: near misses of the entry are other origins.
	for _, near := range []string{"http://app.clearance.example", "https://app.clearance.example:8443", "https://app.clearance.example/",
		"https://APP.clearance.example", "https://app.clearance.example.evil.example", "https://evil.example", "null", product + ", " + origin} {
		rec := w.authorize(w.token.Token, "", "Origin", near)
		expect(t, rec, http.StatusForbidden, ReasonOriginNotAllowed)
		if rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("origin %q: a refused origin must not be allowed by CORS", near)
		}
		if got := w.do(http.MethodOptions, PathPreflight, "", "Origin", near, "Access-Control-Request-Method", "GET").Code; got != http.StatusForbidden {
			t.Errorf("/v1/preflight from %q: %d, want 403", near, got)
		}
	}
	// Two Origin headers, the entry's and another: refused, as for an Application's own.
	expect(t, w.authorize(w.token.Token, "", "Origin", product, "Origin", "https://evil.example"), http.StatusForbidden, ReasonOriginNotAllowed)

	// An entry the CRD would refuse in spec.allowedOrigins is refused at start, saying how to
	// write one.
	for _, bad := range []string{"https://app.clearance.example/", "app.clearance.example", "HTTPS://app.clearance.example", "*", ""} {
		_, err := New(Options{Clock: w.clk, Format: w.format, Registerer: prometheus.NewRegistry(), DefaultAllowedOrigins: []string{bad}})
		if err == nil || !strings.Contains(err.Error(), "scheme://host[:port]") {
			t.Errorf("default allowed origin %q: %v, want an error saying scheme://host[:port]", bad, err)
		}
	}
}

func TestCORSPreflightsAreAnsweredForOriginsSomeApplicationAllows(t *testing.T) {
	w := newWorld(t)
	preflight := func(method string, headers ...string) int {
		rec := w.do(method, PathAuthorize+"?org="+grantOrg, "", headers...)
		if rec.Code == http.StatusNoContent {
			h := rec.Header()
			if h.Get("Access-Control-Allow-Origin") != origin ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-API-Key") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "secretKey") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Errorf("preflight headers %v", h)
			}
		}
		return rec.Code
	}
	acrm := []string{"Origin", origin, "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "x-api-key"}
	if got := preflight(http.MethodOptions, acrm...); got != http.StatusNoContent {
		t.Errorf("direct preflight: %d", got)
	}
	// nginx's auth request carries the client's method with proxy_method $request_method, and
	// both method headers.
	nginx := append(slices.Clone(acrm), "X-Original-Method", "OPTIONS", "X-Forwarded-Method", "OPTIONS")
	if got := preflight(http.MethodOptions, nginx...); got != http.StatusNoContent {
		t.Errorf("preflight via nginx: %d", got)
	}
	// A GET auth request that claims OPTIONS in a header is not a preflight at /v1/authorize:
	// the GET may be the client's own (Envoy), the header the client's too.
	if got := preflight(http.MethodGet, nginx...); got != http.StatusUnauthorized {
		t.Errorf("a GET auth request claiming OPTIONS: %d, want 401", got)
	}
	// Proxies whose auth request is always a GET (Caddy, HAProxy, Traefik) send their OPTIONS
	// requests to /v1/preflight, with their X-Forwarded-Method.
	atPreflight := func(method string, headers ...string) int {
		return w.do(method, PathPreflight, "", headers...).Code
	}
	if got := atPreflight(http.MethodGet, append(slices.Clone(acrm), "X-Forwarded-Method", "OPTIONS")...); got != http.StatusNoContent {
		t.Errorf("/v1/preflight from Traefik: %d", got)
	}
	for name, headers := range map[string][]string{
		"a method header other than OPTIONS": append(slices.Clone(acrm), "X-Forwarded-Method", "OPTIONS", "X-Original-Method", "DELETE"),
		"an upgrade":                         append(slices.Clone(acrm), "Upgrade", "websocket"),
		"no Access-Control-Request-Method":   {"Origin", origin, "X-Forwarded-Method", "OPTIONS"},
		"no Origin":                          {"Access-Control-Request-Method", "GET"},
	} {
		rec := w.do(http.MethodGet, PathPreflight, "", headers...)
		if rec.Code != http.StatusBadRequest || rec.Header().Get(hReason) != ReasonBadRequest {
			t.Errorf("/v1/preflight with %s: %d %s, want 400 bad_request", name, rec.Code, rec.Header().Get(hReason))
		}
	}
	if got := atPreflight(http.MethodOptions, "Origin", "https://evil.example", "Access-Control-Request-Method", "GET"); got != http.StatusForbidden {
		t.Errorf("/v1/preflight from an origin nobody allows: %d", got)
	}
	rec := w.do(http.MethodOptions, PathAuthorize+"?org="+grantOrg, "", "Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
	expect(t, rec, http.StatusForbidden, ReasonOriginNotAllowed)

	// Removing the origin from the only Application that allowed it stops preflights for it.
	w.updateApp(func(a *v1.Application) { a.Spec.AllowedOrigins = nil })
	if got := preflight(http.MethodOptions, acrm...); got != http.StatusForbidden {
		t.Errorf("preflight after removing the origin: %d", got)
	}
}

func TestRateLimitsAreEnforcedPerKeyWithHeadersAndRetryAfter(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = []v1.RateLimit{
			{Name: "general", Limit: 1000, Period: metav1.Duration{Duration: time.Hour}},
			{Name: "generation", Limit: 3, Period: metav1.Duration{Duration: time.Hour}},
		}
	})
	for i, remaining := range []string{"2", "1", "0"} {
		rec := w.authorize(w.token.Token, "bucket=generation")
		expect(t, rec, http.StatusOK, "")
		h := rec.Header()
		if h.Get("X-RateLimit-Limit") != "3" || h.Get("X-RateLimit-Remaining") != remaining {
			t.Fatalf("request %d: limit %q remaining %q", i, h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"))
		}
		// Full again in 20, 40, 60 minutes: RateLimit's t counts seconds, X-RateLimit-Reset
		// names the instant in epoch seconds.
		wantReset := []string{"1200", "2400", "3600"}[i]
		wantResetAt := strconv.FormatInt(w.clk.Now().Unix()+int64(1200*(i+1)), 10)
		if h.Get("X-RateLimit-Reset") != wantResetAt {
			t.Errorf("request %d: X-RateLimit-Reset %q, want %q", i, h.Get("X-RateLimit-Reset"), wantResetAt)
		}
		if got, want := h.Get("RateLimit-Policy"), `"generation";q=3;w=3600`; got != want {
			t.Errorf("RateLimit-Policy %q, want %q", got, want)
		}
		if got, want := h.Get("RateLimit"), `"generation";r=`+remaining+`;t=`+wantReset; got != want {
			t.Errorf("RateLimit %q, want %q", got, want)
		}
	}
	limited := w.authorize(w.token.Token, "bucket=generation")
	expect(t, limited, http.StatusTooManyRequests, ReasonRateLimited)
	if got := limited.Header().Get("Retry-After"); got != "1200" {
		t.Errorf("Retry-After %q, want 1200 (one request per 20 minutes)", got)
	}
	if limited.Header().Get("X-RateLimit-Remaining") != "0" || limited.Header().Get("X-RateLimit-Limit") != "3" {
		t.Errorf("429 headers %v", limited.Header())
	}
	// The default bucket is general, a separate budget.
	general := w.authorize(w.token.Token, "")
	expect(t, general, http.StatusOK, "")
	if general.Header().Get("X-RateLimit-Limit") != "1000" || general.Header().Get("X-RateLimit-Remaining") != "999" {
		t.Errorf("general bucket headers %v", general.Header())
	}
	// Time refills the bucket.
	w.step(20 * time.Minute)
	expect(t, w.authorize(w.token.Token, "bucket=generation"), http.StatusOK, "")
	expect(t, w.authorize(w.token.Token, "bucket=generation"), http.StatusTooManyRequests, ReasonRateLimited)

	// A bucket the Application does not define has no limit and no headers.
	free := w.authorize(w.token.Token, "bucket=undefined")
	expect(t, free, http.StatusOK, "")
	if free.Header().Get("X-RateLimit-Limit") != "" {
		t.Errorf("an undefined bucket must not be limited: %v", free.Header())
	}
}

func TestAKeyMayNarrowButNeverWidenItsApplicationsRateLimit(t *testing.T) {
	w := newWorld(t)
	w.updateKey(func(k *v1.APIKey) {
		k.Spec.RateLimits = []v1.RateLimit{
			{Name: "general", Limit: 2, Period: metav1.Duration{Duration: time.Hour}},
			{Name: "bonus", Limit: 1, Period: metav1.Duration{Duration: time.Hour}}, // the app has no such bucket
		}
	})
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	expect(t, w.authorize(w.token.Token, ""), http.StatusTooManyRequests, ReasonRateLimited)
	for range 3 {
		rec := w.authorize(w.token.Token, "bucket=bonus")
		expect(t, rec, http.StatusOK, "")
		if rec.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatal("a key cannot add a bucket its Application does not define")
		}
	}
	// A key asking for more than its Application allows gets the Application's limit.
	wide := newWorld(t)
	wide.updateKey(func(k *v1.APIKey) {
		k.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 5000, Period: metav1.Duration{Duration: time.Hour}}}
	})
	if got := wide.authorize(wide.token.Token, "").Header().Get("X-RateLimit-Limit"); got != "1000" {
		t.Errorf("X-RateLimit-Limit %q, want the Application's 1000", got)
	}
}

func TestRateLimitsKeepTheirBudgetAcrossRotationAndLimitEdits(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 2, Period: metav1.Duration{Duration: time.Hour}}}
	})
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	// Rotating does not hand out a fresh budget: both keys of the APIKey share it.
	old, fresh := w.token, w.mint()
	w.updateKey(func(k *v1.APIKey) {
		k.Status.PreviousKeys = []v1.PreviousKey{{KeyID: old.KeyID, Hash: keyformat.Hash(old.Token), ValidUntil: metav1.Time{Time: epoch.Add(time.Hour)}}}
		k.Status.KeyID, k.Status.Hash, k.Status.State = fresh.KeyID, keyformat.Hash(fresh.Token), v1.KeyRotating
	})
	expect(t, w.authorize(fresh.Token, ""), http.StatusTooManyRequests, ReasonRateLimited)
	// Raising the limit adds the difference, not a full new budget.
	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 3, Period: metav1.Duration{Duration: time.Hour}}}
	})
	expect(t, w.authorize(fresh.Token, ""), http.StatusTooManyRequests, ReasonRateLimited)
}

func TestAVerifierThatLostTheApiserverAnswersStaleAndRecoversByItself(t *testing.T) {
	w := newWorld(t)
	w.clk.Step(DefaultMaxStaleness)
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "") // at the bound: still trusted
	w.clk.Step(time.Second)
	rec := w.authorize(w.token.Token, "")
	expect(t, rec, http.StatusServiceUnavailable, ReasonStale)
	expect(t, w.do(http.MethodPost, PathVerify, `{"key":"x","org":"globex"}`), http.StatusServiceUnavailable, ReasonStale)
	if err := w.v.ReadyzCheck(nil); err == nil {
		t.Error("readyz must fail while stale")
	}
	w.v.recordContact() // an informer event or a successful probe
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	if err := w.v.ReadyzCheck(nil); err != nil {
		t.Errorf("readyz after recovery: %v", err)
	}
}

// TestAVerifierThatCannotAnswerTruthfullyAnswers503OnEveryRouteItAuthorizes: while the index
// has not loaded, or the verifier has not heard from the apiserver for longer than
// --max-staleness, every route that answers from the index (forward-auth in both forms, the
// preflight route a GET-only proxy sends its OPTIONS to, keys:verify) answers 503 with the
// reason, whatever the request: a good key, a CORS preflight from an allowed origin, no key.
// A preflight is answered from the index too (which origins some Application allows), so a
// stale one is no more trusted than a key.
func TestAVerifierThatCannotAnswerTruthfullyAnswers503OnEveryRouteItAuthorizes(t *testing.T) {
	w := newWorld(t)
	preflight := []string{"Origin", origin, "Access-Control-Request-Method", "DELETE"}
	requests := []struct {
		name                 string
		method, target, body string
		headers              []string
	}{
		{"a good key", http.MethodGet, PathAuthorize + "?org=" + grantOrg, "", []string{"X-API-Key", w.token.Token}},
		{"a good key from a browser", http.MethodGet, PathAuthorize + "?org=" + grantOrg, "", []string{"X-API-Key", w.token.Token, "Origin", origin}},
		{"no key", http.MethodGet, PathAuthorize + "?org=" + grantOrg, "", nil},
		{"a preflight", http.MethodOptions, PathAuthorize + "?org=" + grantOrg, "", preflight},
		{"a preflight told by the proxy", http.MethodGet, PathAuthorize + "?org=" + grantOrg, "", append([]string{"X-Forwarded-Method", "OPTIONS", "X-Original-Method", "OPTIONS"}, preflight...)},
		{"Envoy's form with a good key", http.MethodGet, PathAuthorize + "/reports?org=initech", "", []string{"X-Clearance-Org", grantOrg, "X-API-Key", w.token.Token}},
		{"Envoy's form of a preflight", http.MethodOptions, PathAuthorize + "/reports", "", append([]string{"X-Clearance-Org", grantOrg}, preflight...)},
		{"the preflight route", http.MethodGet, PathPreflight, "", append([]string{"X-Forwarded-Method", "OPTIONS"}, preflight...)},
		{"the preflight route asked a read", http.MethodGet, PathPreflight, "", []string{"Origin", origin, "X-Forwarded-Method", "GET"}},
		{"keys:verify with a good key", http.MethodPost, PathVerify, `{"key":"` + w.token.Token + `","org":"` + grantOrg + `","method":"GET"}`, nil},
		{"keys:verify with no key", http.MethodPost, PathVerify, `{"org":"` + grantOrg + `"}`, nil},
	}
	check := func(state, reason string) {
		t.Helper()
		for _, r := range requests {
			rec := w.do(r.method, r.target, r.body, r.headers...)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get(hReason) != reason {
				t.Errorf("%s, %s: %d %q, want 503 %s", state, r.name, rec.Code, rec.Header().Get(hReason), reason)
			}
		}
	}

	// Each request is answered normally first, so a 503 below is the state's doing.
	for _, r := range requests {
		if rec := w.do(r.method, r.target, r.body, r.headers...); rec.Code == http.StatusServiceUnavailable {
			t.Fatalf("a verifier in contact, %s: 503 %q", r.name, rec.Header().Get(hReason))
		}
	}

	reg := &fakeRegistration{}
	w.v.regs = append(w.v.regs, reg)
	w.v.synced.Store(false)
	check("before the informers synced", ReasonNotReady)
	reg.synced = true

	w.clk.Step(DefaultMaxStaleness + time.Nanosecond)
	check("past --max-staleness", ReasonStale)

	w.v.recordContact()
	for _, r := range requests {
		if rec := w.do(r.method, r.target, r.body, r.headers...); rec.Code == http.StatusServiceUnavailable {
			t.Errorf("after contact again, %s: 503 %q", r.name, rec.Header().Get(hReason))
		}
	}
}

func TestAVerifierAnswersNotReadyUntilItsInformersHaveSynced(t *testing.T) {
	w := newWorld(t)
	reg := &fakeRegistration{}
	w.v.regs = append(w.v.regs, reg)
	w.v.synced.Store(false)
	expect(t, w.authorize(w.token.Token, ""), http.StatusServiceUnavailable, ReasonNotReady)
	reg.synced = true
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
}

func TestTheOrgComesFromTheQueryOrTheHeaderAndTheyMustAgree(t *testing.T) {
	w := newWorld(t)
	key := []string{"X-API-Key", w.token.Token}
	expect(t, w.do(http.MethodGet, PathAuthorize, "", append(key, "X-Clearance-Org", grantOrg)...), http.StatusOK, "")
	expect(t, w.do(http.MethodPost, PathAuthorize+"?org="+grantOrg, "", append(key, "X-Clearance-Org", grantOrg)...), http.StatusOK, "")
	expect(t, w.do(http.MethodGet, PathAuthorize+"?org="+grantOrg, "", append(key, "X-Clearance-Org", "initech")...), http.StatusBadRequest, ReasonOrgConflict)
	expect(t, w.do(http.MethodGet, PathAuthorize, "", key...), http.StatusBadRequest, ReasonOrgMissing)
	expect(t, w.do(http.MethodGet, PathAuthorize+"?org="+grantOrg+"&org=initech", "", key...), http.StatusBadRequest, ReasonInvalidParameter)
	expect(t, w.do(http.MethodGet, PathAuthorize+"?org=%zz", "", key...), http.StatusBadRequest, ReasonInvalidParameter)
	expect(t, w.do(http.MethodGet, PathAuthorize+"?org=glo%62ex&minRole=Analyst", "", key...), http.StatusOK, "")
}

func TestEnvoyExtAuthzTakesParametersFromHeadersNotFromTheClientsQuery(t *testing.T) {
	w := newWorld(t)
	// Envoy appends the client's path and query to the path prefix; the client must not pick
	// the org or drop minRole with it.
	rec := w.do(http.MethodDelete, PathAuthorize+"/api/reports?org=initech&minRole=Observer", "",
		"X-API-Key", w.token.Token, "X-Clearance-Org", grantOrg, "X-Clearance-Min-Role", "Technician")
	expect(t, rec, http.StatusForbidden, ReasonRoleInsufficient)
	rec = w.do(http.MethodPut, PathAuthorize+"/api/reports?org=initech", "",
		"X-API-Key", w.token.Token, "X-Clearance-Org", grantOrg, "X-Clearance-Metric", "occupancy.current")
	expect(t, rec, http.StatusOK, "")
	if rec.Header().Get("X-Clearance-Org") != grantOrg {
		t.Errorf("X-Clearance-Org %q", rec.Header().Get("X-Clearance-Org"))
	}
	expect(t, w.do(http.MethodGet, PathAuthorize+"/x?org="+grantOrg, "", "X-API-Key", w.token.Token), http.StatusBadRequest, ReasonOrgMissing)
}

func TestTheJSONAPIAnswersWhetherAKeyIsValidAndWhy(t *testing.T) {
	w := newWorld(t)
	expiry := epoch.Add(48 * time.Hour)
	w.updateKey(func(k *v1.APIKey) {
		k.Spec.Scopes = []string{"reports:read"}
		k.Status.ExpiresAt = &metav1.Time{Time: expiry}
	})
	verify := func(body string) VerifyResponse {
		t.Helper()
		rec := w.do(http.MethodPost, PathVerify, body)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		var resp VerifyResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ok := verify(`{"key":"` + w.token.Token + `","org":"globex","minRole":"Observer","scope":"reports:read","bucket":"general"}`)
	if !ok.Valid || ok.Reason != "" || ok.ApplicationID != appID || ok.Org != grantOrg || ok.Role != "Analyst" ||
		ok.KeyID != w.token.KeyID || len(ok.Scopes) != 1 || ok.ExpiresAt == nil || !ok.ExpiresAt.Equal(expiry) ||
		ok.RateLimit == nil || ok.RateLimit.Limit != 1000 || ok.RateLimit.Remaining != 999 || ok.RateLimit.Bucket != "general" {
		t.Errorf("valid answer %+v", ok)
	}
	for body, reason := range map[string]string{
		`{"key":"` + w.token.Token + `","org":"initech"}`:                        ReasonOrgNotConnected,
		`{"key":"` + w.token.Token + `","org":"globex","scope":"reports:write"}`: ReasonScopeMissing,
		`{"key":"` + w.token.Token + `","org":"globex","minRole":"OrgAdmin"}`:    ReasonRoleInsufficient,
		`{"key":"clr_nonsense","org":"globex"}`:                                  ReasonKeyMalformed,
		`{"org":"globex"}`:                                                       ReasonKeyMissing,
		`{"key":"` + w.mint().Token + `","org":"globex"}`:                        ReasonKeyUnknown,
	} {
		got := verify(body)
		if got.Valid || got.Reason != reason || got.ApplicationID != "" || got.Role != "" {
			t.Errorf("%s: %+v, want reason %s and nothing else", reason, got, reason)
		}
	}
	expect(t, w.do(http.MethodPost, PathVerify, `{"key":`), http.StatusBadRequest, ReasonBadRequest)
	expect(t, w.do(http.MethodPost, PathVerify, `{"key":"`+w.token.Token+`"}`), http.StatusBadRequest, ReasonOrgMissing)
	get := w.do(http.MethodGet, PathVerify, "")
	expect(t, get, http.StatusMethodNotAllowed, ReasonMethodNotAllowed)
	if get.Header().Get("Allow") != "POST" {
		t.Errorf("Allow %q", get.Header().Get("Allow"))
	}

	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 1, Period: metav1.Duration{Duration: time.Minute}}}
	})
	verify(`{"key":"` + w.token.Token + `","org":"globex"}`)
	limited := verify(`{"key":"` + w.token.Token + `","org":"globex"}`)
	if limited.Valid || limited.Reason != ReasonRateLimited || limited.RateLimit == nil || limited.RateLimit.RetryAfter != 60 ||
		limited.RateLimit.Reset != 60 || limited.RateLimit.ResetAt != epoch.Unix()+60 {
		t.Errorf("rate-limited answer %+v, want retry after 60 s, full in 60 s, at %d", limited.RateLimit, epoch.Unix()+60)
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	w := newWorld(t)
	expect(t, w.do(http.MethodGet, "/v2/authorize", ""), http.StatusNotFound, ReasonNotFound)
}

func TestAKeyIDClaimedByTwoAPIKeysIsRefusedUntilOnlyOneClaimsIt(t *testing.T) {
	w := newWorld(t)
	copycat := w.key.DeepCopy()
	copycat.Name, copycat.UID = "copycat", "uid-copycat"
	w.v.Apply(copycat)
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyUnknown)
	w.v.Remove(copycat)
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
}

func TestARecreatedObjectIsNotRemovedByTheOldOnesDeleteEvent(t *testing.T) {
	w := newWorld(t)
	oldApp := w.app.DeepCopy()
	w.updateApp(func(a *v1.Application) { a.UID = "uid-app-2" })
	w.updateKey(func(k *v1.APIKey) { k.Status.ApplicationUID = "uid-app-2" }) // a key of the new one
	w.v.Remove(oldApp)                                                        // a late tombstone of the previous object
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
}

// fakeRegistration stands for an informer handler that has not seen its initial list yet.
type fakeRegistration struct {
	toolscache.ResourceEventHandlerRegistration
	synced bool
}

func (f *fakeRegistration) HasSynced() bool { return f.synced }

// TestABodyThatNeverArrivesDoesNotHoldItsConnection: keys:verify and the OAuth endpoints read a
// body, and anyone may send one. A client that announces a body and sends only part of it is
// cut off after ReadTimeout, rather than holding its connection and goroutine for ever.
func TestABodyThatNeverArrivesDoesNotHoldItsConnection(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.ReadTimeout = 300 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- w.v.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	for _, path := range []string{PathVerify, PathToken} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: verifier\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant", path)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = io.Copy(io.Discard, c) // until the verifier closes the connection
		_ = c.Close()
		if err != nil {
			t.Fatalf("%s: the connection is still open after %s (%v), want it closed after the read timeout", path, time.Since(start).Round(time.Millisecond), err)
		}
	}
}

// TestAKeyWhoseStoredHashIsNoDigestIsNeverAccepted: a status.hash that is not a sha256: digest
// (another scheme, truncated, garbled, the plaintext itself) matches no token: not the key it
// was written for, not another secret under the same key id, whether it is the key in force or
// a previous key within its overlap. Trying needs only the key id, which every reader of APIKey
// status sees, so such a key must look exactly like an unknown one.
func TestAKeyWhoseStoredHashIsNoDigestIsNeverAccepted(t *testing.T) {
	for name, stored := range map[string]func(token string) string{
		"another scheme":   func(string) string { return "bcrypt:$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy" },
		"truncated":        func(tok string) string { return keyformat.Hash(tok)[:40] },
		"one digit longer": func(tok string) string { return keyformat.Hash(tok) + "0" },
		"not hex":          func(string) string { return "sha256:" + strings.Repeat("z", 64) },
		"the plaintext":    func(tok string) string { return tok },
		"the scheme alone": func(string) string { return "sha256:" },
	} {
		for _, previous := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, previous key %v", name, previous), func(t *testing.T) {
				w := newWorld(t)
				forged := w.wrongSecret() // w.token is now the real key of that id
				real := w.token
				fresh := w.mint()
				w.updateKey(func(k *v1.APIKey) {
					if previous {
						k.Status.KeyID, k.Status.Hash, k.Status.State = fresh.KeyID, keyformat.Hash(fresh.Token), v1.KeyRotating
						k.Status.PreviousKeys = []v1.PreviousKey{{KeyID: real.KeyID, Hash: stored(real.Token),
							ValidUntil: metav1.NewTime(epoch.Add(time.Hour))}}
					} else {
						k.Status.Hash = stored(real.Token)
					}
				})
				if previous {
					expect(t, w.authorize(fresh.Token, ""), http.StatusOK, "")
				}
				unknown := w.authorize(w.mint().Token, "")
				for who, tok := range map[string]string{"its own key": real.Token, "another secret": forged} {
					rec := w.authorize(tok, "")
					expect(t, rec, http.StatusUnauthorized, ReasonKeyUnknown)
					if rec.Body.String() != unknown.Body.String() {
						t.Errorf("%s against a hash that is no digest: told apart from an unknown key", who)
					}
					req := w.asking(params{})
					req.token = tok
					if d := w.decide(req); d.reason != rKeyUnknown || d.key.keyID != "" {
						t.Errorf("%s: decided %s with key %q, want key_unknown and no key", who, d.reason, d.key.keyID)
					}
				}
			})
		}
	}
}

// TestOversizeRequestsAreRefusedBeforeAnythingIsDecided: a request's headers are bounded at
// 64 KiB (a key, an org and every proxy's additions fit many times over) and a keys:verify
// body at 16 KiB. Past the bound the request is refused whole, 431 or 400 bad_request, and
// nothing in it is decided, however good the key it carries; just under it, it is decided.
func TestOversizeRequestsAreRefusedBeforeAnythingIsDecided(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	ln := listen(t)
	served := make(chan error, 1)
	go func() { served <- w.v.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	for _, tc := range []struct {
		pad  int
		want int
	}{{56 << 10, http.StatusOK}, {72 << 10, http.StatusRequestHeaderFieldsTooLarge}, {1 << 20, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+PathAuthorize+"?org="+grantOrg, nil)
		req.Header.Set("X-API-Key", w.token.Token)
		req.Header.Set("X-Padding", strings.Repeat("p", tc.pad))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%d bytes of headers: %v", tc.pad, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d KiB of headers and a good key: %d, want %d", tc.pad>>10, resp.StatusCode, tc.want)
		}
	}
	for _, tc := range []struct {
		size int
		want bool
	}{{15 << 10, true}, {16<<10 + 1, false}, {1 << 20, false}} {
		body := `{"key":"` + w.token.Token + `","org":"` + grantOrg + `","padding":"`
		body += strings.Repeat("p", tc.size-len(body)-2) + `"}`
		rec := w.do(http.MethodPost, PathVerify, body)
		if tc.want {
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"valid":true`) {
				t.Errorf("a %d-byte keys:verify body with a good key: %d %s, want it decided valid", len(body), rec.Code, rec.Body.String())
			}
			continue
		}
		expect(t, rec, http.StatusBadRequest, ReasonBadRequest)
	}
}

// TestAKeysVerifyBodyThatDoesNotDecodeWholeIsNeverDecided: encoding/json goes on past a field
// of the wrong type and fills the others, so a body whose minRole, scope, metric, method or
// any other field is a number, a boolean, a list or an object would be decided with that field
// missing: without the role, the scope or the method it asked. Every such body is 400
// bad_request, whatever else it holds, a good key included.
func TestAKeysVerifyBodyThatDoesNotDecodeWholeIsNeverDecided(t *testing.T) {
	w := newWorld(t)
	fields := []string{"key", "org", "minRole", "scope", "metric", "bucket", "method", "transport"}
	values := []string{`0`, `1.5`, `true`, `["OrgAdmin"]`, `{"role":"OrgAdmin"}`, `[]`, `{}`}
	for _, field := range fields {
		for _, value := range values {
			for _, first := range []bool{true, false} {
				good := `"key":"` + w.token.Token + `","org":"` + grantOrg + `"`
				bad := `"` + field + `":` + value
				body := "{" + good + "," + bad + "}"
				if first {
					body = "{" + bad + "," + good + "}"
				}
				rec := w.do(http.MethodPost, PathVerify, body)
				if rec.Code != http.StatusBadRequest || rec.Header().Get(hReason) != ReasonBadRequest {
					t.Errorf("%s %s (first %v): %d %s, want 400 bad_request", field, value, first, rec.Code, rec.Body.String())
				}
			}
		}
	}
}

// TestAKeysVerifyBodyWithAnythingAfterItsObjectIsNeverDecided: keys:verify decides one JSON
// object and nothing else. A caller that builds the body by joining strings can be made to end
// the object early and append another (its minRole or scope then lost from the one decided):
// anything but white space after the object is refused, 400 bad_request.
func TestAKeysVerifyBodyWithAnythingAfterItsObjectIsNeverDecided(t *testing.T) {
	w := newWorld(t)
	object := `{"key":"` + w.token.Token + `","org":"` + grantOrg + `"}`
	for _, tail := range []string{`{"minRole":"OrgAdmin"}`, `{}`, `x`, `]`, `}`, `"a"`, `0`, `null`, ` {"scope":"reports:write"}`, "\n{}\n"} {
		rec := w.do(http.MethodPost, PathVerify, object+tail)
		if rec.Code != http.StatusBadRequest || rec.Header().Get(hReason) != ReasonBadRequest {
			t.Errorf("an object followed by %q: %d %s, want 400 bad_request", tail, rec.Code, rec.Header().Get(hReason))
		}
	}
	for _, tail := range []string{"", " ", "\n", "\r\n\t "} {
		if rec := w.do(http.MethodPost, PathVerify, object+tail); rec.Code != http.StatusOK {
			t.Errorf("an object followed by %q: %d %s, want 200", tail, rec.Code, rec.Header().Get(hReason))
		}
	}
}
