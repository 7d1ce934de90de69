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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// These tests call the decision directly, without HTTP and without side effects: the world's
// index is the lookup, the world's clock the time.

// asking is a request for grantOrg with the world's key in the default form.
func (w *world) asking(p params) request {
	if p.org == "" {
		p.org = grantOrg
	}
	return request{token: w.token.Token, cred: credFound, params: p}
}

func (w *world) decide(req request) decision {
	return decide(&req, &w.v.rules, w.v.index, w.clk.Now())
}

// wrongSecret gives the world's key a token minted from a seed and returns another, well-formed,
// with the same key id and another secret (GenerateFrom reads the key id from the first 9 bytes).
func (w *world) wrongSecret() string {
	w.t.Helper()
	seed := bytes.Repeat([]byte{7}, 41)
	real, _ := w.format.GenerateFrom(bytes.NewReader(seed))
	seed[40] = 8
	forged, _ := w.format.GenerateFrom(bytes.NewReader(seed))
	w.minted = append(w.minted, real, forged)
	if real.KeyID != forged.KeyID || real.Token == forged.Token {
		w.t.Fatal("fixture: want the same key id with another secret")
	}
	w.token = real
	w.updateKey(func(k *v1.APIKey) {
		for i, p := range k.Status.PreviousKeys {
			if p.KeyID == k.Status.KeyID {
				k.Status.PreviousKeys[i].KeyID, k.Status.PreviousKeys[i].Hash = real.KeyID, keyformat.Hash(real.Token)
			}
		}
		if k.Status.KeyID != "" {
			k.Status.KeyID, k.Status.Hash = real.KeyID, keyformat.Hash(real.Token)
		}
	})
	return forged.Token
}

func TestDecideReachesEveryReasonOfTheRules(t *testing.T) {
	past := metav1.NewTime(epoch.Add(-time.Second))
	deleted := metav1.NewTime(epoch)
	for _, tc := range []struct {
		name  string
		world func(w *world)
		req   func(w *world) request
		want  reason
	}{
		{name: "allowed", want: rOK},
		{name: "org missing", req: func(w *world) request { r := w.asking(params{}); r.params.org = ""; return r }, want: rOrgMissing},
		{name: "unknown role", req: func(w *world) request { return w.asking(params{minRole: "Owner"}) }, want: rInvalidParameter},
		{name: "no key", req: func(w *world) request { return request{params: params{org: grantOrg}} }, want: rKeyMissing},
		{name: "ambiguous headers", req: func(w *world) request { return request{cred: credMalformed, params: params{org: grantOrg}} }, want: rKeyMalformed},
		{name: "typo", req: func(w *world) request {
			r := w.asking(params{})
			r.token = r.token[:len(r.token)-1] + string(r.token[len(r.token)-1]^1)
			return r
		}, want: rKeyMalformed},
		{name: "other prefix", req: func(w *world) request { r := w.asking(params{}); r.token = "xyz_" + r.token; return r }, want: rKeyMalformed},
		{name: "unknown key id", req: func(w *world) request { r := w.asking(params{}); r.token = w.mint().Token; return r }, want: rKeyUnknown},
		{name: "wrong secret", req: func(w *world) request { r := w.asking(params{}); r.token = w.wrongSecret(); return r }, want: rKeyUnknown},
		{name: "APIKey being deleted", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.DeletionTimestamp = &deleted }) }, want: rKeyRevoked},
		{name: "Application gone", world: func(w *world) { w.v.Remove(w.app) }, want: rKeyRevoked},
		{name: "Application being deleted", world: func(w *world) { w.updateApp(func(a *v1.Application) { a.DeletionTimestamp = &deleted }) }, want: rKeyRevoked},
		{name: "Application deleted and applied again", world: func(w *world) { w.replaceApp() }, want: rKeyRevoked},
		{name: "revoked with its Application", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Status.State = v1.KeyFailed }) }, want: rKeyRevoked},
		{name: "disabled", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = new(false) }) }, want: rKeyDisabled},
		{name: "state Disabled", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Status.State = v1.KeyDisabled }) }, want: rKeyDisabled},
		{name: "expired", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Status.ExpiresAt = &past }) }, want: rKeyExpired},
		{name: "expires this instant", world: func(w *world) {
			at := metav1.NewTime(epoch)
			w.updateKey(func(k *v1.APIKey) { k.Spec.ExpiresAt = &at })
		}, want: rKeyExpired},
		{name: "state Expired", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Status.State = v1.KeyExpired }) }, want: rKeyExpired},
		{name: "rotated out after the overlap", world: func(w *world) {
			fresh := w.mint()
			old := w.token
			w.updateKey(func(k *v1.APIKey) {
				k.Status.PreviousKeys = []v1.PreviousKey{{KeyID: old.KeyID, Hash: keyformat.Hash(old.Token), ValidUntil: past}}
				k.Status.KeyID, k.Status.Hash, k.Status.State = fresh.KeyID, keyformat.Hash(fresh.Token), v1.KeyRotating
			})
		}, want: rKeyRotated},
		{name: "state Pending", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Status.State = v1.KeyPending }) }, want: rKeyInactive},
		{name: "Application without its ID", world: func(w *world) { w.updateApp(func(a *v1.Application) { a.Status.ApplicationID = "" }) }, want: rKeyInactive},
		{name: "Application disabled", world: func(w *world) { w.updateApp(func(a *v1.Application) { a.Spec.Enabled = new(false) }) }, want: rApplicationDisabled},
		{name: "org not connected", req: func(w *world) request { return w.asking(params{org: "initech"}) }, want: rOrgNotConnected},
		{name: "connection not Ready", world: func(w *world) { w.v.Apply(connection(grantOrg, "acme-bi", appID, v1.RoleAnalyst, ownerOrg, false)) }, want: rOrgNotConnected},
		{name: "connection resolved elsewhere", world: func(w *world) { w.v.Apply(connection(grantOrg, "acme-bi", appID, v1.RoleAnalyst, "evil", true)) }, want: rOrgNotConnected},
		{name: "role below minRole", req: func(w *world) request { return w.asking(params{minRole: string(v1.RoleTechnician)}) }, want: rRoleInsufficient},
		{name: "role at minRole", req: func(w *world) request { return w.asking(params{minRole: string(v1.RoleAnalyst)}) }, want: rOK},
		{name: "scope missing", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:read"} }) },
			req: func(w *world) request { return w.asking(params{scope: "reports:write"}) }, want: rScopeMissing},
		{name: "scope under a wildcard", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:*"} }) },
			req: func(w *world) request { return w.asking(params{scope: "reports:write"}) }, want: rOK},
		{name: "metric disabled", req: func(w *world) request { return w.asking(params{metric: "dwell.p95"}) }, want: rMetricNotEnabled},
		{name: "metric enabled", req: func(w *world) request { return w.asking(params{metric: "occupancy.current"}) }, want: rOK},
		{name: "origin not allowed", req: func(w *world) request { r := w.asking(params{}); r.origin = "https://evil.example"; return r }, want: rOriginNotAllowed},
		{name: "origin allowed", req: func(w *world) request { r := w.asking(params{}); r.origin = origin; return r }, want: rOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.world != nil {
				tc.world(w)
			}
			req := w.asking(params{})
			if tc.req != nil {
				req = tc.req(w)
			}
			d := w.decide(req)
			if d.reason != tc.want {
				t.Fatalf("reason %s, want %s", d.reason, tc.want)
			}
			if d.reason.status() == 400 && d.key.keyID != "" {
				t.Errorf("a request refused for itself looked a key up: %+v", d.key)
			}
			if d.reason == rOK && (d.app == nil || d.conn == nil || d.key.keyID != w.token.KeyID) {
				t.Errorf("an allowed decision lacks what its answer shows: app %v, conn %v, key %q", d.app, d.conn, d.key.keyID)
			}
		})
	}
}

// TestDecideChecksInOrder: when a request fails several rules, the first in the documented
// order answers: the request (400) before the key (401) before what the key asks for (403)
// before the budget (429, which only an allowed decision can reach).
func TestDecideChecksInOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		world func(w *world)
		req   func(w *world) request
		want  reason
	}{
		{name: "400 before 401: no org, no key", req: func(w *world) request { return request{} }, want: rOrgMissing},
		{name: "400 before 401: unknown role, unknown key", req: func(w *world) request {
			r := w.asking(params{minRole: "Owner"})
			r.token = w.mint().Token
			return r
		}, want: rInvalidParameter},
		{name: "401 before 403: disabled key, org not connected, role, scope, metric, origin", world: func(w *world) {
			w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = new(false); k.Spec.Scopes = []string{"a:b"} })
		}, req: func(w *world) request {
			r := w.asking(params{org: "initech", minRole: string(v1.RoleOrgAdmin), scope: "c:d", metric: "nope"})
			r.origin = "https://evil.example"
			return r
		}, want: rKeyDisabled},
		{name: "a deleted Application before the key's own state: disabled key of a replaced Application", world: func(w *world) {
			w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = new(false) })
			w.replaceApp()
		}, want: rKeyRevoked},
		{name: "key before Application: expired key of a disabled Application", world: func(w *world) {
			past := metav1.NewTime(epoch.Add(-time.Second))
			w.updateKey(func(k *v1.APIKey) { k.Status.ExpiresAt = &past })
			w.updateApp(func(a *v1.Application) { a.Spec.Enabled = new(false) })
		}, want: rKeyExpired},
		{name: "connection before role", req: func(w *world) request { return w.asking(params{org: "initech", minRole: string(v1.RoleOrgAdmin)}) }, want: rOrgNotConnected},
		{name: "role before scope", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"a:b"} }) },
			req: func(w *world) request { return w.asking(params{minRole: string(v1.RoleOrgAdmin), scope: "c:d"}) }, want: rRoleInsufficient},
		{name: "scope before metric", world: func(w *world) { w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"a:b"} }) },
			req: func(w *world) request { return w.asking(params{scope: "c:d", metric: "nope"}) }, want: rScopeMissing},
		{name: "metric before origin", req: func(w *world) request {
			r := w.asking(params{metric: "nope"})
			r.origin = "https://evil.example"
			return r
		}, want: rMetricNotEnabled},
		{name: "403 before 429: an exhausted budget and a missing scope", world: func(w *world) {
			w.updateApp(func(a *v1.Application) { a.Spec.RateLimits[0].Limit = 1 })
			allowed := w.decide(w.asking(params{}))
			if a := admit(allowed, w.v.index.keyStore, &w.v.usage, w.clk.Now()); a.reason != rOK {
				t.Fatalf("spending the only token: %s", a.reason)
			}
			w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"a:b"} })
		}, req: func(w *world) request { return w.asking(params{scope: "c:d"}) }, want: rScopeMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.world != nil {
				tc.world(w)
			}
			req := w.asking(params{})
			if tc.req != nil {
				req = tc.req(w)
			}
			if d := w.decide(req); d.reason != tc.want {
				t.Fatalf("reason %s, want %s", d.reason, tc.want)
			}
		})
	}
}

// TestDecideRevealsAKeysStateOnlyAfterItsSecretMatched: with the wrong secret, a revoked,
// disabled, expired, rotated-out or inactive key is key_unknown like a key that never existed,
// and the decision holds nothing about it.
func TestDecideRevealsAKeysStateOnlyAfterItsSecretMatched(t *testing.T) {
	past := metav1.NewTime(epoch.Add(-time.Second))
	deleted := metav1.NewTime(epoch)
	for name, mutate := range map[string]func(*v1.APIKey){
		"good":     func(*v1.APIKey) {},
		"deleting": func(k *v1.APIKey) { k.DeletionTimestamp = &deleted },
		"disabled": func(k *v1.APIKey) { k.Spec.Enabled = new(false) },
		"expired":  func(k *v1.APIKey) { k.Status.ExpiresAt = &past },
		"pending":  func(k *v1.APIKey) { k.Status.State = v1.KeyPending },
		"failed":   func(k *v1.APIKey) { k.Status.State = v1.KeyFailed },
		"replaced": func(k *v1.APIKey) { k.Status.ApplicationUID = "uid-app-deleted-long-ago" },
		"rotated out": func(k *v1.APIKey) {
			k.Status.PreviousKeys = []v1.PreviousKey{{KeyID: k.Status.KeyID, Hash: k.Status.Hash, ValidUntil: past}}
			k.Status.KeyID, k.Status.Hash = "", ""
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			forged := w.wrongSecret()
			if d := w.decide(w.asking(params{})); d.reason != rOK {
				t.Fatalf("fixture: the key itself is refused, %s", d.reason)
			}
			w.updateKey(mutate)
			req := w.asking(params{})
			if d := w.decide(req); name != "good" && d.reason.status() != 401 {
				t.Fatalf("fixture: with its secret the key is %s, want a 401", d.reason)
			}
			req.token = forged
			d := w.decide(req)
			if d.reason != rKeyUnknown {
				t.Fatalf("reason %s, want %s", d.reason, rKeyUnknown)
			}
			if d.key.keyID != "" || d.key.namespace != "" || d.app != nil || d.conn != nil || d.limited {
				t.Fatalf("a refused guess carries what the index holds: %+v", d)
			}
		})
	}
}

// TestDecideSpendsNothing: deciding the same allowed request again and again gives the same
// answer, spends no token and counts no use; the budget stays whole for admit.
func TestDecideSpendsNothing(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) { a.Spec.RateLimits[0].Limit = 2 })
	req := w.asking(params{})
	first := w.decide(req)
	for range 10 {
		if d := w.decide(req); d.reason != first.reason || d.key.keyID != first.key.keyID || d.app != first.app ||
			d.conn != first.conn || d.limited != first.limited || d.limit != first.limit {
			t.Fatalf("the same request decided twice: %+v, then %+v", first, d)
		}
	}
	if first.reason != rOK || !first.limited || first.limit.name != defaultBucket || first.limit.limit != 2 {
		t.Fatalf("an allowed decision names its bucket: %+v", first)
	}
	if n := w.v.index.usage(first.key.row.owner).pending.Load(); n != 0 {
		t.Fatalf("deciding counted %d uses", n)
	}
	if w.v.usage.take() != nil {
		t.Fatal("deciding marked the key's usage for a flush")
	}
	for i := range 2 {
		if a := admit(w.decide(req), w.v.index.keyStore, &w.v.usage, w.clk.Now()); a.reason != rOK || a.rate.remaining != int64(1-i) {
			t.Fatalf("request %d after ten decisions: %s, %d left", i+1, a.reason, a.rate.remaining)
		}
	}
}

// TestDecideNamesTheBucket: the bucket asked for, narrowed by the key; none for a bucket the
// Application does not define.
func TestDecideNamesTheBucket(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = append(a.Spec.RateLimits, v1.RateLimit{Name: "generation", Limit: 100, Period: metav1.Duration{Duration: time.Hour}})
	})
	w.updateKey(func(k *v1.APIKey) {
		k.Spec.RateLimits = []v1.RateLimit{{Name: "generation", Limit: 10, Period: metav1.Duration{Duration: time.Hour}},
			{Name: "extra", Limit: 5, Period: metav1.Duration{Duration: time.Hour}}}
	})
	for _, tc := range []struct {
		bucket  string
		limited bool
		limit   int64
	}{
		{bucket: "", limited: true, limit: 1000},
		{bucket: "general", limited: true, limit: 1000},
		{bucket: "generation", limited: true, limit: 10},
		{bucket: "extra"},
		{bucket: "nope"},
	} {
		d := w.decide(w.asking(params{bucket: tc.bucket}))
		if d.reason != rOK || d.limited != tc.limited || d.limit.limit != tc.limit {
			t.Errorf("bucket %q: %s, limited %v, limit %d; want limited %v, limit %d", tc.bucket, d.reason, d.limited, d.limit.limit, tc.limited, tc.limit)
		}
	}
}
