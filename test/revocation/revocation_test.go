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

package revocation

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// deleteKey deletes an APIKey with a propagation policy and waits until it is gone (with
// orphan, the garbage collector first takes the owner reference off its Secret).
func deleteKey(t *testing.T, key *v1.APIKey, policy metav1.DeletionPropagation) {
	t.Helper()
	if policy == metav1.DeletePropagationOrphan {
		env.GCSawSecrets(t, key.Namespace)
	}
	must(t, env.Client.Delete(ctx(), key, client.PropagationPolicy(policy)))
	eventually(t, "the APIKey to be gone", func() (bool, error) {
		err := env.Client.Get(ctx(), client.ObjectKeyFromObject(key), &v1.APIKey{})
		return err != nil, client.IgnoreNotFound(err)
	})
}

// TestAnOrphanedSecretsKeyNeverComesBack: kubectl delete --cascade=orphan leaves the Secret with
// the key in it; applying the same APIKey again must not revive that key.
func TestAnOrphanedSecretsKeyNeverComesBack(t *testing.T) {
	ns := org(t, "orphan")
	key := newKey(ns, "k")
	must(t, env.Client.Create(ctx(), key))
	first, old := settled(t, key, "the first key")
	waitVerdict(t, ns, old, "", "the key to be accepted")

	deleteKey(t, first, metav1.DeletePropagationOrphan)
	waitVerdict(t, ns, old, verifier.ReasonKeyUnknown, "the deleted key to be refused")
	if secretToken(t, first) != old {
		t.Fatal("an orphaning delete must leave the Secret and its key behind")
	}

	again := newKey(ns, "k")
	must(t, env.Client.Create(ctx(), again))
	got, fresh := settled(t, again, "a new key", func(k *v1.APIKey) bool { return k.Status.Hash != first.Status.Hash })
	if fresh == old {
		t.Fatal("the re-applied APIKey took back the revoked key")
	}
	waitVerdict(t, ns, fresh, "", "the new key to be accepted")
	if a := verify(t, ns, old); a.Valid {
		t.Fatal("the revoked key is valid again")
	}
	notes := events(t, ns, v1.ReasonKeyNotAdopted)
	if len(notes) == 0 || !strings.HasPrefix(notes[0], "Warning: ") || !strings.Contains(notes[0], got.Status.Masked) {
		t.Errorf("want a Warning %s event naming the new key, got %q", v1.ReasonKeyNotAdopted, notes)
	}
}

// TestReapplyingRightAfterADeleteNeverRevivesTheKey re-creates the APIKey the instant it is
// deleted, before the garbage collector has removed its Secret, several times over.
func TestReapplyingRightAfterADeleteNeverRevivesTheKey(t *testing.T) {
	ns := org(t, "race")
	key := newKey(ns, "k")
	must(t, env.Client.Create(ctx(), key))
	current, token := settled(t, key, "the first key")
	var revoked []string
	for round := range 5 {
		revoked = append(revoked, token)
		must(t, env.Client.Delete(ctx(), current))
		again := newKey(ns, "k")
		eventually(t, "the APIKey to be created again", func() (bool, error) {
			return env.Client.Create(ctx(), again) == nil, nil
		})
		current, token = settled(t, again, "a new key after the re-apply", func(k *v1.APIKey) bool { return k.UID == again.UID })
		for i, old := range revoked {
			if old == token {
				t.Fatalf("round %d: the Secret holds the key revoked in round %d", round, i)
			}
		}
		waitVerdict(t, ns, token, "", "the new key to be accepted")
		for i, old := range revoked {
			if a := verify(t, ns, old); a.Valid {
				t.Fatalf("round %d: the key revoked in round %d is valid again", round, i)
			}
		}
	}
}

// TestARestoreNamingTheKeyTakesItBack: a person restoring from a backup names the key to take
// back with the adopt-key-id annotation; that key, and only it, works again.
func TestARestoreNamingTheKeyTakesItBack(t *testing.T) {
	ns := org(t, "restore")
	key := newKey(ns, "k")
	must(t, env.Client.Create(ctx(), key))
	first, token := settled(t, key, "the first key")
	deleteKey(t, first, metav1.DeletePropagationOrphan)
	waitVerdict(t, ns, token, verifier.ReasonKeyUnknown, "the deleted key to be refused")

	restored := newKey(ns, "k")
	restored.Annotations = map[string]string{v1.AnnotationAdoptKeyID: first.Status.KeyID}
	must(t, env.Client.Create(ctx(), restored))
	got, now := settled(t, restored, "the key taken back")
	if got.Status.Hash != first.Status.Hash || now != token {
		t.Fatal("the restore did not take back the key its annotation names")
	}
	waitVerdict(t, ns, token, "", "the restored key to be accepted")
}

// TestSwitchingAnApplicationOffRefusesEveryKeyEverywhereAndOnRestoresThem: spec.enabled on the
// Application refuses all its keys in every org at once; switched on, the same keys work.
func TestSwitchingAnApplicationOffRefusesEveryKeyEverywhereAndOnRestoresThem(t *testing.T) {
	ns := org(t, "switch")
	other := env.Namespace(t, "switch-partner")
	app := &v1.Application{}
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "bi"}, app))
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "bi"},
		Spec: v1.OrgConnectionSpec{ApplicationID: app.Status.ApplicationID, Role: v1.RoleObserver}}
	must(t, env.Client.Create(ctx(), conn))

	var keys []*v1.APIKey
	var tokens []string
	for _, name := range []string{"prod", "backfill"} {
		k := newKey(ns, name)
		must(t, env.Client.Create(ctx(), k))
		got, token := settled(t, k, "key "+name)
		keys, tokens = append(keys, got), append(tokens, token)
	}
	for _, org := range []string{ns, other} {
		for _, token := range tokens {
			waitVerdict(t, org, token, "", "every key to be accepted in "+org)
		}
	}

	setEnabled := func(on bool) {
		patch := client.MergeFrom(app.DeepCopy())
		app.Spec.Enabled = ptr.To(on)
		must(t, env.Client.Patch(ctx(), app, patch))
	}
	setEnabled(false)
	for _, org := range []string{ns, other} {
		for _, token := range tokens {
			waitVerdict(t, org, token, verifier.ReasonApplicationDisabled, "every key to be refused in "+org)
		}
	}
	eventually(t, "the keys to say why they are not Ready", func() (bool, error) {
		k := &v1.APIKey{}
		err := env.Client.Get(ctx(), client.ObjectKeyFromObject(keys[0]), k)
		c := meta.FindStatusCondition(k.Status.Conditions, v1.ConditionReady)
		return c != nil && c.Reason == v1.ReasonApplicationDisabled, err
	})

	setEnabled(true)
	for _, org := range []string{ns, other} {
		for _, token := range tokens {
			waitVerdict(t, org, token, "", "the same keys to be accepted again in "+org)
		}
	}
	for i, k := range keys {
		got, _ := settled(t, k, "the key Ready again", func(k *v1.APIKey) bool { return meta.IsStatusConditionTrue(k.Status.Conditions, v1.ConditionReady) })
		if got.Status.Hash != k.Status.Hash {
			t.Errorf("key %s was replaced while its application was off", keys[i].Name)
		}
	}
}

// TestRotateNowEndsEveryEarlierKeyAtOnce: a key rotated once (its previous key in its overlap)
// and then invalidated: both earlier keys are refused as soon as the new one is recorded.
func TestRotateNowEndsEveryEarlierKeyAtOnce(t *testing.T) {
	ns := org(t, "rotatenow")
	key := newKey(ns, "k", withOverlap)
	must(t, env.Client.Create(ctx(), key))
	k1, t1 := settled(t, key, "the first key")

	patch := client.MergeFrom(k1.DeepCopy())
	metav1.SetMetaDataAnnotation(&k1.ObjectMeta, v1.AnnotationRotateRequestedAt, "first") // beside the recorded creator
	must(t, env.Client.Patch(ctx(), k1, patch))
	k2, t2 := settled(t, key, "the rotation", func(k *v1.APIKey) bool { return k.Status.LastRotationRequest == "first" })
	waitVerdict(t, ns, t1, "", "the previous key to stay valid in its overlap")
	waitVerdict(t, ns, t2, "", "the new key to be accepted")

	patch = client.MergeFrom(k2.DeepCopy())
	k2.Annotations[v1.AnnotationInvalidateRequestedAt] = "now"
	must(t, env.Client.Patch(ctx(), k2, patch))
	refused := waitVerdict(t, ns, t2, verifier.ReasonKeyUnknown, "the replaced key to be refused at once")
	waitVerdict(t, ns, t1, verifier.ReasonKeyUnknown, "the key in its overlap to be refused at once")
	k3, t3 := settled(t, key, "the immediate rotation", func(k *v1.APIKey) bool { return k.Status.LastInvalidationRequest == "now" })
	if len(k3.Status.PreviousKeys) != 0 || k3.Status.State != v1.KeyActive {
		t.Errorf("after rotate --now: state %s, previous keys %+v; want Active and none", k3.Status.State, k3.Status.PreviousKeys)
	}
	waitVerdict(t, ns, t3, "", "the new key to be accepted")
	t.Logf("FIGURES rotate-now: the replaced key was refused %s after the request", refused)
}

// TestADeletedApplicationsKeysAreRefusedEverywhereAndForGood: deleting the Application revokes
// every key of it in every org at once; applying the same Application again (same name, same
// pinned ID: GitOps self-heal) revives none. The operator deletes the keys, the garbage
// collector their Secrets.
func TestADeletedApplicationsKeysAreRefusedEverywhereAndForGood(t *testing.T) {
	ns := org(t, "appgone")
	app := &v1.Application{}
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "bi"}, app))
	key := newKey(ns, "k")
	must(t, env.Client.Create(ctx(), key))
	got, token := settled(t, key, "the key")
	if got.Status.ApplicationUID != app.UID {
		t.Errorf("status.applicationUID %q, want %q", got.Status.ApplicationUID, app.UID)
	}
	waitVerdict(t, ns, token, "", "the key to be accepted")
	must(t, env.Client.Delete(ctx(), app))
	waitRefused(t, ns, token, "the key of the deleted application to be refused", verifier.ReasonKeyRevoked, verifier.ReasonKeyUnknown)

	again := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bi"},
		Spec: v1.ApplicationSpec{Description: app.Spec.Description, ApplicationID: app.Status.ApplicationID}}
	eventually(t, "the Application to be applied again", func() (bool, error) { return env.Client.Create(ctx(), again) == nil, nil })
	eventually(t, "the Application applied again to hold its pinned ID", func() (bool, error) {
		err := env.Client.Get(ctx(), client.ObjectKeyFromObject(again), again)
		return again.Status.ApplicationID == app.Status.ApplicationID, err
	})
	eventually(t, "the APIKey and its Secret to be gone", func() (bool, error) {
		errKey := env.Client.Get(ctx(), client.ObjectKeyFromObject(key), &v1.APIKey{})
		errSecret := env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: key.SecretNameOrDefault()}, &corev1.Secret{})
		return apierrors.IsNotFound(errKey) && apierrors.IsNotFound(errSecret), nil
	})
	for range 20 {
		if a := verify(t, ns, token); a.Valid {
			t.Fatal("the key of the deleted Application is valid again")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRefused waits until the running verifier refuses token with one of reasons.
func waitRefused(t *testing.T, ns, token, what string, reasons ...string) {
	t.Helper()
	eventually(t, what, func() (bool, error) {
		a := verify(t, ns, token)
		return !a.Valid && slices.Contains(reasons, a.Reason), nil
	})
}
