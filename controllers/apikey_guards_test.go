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

package controllers

// What an attacker, or an unlucky moment between two writes, tries against the key
// lifecycle's guards. Each test names the promise it holds; failures print key IDs and masks,
// never tokens.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// secretHolds describes a key Secret without its key material: the key ID and mask of the key
// it holds, its Clearance label and its controller owner.
func secretHolds(s *corev1.Secret) string {
	owner := "none"
	if ref := metav1.GetControllerOf(s); ref != nil {
		owner = ref.Name + " (" + string(ref.UID) + ")"
	}
	token := string(s.Data[v1.SecretKeyToken])
	held := "no key"
	if k, err := format.Parse(token); err == nil {
		held = "key " + k.KeyID + " " + keyformat.Mask(token)
	}
	return held + ", label " + v1.LabelAPIKey + "=" + s.Labels[v1.LabelAPIKey] + ", controller " + owner
}

// TestAnAPIKeyNamingAnotherKeysSecretNeverTakesItOver: an APIKey whose spec.secretName is the
// Secret another APIKey's key is delivered in fails with Conflict; the other key's Secret keeps
// its key, its label and its owner, and the other key keeps working.
func TestAnAPIKeyNamingAnotherKeysSecretNeverTakesItOver(t *testing.T) {
	ns, victim := activeKey(t, "hijack", "victim")
	before := secretOf(t, victim)
	held := string(before.Data[v1.SecretKeyToken])

	thief := newKey(ns, "thief", "bi", func(k *v1.APIKey) { k.Spec.SecretName = victim.SecretNameOrDefault() })
	create(t, thief)
	thief = waitKey(t, thief, "the APIKey naming another key's Secret to settle", func(k *v1.APIKey) bool {
		return k.Status.State != "" && k.Status.State != v1.KeyPending
	})
	if thief.Status.State != v1.KeyFailed || conditionReason(thief.Status.Conditions) != v1.ReasonConflict || thief.Status.Hash != "" {
		t.Errorf("the APIKey naming Secret %s of APIKey victim is %s (%s), minted key %q; want Failed, Conflict, no key",
			victim.SecretNameOrDefault(), thief.Status.State, conditionReason(thief.Status.Conditions), thief.Status.KeyID)
	}
	after := secretOf(t, victim)
	if string(after.Data[v1.SecretKeyToken]) != held || after.Labels[v1.LabelAPIKey] != "victim" ||
		metav1.GetControllerOf(after) == nil || metav1.GetControllerOf(after).UID != victim.UID {
		t.Fatalf("Secret %s of APIKey victim (key %s) was taken over: it holds %s", after.Name, victim.Status.KeyID, secretHolds(after))
	}
	if got := reconcileNow(t, victim); got.Status.State != v1.KeyActive || got.Status.Hash != victim.Status.Hash {
		t.Errorf("APIKey victim is %s with key %s, want Active with its key %s", got.Status.State, got.Status.KeyID, victim.Status.KeyID)
	}
}

// TestASecretSomeoneTookOverIsNeverWrittenOver: a key's Secret that someone made their own
// (the Clearance label, owner and key removed, their own data written) is not Clearance's any
// more: the key is not Ready (Conflict) and the Secret is left exactly as they wrote it.
func TestASecretSomeoneTookOverIsNeverWrittenOver(t *testing.T) {
	ctx := context.Background()
	_, key := activeKey(t, "takenover", "k")
	s := secretOf(t, key)
	s.Labels = map[string]string{"team": "someone-else"}
	s.Annotations = nil
	s.OwnerReferences = nil
	s.Data = map[string][]byte{"password": []byte("theirs")}
	if err := env.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	nudge(t, key)
	got := waitKey(t, key, "the operator to see the Secret taken over", func(k *v1.APIKey) bool {
		return conditionReason(k.Status.Conditions) == v1.ReasonConflict || k.Status.Hash != key.Status.Hash
	})
	got = reconcileNow(t, got)
	theirs := secretOf(t, key)
	if string(theirs.Data["password"]) != "theirs" || len(theirs.Data) != 1 || theirs.Labels[v1.LabelAPIKey] != "" || len(theirs.OwnerReferences) != 0 {
		t.Fatalf("Secret %s, which someone took over, was written over: it holds %s (the APIKey recorded key %s, now %s)",
			theirs.Name, secretHolds(theirs), key.Status.KeyID, got.Status.KeyID)
	}
	if conditionReason(got.Status.Conditions) != v1.ReasonConflict || ready(got.Status.Conditions) {
		t.Errorf("Ready: %s %q, want False, Conflict", conditionReason(got.Status.Conditions), conditionMessage(got.Status.Conditions))
	}
}

// TestAWipedStatusNeverRevivesAKeyMintedForADeletedApplication: an APIKey whose status was lost
// (a restore, a status write from an old backup) finds the Secret it owns, but the Application
// of its name now was created after that Secret: the key in it was minted for an earlier
// Application, deleted since, and a deleted Application's keys never come back. A new key is
// minted, with a KeyNotAdopted Warning.
//
// The running operator cannot find the APIKey's Application and leaves the key alone; a
// reconciler of the test's reads, through an interceptor, an Application of that name created an
// hour after the Secret.
func TestAWipedStatusNeverRevivesAKeyMintedForADeletedApplication(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "wiped-replaced")
	key := newKey(ns, "k", "reapplied")
	create(t, key)
	key = waitKey(t, key, "the key to wait for its Application", inState(v1.KeyPending))

	// The Secret its first key was delivered in: owned by this very APIKey, its hash matching.
	old, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	create(t, newKeySecret(key, old, "", nil))
	secret := secretOf(t, key)

	id, err := keyformat.NewApplicationID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	app := newApp(ns, "reapplied", "")
	app.UID = uuid.NewUUID()
	app.CreationTimestamp = metav1.NewTime(secret.CreationTimestamp.Add(time.Hour))
	app.Status.ApplicationID = id

	live, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	var recorded string // the hash the pass's status write recorded
	c := interceptor.NewClient(live, interceptor.Funcs{
		Get: cachedAs(app),
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			err := c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			if err == nil && sub == "status" && obj.GetNamespace() == ns && obj.GetName() == "k" {
				// The operator sends its status patch as PartialObjectMetadata: read what it wrote
				// from the patch itself.
				var written struct {
					Status struct{ Hash string } `json:"status"`
				}
				data, derr := patch.Data(obj)
				if derr != nil || json.Unmarshal(data, &written) != nil {
					return fmt.Errorf("the test reading the status patch: %v", derr)
				}
				recorded = written.Status.Hash
			}
			return err
		},
	})
	r := &APIKeyReconciler{reconcilerBase: reconcilerBase{client: c, apiReader: direct.apiReader, clock: direct.clock},
		events: direct.events, format: direct.format}
	eventually(t, "a pass that records a key", func() (bool, error) {
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)})
		return recorded != "", err
	})
	if recorded == keyformat.Hash(old.Token) {
		t.Fatalf("key %s, minted for an Application deleted since (the one there now was created an hour after its Secret), came back\n%s",
			old.KeyID, keyStory(t, key))
	}
	if e := waitEvent(t, key, v1.ReasonKeyNotAdopted); e.Type != corev1.EventTypeWarning {
		t.Errorf("event %s: %q", e.Type, e.Note)
	}
}

// TestACacheBehindTheOperatorsOwnSecretWriteNeverReplacesTheKeyJustDelivered: a pass whose
// cache still shows the Secret as it was before the last rotation delivered the new key asks
// the apiserver, finds the key it recorded there, and waits for the cache; it never takes the
// Secret for edited and mints yet another key over the one workloads were just given.
func TestACacheBehindTheOperatorsOwnSecretWriteNeverReplacesTheKeyJustDelivered(t *testing.T) {
	ctx := context.Background()
	_, key := activeKey(t, "stale-secret", "k")
	stale := secretOf(t, key) // the Secret as the cache showed it before the rotation

	metav1.SetMetaDataAnnotation(&key.ObjectMeta, v1.AnnotationRotateRequestedAt, "stale-cache")
	if err := env.Client.Update(ctx, key); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "the rotation", func(k *v1.APIKey) bool { return k.Status.LastRotationRequest == "stale-cache" })
	tokenOnceWritten(t, key)
	key = reconcileNow(t, key)
	delivered := key.Status.DeepCopy()

	r := leaderWith(t, interceptor.Funcs{Get: cachedAs(stale)})
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)})
	if err != nil {
		t.Fatal(err)
	}
	got := getKey(t, key)
	if got.Status.Hash != delivered.Hash {
		t.Fatalf("a pass reading a Secret cache from before the rotation replaced key %s (%s), just delivered, with key %s\n%s",
			delivered.KeyID, delivered.Masked, got.Status.KeyID, keyStory(t, got))
	}
	if res.RequeueAfter != cacheLagRequeue {
		t.Errorf("the pass returned %+v, want a quick retry for the cache", res)
	}
	tokenOnceWritten(t, got)
}

// TestASecondLeaderNeverMintsOverAKeyStillBeingDelivered: leader A rotated the key (status
// records the new key) and has not written the Secret yet; leader B, for a moment a leader too,
// finds the Secret still holding the replaced key. That is A's write in flight, not an edit: B
// mints nothing, and A then delivers the very key status records. One new key per rotation.
func TestASecondLeaderNeverMintsOverAKeyStillBeingDelivered(t *testing.T) {
	ctx := context.Background()
	_, key := activeKey(t, "second-leader", "k", func(k *v1.APIKey) {
		k.Spec.Rotation = &v1.KeyRotation{Every: metav1.Duration{Duration: 24 * time.Hour}}
	})
	first := key.Status.DeepCopy()
	// The schedule comes; nothing wakes the running operator (its requeue is a day away).
	clk.SetTime(first.MintedAt.Add(24 * time.Hour))

	leader := func(f interceptor.Funcs) *APIKeyReconciler { return leaderWith(t, f) }
	var paused bool
	a := leader(interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if s, ok := obj.(*corev1.Secret); ok && s.Namespace == key.Namespace && s.Name == key.SecretNameOrDefault() && !paused {
				paused = true
				return errors.New("injected: leader A stops before its Secret write")
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	})
	b := leader(interceptor.Funcs{})
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)}

	if _, err := a.Reconcile(ctx, req); err == nil || !paused {
		t.Fatalf("leader A's pass: %v, want its injected Secret write failure", err)
	}
	rotated := getKey(t, key).Status.DeepCopy()
	if rotated.Hash == first.Hash || rotated.ReplacedHash != first.Hash {
		t.Fatalf("leader A did not record a rotation: key %s (first %s)", rotated.KeyID, first.KeyID)
	}
	if _, err := b.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := getKey(t, key); got.Status.Hash != rotated.Hash {
		t.Fatalf("leader B minted key %s over key %s, which leader A recorded and is still delivering (the first key was %s)\n%s",
			got.Status.KeyID, rotated.KeyID, first.KeyID, keyStory(t, key))
	}
	if _, err := a.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	got := getKey(t, key)
	if got.Status.Hash != rotated.Hash {
		t.Fatalf("key %s recorded by leader A became %s", rotated.KeyID, got.Status.KeyID)
	}
	tokenOnceWritten(t, got)
}

// TestAnEditedSecretEndsTheKeysStillInTheirOverlapToo: a Secret edited during a rotation's
// overlap is not trusted, and neither is anything it held: the new key minted into it is the
// only key that works, and the rotated-out key, which that Secret held until the rotation,
// stops at once instead of at the end of its overlap.
func TestAnEditedSecretEndsTheKeysStillInTheirOverlapToo(t *testing.T) {
	ctx := context.Background()
	_, key := activeKey(t, "edited-overlap", "k", func(k *v1.APIKey) {
		k.Spec.Rotation = &v1.KeyRotation{Every: metav1.Duration{Duration: 24 * time.Hour}, Overlap: &metav1.Duration{Duration: time.Hour}}
	})
	first := key.Status.DeepCopy()
	metav1.SetMetaDataAnnotation(&key.ObjectMeta, v1.AnnotationRotateRequestedAt, "edited-overlap")
	if err := env.Client.Update(ctx, key); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "Rotating", inState(v1.KeyRotating))
	tokenOnceWritten(t, key)
	rotated := key.Status.DeepCopy()

	// Someone plants a well-formed key of their choosing, with a matching hash annotation.
	chosen, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := secretOf(t, key)
	s.Data[v1.SecretKeyToken] = []byte(chosen.Token)
	s.Annotations[annotationKeyHash] = keyformat.Hash(chosen.Token)
	if err := env.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "a re-mint", func(k *v1.APIKey) bool { return k.Status.Hash != rotated.Hash })
	tokenOnceWritten(t, key)
	var still []string
	for _, p := range key.Status.PreviousKeys {
		still = append(still, p.KeyID+" until "+p.ValidUntil.UTC().Format(time.RFC3339))
	}
	if len(still) > 0 || key.Status.State != v1.KeyActive {
		t.Fatalf("after Secret %s was edited the key is %s and these earlier keys still work: %v (the first key was %s, the one the edit replaced %s)",
			s.Name, key.Status.State, still, first.KeyID, rotated.KeyID)
	}
	waitEvent(t, key, v1.ReasonSecretReplaced)
}

// TestASecretDeletedAfterARotationIsRepairedOnceItsWriteIsNoLongerInFlight: right after a
// rotation, a missing Secret is taken for the rotating pass's write still in flight; once that
// moment is over (secretWriteGrace), a deleted Secret is repaired as always, with a new key.
func TestASecretDeletedAfterARotationIsRepairedOnceItsWriteIsNoLongerInFlight(t *testing.T) {
	ctx := context.Background()
	_, key := activeKey(t, "deleted-after-rotation", "k")
	metav1.SetMetaDataAnnotation(&key.ObjectMeta, v1.AnnotationRotateRequestedAt, "before-the-delete")
	if err := env.Client.Update(ctx, key); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "the rotation", func(k *v1.APIKey) bool { return k.Status.LastRotationRequest == "before-the-delete" })
	tokenOnceWritten(t, key)
	rotated := key.Status.DeepCopy()

	clk.Step(secretWriteGrace)
	if err := env.Client.Delete(ctx, secretOf(t, key)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted Secret to be repaired", func() (bool, error) {
		got := getKey(t, key)
		if got.Status.Hash != rotated.Hash {
			key = got
			return true, nil
		}
		_, err := direct.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)})
		return false, err
	})
	tokenOnceWritten(t, key)
	waitEvent(t, key, v1.ReasonSecretReplaced)
}

// TestRotationsRequestedOverAndOverNeverKeepMoreThanFiveEarlierKeysValid: however often a
// rotation is requested during one overlap, at most maxPreviousKeys rotated-out keys stay
// valid; the oldest stop as newer ones are rotated out.
func TestRotationsRequestedOverAndOverNeverKeepMoreThanFiveEarlierKeysValid(t *testing.T) {
	ctx := context.Background()
	_, key := activeKey(t, "many-rotations", "k", func(k *v1.APIKey) {
		k.Spec.Rotation = &v1.KeyRotation{Every: metav1.Duration{Duration: 24 * time.Hour}, Overlap: &metav1.Duration{Duration: time.Hour}}
	})
	var keyIDs []string // every key of the APIKey, oldest first
	for i := range maxPreviousKeys + 2 {
		keyIDs = append(keyIDs, key.Status.KeyID)
		request := fmt.Sprintf("rotation-%d", i)
		metav1.SetMetaDataAnnotation(&key.ObjectMeta, v1.AnnotationRotateRequestedAt, request)
		if err := env.Client.Update(ctx, key); err != nil {
			t.Fatal(err)
		}
		key = waitKey(t, key, "rotation "+request, func(k *v1.APIKey) bool { return k.Status.LastRotationRequest == request })
	}
	var valid []string
	for _, p := range key.Status.PreviousKeys {
		valid = append(valid, p.KeyID)
	}
	if want := keyIDs[len(keyIDs)-maxPreviousKeys:]; !slices.Equal(valid, want) {
		t.Fatalf("after %d rotations in one overlap the earlier keys still valid are %v, want the last %d: %v (all: %v)",
			len(keyIDs), valid, maxPreviousKeys, want, keyIDs)
	}
}

// TestAnInvalidateNowRequestReplacesTheKeyOnce: each value of the invalidate-requested-at
// annotation replaces the key once; the passes after it leave the new key, the one workloads
// were just given, alone.
func TestAnInvalidateNowRequestReplacesTheKeyOnce(t *testing.T) {
	_, key := activeKey(t, "invalidate-once", "k")
	first := key.Status.DeepCopy()
	metav1.SetMetaDataAnnotation(&key.ObjectMeta, v1.AnnotationInvalidateRequestedAt, "2026-11-23T12:00:00Z")
	if err := env.Client.Update(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "the immediate rotation", func(k *v1.APIKey) bool { return k.Status.LastInvalidationRequest == "2026-11-23T12:00:00Z" })
	tokenOnceWritten(t, key)
	replaced := key.Status.DeepCopy()
	if replaced.Hash == first.Hash {
		t.Fatalf("the invalidation request did not replace key %s", first.KeyID)
	}
	for range 3 {
		if key = reconcileNow(t, key); key.Status.Hash != replaced.Hash {
			t.Fatalf("the same invalidation request replaced key %s (%s) again, with key %s", replaced.KeyID, replaced.Masked, key.Status.KeyID)
		}
	}
}

// TestAKeyWhoseExpiryIsAlreadyPastIsNeverMinted: an APIKey applied with spec.expiresAt in the
// past fails (Expired) without a key: nothing is minted and no Secret is written, so no key
// material of a key that was never valid exists anywhere.
func TestAKeyWhoseExpiryIsAlreadyPastIsNeverMinted(t *testing.T) {
	ns := env.Namespace(t, "born-expired")
	readyApp(t, ns, "bi")
	key := newKey(ns, "k", "bi", func(k *v1.APIKey) {
		k.Spec.ExpiresAt = &metav1.Time{Time: clk.Now().Add(-time.Hour).Truncate(time.Second)}
	})
	create(t, key)
	key = waitKey(t, key, "the key to settle", func(k *v1.APIKey) bool { return k.Status.State != "" && k.Status.State != v1.KeyPending })
	if key.Status.State != v1.KeyFailed || conditionReason(key.Status.Conditions) != v1.ReasonExpired || key.IsMinted() {
		t.Errorf("a key applied past its expiry is %s (%s), minted key %q; want Failed, Expired, no key", key.Status.State, conditionReason(key.Status.Conditions), key.Status.KeyID)
	}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: key.SecretNameOrDefault()}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("Secret %s of a key never minted: %v, want NotFound", key.SecretNameOrDefault(), err)
	}
}

// TestNoFormOfAnExpiredKeyIsLeftInItsSecret: at expiry every form of the key leaves its Secret
// (token, access-key, secret-key, the ready-made authorization header), checked against the
// key's secret part itself, not against the operator's own list of what carries it.
func TestNoFormOfAnExpiredKeyIsLeftInItsSecret(t *testing.T) {
	_, key := activeKey(t, "expired-forms", "k", func(k *v1.APIKey) { k.Spec.TTL = &metav1.Duration{Duration: time.Hour} })
	minted, err := format.Parse(tokenOnceWritten(t, key))
	if err != nil {
		t.Fatal(err)
	}
	clk.SetTime(key.Status.ExpiresAt.Time)
	nudge(t, key)
	key = waitKey(t, key, "Expired", inState(v1.KeyExpired))
	eventually(t, "the token to leave the expired key's Secret", func() (bool, error) {
		return len(secretOf(t, key).Data[v1.SecretKeyToken]) == 0, nil
	})
	s := secretOf(t, key)
	for name, value := range s.Data {
		if strings.Contains(string(value), minted.Secret) || name != v1.SecretKeyApplicationID {
			t.Errorf("Secret %s of expired key %s (%s) still holds %q", s.Name, key.Status.KeyID, key.Status.Masked, name)
		}
	}
}

// TestAPausedLeadersLateSecretWriteNeverOverwritesANewerKey: leader A records a rotation and
// stops just before its Secret write; long enough later, leader B takes the Secret for lost and
// replaces the key (status, then Secret). When A wakes, its Secret write is conditional on the
// Secret it read, so it fails: the Secret keeps the key status records, never A's key that
// status recorded only for a moment.
func TestAPausedLeadersLateSecretWriteNeverOverwritesANewerKey(t *testing.T) {
	ctx := context.Background()
	_, key := activeKey(t, "late-write", "k", func(k *v1.APIKey) {
		k.Spec.Rotation = &v1.KeyRotation{Every: metav1.Duration{Duration: 24 * time.Hour}}
	})
	first := key.Status.DeepCopy()
	// The schedule comes; nothing wakes the running operator (its requeue is a day away).
	clk.SetTime(first.MintedAt.Add(24 * time.Hour))

	leader := func(f interceptor.Funcs) *APIKeyReconciler { return leaderWith(t, f) }
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)}
	b := leader(interceptor.Funcs{})
	var (
		paused          bool
		recordedByA     *v1.APIKeyStatus
		bErr, lateWrite error
	)
	a := leader(interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if _, ok := obj.(*corev1.Secret); !ok || obj.GetNamespace() != key.Namespace || obj.GetName() != key.SecretNameOrDefault() || paused {
				return c.Patch(ctx, obj, patch, opts...)
			}
			// Leader A pauses here, past the moment a replacement counts as in flight; leader B
			// finds the Secret still holding the replaced key and repairs it.
			paused = true
			recordedByA = getKey(t, key).Status.DeepCopy()
			clk.Step(secretWriteGrace)
			_, bErr = b.Reconcile(ctx, req)
			lateWrite = c.Patch(ctx, obj, patch, opts...)
			return lateWrite
		},
	})
	if _, err := a.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if !paused || bErr != nil {
		t.Fatalf("leader A paused %v; leader B's pass: %v", paused, bErr)
	}
	got := getKey(t, key)
	if got.Status.Hash == recordedByA.Hash || got.Status.ReplacedHash != recordedByA.Hash {
		t.Fatalf("leader B did not replace key %s recorded by leader A: status records %s", recordedByA.KeyID, got.Status.KeyID)
	}
	s := secretOf(t, key)
	if !keyformat.Verify(string(s.Data[v1.SecretKeyToken]), got.Status.Hash) {
		t.Fatalf("Secret %s holds %s after leader A's late write (%v); status records key %s, and key %s recorded by A no longer works\n%s",
			s.Name, secretHolds(s), lateWrite, got.Status.KeyID, recordedByA.KeyID, keyStory(t, key))
	}
}

// TestARestoredKeyKeepsTheExpiryItWasMintedWith: a key with a ttl, taken back by a restored
// APIKey (its adopt-key-id annotation names it), expires at the instant fixed when it was first
// minted, never later: a restore, or a Secret created after the key's first mint, does not
// extend its life.
func TestARestoredKeyKeepsTheExpiryItWasMintedWith(t *testing.T) {
	withTTL := func(k *v1.APIKey) { k.Spec.TTL = &metav1.Duration{Duration: time.Hour} }
	ns, key := activeKey(t, "restore-ttl", "k", withTTL)
	minted := key.Status.DeepCopy()

	orphanDelete(t, key)
	restored := restoreNaming(t, ns, "k", minted, withTTL)
	if restored.Status.ExpiresAt == nil || !restored.Status.ExpiresAt.Equal(minted.ExpiresAt) {
		t.Errorf("restored key %s (%s) expires at %v, want %s, the instant fixed when it was minted",
			restored.Status.KeyID, restored.Status.Masked, restored.Status.ExpiresAt, minted.ExpiresAt.UTC().Format(time.RFC3339))
	}
}

// restoreNaming creates APIKey name of Application "bi" again, its adopt-key-id annotation
// naming the key minted recorded, and returns it once it took that key back.
func restoreNaming(t *testing.T, ns, name string, minted *v1.APIKeyStatus, mutate ...func(*v1.APIKey)) *v1.APIKey {
	t.Helper()
	restored := newKey(ns, name, "bi", mutate...)
	restored.Annotations = map[string]string{v1.AnnotationAdoptKeyID: minted.KeyID}
	create(t, restored)
	restored = waitKey(t, restored, "the adoption", func(k *v1.APIKey) bool { return k.IsMinted() })
	if restored.Status.Hash != minted.Hash {
		t.Fatalf("the restored APIKey did not take back key %s (it holds %s)\n%s", minted.KeyID, restored.Status.KeyID, keyStory(t, restored))
	}
	return restored
}

// TestAnEditedExpiryAnnotationNeverLengthensARestoredKeysLife: the expires-at annotation on a
// key's Secret is not covered by the key's hash. Someone who may edit the Secret but not the
// APIKey moves it a year on before a restore: the restored key still expires no later than its
// ttl from the Secret's creation.
func TestAnEditedExpiryAnnotationNeverLengthensARestoredKeysLife(t *testing.T) {
	ctx := context.Background()
	withTTL := func(k *v1.APIKey) { k.Spec.TTL = &metav1.Duration{Duration: time.Hour} }
	ns, key := activeKey(t, "restore-ttl-edited", "k", withTTL)
	minted := key.Status.DeepCopy()
	orphanDelete(t, key)

	s := secretOf(t, key)
	edited := s.DeepCopy()
	forged := minted.ExpiresAt.Add(365 * 24 * time.Hour).UTC().Format(time.RFC3339)
	edited.Annotations[annotationExpiresAt] = forged
	if err := env.Client.Patch(ctx, edited, client.MergeFrom(s)); err != nil {
		t.Fatal(err)
	}
	restored := restoreNaming(t, ns, "k", minted, withTTL)
	latest := s.CreationTimestamp.Add(time.Hour)
	if restored.Status.ExpiresAt == nil || restored.Status.ExpiresAt.After(latest) {
		t.Errorf("restored key %s expires at %v after its Secret's expires-at was edited to %s; want no later than %s, its ttl from the Secret's creation",
			restored.Status.KeyID, restored.Status.ExpiresAt, forged, latest.UTC().Format(time.RFC3339))
	}
}

// cachedAs is a Get that answers for obj's own kind and key with a copy of obj, as a cache
// behind the apiserver would, and asks the apiserver for everything else.
func cachedAs[T any, P interface {
	*T
	client.Object
}](obj P) func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
	return func(ctx context.Context, c client.WithWatch, k client.ObjectKey, out client.Object, opts ...client.GetOption) error {
		if o, ok := out.(P); ok && k == client.ObjectKeyFromObject(obj) {
			*o = *obj.DeepCopyObject().(P)
			return nil
		}
		return c.Get(ctx, k, out, opts...)
	}
}

// leaderWith is a second APIKey reconciler, a leader for a moment, whose writes go through f.
func leaderWith(t *testing.T, f interceptor.Funcs) *APIKeyReconciler {
	t.Helper()
	live, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &APIKeyReconciler{reconcilerBase: reconcilerBase{client: interceptor.NewClient(live, f), apiReader: direct.apiReader, clock: direct.clock},
		events: direct.events, format: direct.format}
}

// TestAnOrphanDeleteLeavesTheSecretEvenToAPassBehindTheDelete: kubectl delete --cascade=orphan
// keeps an APIKey's Secret (the restore flow takes its key back from there). The garbage
// collector removes the APIKey's owner reference from the Secret before the APIKey goes; a pass
// whose cached APIKey does not show the delete yet, but whose cached Secret shows the owner
// reference gone, must not put it back: the collector would then delete the Secret, and with it
// the only copy of the key the restore names.
func TestAnOrphanDeleteLeavesTheSecretEvenToAPassBehindTheDelete(t *testing.T) {
	ctx := context.Background()
	_, key := activeKey(t, "orphan-late", "k")
	behind := key.DeepCopy()
	token := tokenOnceWritten(t, key)
	orphanDelete(t, key)
	if ref := metav1.GetControllerOf(secretOf(t, key)); ref != nil {
		t.Fatalf("the garbage collector left the owner reference to %s on the orphaned Secret", ref.UID)
	}

	late := leaderWith(t, interceptor.Funcs{Get: cachedAs(behind)})
	if _, err := late.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)}); err != nil {
		t.Fatalf("a pass over the deleted APIKey: %v", err)
	}
	if ref := metav1.GetControllerOf(secretOf(t, key)); ref != nil {
		t.Fatalf("a pass behind the delete made the deleted APIKey %s the orphaned Secret's owner again", ref.UID)
	}
	env.GCSawSecrets(t, key.Namespace)
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.SecretNameOrDefault()}, s); err != nil {
		t.Fatalf("the orphaned Secret of key %s: %v", key.Status.KeyID, err)
	}
	if string(s.Data[v1.SecretKeyToken]) != token {
		t.Fatalf("the orphaned Secret no longer holds key %s", key.Status.KeyID)
	}
}

// TestARestoreThatCannotTakeBackTheKeyItNamesSaysWhy: an APIKey whose adopt-key-id annotation
// names a key no Secret holds (the Secret restored after the APIKey, or not at all), or a key
// its Secret does not hold, gets a new key and a KeyNotAdopted Warning that says which, never
// advice to set the annotation it has; a value that is no key id (a whole token pasted there)
// is never repeated.
func TestARestoreThatCannotTakeBackTheKeyItNamesSaysWhy(t *testing.T) {
	ns, key := activeKey(t, "restore-why", "k")
	minted := key.Status.DeepCopy()
	orphanDelete(t, key)
	// A token of the key format that was never minted: one that was would be a leak of this
	// test's own making (the annotation is an object the leak check reads).
	pasted, err := direct.format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	token := pasted.Token

	for _, tc := range []struct {
		key, annotation string
		says            []string
	}{
		{"k", "ZZZZZZZZZZZZ", []string{"names key ZZZZZZZZZZZZ, which this Secret does not hold", minted.KeyID}},
		{"k-pasted", token, []string{"names a value that is no key id", "does not exist"}},
		{"k-elsewhere", minted.KeyID, []string{"names key " + minted.KeyID + ", but Secret k-elsewhere-key does not exist"}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			restored := newKey(ns, tc.key, "bi")
			restored.Annotations = map[string]string{v1.AnnotationAdoptKeyID: tc.annotation}
			create(t, restored)
			restored = waitKey(t, restored, "a key", func(k *v1.APIKey) bool { return k.IsMinted() })
			if restored.Status.Hash == minted.Hash {
				t.Fatalf("key %s was taken back", minted.KeyID)
			}
			e := waitEvent(t, restored, v1.ReasonKeyNotAdopted)
			for _, want := range tc.says {
				if !strings.Contains(e.Note, want) {
					t.Errorf("the KeyNotAdopted event says %q, want it to say %q", e.Note, want)
				}
			}
			if strings.Contains(e.Note, "set the annotation") || strings.Contains(e.Note, token) || e.Type != corev1.EventTypeWarning {
				t.Errorf("%s event: %q", e.Type, e.Note)
			}
		})
	}
}
