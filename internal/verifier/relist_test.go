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
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestAKeyDeletedAndMadeAgainWhileTheVerifierWasBlindIsRefusedOnceItListsAgain: a verifier
// replica's APIKey watch is cut (a partition) while the key is deleted and applied again under
// the same name with a new key; when it may watch again the apiserver no longer holds its
// resource version, so its informer lists again and hands the new object over as an update of
// the old one. The deleted key is refused from then on: the informer, the list and the
// apiserver are real, only the partition is the test's.
func TestAKeyDeletedAndMadeAgainWhileTheVerifierWasBlindIsRefusedOnceItListsAgain(t *testing.T) {
	lk := newLiveKey(t)
	r := startBlindableReplica(t)
	r.waitFor(t, "the replica to accept the key", lk.grant, lk.token.Token, http.StatusOK)

	see := r.blind(t, &v1.APIKey{})
	if err := env.Client.Delete(context.Background(), lk.key); err != nil {
		t.Fatal(err)
	}
	fresh, err := live.rules.format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	again := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: lk.key.Namespace, Name: lk.key.Name}, Spec: v1.APIKeySpec{ApplicationName: lk.key.Spec.ApplicationName}}
	mustCreate(t, again)
	again.Status = v1.APIKeyStatus{KeyID: fresh.KeyID, Hash: keyformat.Hash(fresh.Token), Masked: keyformat.Mask(fresh.Token),
		State: v1.KeyActive, ApplicationID: lk.key.Status.ApplicationID}
	mustUpdateStatus(t, again)
	if again.UID == lk.key.UID {
		t.Fatal("the APIKey made again kept its UID")
	}

	see()
	r.waitFor(t, "the replica to list again and accept the new key", lk.grant, fresh.Token, http.StatusOK)
	if code, reason := r.ask(t, lk.grant, lk.token.Token); code != http.StatusUnauthorized || reason != ReasonKeyUnknown {
		t.Fatalf("the deleted APIKey's key after the relist: %d %q, want 401 %q", code, reason, ReasonKeyUnknown)
	}
}

// TestAnObjectDeletedWhileTheVerifierWasBlindIsRefusedOnceItListsAgain: a replica's watch of
// one kind is cut while an APIKey or an OrgConnection is deleted for good. The delete happened
// while the informer could not see it, so when it lists again it hands the verifier only a
// tombstone (the last state it knew, not the delete): that is enough, and the key is refused
// from then on, as the delete it missed says.
func TestAnObjectDeletedWhileTheVerifierWasBlindIsRefusedOnceItListsAgain(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		object func(*liveKey) client.Object
		want   string
	}{
		{"APIKey", func(lk *liveKey) client.Object { return lk.key }, ReasonKeyUnknown},
		{"OrgConnection", func(lk *liveKey) client.Object { return lk.conn }, ReasonOrgNotConnected},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			lk := newLiveKey(t)
			r := startBlindableReplica(t)
			r.waitFor(t, "the replica to accept the key", lk.grant, lk.token.Token, http.StatusOK)

			obj := tc.object(lk)
			see := r.blind(t, obj)
			if err := env.Client.Delete(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
			see()
			r.waitFor(t, "the replica to list again and refuse the key", lk.grant, lk.token.Token, http.StatusUnauthorized, http.StatusForbidden)
			if code, reason := r.ask(t, lk.grant, lk.token.Token); reason != tc.want {
				t.Fatalf("after the %s was deleted unseen and the replica listed again: %d %q, want %q", tc.kind, code, reason, tc.want)
			}
		})
	}
}

// blindableReplica is a second verifier replica whose informers a test can cut off
// (testenv.Blinders), with its own manager on the test's apiserver.
type blindableReplica struct {
	v        *Verifier
	blinders *testenv.Blinders
}

func startBlindableReplica(t *testing.T) *blindableReplica {
	t.Helper()
	blinders := &testenv.Blinders{Clock: clock.RealClock{}}
	r := newReplica(t, "127.0.0.1:0", cache.Options{NewInformer: blinders.NewInformer})
	r.start(t)
	return &blindableReplica{v: r.v, blinders: blinders}
}

// blind cuts the replica's watch of obj's kind and returns once its informer is held; the
// returned func lets it watch again (refused as too old, so it lists again). Cleanup lets it
// watch again if the test did not.
func (r *blindableReplica) blind(t *testing.T, obj client.Object) (see func()) {
	t.Helper()
	b := r.blinders.For(obj)
	b.Blind()
	select {
	case <-b.Held():
	case <-time.After(revocationCeiling):
		t.Fatalf("the replica's %T informer did not come back to watch after its watch was cut", obj)
	}
	released := false
	t.Cleanup(func() {
		if !released {
			b.See()
		}
	})
	return func() { released = true; b.See() }
}

// ask sends one forward-auth request for org with token to the replica over HTTP.
func (r *blindableReplica) ask(t *testing.T, org, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.v.Addr()+PathAuthorize+"?org="+org, nil)
	req.Header.Set("X-API-Key", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Clearance-Reason")
}

// waitFor asks until the replica answers one of statuses, for at most revocationCeiling.
func (r *blindableReplica) waitFor(t *testing.T, what, org, token string, statuses ...int) {
	t.Helper()
	deadline := time.Now().Add(revocationCeiling)
	for {
		if r.v.Addr() != "" {
			code, reason := r.ask(t, org, token)
			for _, s := range statuses {
				if code == s {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited %s for %s: still %d %q", revocationCeiling, what, code, reason)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: the replica does not listen", revocationCeiling, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAReplicaAnswersNotReadyUntilItsInformersHaveListed: a replica set up with its manager has
// an empty index until its informers have delivered their first lists; until then it answers
// 503 not_ready, for a good key as for a CORS preflight, rather than refusing keys it has not
// loaded yet or answering from nothing. Once they have listed, the same key is accepted.
func TestAReplicaAnswersNotReadyUntilItsInformersHaveListed(t *testing.T) {
	lk := newLiveKey(t)
	r := newReplica(t, "", cache.Options{})
	replica := r.v
	ask := func(headers ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, PathAuthorize+"?org="+lk.grant, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		rec := httptest.NewRecorder()
		replica.ServeHTTP(rec, r)
		return rec
	}
	for name, headers := range map[string][]string{
		"a good key":  {"X-API-Key", lk.token.Token},
		"a preflight": {"X-Forwarded-Method", "OPTIONS", "Origin", "https://bi.example", "Access-Control-Request-Method", "GET"},
	} {
		expect(t, ask(headers...), http.StatusServiceUnavailable, ReasonNotReady)
		if replica.ReadyzCheck(nil) == nil {
			t.Errorf("%s: readyz passes before the informers listed", name)
		}
	}

	r.start(t)
	deadline := time.Now().Add(revocationCeiling)
	for rec := ask("X-API-Key", lk.token.Token); rec.Code != http.StatusOK; rec = ask("X-API-Key", lk.token.Token) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for the replica's informers to list: still %d %q", revocationCeiling, rec.Code, rec.Header().Get(hReason))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
