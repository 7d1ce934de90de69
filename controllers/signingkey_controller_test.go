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
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/clearance-dev/clearance/internal/signingkey"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// newSigningKeyReconciler is the signing-key controller over a Secret of its own namespace,
// with its own cache and a fake clock; the test calls Reconcile itself, as the workqueue would
// when RequeueAfter comes due.
func newSigningKeyReconciler(t *testing.T) (*SigningKeyReconciler, *clocktesting.FakeClock) {
	t.Helper()
	return newSigningKeyReconcilerOf(t, types.NamespacedName{Namespace: env.Namespace(t, "signing"), Name: signingkey.DefaultSecretName})
}

// newSigningKeyReconcilerOf is newSigningKeyReconciler over the Secret key, whose namespace
// may not exist yet.
func newSigningKeyReconcilerOf(t *testing.T, key types.NamespacedName) (*SigningKeyReconciler, *clocktesting.FakeClock) {
	t.Helper()
	c, err := signingkey.NewCache(env.Config, env.Scheme, key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = c.Start(ctx) }()
	// An informer for Secrets before the sync wait, as the controller's watch makes one.
	if _, err := c.GetInformer(ctx, &corev1.Secret{}); err != nil {
		t.Fatal(err)
	}
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the signing keys cache did not sync")
	}
	clock := clocktesting.NewFakeClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	r := &SigningKeyReconciler{reconcilerBase: reconcilerBase{client: direct.client, apiReader: direct.apiReader, clock: clock},
		events: direct.events, secret: key, every: signingkey.DefaultRotation, cache: c}
	return r, clock
}

// reconcileSeen reconciles once the cache shows what the last write left (check).
func (r *SigningKeyReconciler) reconcileSeen(t *testing.T, check func(*corev1.Secret) error) ctrl.Result {
	t.Helper()
	testenv.Within(t, 30*time.Second, "the cache to show the signing keys Secret", func() error {
		var sec corev1.Secret
		err := r.cache.Get(context.Background(), r.secret, &sec)
		if err != nil {
			return err
		}
		return check(&sec)
	})
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: r.secret})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// deleteAndReconcile deletes sec, and reconciles once the cache has lost it: a new set must be
// written.
func (r *SigningKeyReconciler) deleteAndReconcile(t *testing.T, sec *corev1.Secret) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Delete(ctx, sec); err != nil {
		t.Fatal(err)
	}
	testenv.Within(t, 30*time.Second, "the cache to lose the deleted Secret", func() error {
		if err := r.cache.Get(ctx, r.secret, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: r.secret}); err != nil {
		t.Fatal(err)
	}
	r.set(t)
}

func (r *SigningKeyReconciler) set(t *testing.T) (signingkey.Set, *corev1.Secret) {
	t.Helper()
	var sec corev1.Secret
	if err := env.Client.Get(context.Background(), r.secret, &sec); err != nil {
		t.Fatal(err)
	}
	s, err := signingkey.FromSecret(&sec)
	if err != nil {
		t.Fatalf("the Secret holds no valid set: %v", err)
	}
	return s, &sec
}

func TestTheSigningKeysAreCreatedRotatedOnScheduleAndRepaired(t *testing.T) {
	r, clock := newSigningKeyReconciler(t)
	ctx := context.Background()
	month := signingkey.DefaultRotation

	// Created when missing, to rotate a period later.
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: r.secret})
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter != month {
		t.Errorf("after creating: requeue after %s, want %s", res.RequeueAfter, month)
	}
	first, sec := r.set(t)
	if sec.Type != corev1.SecretTypeOpaque || sec.Labels[signingkey.Label] != "true" || first.Previous != nil {
		t.Errorf("created Secret: type %s, labels %v, previous %v", sec.Type, sec.Labels, first.Previous)
	}
	waitForEvent(t, r.secret, corev1.EventTypeNormal, "Created")

	// Before it is due: nothing written, the time left asked for.
	clock.Step(time.Hour)
	if res := r.reconcileSeen(t, hasCurrent(first.Current.KeyID)); res.RequeueAfter != month-time.Hour {
		t.Errorf("an hour later: requeue after %s, want %s", res.RequeueAfter, month-time.Hour)
	}
	if _, again := r.set(t); again.ResourceVersion != sec.ResourceVersion {
		t.Error("a pass before the rotation was due wrote the Secret")
	}

	// A second before it is due, still nothing: each key is published a whole period before it
	// signs.
	clock.Step(month - time.Hour - time.Second)
	if res := r.reconcileSeen(t, hasCurrent(first.Current.KeyID)); res.RequeueAfter != time.Second {
		t.Errorf("a second before the rotation: requeue after %s, want 1s", res.RequeueAfter)
	}
	if _, again := r.set(t); again.ResourceVersion != sec.ResourceVersion {
		t.Error("a pass a second before the rotation was due wrote the Secret")
	}

	// Due: shifted by one.
	clock.Step(time.Second)
	if res := r.reconcileSeen(t, hasCurrent(first.Current.KeyID)); res.RequeueAfter != month {
		t.Errorf("after rotating: requeue after %s, want %s", res.RequeueAfter, month)
	}
	second, _ := r.set(t)
	if second.Previous == nil || second.Previous.KeyID != first.Current.KeyID || second.Current.KeyID != first.Next.KeyID ||
		second.Next.KeyID == first.Next.KeyID || !second.RotatedAt.Equal(clock.Now()) {
		t.Fatalf("rotation: %s %s → previous %v, current %s, next %s at %s", first.Current.KeyID, first.Next.KeyID,
			second.Previous, second.Current.KeyID, second.Next.KeyID, second.RotatedAt)
	}
	waitForEvent(t, r.secret, corev1.EventTypeNormal, "Rotated")
	if len(first.RefreshKey) != signingkey.RefreshKeySize || !bytes.Equal(second.RefreshKey, first.RefreshKey) {
		t.Error("the refresh key was not made with the first set, or changed at a rotation (refresh tokens outlive a rotation)")
	}

	// A Secret written before refresh keys existed gets one; its signing keys stay.
	old := sec.DeepCopy()
	if err := env.Client.Get(ctx, r.secret, old); err != nil {
		t.Fatal(err)
	}
	delete(old.Data, signingkey.DataRefresh)
	if err := env.Client.Update(ctx, old); err != nil {
		t.Fatal(err)
	}
	r.reconcileSeen(t, func(s *corev1.Secret) error {
		if _, ok := s.Data[signingkey.DataRefresh]; ok {
			return errors.New("the refresh key is still there")
		}
		return nil
	})
	added, _ := r.set(t)
	if len(added.RefreshKey) != signingkey.RefreshKeySize || bytes.Equal(added.RefreshKey, first.RefreshKey) || added.Current.KeyID != second.Current.KeyID {
		t.Errorf("after adding a refresh key: %d bytes, current %s (want %s)", len(added.RefreshKey), added.Current.KeyID, second.Current.KeyID)
	}
	waitForEvent(t, r.secret, corev1.EventTypeNormal, "RefreshKeyAdded")

	// A Secret that holds no valid set is replaced, with a Warning that says what was wrong.
	broken := sec.DeepCopy()
	if err := env.Client.Get(ctx, r.secret, broken); err != nil {
		t.Fatal(err)
	}
	broken.Data[signingkey.DataCurrent] = []byte("not a key")
	if err := env.Client.Update(ctx, broken); err != nil {
		t.Fatal(err)
	}
	r.reconcileSeen(t, func(s *corev1.Secret) error {
		if string(s.Data[signingkey.DataCurrent]) != "not a key" {
			return errors.New("not broken yet")
		}
		return nil
	})
	third, _ := r.set(t)
	if third.Current.KeyID == second.Current.KeyID {
		t.Error("the broken Secret was not replaced")
	}
	if e := waitForEvent(t, r.secret, corev1.EventTypeWarning, "Replaced"); !strings.Contains(e.Note, signingkey.DataCurrent+" is not a JSON Web Key") {
		t.Errorf("the Replaced event says %q, not what was wrong", e.Note)
	}

	// Deleted: created anew.
	r.deleteAndReconcile(t, broken)

	// No event tells a private key.
	var list eventsv1.EventList
	if err := env.Client.List(ctx, &list, client.InNamespace(r.secret.Namespace)); err != nil {
		t.Fatal(err)
	}
	text, _ := json.Marshal(list)
	for _, s := range []signingkey.Set{first, second, added, third} {
		if strings.Contains(string(text), base64.StdEncoding.EncodeToString(s.RefreshKey)) {
			t.Error("an event holds a refresh key")
		}
		for _, k := range s.Published() {
			b, _ := k.Key.(*ecdsa.PrivateKey).Bytes()
			if strings.Contains(string(text), base64.RawURLEncoding.EncodeToString(b)) {
				t.Error("an event holds a private signing key")
			}
		}
	}
}

// A Secret of the configured name that is not Clearance's (someone's own, named by mistake in
// --oauth-signing-secret) is never written over: its data, labels and annotations stay, a
// Warning says what to do, and once it is deleted the keys are written. Only the label's value
// "true" makes a Secret without a valid set Clearance's to replace.
func TestTheSigningKeysNeverOverwriteASecretThatIsNotTheirs(t *testing.T) {
	for name, labels := range map[string]map[string]string{
		"not labelled":             {"app": "billing"},
		"labelled other than true": {"app": "billing", signingkey.Label: "false"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r, _ := newSigningKeyReconciler(t)
			theirs := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: r.secret.Namespace, Name: r.secret.Name,
					Labels: labels, Annotations: map[string]string{"owner": "billing-team"}},
				Data: map[string][]byte{"password": []byte("billing-database-password")},
			}
			if err := env.Client.Create(ctx, theirs); err != nil {
				t.Fatal(err)
			}
			for range 2 { // at start, and again on any later event of the name
				r.reconcileSeen(t, func(*corev1.Secret) error { return nil })
			}
			var got corev1.Secret
			if err := env.Client.Get(ctx, r.secret, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Data, theirs.Data) || !reflect.DeepEqual(got.Labels, theirs.Labels) || !reflect.DeepEqual(got.Annotations, theirs.Annotations) {
				t.Errorf("the Secret was written over: data keys %v, labels %v, annotations %v", slices.Sorted(maps.Keys(got.Data)), got.Labels, got.Annotations)
			}
			waitForEvent(t, r.secret, corev1.EventTypeWarning, "Conflict")
			var list eventsv1.EventList
			if err := env.Client.List(ctx, &list, client.InNamespace(r.secret.Namespace)); err != nil {
				t.Fatal(err)
			}
			want := "Secret " + r.secret.String() + " is not Clearance's token signing keys (no label " + signingkey.Label +
				"=true, no signing set in it) and was left as it is: set --oauth-signing-secret (the chart's oauth.signingSecret) to a name no other Secret has"
			for _, e := range list.Items {
				if e.Reason == "Conflict" && !strings.HasPrefix(e.Note, want) {
					t.Errorf("the event says %q, want it to begin %q", e.Note, want)
				}
				if strings.Contains(e.Note, "billing-database-password") {
					t.Error("an event holds the other Secret's data")
				}
			}

			// Deleted by its owner: the keys are written.
			r.deleteAndReconcile(t, &got)
		})
	}
}

// TestALeaderWithAStaleViewNeverWritesOverTheSigningKeys: a leader paused for two rotation
// periods (or one whose cache fell behind) wakes up with the set it last saw and finds it due.
// Its write is conditional on the resourceVersion it read, so it fails, and the set the other
// leader rotated to stays whole: the key that signs now stays published, no earlier key signs
// again, and the refresh key stays.
func TestALeaderWithAStaleViewNeverWritesOverTheSigningKeys(t *testing.T) {
	r, clock := newSigningKeyReconciler(t)
	ctx := context.Background()
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: r.secret}); err != nil {
		t.Fatal(err)
	}
	first, seen := r.set(t)
	paused := *r
	paused.cache = &signingkey.Cache{Cache: frozenCache{Cache: r.cache.Cache, secret: seen.DeepCopy()}}

	// The other leader rotates twice, on schedule.
	latest := first
	for range 2 {
		clock.Step(r.every)
		r.reconcileSeen(t, hasCurrent(latest.Current.KeyID))
		latest, _ = r.set(t)
	}
	_, err := paused.Reconcile(ctx, ctrl.Request{NamespacedName: r.secret})
	if !apierrors.IsConflict(err) {
		t.Errorf("the paused leader's rotation from a set two rotations old: error %v, want a conflict", err)
	}
	after, _ := r.set(t)
	kids := func(s signingkey.Set) []string {
		var out []string
		for _, k := range s.Published() {
			out = append(out, k.KeyID)
		}
		return out
	}
	if !slices.Equal(kids(after), kids(latest)) || after.Current.KeyID != latest.Current.KeyID || !bytes.Equal(after.RefreshKey, latest.RefreshKey) {
		t.Errorf("the paused leader wrote over the set: published %v (current %s), want %v (current %s)",
			kids(after), after.Current.KeyID, kids(latest), latest.Current.KeyID)
	}
}

// TestASigningKeyWriteThatFailsIsReturnedSoItIsTriedAgain: the writes that add a refresh key
// and replace a broken set are conditional on what was read, as the rotation's is. A leader
// whose view is behind fails to write; the failure must reach the workqueue (which tries again
// at once) rather than be taken for done, when the next pass would come only at the next
// rotation, a month on, with no refresh key or no valid set meanwhile. Its write must not land
// either: what was written since stays.
func TestASigningKeyWriteThatFailsIsReturnedSoItIsTriedAgain(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(*corev1.Secret)
	}{
		{"a set with no refresh key", func(s *corev1.Secret) { delete(s.Data, signingkey.DataRefresh) }},
		{"a set that is broken", func(s *corev1.Secret) { s.Data[signingkey.DataCurrent] = []byte("{}") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, _ := newSigningKeyReconciler(t)
			ctx := context.Background()
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: r.secret}); err != nil {
				t.Fatal(err)
			}
			_, sec := r.set(t)
			c.damage(sec)
			if err := env.Client.Update(ctx, sec); err != nil {
				t.Fatal(err)
			}
			var seen corev1.Secret
			testenv.Within(t, 30*time.Second, "the cache to show the changed Secret", func() error {
				if err := r.cache.Get(ctx, r.secret, &seen); err != nil {
					return err
				}
				if seen.ResourceVersion != sec.ResourceVersion {
					return fmt.Errorf("resourceVersion %s, want %s", seen.ResourceVersion, sec.ResourceVersion)
				}
				return nil
			})
			behind := *r
			behind.cache = &signingkey.Cache{Cache: frozenCache{Cache: r.cache.Cache, secret: seen.DeepCopy()}}
			// Someone else writes meanwhile.
			touched := client.MergeFrom(sec.DeepCopy())
			sec.Annotations["example.com/touched"] = "yes"
			if err := env.Client.Patch(ctx, sec, touched); err != nil {
				t.Fatal(err)
			}

			if _, err := behind.Reconcile(ctx, ctrl.Request{NamespacedName: r.secret}); !apierrors.IsConflict(err) {
				t.Fatalf("a write from a view behind: error %v, want the conflict returned", err)
			}
			var now corev1.Secret
			if err := env.Client.Get(ctx, r.secret, &now); err != nil {
				t.Fatal(err)
			}
			if now.ResourceVersion != sec.ResourceVersion {
				t.Fatal("the write from a view behind landed")
			}

			// Tried again with the view caught up: the set is whole, and the other write kept.
			r.reconcileSeen(t, func(s *corev1.Secret) error {
				if s.Annotations["example.com/touched"] != "yes" {
					return errors.New("the other write not seen yet")
				}
				return nil
			})
			set, after := r.set(t)
			if len(set.RefreshKey) != signingkey.RefreshKeySize || after.Annotations["example.com/touched"] != "yes" {
				t.Errorf("after the retry: refresh key of %d bytes, annotations %v", len(set.RefreshKey), after.Annotations)
			}
		})
	}
}

// TestASigningKeysReadThatFailsIsTriedAgainNotTakenForSomeoneElsesSecret: a pass that cannot
// read the Secret (here its cache has not started) returns the error, so the workqueue tries
// again; it never takes the failed read for a Secret that is not Clearance's, which would warn
// of a conflict and then wait, with no keys, for an event of that Secret that may never come.
func TestASigningKeysReadThatFailsIsTriedAgainNotTakenForSomeoneElsesSecret(t *testing.T) {
	r, _ := newSigningKeyReconciler(t)
	ctx := context.Background()
	unstarted, err := signingkey.NewCache(env.Config, env.Scheme, r.secret)
	if err != nil {
		t.Fatal(err)
	}
	r.cache = unstarted
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: r.secret}); err == nil {
		t.Fatal("a pass that could not read the Secret was taken for done")
	}
	var list eventsv1.EventList
	if err := env.Client.List(ctx, &list, client.InNamespace(r.secret.Namespace)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		t.Errorf("a pass that could not read the Secret emitted %s %s: %s", e.Type, e.Reason, e.Note)
	}
}

// TestAnOperatorStartedBeforeItsNamespaceExistsWritesTheKeysOnceItDoes: while the namespace of
// the signing keys is missing the pass asks to come back (in a minute) without an error, and
// once the namespace is there the next pass writes the keys: OAuth is not left off for good.
func TestAnOperatorStartedBeforeItsNamespaceExistsWritesTheKeysOnceItDoes(t *testing.T) {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "signing-later-" + hex.EncodeToString(suffix)}}
	r, _ := newSigningKeyReconcilerOf(t, types.NamespacedName{Namespace: ns.Name, Name: signingkey.DefaultSecretName})
	ctx := context.Background()
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: r.secret})
	if err != nil || res.RequeueAfter <= 0 {
		t.Fatalf("without its namespace: requeue after %s, error %v; want to come back later without an error", res.RequeueAfter, err)
	}

	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: r.secret}); err != nil {
		t.Fatal(err)
	}
	r.set(t)
}

// TestASigningKeysCreateTheAPIServerRefusesIsReturnedSoItIsTriedAgain: a create refused for a
// reason other than a missing namespace (here the operator's identity may not create Secrets)
// is an error the workqueue retries and logs, not a pass taken for done.
func TestASigningKeysCreateTheAPIServerRefusesIsReturnedSoItIsTriedAgain(t *testing.T) {
	r, _ := newSigningKeyReconciler(t)
	nobody, err := client.New(env.As("clearance-test:nobody", nil, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	r.client = nobody
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: r.secret}); !apierrors.IsForbidden(err) {
		t.Errorf("a create the apiserver refused: error %v, want it returned", err)
	}
}

// TestASecretMadeOutsideTheOperatorIsTakenInWhenItIsClearlyItsOwn: a Secret that carries the
// signing-keys label and nothing else (made ahead by hand or by GitOps) is filled with a set; a
// valid set without any label (restored from a backup that dropped them) is kept, rotated when
// due, and labelled, so that it is repaired, not left as someone else's, if it ever breaks.
func TestASecretMadeOutsideTheOperatorIsTakenInWhenItIsClearlyItsOwn(t *testing.T) {
	ctx := context.Background()
	t.Run("labelled and empty", func(t *testing.T) {
		r, _ := newSigningKeyReconciler(t)
		empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.secret.Namespace, Name: r.secret.Name,
			Labels: map[string]string{signingkey.Label: "true"}}}
		if err := env.Client.Create(ctx, empty); err != nil {
			t.Fatal(err)
		}
		r.reconcileSeen(t, func(*corev1.Secret) error { return nil })
		r.set(t)
		waitForEvent(t, r.secret, corev1.EventTypeWarning, "Replaced")
	})
	t.Run("a valid set without labels", func(t *testing.T) {
		r, clock := newSigningKeyReconciler(t)
		restored, err := signingkey.NewSet(clock.Now().Add(-r.every))
		if err != nil {
			t.Fatal(err)
		}
		data, ann, err := restored.Data()
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.secret.Namespace, Name: r.secret.Name,
			Annotations: ann}, Data: data}); err != nil {
			t.Fatal(err)
		}
		r.reconcileSeen(t, hasCurrent(restored.Current.KeyID))
		rotated, sec := r.set(t)
		if rotated.Previous == nil || rotated.Previous.KeyID != restored.Current.KeyID || !bytes.Equal(rotated.RefreshKey, restored.RefreshKey) {
			t.Errorf("the restored set was not rotated from: previous %v", rotated.Previous)
		}
		if sec.Labels[signingkey.Label] != "true" {
			t.Errorf("the restored set is not labelled as Clearance's after its rotation: labels %v", sec.Labels)
		}
	})
}

// frozenCache shows the signing keys Secret as it was once, whatever was written since.
type frozenCache struct {
	cache.Cache
	secret *corev1.Secret
}

func (f frozenCache) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	f.secret.DeepCopyInto(obj.(*corev1.Secret))
	return nil
}

func hasCurrent(kid string) func(*corev1.Secret) error {
	return func(sec *corev1.Secret) error {
		s, err := signingkey.FromSecret(sec)
		if err != nil {
			return err
		}
		if s.Current.KeyID != kid {
			return fmt.Errorf("current key %s, want %s", s.Current.KeyID, kid)
		}
		return nil
	}
}

// waitForEvent waits for an event of reason about secret and returns it; it must be of type
// (a Warning is what alerts on events pick up).
func waitForEvent(t *testing.T, secret types.NamespacedName, eventType, reason string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	testenv.Within(t, 30*time.Second, "a "+reason+" event", func() error {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(secret.Namespace)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Reason == reason && e.Regarding.Name == secret.Name {
				found = e
				return nil
			}
		}
		return errors.New("none yet")
	})
	if found.Type != eventType {
		t.Errorf("the %s event is a %s, want %s", reason, found.Type, eventType)
	}
	return found
}

// TestEveryReplicaReadsTheSigningKeysLeaderOrNot: the cache of the signing keys Secret runs in
// a replica that is not the leader (another holds the Lease for good), since every verifier
// replica signs and checks tokens with the keys.
func TestEveryReplicaReadsTheSigningKeysLeaderOrNot(t *testing.T) {
	r, _ := newSigningKeyReconciler(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: r.secret}); err != nil {
		t.Fatal(err)
	}
	set, _ := r.set(t)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: r.secret.Namespace, Name: "signing-keys-leader"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("another-replica"), LeaseDurationSeconds: ptr.To[int32](3600),
			AcquireTime: &metav1.MicroTime{Time: time.Now()}, RenewTime: &metav1.MicroTime{Time: time.Now()}}}
	if err := env.Client.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", LeaderElection: true, LeaderElectionID: lease.Name, LeaderElectionNamespace: lease.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	c, err := signingkey.NewCache(env.Config, env.Scheme, r.secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetInformer(ctx, &corev1.Secret{}); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(c); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	synced, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if !c.WaitForCacheSync(synced) {
		t.Fatal("a replica that is not the leader never started the signing keys cache")
	}
	testenv.Within(t, 30*time.Second, "the replica to read the keys", func() error {
		var sec corev1.Secret
		if err := c.Get(ctx, r.secret, &sec); err != nil {
			return err
		}
		return hasCurrent(set.Current.KeyID)(&sec)
	})
	select {
	case <-mgr.Elected():
		t.Error("the replica took the Lease another holds")
	default:
	}
}
