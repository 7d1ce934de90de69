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

package outage

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// TestExpiredDisabledRotatedOutAndDeletedKeysNeverBecomeValidAgain: once the verifier refuses
// an expired, disabled, rotated-out or deleted key, it refuses it for good: after the operator
// is killed with -9 and started again, and after the APIKey's status is lost (cleared, written
// back from an old copy, or its hash pointed at an old key), with the operator reconciling
// from what is left. A guard asks about every retired key over HTTP all along.
func TestExpiredDisabledRotatedOutAndDeletedKeysNeverBecomeValidAgain(t *testing.T) {
	const overlap = 3 * time.Second
	ctx := context.Background()
	op := startOperator(t, "guarantees")
	o := newOrg(t, "guarantees")

	keys := map[string]*v1.APIKey{
		"control":  newKey(o.owner, "control"),
		"disabled": newKey(o.owner, "disabled"),
		"rotated": newKey(o.owner, "rotated", func(k *v1.APIKey) {
			k.Spec.Rotation = &v1.KeyRotation{Every: metav1.Duration{Duration: time.Hour}, Overlap: &metav1.Duration{Duration: overlap}}
		}),
		"deleted": newKey(o.owner, "deleted"),
	}
	first := map[string]*v1.APIKey{} // each key as first minted: the status an old copy holds
	toks := map[string]token{}
	activate := func(names ...string) {
		for _, name := range names {
			mustCreate(t, keys[name])
		}
		for _, name := range names {
			first[name] = waitKey(t, keys[name], "Active", inState(v1.KeyActive))
			toks[name] = tokenOf(t, first[name])
			waitAnswer(t, op, o.grant, toks[name], settleTimeout, "the verifier to accept "+name, http.StatusOK, "")
		}
	}
	activate("control", "disabled", "rotated", "deleted")
	// Real clock: the expiring key lives a few seconds, long enough to be read and accepted.
	expiresAt := metav1.NewTime(time.Now().Add(8 * time.Second).Truncate(time.Second))
	keys["expiring"] = newKey(o.owner, "expiring", func(k *v1.APIKey) { k.Spec.ExpiresAt = &expiresAt })
	activate("expiring")
	if left := time.Until(expiresAt.Time); left < time.Second {
		t.Fatalf("minting the expiring key took too long: %s left before it expires", left)
	}

	g := startGuard(t, op, o.grant)
	g.refuseFrom("expired", toks["expiring"], expiresAt.Time)

	// Rotated out: rotate now; the old key works during the overlap, never after.
	rotateAt := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`,
		v1.AnnotationRotateRequestedAt, time.Now().UTC().Format(time.RFC3339Nano)))
	if err := env.Client.Patch(ctx, keys["rotated"], rotateAt); err != nil {
		t.Fatal(err)
	}
	rotated := waitKey(t, keys["rotated"], "rotated", func(k *v1.APIKey) bool {
		return k.Status.KeyID != first["rotated"].Status.KeyID && len(k.Status.PreviousKeys) == 1
	})
	validUntil := rotated.Status.PreviousKeys[0].ValidUntil.Time
	toks["rotated-new"] = tokenOf(t, rotated)
	g.refuseFrom("rotated-out", toks["rotated"], validUntil)
	waitAnswer(t, op, o.grant, toks["rotated-new"], revocationTimeout, "the verifier to accept the new key", http.StatusOK, "")

	// Disabled, and deleted (with its Secret, which the garbage collector would delete anyway).
	disabledAt := time.Now()
	if err := env.Client.Patch(ctx, keys["disabled"], client.RawPatch(types.MergePatchType, []byte(`{"spec":{"enabled":false}}`))); err != nil {
		t.Fatal(err)
	}
	disableTook := waitAnswer(t, op, o.grant, toks["disabled"], revocationTimeout, "the disabled key to be refused", http.StatusUnauthorized, verifier.ReasonKeyDisabled)
	g.refuseFrom("disabled", toks["disabled"], disabledAt.Add(disableTook))
	deletedAt := time.Now()
	deleteKeyAndSecret(t, first["deleted"])
	waitAnswer(t, op, o.grant, toks["deleted"], revocationTimeout, "the deleted key to be refused", http.StatusUnauthorized, "")
	deleteTook := time.Since(deletedAt)
	g.refuseFrom("deleted", toks["deleted"], deletedAt.Add(deleteTook))

	// The clock does the rest; the operator then records it: Expired with the key material
	// gone from the Secret, the rotated-out key dropped from status.
	waitAnswer(t, op, o.grant, toks["rotated"], time.Until(validUntil)+revocationTimeout, "the rotated-out key to be refused after the overlap",
		http.StatusUnauthorized, "")
	waitAnswer(t, op, o.grant, toks["expiring"], time.Until(expiresAt.Time)+revocationTimeout, "the expired key to be refused",
		http.StatusUnauthorized, verifier.ReasonKeyExpired)
	expired := waitKey(t, keys["expiring"], "Expired", inState(v1.KeyExpired))
	// Status first, then the Secret (controllers/apikey_writes.go): the key material leaves the
	// Secret just after the status says Expired.
	eventually(t, settleTimeout, "the expired key's material to leave its Secret", func() (bool, string) {
		return mustSecretToken(t, expired) == "", "the Secret still holds a key"
	})
	waitKey(t, keys["rotated"], "done with the overlap", func(k *v1.APIKey) bool { return len(k.Status.PreviousKeys) == 0 })
	st := newStandings(first, toks)
	st.check(t, "before any restart")

	// The operator is killed with -9 and started again: it rebuilds everything from the apiserver.
	op.Kill()
	if err := op.Start(); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, op, o.grant, toks["control"], settleTimeout, "the restarted verifier to accept the control key", http.StatusOK, "")
	g.mustRefuseAll(t, "after kill -9 and start")
	st.settle(t, "after kill -9 and start")

	// Status lost while the operator runs (it is not woken by status changes, so the verifier
	// alone stands between the old keys and requests):
	//   - the expired key's status is written back from its copy taken when it was Active;
	//   - the disabled key's status is cleared;
	//   - the rotated key's status.hash is pointed at its rotated-out key;
	//   - the deleted key is applied again (GitOps), minted anew, and its status.hash pointed
	//     at the deleted key's.
	writeStatus(t, keys["expiring"], func(s *v1.APIKeyStatus) { *s = first["expiring"].Status })
	patchStatus(t, keys["disabled"], `{"status":null}`)
	patchStatus(t, keys["rotated"], fmt.Sprintf(`{"status":{"hash":%q}}`, first["rotated"].Status.Hash))
	reapplied := newKey(o.owner, "deleted")
	mustCreate(t, reapplied)
	reapplied = waitKey(t, reapplied, "Active again", inState(v1.KeyActive))
	toks["reapplied"] = tokenOf(t, reapplied)
	if reapplied.Status.KeyID == first["deleted"].Status.KeyID {
		t.Fatal("the APIKey applied again after its deletion got the deleted key back")
	}
	patchStatus(t, reapplied, fmt.Sprintf(`{"status":{"hash":%q}}`, first["deleted"].Status.Hash))
	// The hash no longer matches the keys the Secrets hold: those are refused too, for good.
	for _, name := range []string{"rotated-new", "reapplied"} {
		start := time.Now()
		took := waitAnswer(t, op, o.grant, toks[name], revocationTimeout, name+" to be refused once status.hash points elsewhere", http.StatusUnauthorized, "")
		g.refuseFrom(name, toks[name], start.Add(took))
	}
	g.mustRefuseAll(t, "after the status loss")
	mustAnswer(t, op, o.grant, toks["control"], "the control key after the status loss", http.StatusOK)

	// Killed and started again, the operator reconciles from what is left.
	op.Kill()
	if err := op.Start(); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, op, o.grant, toks["control"], settleTimeout, "the restarted verifier to accept the control key", http.StatusOK, "")
	g.mustRefuseAll(t, "after the status loss and a restart")
	waitKey(t, keys["expiring"], "Expired again", inState(v1.KeyExpired))
	adopted := waitKey(t, keys["disabled"], "Disabled again", inState(v1.KeyDisabled))
	if adopted.Status.KeyID != first["disabled"].Status.KeyID {
		t.Errorf("the disabled key's Secret was not adopted after its status was cleared: a new key %s was minted", adopted.Status.Masked)
	}
	for _, name := range []string{"rotated", "deleted"} {
		k := waitKey(t, keys[name], "re-minted", func(k *v1.APIKey) bool {
			return k.Status.State == v1.KeyActive && k.Status.Hash != first[name].Status.Hash && keyformat.Verify(string(mustSecretToken(t, k)), k.Status.Hash)
		})
		fresh := tokenOf(t, k)
		waitAnswer(t, op, o.grant, fresh, revocationTimeout, "the key re-minted for "+name+" to be accepted", http.StatusOK, "")
	}
	st.settle(t, "after the status loss and a restart")
	mustAnswer(t, op, o.grant, toks["control"], "the control key at the end", http.StatusOK)

	checks, reasons := g.stop(t)
	all := make([]token, 0, len(toks))
	for _, k := range toks {
		all = append(all, k)
	}
	noKeyInLog(t, op, all...)
	t.Logf("disable refused in %d ms, delete in %d ms; %d retired keys, %d refused-stays-refused checks over HTTP (%s) across 2 kill -9 restarts "+
		"and 4 kinds of status loss, none accepted", disableTook.Milliseconds(), deleteTook.Milliseconds(), g.count(), checks, reasons)
}

// deleteKeyAndSecret deletes an APIKey and its Secret at once, not waiting for the garbage
// collector (kube-controller-manager) to.
func deleteKeyAndSecret(t *testing.T, key *v1.APIKey) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: secretName(key)}}
	if err := env.Client.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	eventually(t, settleTimeout, "APIKey "+key.Name+" to be gone", func() (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), &v1.APIKey{})
		return apierrors.IsNotFound(err), fmt.Sprintf("%v", err)
	})
}

// patchStatus merge-patches an APIKey's status subresource, as an admin with kubectl would.
func patchStatus(t *testing.T, key *v1.APIKey, patch string) {
	t.Helper()
	if err := env.Client.Status().Patch(context.Background(), key, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatalf("patching the status of %s: %v", key.Name, err)
	}
}

// writeStatus replaces an APIKey's status, as a restore of an old copy would.
func writeStatus(t *testing.T, key *v1.APIKey, mutate func(*v1.APIKeyStatus)) {
	t.Helper()
	k := getKey(t, key)
	mutate(&k.Status)
	if err := env.Client.Status().Update(context.Background(), k); err != nil {
		t.Fatalf("writing the status of %s: %v", key.Name, err)
	}
}

func mustSecretToken(t *testing.T, key *v1.APIKey) token {
	t.Helper()
	tok, err := secretToken(key)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return tok
}

// standings checks that the operator never brings a retired key back: the expired key stays
// Expired with no key in its Secret, the disabled one Disabled, and the rotated-out and deleted
// keys appear nowhere, not as the current key in status, not among the previous keys, not in
// a Secret.
type standings struct {
	first map[string]*v1.APIKey
	toks  map[string]token
}

func newStandings(first map[string]*v1.APIKey, toks map[string]token) *standings {
	return &standings{first: first, toks: toks}
}

func (s *standings) check(t *testing.T, when string) {
	t.Helper()
	for _, name := range []string{"expiring", "disabled", "rotated", "deleted"} {
		if err := s.violation(t, name); err != "" {
			t.Fatalf("%s: %s", when, err)
		}
	}
}

// settle checks for a while, so the operator has had its passes after a restart.
func (s *standings) settle(t *testing.T, when string) {
	t.Helper()
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); time.Sleep(250 * time.Millisecond) {
		s.check(t, when)
	}
}

func (s *standings) violation(t *testing.T, name string) string {
	t.Helper()
	old := s.first[name]
	k := &v1.APIKey{}
	switch err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(old), k); {
	case apierrors.IsNotFound(err) && name == "deleted":
		return ""
	case err != nil:
		t.Fatal(err)
	}
	inSecret := mustSecretToken(t, k)
	switch name {
	case "expiring":
		if k.Status.State != v1.KeyExpired || inSecret != "" {
			return fmt.Sprintf("the expired key is %q, its Secret holds a key: %v", k.Status.State, inSecret != "")
		}
	case "disabled":
		if k.Status.State != v1.KeyDisabled {
			return fmt.Sprintf("the disabled key is %q", k.Status.State)
		}
	default:
		if k.Status.KeyID == old.Status.KeyID || k.Status.Hash == old.Status.Hash {
			return fmt.Sprintf("the status of %s names its retired key again (state %q)", name, k.Status.State)
		}
		for _, p := range k.Status.PreviousKeys {
			if p.KeyID == old.Status.KeyID {
				return fmt.Sprintf("the status of %s lists its retired key among the previous keys", name)
			}
		}
		if inSecret == s.toks[name] {
			return fmt.Sprintf("the Secret of %s holds its retired key", name)
		}
	}
	return ""
}

// guard asks the verifier about every retired key, over and over, from the instant it must be
// refused, and records any that is accepted.
type guard struct {
	op       *testenv.Operator
	org      string
	done     chan struct{}
	stopOnce sync.Once

	mu       sync.Mutex
	keys     []guarded
	checks   int
	reasons  map[string]int
	accepted []string
}

type guarded struct {
	name string
	tok  token
	from time.Time
}

func startGuard(t *testing.T, op *testenv.Operator, org string) *guard {
	g := &guard{op: op, org: org, done: make(chan struct{}), reasons: map[string]int{}}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-g.done:
				return
			default:
			}
			g.round()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { g.stopOnce.Do(func() { close(g.done) }); <-stopped })
	return g
}

func (g *guard) refuseFrom(name string, tok token, from time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.keys = append(g.keys, guarded{name, tok, from})
}

func (g *guard) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys)
}

func (g *guard) round() {
	g.mu.Lock()
	keys := append([]guarded(nil), g.keys...)
	g.mu.Unlock()
	for _, k := range keys {
		sent := time.Now()
		if sent.Before(k.from) {
			continue
		}
		a, err := authorize(g.op.VerifierURL, g.org, k.tok)
		if err != nil {
			continue // the operator is down: nobody is answering
		}
		g.mu.Lock()
		switch a.code {
		case http.StatusOK:
			g.accepted = append(g.accepted, fmt.Sprintf("%s accepted %s after it was retired", k.name, sent.Sub(k.from).Round(time.Millisecond)))
		case http.StatusUnauthorized:
			g.checks++
			g.reasons[a.reason]++
		}
		g.mu.Unlock()
	}
}

// mustRefuseAll asks about every retired key once, now, and fails unless each is refused.
func (g *guard) mustRefuseAll(t *testing.T, when string) {
	t.Helper()
	g.mu.Lock()
	keys := append([]guarded(nil), g.keys...)
	g.mu.Unlock()
	for _, k := range keys {
		mustAnswer(t, g.op, g.org, k.tok, when+": "+k.name, http.StatusUnauthorized)
	}
}

// stop ends the guard, fails the test if any retired key was accepted, and returns how many
// refusals it saw, by reason.
func (g *guard) stop(t *testing.T) (int, string) {
	t.Helper()
	g.stopOnce.Do(func() { close(g.done) })
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, a := range g.accepted {
		t.Error(a)
	}
	var parts []string
	for r, n := range g.reasons {
		parts = append(parts, fmt.Sprintf("%s %d", r, n))
	}
	sort.Strings(parts)
	return g.checks, strings.Join(parts, ", ")
}
