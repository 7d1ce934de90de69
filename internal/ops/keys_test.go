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

package ops_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

func TestCreateKeyCarriesItsDescriptionScopesAndLifetimeAndIsNamedAfterItsApplication(t *testing.T) {
	ns := env.Namespace(t, "keys")
	key, err := ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{
		Description: " prod exporter ", Scopes: []string{"reports:read", "dashboards:read"}, TTL: 720 * time.Hour})
	must(t, err)
	var got v1.APIKey
	must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(key), &got))
	if !strings.HasPrefix(got.Name, "acme-bi-") || got.Spec.ApplicationName != "acme-bi" || got.Spec.Description != "prod exporter" ||
		!slices.Equal(got.Spec.Scopes, []string{"reports:read", "dashboards:read"}) || got.Spec.TTL == nil || got.Spec.TTL.Duration != 720*time.Hour {
		t.Errorf("created %s with %+v", got.Name, got.Spec)
	}

	key, err = ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: "acme-bi-ci"})
	must(t, err)
	if key.Name != "acme-bi-ci" || key.Spec.TTL != nil || key.Spec.Scopes != nil || !key.IsEnabled() {
		t.Errorf("a named key without options: %s with %+v", key.Name, key.Spec)
	}

	_, err = ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Scopes: []string{"Reports"}})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "each scope must be lowercase words joined by ':'") {
		t.Errorf("a bad scope: %v, want the CRD's refusal", err)
	}
	_, err = ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{TTL: time.Second})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "ttl must be at least 1m") {
		t.Errorf("a lifetime of a second: %v, want the CRD's refusal", err)
	}
}

func TestKeyChangesPatchOnlyTheirOwnFieldAndRevokeDeletesOnlyTheKeyRead(t *testing.T) {
	ns := env.Namespace(t, "keychanges")
	key, err := ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: "acme-bi-prod", Description: "prod exporter"})
	must(t, err)
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

	must(t, ops.RequestRotation(ctx(), env.Client, key, at, false))
	must(t, ops.RequestRotation(ctx(), env.Client, key, at.Add(time.Minute), true))
	must(t, ops.SetKeyEnabled(ctx(), env.Client, key, false))
	if key.Annotations[v1.AnnotationRotateRequestedAt] != "2026-11-23T12:00:00Z" || key.Annotations[v1.AnnotationInvalidateRequestedAt] != "2026-11-23T12:01:00Z" ||
		key.IsEnabled() || key.Spec.Description != "prod exporter" {
		t.Errorf("after rotating, rotating now and disabling: annotations %v, spec %+v", key.Annotations, key.Spec)
	}

	stale := key.DeepCopy()
	must(t, env.Client.Delete(ctx(), key))
	again, err := ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: "acme-bi-prod"})
	must(t, err)
	if err := ops.Revoke(ctx(), env.Client, stale); !apierrors.IsConflict(err) {
		t.Errorf("revoking a key replaced meanwhile: %v, want a precondition conflict", err)
	}
	must(t, ops.Revoke(ctx(), env.Client, again))
	if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(again), &v1.APIKey{}); !apierrors.IsNotFound(err) {
		t.Errorf("after revoking: %v, want NotFound", err)
	}
}

func TestWaitForKeyReturnsOnceTheKeyIsSettledOrTimeIsUp(t *testing.T) {
	ns := env.Namespace(t, "wait")
	key, err := ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: "acme-bi-prod"})
	must(t, err)
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	must(t, err)

	start := time.Now()
	got, err := ops.WaitForKey(ctx(), c, key, 300*time.Millisecond)
	if done, _ := ops.KeySettled(got); err != nil || done || time.Since(start) > 5*time.Second {
		t.Errorf("no operator: %v, settled %v after %s, want the key as it is after the timeout", err, done, time.Since(start))
	}

	go func() {
		time.Sleep(200 * time.Millisecond)
		minted := key.DeepCopy()
		minted.Status = v1.APIKeyStatus{State: v1.KeyActive, Masked: "clr_abcd…wxyz"}
		_ = env.Client.Status().Update(ctx(), minted)
	}()
	got, err = ops.WaitForKey(ctx(), c, key, 20*time.Second)
	if done, usable := ops.KeySettled(got); err != nil || !done || !usable || got.Status.Masked != "clr_abcd…wxyz" {
		t.Errorf("minted meanwhile: %v, state %q", err, got.Status.State)
	}

	pending, err := ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: "acme-bi-gone"})
	must(t, err)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = env.Client.Delete(ctx(), pending.DeepCopy())
	}()
	if _, err := ops.WaitForKey(ctx(), c, pending, 20*time.Second); !errors.Is(err, ops.ErrKeyDeleted) {
		t.Errorf("deleted while waiting: %v, want ErrKeyDeleted", err)
	}
}

func TestInvalidateKeysRotatesNowEveryLiveKeyOfTheApplicationAndNoOther(t *testing.T) {
	ns := env.Namespace(t, "invalidate")
	for _, name := range []string{"acme-bi-prod", "acme-bi-ci", "acme-bi-old"} {
		_, err := ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: name})
		must(t, err)
	}
	_, err := ops.CreateKey(ctx(), env.Client, ns, "globex", ops.KeyOptions{Name: "globex-prod"})
	must(t, err)
	old := &v1.APIKey{}
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi-old"}, old))
	old.Status.State = v1.KeyExpired
	must(t, env.Client.Status().Update(ctx(), old))

	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	asked, err := ops.InvalidateKeys(ctx(), env.Client, ns, "acme-bi", at)
	must(t, err)
	var names []string
	for _, k := range asked {
		names = append(names, k.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"acme-bi-ci", "acme-bi-prod"}) {
		t.Errorf("asked to rotate %v, want the two live keys of acme-bi", names)
	}
	for name, want := range map[string]string{"acme-bi-prod": "2026-12-06T10:00:00Z", "acme-bi-ci": "2026-12-06T10:00:00Z", "acme-bi-old": "", "globex-prod": ""} {
		var k v1.APIKey
		must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, &k))
		if got := k.Annotations[v1.AnnotationInvalidateRequestedAt]; got != want {
			t.Errorf("key %s: %s = %q, want %q", name, v1.AnnotationInvalidateRequestedAt, got, want)
		}
	}

	// Someone who may read keys but not change them is refused by RBAC, key by key.
	reader := person(t, ns, "olga", clearanceRule("apikeys", []string{"get", "list"}))
	asked, err = ops.InvalidateKeys(ctx(), reader, ns, "acme-bi", at.Add(time.Hour))
	if len(asked) != 0 || !apierrors.IsForbidden(err) {
		t.Errorf("a reader invalidating: asked %d, err %v; want none and RBAC's refusal", len(asked), err)
	}
}

// TestInvalidateKeysLeavesKeysBeingDeletedAndAnotherOrgsKeysAlone: a key being deleted has
// nothing left to end, and a key of an application of the same name in another org is that
// org's: neither is asked to rotate.
func TestInvalidateKeysLeavesKeysBeingDeletedAndAnotherOrgsKeysAlone(t *testing.T) {
	ns, other := env.Namespace(t, "invalidating"), env.Namespace(t, "invalidating-other")
	for _, key := range []client.ObjectKey{{Namespace: ns, Name: "acme-bi-prod"}, {Namespace: ns, Name: "acme-bi-going"}, {Namespace: other, Name: "acme-bi-prod"}} {
		_, err := ops.CreateKey(ctx(), env.Client, key.Namespace, "acme-bi", ops.KeyOptions{Name: key.Name})
		must(t, err)
	}
	going := &v1.APIKey{}
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi-going"}, going))
	going.Finalizers = []string{"test.clearance.dev/hold"}
	must(t, env.Client.Update(ctx(), going))
	must(t, env.Client.Delete(ctx(), going))
	t.Cleanup(func() {
		_ = env.Client.Patch(ctx(), going, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))
	})

	asked, err := ops.InvalidateKeys(ctx(), env.Client, ns, "acme-bi", time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	must(t, err)
	if len(asked) != 1 || asked[0].Name != "acme-bi-prod" || asked[0].Namespace != ns {
		t.Errorf("asked to rotate %d keys (%v), want only acme-bi-prod of %s", len(asked), asked, ns)
	}
	for key, want := range map[client.ObjectKey]string{{Namespace: ns, Name: "acme-bi-prod"}: "2026-12-06T10:00:00Z",
		{Namespace: ns, Name: "acme-bi-going"}: "", {Namespace: other, Name: "acme-bi-prod"}: ""} {
		var k v1.APIKey
		must(t, env.Client.Get(ctx(), key, &k))
		if got := k.Annotations[v1.AnnotationInvalidateRequestedAt]; got != want {
			t.Errorf("key %s: %s = %q, want %q", key, v1.AnnotationInvalidateRequestedAt, got, want)
		}
	}
}

// waitWhileAnotherIsMinted creates key acme-bi-prod in ns, then key name in otherNS which it
// marks minted at once, and waits up to 300 ms for the first: it returns both keys and what the
// wait gave.
func waitWhileAnotherIsMinted(t *testing.T, ns, otherNS, name string) (key, other, got *v1.APIKey, err error) {
	t.Helper()
	key, err = ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: "acme-bi-prod"})
	must(t, err)
	other, err = ops.CreateKey(ctx(), env.Client, otherNS, "acme-bi", ops.KeyOptions{Name: name})
	must(t, err)
	other.Status = v1.APIKeyStatus{State: v1.KeyActive, Masked: "clr_abcd…wxyz"}
	must(t, env.Client.Status().Update(ctx(), other))
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	must(t, err)
	got, err = ops.WaitForKey(ctx(), c, key, 300*time.Millisecond)
	return key, other, got, err
}

// TestWaitForKeyWaitsForTheKeyItWasGivenNotAnotherOfTheOrg: another key of the org minted
// meanwhile is not the one waited for.
func TestWaitForKeyWaitsForTheKeyItWasGivenNotAnotherOfTheOrg(t *testing.T) {
	ns := env.Namespace(t, "waitone")
	key, other, got, err := waitWhileAnotherIsMinted(t, ns, ns, "acme-bi-ci")
	if done, _ := ops.KeySettled(got); err != nil || got.Name != key.Name || done {
		t.Errorf("waiting for %s while %s was minted: %v, got %s in state %q, want %s as it is", key.Name, other.Name, err, got.Name, got.Status.State, key.Name)
	}
}

// TestWaitForKeyWaitsForTheKeyOfItsOrgNotOneOfTheSameNameInAnother: for someone who may watch
// keys in every org, a key of the same name minted meanwhile in another org is not the one
// waited for either.
func TestWaitForKeyWaitsForTheKeyOfItsOrgNotOneOfTheSameNameInAnother(t *testing.T) {
	ns, other := env.Namespace(t, "waitorg"), env.Namespace(t, "waitorg-other")
	key, elsewhere, got, err := waitWhileAnotherIsMinted(t, ns, other, "acme-bi-prod")
	if done, _ := ops.KeySettled(got); err != nil || got.Namespace != ns || got.Name != key.Name || done {
		t.Errorf("waiting for %s/%s while %s/%s was minted: %v, got %s/%s in state %q, want the key waited for as it is",
			ns, key.Name, other, elsewhere.Name, err, got.Namespace, got.Name, got.Status.State)
	}
}

// TestWaitForKeyReadsTheKeyAgainForSomeoneWhoMayNotWatchIt: someone who may get keys but not
// watch them still sees the key once it is minted.
func TestWaitForKeyReadsTheKeyAgainForSomeoneWhoMayNotWatchIt(t *testing.T) {
	ns := env.Namespace(t, "waitget")
	key, err := ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: "acme-bi-prod"})
	must(t, err)
	person(t, ns, "gina", clearanceRule("apikeys", []string{"get"}))
	gina, err := client.NewWithWatch(env.As("gina", nil, nil), client.Options{Scheme: env.Scheme})
	must(t, err)
	minted := key.DeepCopy()
	minted.Status = v1.APIKeyStatus{State: v1.KeyActive, Masked: "clr_abcd…wxyz"}
	must(t, env.Client.Status().Update(ctx(), minted))

	got, err := ops.WaitForKey(ctx(), gina, key, 20*time.Second)
	if done, usable := ops.KeySettled(got); err != nil || !done || !usable {
		t.Errorf("someone who may not watch: %v, state %q, want the key as minted", err, got.Status.State)
	}
}

// TestWaitForKeyReturnsAKeyAlreadySettledWithoutAskingTheAPIServer: a key the caller already
// holds minted (or failed) needs no waiting, even by someone who may not read keys at all.
func TestWaitForKeyReturnsAKeyAlreadySettledWithoutAskingTheAPIServer(t *testing.T) {
	ns := env.Namespace(t, "waitdone")
	person(t, ns, "nora")
	nora, err := client.NewWithWatch(env.As("nora", nil, nil), client.Options{Scheme: env.Scheme})
	must(t, err)
	for _, state := range []v1.KeyState{v1.KeyActive, v1.KeyFailed} {
		key := &v1.APIKey{}
		key.Namespace, key.Name, key.ResourceVersion, key.Status.State = ns, "acme-bi-prod", "1", state
		got, err := ops.WaitForKey(ctx(), nora, key, 20*time.Second)
		if err != nil || got.Status.State != state {
			t.Errorf("a key already %s: %v, state %q", state, err, got.Status.State)
		}
	}
}

// TestInvalidateKeysAsksEveryKeyItMayWhenAnotherIsRefused: invalidating an application's keys
// goes on past a key the person may not change, so every key they may end is asked to end,
// and the refusal names the key it was for.
func TestInvalidateKeysAsksEveryKeyItMayWhenAnotherIsRefused(t *testing.T) {
	ns := env.Namespace(t, "invalidate-some")
	for _, name := range []string{"acme-bi-a", "acme-bi-b"} { // a first: KeysOf's order
		_, err := ops.CreateKey(ctx(), env.Client, ns, "acme-bi", ops.KeyOptions{Name: name})
		must(t, err)
	}
	pat := person(t, ns, "pat", clearanceRule("apikeys", []string{"get", "list"}), clearanceRule("apikeys", []string{"patch"}, "acme-bi-b"))

	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	asked, err := ops.InvalidateKeys(ctx(), pat, ns, "acme-bi", at)
	if len(asked) != 1 || asked[0].Name != "acme-bi-b" || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "key acme-bi-a") {
		t.Errorf("asked %d keys (%v), err %v; want acme-bi-b asked and RBAC's refusal of acme-bi-a", len(asked), asked, err)
	}
	for name, want := range map[string]string{"acme-bi-a": "", "acme-bi-b": "2026-12-06T10:00:00Z"} {
		var k v1.APIKey
		must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, &k))
		if got := k.Annotations[v1.AnnotationInvalidateRequestedAt]; got != want {
			t.Errorf("key %s: %s = %q, want %q", name, v1.AnnotationInvalidateRequestedAt, got, want)
		}
	}
}

// TestAKeyIsSettledOnceMintedOrInAStateOnlyAPersonCanEnd: waiting for a new key is over once it
// is Active or Rotating (usable: its token is shown), or Failed, Expired or Disabled (not
// usable: the console and the plugin say what state it is in instead of handing out a key
// that is refused); Pending, or no state yet, is still the operator's to mint.
func TestAKeyIsSettledOnceMintedOrInAStateOnlyAPersonCanEnd(t *testing.T) {
	for state, want := range map[v1.KeyState][2]bool{
		v1.KeyActive: {true, true}, v1.KeyRotating: {true, true},
		v1.KeyFailed: {true, false}, v1.KeyExpired: {true, false}, v1.KeyDisabled: {true, false},
		v1.KeyPending: {false, false}, "": {false, false},
	} {
		key := &v1.APIKey{Status: v1.APIKeyStatus{State: state}}
		if done, usable := ops.KeySettled(key); done != want[0] || usable != want[1] {
			t.Errorf("a key in state %q: done %v, usable %v; want %v, %v", state, done, usable, want[0], want[1])
		}
	}
}

// TestKeyMaterialIsEveryFieldOfTheKeySecret: reading a key hands over each field the operator
// delivers, the application's ID and the ready Authorization header included.
func TestKeyMaterialIsEveryFieldOfTheKeySecret(t *testing.T) {
	fields := []string{v1.SecretKeyToken, v1.SecretKeyAccessKey, v1.SecretKeySecretKey, v1.SecretKeyAuthorization, v1.SecretKeyApplicationID}
	secret := &corev1.Secret{Data: map[string][]byte{}}
	for _, f := range fields {
		secret.Data[f] = []byte("value of " + f)
	}
	got := ops.KeyMaterial(secret)
	for _, f := range fields {
		if got[f] != "value of "+f {
			t.Errorf("field %s is missing from the key material", f)
		}
	}
	if len(got) != len(fields) || ops.SecretFields[0] != v1.SecretKeyToken {
		t.Errorf("%d fields, the first %s; want the %d of the Secret, the whole token first", len(got), ops.SecretFields[0], len(fields))
	}
}
