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

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
)

func TestKeyIsMintedIntoASecretAndStatusHoldsOnlyItsHash(t *testing.T) {
	ns := env.Namespace(t, "mint")
	app := readyApp(t, ns, "bi")
	key := newKey(ns, "prod", "bi", func(k *v1.APIKey) {
		k.Spec.SecretTemplate = &v1.SecretTemplate{Labels: map[string]string{"team": "bi"}, Annotations: map[string]string{"note": "mounted by exporter"}}
	})
	// Created by alice: the apiserver's policy clearance-created-by records her.
	alice, err := client.New(env.As("alice@acme.example", []string{"system:masters"}, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Create(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "the key to be Active", inState(v1.KeyActive))

	s := secretOf(t, key)
	token := string(s.Data[v1.SecretKeyToken])
	k, err := format.Parse(token)
	if err != nil {
		t.Fatalf("the Secret's token does not parse: %v", err)
	}
	st := key.Status
	if st.Hash != keyformat.Hash(token) || st.KeyID != k.KeyID || st.Masked != keyformat.Mask(token) {
		t.Errorf("status does not describe the Secret's key: keyID=%s masked=%s", st.KeyID, st.Masked)
	}
	if st.ApplicationID != app.Status.ApplicationID || st.SecretName != "prod-key" || st.CreatedBy != "alice@acme.example" || st.MintedAt == nil {
		t.Errorf("status: applicationID=%s secretName=%s createdBy=%s mintedAt=%v", st.ApplicationID, st.SecretName, st.CreatedBy, st.MintedAt)
	}
	if st.ApplicationUID != app.UID {
		t.Errorf("status.applicationUID = %q, want the UID of the Application the key was minted for, %q", st.ApplicationUID, app.UID)
	}
	if !ready(st.Conditions) {
		t.Errorf("Ready is not True: %+v", st.Conditions)
	}
	if s.Type != corev1.SecretTypeOpaque || s.Labels[v1.LabelAPIKey] != "prod" || s.Labels["team"] != "bi" || s.Annotations["note"] != "mounted by exporter" {
		t.Errorf("Secret metadata: type=%s labels=%v annotations=%v", s.Type, s.Labels, s.Annotations)
	}
	if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != key.UID || ref.Kind != "APIKey" {
		t.Errorf("the Secret is not owned by its APIKey: %+v", s.OwnerReferences)
	}
	if got := format.Join(string(s.Data[v1.SecretKeyAccessKey]), string(s.Data[v1.SecretKeySecretKey])); got != token {
		t.Error("access-key and secret-key do not rejoin to the token")
	}
	if string(s.Data[v1.SecretKeyAuthorization]) != "api-key "+token || string(s.Data[v1.SecretKeyApplicationID]) != app.Status.ApplicationID {
		t.Error("authorization or application-id data is wrong")
	}
	if c := meta.FindStatusCondition(st.Conditions, v1.ConditionReady); c == nil || c.Reason != v1.ReasonMinted || !strings.Contains(c.Message, st.Masked) {
		t.Errorf("Ready condition of a minted key: %+v", c)
	}
}

func TestKeyAppliedBeforeItsApplicationIsMintedWhenTheApplicationAppears(t *testing.T) {
	ns := env.Namespace(t, "order")
	key := newKey(ns, "early", "late-app")
	create(t, key)
	pending := waitKey(t, key, "the key to wait for its application", func(k *v1.APIKey) bool {
		return k.Status.State == v1.KeyPending && conditionReason(k.Status.Conditions) == v1.ReasonApplicationNotFound
	})
	if !strings.Contains(conditionMessage(pending.Status.Conditions), `Application "late-app" was not found`) {
		t.Errorf("message: %s", conditionMessage(pending.Status.Conditions))
	}
	readyApp(t, ns, "late-app")
	waitKey(t, key, "the key to be minted", inState(v1.KeyActive))
}

func TestDisabledKeyIsRefusedButKeepsItsSecret(t *testing.T) {
	_, key := activeKey(t, "disable", "k")
	token := string(secretOf(t, key).Data[v1.SecretKeyToken])

	key.Spec.Enabled = ptr.To(false)
	if err := env.Client.Update(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "Disabled", inState(v1.KeyDisabled))
	if ready(key.Status.Conditions) || string(secretOf(t, key).Data[v1.SecretKeyToken]) != token {
		t.Error("a disabled key must be not Ready and keep its Secret and token")
	}
	waitEvent(t, key, v1.ReasonDisabled)

	key.Spec.Enabled = ptr.To(true)
	if err := env.Client.Update(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "Active again", inState(v1.KeyActive))
	if key.Status.Hash != keyformat.Hash(token) || string(secretOf(t, key).Data[v1.SecretKeyToken]) != token {
		t.Error("re-enabling must restore the same key")
	}
}

func TestKeyExpiresAtTheInstantAndNeverComesBack(t *testing.T) {
	_, key := activeKey(t, "expiry", "short", func(k *v1.APIKey) { k.Spec.TTL = &metav1.Duration{Duration: time.Hour} })
	expiresAt := key.Status.ExpiresAt.Time
	if !expiresAt.Equal(key.Status.MintedAt.Add(time.Hour)) {
		t.Fatalf("ttl 1h minted at %s gave expiresAt %s", key.Status.MintedAt, expiresAt)
	}

	// The controller asks to come back exactly at the expiry instant: no polling.
	if res := passNow(t, key); res.RequeueAfter != expiresAt.Sub(clk.Now()) {
		t.Fatalf("Reconcile = %+v; want RequeueAfter %s", res, expiresAt.Sub(clk.Now()))
	}

	clk.SetTime(expiresAt.Add(-time.Second))
	if got := reconcileNow(t, key); got.Status.State != v1.KeyActive {
		t.Fatalf("a second before expiry the key is %s", got.Status.State)
	}
	clk.SetTime(expiresAt)
	nudge(t, key)
	key = waitKey(t, key, "Expired at the instant", inState(v1.KeyExpired))
	// Status first, then the Secret: the key material goes right after.
	eventually(t, "the key material to leave the expired key's Secret", func() (bool, error) {
		s := secretOf(t, key)
		for _, d := range keyMaterial {
			if _, ok := s.Data[d]; ok {
				return false, nil
			}
		}
		return true, nil
	})
	waitEvent(t, key, v1.ReasonExpired)

	// Moving the expiry later does not bring it back.
	key.Spec.TTL = nil
	key.Spec.ExpiresAt = &metav1.Time{Time: expiresAt.Add(24 * time.Hour)}
	if err := env.Client.Update(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	key = reconcileNow(t, key)
	if key.Status.State != v1.KeyExpired || len(secretOf(t, key).Data[v1.SecretKeyToken]) != 0 {
		t.Errorf("an expired key came back: state %s", key.Status.State)
	}
	if !strings.Contains(conditionMessage(key.Status.Conditions), "never becomes valid again") {
		t.Errorf("message: %s", conditionMessage(key.Status.Conditions))
	}
}

// A key past its recorded expiry is expired, whether or not a pass has recorded it yet (the
// operator was down, or behind): moving spec.expiresAt later, or removing the expiry, in that
// moment must not bring back a key the verifier already refuses.
func TestAKeyPastItsExpiryIsNotRevivedByMovingItBeforeThePassRecordsIt(t *testing.T) {
	for name, extend := range map[string]func(*v1.APIKey, time.Time){
		"expiresAt moved later": func(k *v1.APIKey, was time.Time) { k.Spec.ExpiresAt = &metav1.Time{Time: was.Add(24 * time.Hour)} },
		"expiry removed":        func(k *v1.APIKey, _ time.Time) { k.Spec.ExpiresAt = nil },
	} {
		t.Run(name, func(t *testing.T) {
			_, key := activeKey(t, "late-expiry", "k", func(k *v1.APIKey) {
				k.Spec.ExpiresAt = &metav1.Time{Time: clk.Now().Add(time.Hour).Truncate(time.Second)}
			})
			expiresAt := key.Status.ExpiresAt.Time
			// The instant passes with no pass over the key: the verifier refuses it from now on.
			clk.SetTime(expiresAt.Add(time.Second))
			if got := getKey(t, key); got.Status.State != v1.KeyActive {
				t.Fatalf("a pass ran before the edit: state %s", got.Status.State)
			}
			extend(key, expiresAt)
			if err := env.Client.Update(context.Background(), key); err != nil {
				t.Fatal(err)
			}
			key = waitKey(t, key, "a pass over the edited key", func(*v1.APIKey) bool { return true })
			key = reconcileNow(t, key)
			if key.Status.State != v1.KeyExpired || key.Status.ExpiresAt == nil || !key.Status.ExpiresAt.Time.Equal(expiresAt) {
				t.Fatalf("an expired key came back: state %s, status.expiresAt %v (it expired at %s)", key.Status.State, key.Status.ExpiresAt, expiresAt)
			}
			eventually(t, "the key material to leave the expired key's Secret", func() (bool, error) {
				return len(secretOf(t, key).Data[v1.SecretKeyToken]) == 0, nil
			})
		})
	}
}

func TestRotationKeepsThePreviousKeyValidForTheOverlap(t *testing.T) {
	_, key := activeKey(t, "rotation", "rotating", func(k *v1.APIKey) {
		k.Spec.Rotation = &v1.KeyRotation{Every: metav1.Duration{Duration: 24 * time.Hour}, Overlap: &metav1.Duration{Duration: time.Hour}}
	})
	first := key.Status.DeepCopy()

	clk.SetTime(first.MintedAt.Add(24 * time.Hour))
	nudge(t, key)
	key = waitKey(t, key, "Rotating", inState(v1.KeyRotating))
	token := tokenOnceWritten(t, key)
	if key.Status.Hash == first.Hash {
		t.Fatal("rotation must put a new key in the Secret and its hash in status")
	}
	if len(key.Status.PreviousKeys) != 1 || key.Status.PreviousKeys[0].Hash != first.Hash ||
		!key.Status.PreviousKeys[0].ValidUntil.Time.Equal(clk.Now().Add(time.Hour)) {
		t.Fatalf("previous keys: %+v", key.Status.PreviousKeys)
	}
	waitEvent(t, key, v1.ReasonRotating)

	clk.SetTime(clk.Now().Add(time.Hour))
	nudge(t, key)
	key = waitKey(t, key, "Active after the overlap", inState(v1.KeyActive))
	if len(key.Status.PreviousKeys) != 0 || key.Status.Hash != keyformat.Hash(token) {
		t.Errorf("after the overlap only the new key is valid: %+v", key.Status.PreviousKeys)
	}
}

func TestRotateNowAnnotationReplacesTheKeyOnce(t *testing.T) {
	_, key := activeKey(t, "rotate-now", "k")
	old := key.Status.Hash

	metav1.SetMetaDataAnnotation(&key.ObjectMeta, v1.AnnotationRotateRequestedAt, "2026-11-23T12:00:00Z") // beside the recorded creator
	if err := env.Client.Update(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "the rotation", func(k *v1.APIKey) bool { return k.Status.Hash != old })
	if key.Status.LastRotationRequest != "2026-11-23T12:00:00Z" || len(key.Status.PreviousKeys) != 0 || key.Status.State != v1.KeyActive {
		t.Errorf("without overlap the old key stops at once: %+v", key.Status)
	}
	rotated := key.Status.Hash
	if key = reconcileNow(t, key); key.Status.Hash != rotated {
		t.Error("the same request rotated the key twice")
	}
}

func TestDeletedSecretIsReMintedWithAWarning(t *testing.T) {
	_, key := activeKey(t, "deleted-secret", "k")
	old := key.Status.Hash

	if err := env.Client.Delete(context.Background(), secretOf(t, key)); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "a new key", func(k *v1.APIKey) bool { return k.Status.Hash != old && k.Status.State == v1.KeyActive })
	tokenOnceWritten(t, key)
	if e := waitEvent(t, key, v1.ReasonSecretReplaced); e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "was deleted") {
		t.Errorf("event: %s %q", e.Type, e.Note)
	}
}

func TestEditedSecretIsNotTrusted(t *testing.T) {
	_, key := activeKey(t, "edited-secret", "k")
	old := key.Status.Hash

	// Someone writes a well-formed key of their own choosing, with a matching hash annotation.
	chosen, _ := format.Generate()
	s := secretOf(t, key)
	s.Data[v1.SecretKeyToken] = []byte(chosen.Token)
	s.Annotations[annotationKeyHash] = keyformat.Hash(chosen.Token)
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "a re-mint", func(k *v1.APIKey) bool { return k.Status.Hash != old })
	if key.Status.Hash == keyformat.Hash(chosen.Token) {
		t.Fatal("the operator trusted a key written into the Secret")
	}
	if got := tokenOnceWritten(t, key); got == chosen.Token {
		t.Error("the Secret must hold the operator's new key")
	}
	waitEvent(t, key, v1.ReasonSecretReplaced)
}

// orphanDelete deletes an APIKey the way kubectl delete --cascade=orphan does: the garbage
// collector takes the owner reference off its Secret, which stays behind with the key in it. It
// first waits for the collector to have seen the Secret (env.GCSawSecrets), or the collector
// may delete the Secret instead: TestRestoredAPIKeyTakesBackTheKeyItsAnnotationNames saw its
// Secret deleted right after the restored APIKey took it back, under CI's load.
func orphanDelete(t *testing.T, key *v1.APIKey) {
	t.Helper()
	env.GCSawSecrets(t, key.Namespace)
	if err := env.Client.Delete(context.Background(), key, client.PropagationPolicy(metav1.DeletePropagationOrphan)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the APIKey to be gone", func() (bool, error) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(key), &v1.APIKey{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}

func TestReappliedAPIKeyNeverTakesBackTheKeyRevokedWithTheOldOne(t *testing.T) {
	ns, key := activeKey(t, "reapply", "k")
	hash := key.Status.Hash
	token := string(secretOf(t, key).Data[v1.SecretKeyToken])

	// The same YAML applied again after a delete that left the Secret (GitOps self-heal after
	// kubectl delete --cascade=orphan): the key in that Secret was revoked with the old APIKey.
	orphanDelete(t, key)
	again := newKey(ns, "k", "bi")
	create(t, again)
	again = waitKey(t, again, "a new key", func(k *v1.APIKey) bool { return k.Status.State == v1.KeyActive && k.Status.Hash != "" })
	if again.Status.Hash == hash || tokenOnceWritten(t, again) == token {
		t.Fatal("a re-applied APIKey took back the key revoked with the deleted one")
	}
	if ref := metav1.GetControllerOf(secretOf(t, again)); ref == nil || ref.UID != again.UID {
		t.Error("the Secret must be owned by the new APIKey")
	}
	e := waitEvent(t, again, v1.ReasonKeyNotAdopted)
	if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "never comes back") || !strings.Contains(e.Note, v1.AnnotationAdoptKeyID) {
		t.Errorf("event %s: %q", e.Type, e.Note)
	}
}

func TestRestoredAPIKeyTakesBackTheKeyItsAnnotationNames(t *testing.T) {
	ns, key := activeKey(t, "restore", "k")
	hash, keyID := key.Status.Hash, key.Status.KeyID
	token := string(secretOf(t, key).Data[v1.SecretKeyToken])

	// A restore from backup: the APIKey comes back with a new UID and without status, its
	// Secret is still there, and a person names the key to take back.
	orphanDelete(t, key)
	restored := newKey(ns, "k", "bi")
	restored.Annotations = map[string]string{v1.AnnotationAdoptKeyID: keyID}
	create(t, restored)
	restored = waitKey(t, restored, "the adoption", inState(v1.KeyActive))
	if restored.Status.Hash != hash || string(secretOf(t, restored).Data[v1.SecretKeyToken]) != token {
		t.Fatalf("a restored APIKey must take back the key its annotation names (%s), not mint a new one (it holds %s now)\n%s",
			keyID, restored.Status.KeyID, keyStory(t, restored))
	}
	eventually(t, "the adopted Secret to be owned by the restored APIKey", func() (bool, error) {
		ref := metav1.GetControllerOf(secretOf(t, restored))
		return ref != nil && ref.UID == restored.UID, nil
	})
	if e := waitEvent(t, restored, v1.ReasonMinted); !strings.Contains(e.Note, "took back") || !strings.Contains(e.Note, v1.AnnotationAdoptKeyID) {
		t.Errorf("event: %q", e.Note)
	}
}

func TestAPIKeyWhoseStatusWasWipedTakesBackItsOwnSecret(t *testing.T) {
	_, key := activeKey(t, "wiped", "k")
	hash := key.Status.Hash
	wiped := key.DeepCopy()
	wiped.Status = v1.APIKeyStatus{}
	if err := env.Client.Status().Update(context.Background(), wiped); err != nil {
		t.Fatal(err)
	}
	key = waitKey(t, key, "the key back", func(k *v1.APIKey) bool { return k.Status.Hash != "" && k.Status.State == v1.KeyActive })
	if key.Status.Hash != hash {
		t.Fatal("an APIKey whose status was lost must take back the key of the Secret it owns")
	}
}

func TestSecretNameTakenBySomeoneElseIsAConflictAndTheSecretIsUntouched(t *testing.T) {
	ns := env.Namespace(t, "taken")
	readyApp(t, ns, "bi")
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "k-key"}, StringData: map[string]string{"password": "theirs"}}
	create(t, theirs)
	key := newKey(ns, "k", "bi")
	create(t, key)
	key = waitKey(t, key, "Failed", inState(v1.KeyFailed))
	if msg := conditionMessage(key.Status.Conditions); !strings.Contains(msg, "Secret k-key already exists and was not created by Clearance") {
		t.Errorf("message: %s", msg)
	}
	s := secretOf(t, key)
	if string(s.Data["password"]) != "theirs" || len(s.Data) != 1 || s.Labels[v1.LabelAPIKey] != "" {
		t.Error("someone else's Secret was modified")
	}
}

func TestMetricsCountMintsAndKeysByState(t *testing.T) {
	activeKey(t, "metrics-keys", "counted")
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				found[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				found[name] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				found[name] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for _, name := range []string{"clearance_key_mints_total{reason=new}", "clearance_keys{state=Active}", "clearance_key_time_to_ready_seconds"} {
		if found[name] < 1 {
			t.Errorf("%s = %v, want at least 1 (have %v)", name, found[name], found)
		}
	}
}

// TestKeyNotAdoptedIsSaidEvenWhenTheStatusWriteFails: the pass that replaces a revoked key in a
// left-over Secret says so as soon as the Secret holds the new key. If its status write then
// fails, the next pass finds its own key in the Secret and takes it back, with nothing left to
// say; the Warning must not be lost with the failed write. A pass of a reconciler whose status
// writes fail once does the replacing (its Application, which the running operator cannot
// find, it reads through an interceptor, so the operator waits and leaves the key alone).
func TestKeyNotAdoptedIsSaidEvenWhenTheStatusWriteFails(t *testing.T) {
	ns, key := activeKey(t, "reapply-fail", "k")
	orphanDelete(t, key)
	app := &v1.Application{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "bi"}, app); err != nil {
		t.Fatal(err)
	}
	again := newKey(ns, "k", "elsewhere")
	create(t, again)

	live, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	var failed atomic.Bool
	c := interceptor.NewClient(live, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if a, ok := obj.(*v1.Application); ok && key.Namespace == ns && key.Name == "elsewhere" {
				app.DeepCopyInto(a)
				a.Name = "elsewhere"
				return nil
			}
			return c.Get(ctx, key, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if testenv.IsAPIKey(obj) && sub == "status" && obj.GetName() == "k" && obj.GetNamespace() == ns && failed.CompareAndSwap(false, true) {
				return apierrors.NewConflict(v1.GroupVersion.WithResource("apikeys").GroupResource(), "k", errors.New("injected"))
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	r := &APIKeyReconciler{reconcilerBase: reconcilerBase{client: c, apiReader: direct.apiReader, clock: direct.clock},
		events: direct.events, format: direct.format}
	eventually(t, "a pass whose status write failed", func() (bool, error) {
		_, _ = r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(again)})
		return failed.Load(), nil
	})
	if e := waitEvent(t, again, v1.ReasonKeyNotAdopted); e.Type != corev1.EventTypeWarning {
		t.Errorf("event %s: %q", e.Type, e.Note)
	}
}

// keyMaterialLeft lists the data keys of a Secret that still carry key material.
func keyMaterialLeft(s *corev1.Secret) []string {
	var left []string
	for _, d := range keyMaterial {
		if len(s.Data[d]) > 0 {
			left = append(left, d)
		}
	}
	return left
}

// TestKeyOfADeletedApplicationIsRevokedAndGoesWithIt: deleting the Application fails its key
// for good, empties its Secret, says so once with a Warning, and deletes the APIKey (its
// Secret then goes by its owner reference); the Application applied again at once (same name,
// same pinned ID, another UID) revives nothing. A finalizer of the test's holds the APIKey, so
// what the operator wrote before deleting it can be read.
func TestKeyOfADeletedApplicationIsRevokedAndGoesWithIt(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "appgone")
	pinned, err := keyformat.NewApplicationID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	app := newApp(ns, "bi", pinned)
	create(t, app)
	const hold = "test.clearance.dev/hold"
	key := newKey(ns, "k", "bi", func(k *v1.APIKey) { k.Finalizers = []string{hold} })
	create(t, key)
	key = waitKey(t, key, "Active", inState(v1.KeyActive))
	tokenOnceWritten(t, key)
	hash := key.Status.Hash

	// GitOps self-heal: the Application deleted and applied again from the same manifest.
	if err := env.Client.Delete(ctx, app); err != nil {
		t.Fatal(err)
	}
	again := newApp(ns, "bi", pinned)
	eventually(t, "the Application to be applied again", func() (bool, error) { return env.Client.Create(ctx, again) == nil, nil })

	eventually(t, "the operator to delete the APIKey", func() (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), key)
		return err == nil && key.DeletionTimestamp != nil, err
	})
	st := key.Status
	reason := conditionReason(st.Conditions)
	if st.State != v1.KeyFailed || (reason != v1.ReasonApplicationDeleted && reason != v1.ReasonApplicationReplaced) || st.Hash != hash {
		t.Fatalf("before its deletion the key was %s (%s), hash kept %v; want Failed, ApplicationDeleted or ApplicationReplaced, the same hash",
			st.State, reason, st.Hash == hash)
	}
	if st.ApplicationUID != app.UID {
		t.Errorf("applicationUID %s, want the deleted Application's %s", st.ApplicationUID, app.UID)
	}
	if msg := conditionMessage(st.Conditions); !strings.Contains(msg, "delete this APIKey and apply it again") || !strings.Contains(msg, string(app.UID)) {
		t.Errorf("message: %s", msg)
	}
	if left := keyMaterialLeft(secretOf(t, key)); len(left) > 0 {
		t.Errorf("the Secret still holds key material: %v", left)
	}
	notes := append(eventsFor(t, key, v1.ReasonApplicationDeleted), eventsFor(t, key, v1.ReasonApplicationReplaced)...)
	if len(notes) != 1 || notes[0].Type != corev1.EventTypeWarning {
		t.Errorf("%d events about the lost Application, want one Warning", len(notes))
	}

	patch := client.MergeFrom(key.DeepCopy())
	key.Finalizers = nil
	if err := env.Client.Patch(ctx, key, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the APIKey and its Secret to be gone", func() (bool, error) {
		errKey := env.Client.Get(ctx, client.ObjectKeyFromObject(key), &v1.APIKey{})
		errSecret := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: key.SecretNameOrDefault()}, &corev1.Secret{})
		return apierrors.IsNotFound(errKey) && apierrors.IsNotFound(errSecret), nil
	})

	// Applied again too, the APIKey gets a new key, for the Application there now.
	reapplied := newKey(ns, "k", "bi")
	create(t, reapplied)
	reapplied = waitKey(t, reapplied, "a new key", inState(v1.KeyActive))
	if reapplied.Status.Hash == hash || reapplied.Status.ApplicationUID != again.UID {
		t.Errorf("the re-applied APIKey: same hash %v, applicationUID %s (want %s)", reapplied.Status.Hash == hash, reapplied.Status.ApplicationUID, again.UID)
	}
}

// TestTheRevokingDeleteNeverRemovesAnAPIKeyAppliedAgainMeanwhile: the delete that ends a
// revocation is conditional on the UID and resourceVersion the revoking pass's status write
// left, so an APIKey of the same name applied again between that write and the delete (GitOps
// re-creating it at once) is another object: the delete fails its precondition instead of
// taking it, and the new APIKey is minted anew for the Application there now, never given the
// revoked key.
//
// The interleaving is the test's, not timing's: a reconciler of the test's (the real Reconcile,
// on an uncached client) revokes the key, and its Delete of the APIKey first applies the APIKey
// again (deletes the revoked object, if the running operator has not yet, and creates one of the
// same name), then sends the pass's own request. So that this pass, not the running operator,
// is the one to revoke, the test writes into the key's status the UID of an Application deleted
// since: a status write wakes no running operator (it watches no status change). The Secret the
// pass then empties does wake it, and it may delete the revoked object before the test does;
// either way the pass's delete, with its precondition, meets the new object.
func TestTheRevokingDeleteNeverRemovesAnAPIKeyAppliedAgainMeanwhile(t *testing.T) {
	ctx := context.Background()
	ns, key := activeKey(t, "reapplied", "k")
	app := &v1.Application{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bi"}, app); err != nil {
		t.Fatal(err)
	}
	revoked, oldUID := key.Status.Hash, key.UID
	// The key was minted for an Application "bi" deleted since; the one there now is another.
	patch := client.MergeFrom(key.DeepCopy())
	key.Status.ApplicationUID = uuid.NewUUID()
	if err := env.Client.Status().Patch(ctx, key, patch); err != nil {
		t.Fatal(err)
	}

	live, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	var (
		judged    *v1.APIKey // what the revoking pass asked to delete
		again     *v1.APIKey // the APIKey applied again meanwhile
		deleteErr error      // what the apiserver answered the pass's delete
	)
	c := interceptor.NewClient(live, interceptor.Funcs{
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			k, ok := obj.(*v1.APIKey)
			if !ok || k.Namespace != ns || k.Name != "k" || judged != nil {
				return c.Delete(ctx, obj, opts...)
			}
			judged = k.DeepCopy()
			gone := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "k"}}
			if err := c.Delete(ctx, gone, client.Preconditions{UID: &oldUID}); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("the test deleting the revoked APIKey: %w", err)
			}
			again = newKey(ns, "k", "bi")
			if err := c.Create(ctx, again); err != nil {
				return fmt.Errorf("the test applying the APIKey again: %w", err)
			}
			deleteErr = c.Delete(ctx, obj, opts...)
			return deleteErr
		},
	})
	r := &APIKeyReconciler{reconcilerBase: reconcilerBase{client: c, apiReader: direct.apiReader, clock: direct.clock},
		events: direct.events, format: direct.format}
	var (
		res     ctrl.Result
		passErr error
	)
	eventually(t, "a pass that revokes the key and deletes it", func() (bool, error) {
		res, passErr = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)})
		return judged != nil, passErr
	})
	if again == nil {
		t.Fatalf("the APIKey was not applied again: %v", passErr)
	}

	// The pass deleted only after its status write revoked the key, and asked to delete that
	// very object.
	st := judged.Status
	if judged.UID != oldUID || st.State != v1.KeyFailed || conditionReason(st.Conditions) != v1.ReasonApplicationReplaced || st.Hash != revoked {
		t.Fatalf("the pass asked to delete UID %s (the revoked one: %v), %s (%s), its key kept %v; want Failed, ApplicationReplaced",
			judged.UID, judged.UID == oldUID, st.State, conditionReason(st.Conditions), st.Hash == revoked)
	}
	// Its delete failed its precondition, and the pass takes that for a conflict: retried, no error.
	if !apierrors.IsConflict(deleteErr) {
		t.Fatalf("the pass's delete of the replaced APIKey: %v, want a Conflict (precondition failed)", deleteErr)
	}
	if passErr != nil || !res.Requeue {
		t.Errorf("the pass returned %+v, %v; want a retry without error", res, passErr)
	}
	got := getKey(t, again)
	if got.UID != again.UID || got.DeletionTimestamp != nil {
		t.Fatalf("the APIKey applied again: UID %s (want %s), being deleted %v\n%s", got.UID, again.UID, got.DeletionTimestamp != nil, keyStory(t, again))
	}

	// The APIKey applied again is minted anew for the Application there now, and stays: the
	// retried pass judges it, not the revoked one.
	got = waitKey(t, again, "the APIKey applied again to be Active", inState(v1.KeyActive))
	tokenOnceWritten(t, got)
	got = reconcileNow(t, got)
	if got.UID != again.UID || got.DeletionTimestamp != nil || got.Status.State != v1.KeyActive {
		t.Fatalf("after a pass, the APIKey applied again: UID %s (want %s), being deleted %v, %s\n%s",
			got.UID, again.UID, got.DeletionTimestamp != nil, got.Status.State, keyStory(t, again))
	}
	if got.Status.Hash == revoked || got.Status.ApplicationUID != app.UID {
		t.Errorf("the APIKey applied again: the revoked key %v, applicationUID %s (want %s)", got.Status.Hash == revoked, got.Status.ApplicationUID, app.UID)
	}
	for _, reason := range []string{v1.ReasonApplicationDeleted, v1.ReasonApplicationReplaced} {
		for _, e := range eventsFor(t, again, reason) {
			if e.Regarding.UID == again.UID {
				t.Errorf("the APIKey applied again was said revoked: %s %q", e.Reason, e.Note)
			}
		}
	}
}

// TestKeyMintedBeforeUIDsWereRecordedIsBoundToItsApplicationOrRevoked is the upgrade: a key
// whose status records no Application UID gets the UID of the Application of its name, unless
// that Application was created after the key was minted: then it is another one, and the key
// is revoked (and deleted) as with a replaced Application.
func TestKeyMintedBeforeUIDsWereRecordedIsBoundToItsApplicationOrRevoked(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		mintedAt func(appCreated time.Time) time.Time
		revoked  bool
	}{
		{"minted after its Application was created", func(c time.Time) time.Time { return c.Add(time.Second) }, false},
		{"minted before the Application there now was created", func(c time.Time) time.Time { return c.Add(-time.Hour) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, key := activeKey(t, "upgrade", "k")
			app := &v1.Application{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bi"}, app); err != nil {
				t.Fatal(err)
			}
			old := key.DeepCopy()
			key.Status.ApplicationUID = ""
			key.Status.MintedAt = &metav1.Time{Time: tc.mintedAt(app.CreationTimestamp.Time)}
			if err := env.Client.Status().Patch(ctx, key, client.MergeFrom(old)); err != nil {
				t.Fatal(err)
			}
			nudge(t, key)
			if tc.revoked {
				eventually(t, "the APIKey to be deleted", func() (bool, error) {
					err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), &v1.APIKey{})
					return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
				})
				if e := waitEvent(t, key, v1.ReasonApplicationReplaced); e.Type != corev1.EventTypeWarning {
					t.Errorf("event %s %q", e.Type, e.Note)
				}
				return
			}
			got := waitKey(t, key, "the Application's UID recorded", func(k *v1.APIKey) bool { return k.Status.ApplicationUID != "" })
			if got.Status.ApplicationUID != app.UID || got.Status.State != v1.KeyActive || got.Status.Hash != old.Status.Hash {
				t.Errorf("state %s, applicationUID %q (want %q), same key %v", got.Status.State, got.Status.ApplicationUID, app.UID, got.Status.Hash == old.Status.Hash)
			}
		})
	}
}
