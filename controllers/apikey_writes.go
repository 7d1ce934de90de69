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

// The write protocol of an APIKey. Every pass decides first (the phases) and writes last,
// through commit, once: one status patch, conditional on the resourceVersion the pass read, and
// one Secret write, conditional too. Status is the record of the keys the verifier accepts (it
// reads nothing else); the Secret is where the key is delivered. The rule that orders the two
// writes: a key is never lost, and the key a workload may hold is never refused before its
// overlap ends. So:
//
//   - The first key of an APIKey (new, or replacing the revoked key a Secret left by an earlier
//     APIKey holds) is delivered, then recorded: the Secret is created (the fence: of two
//     operators racing, one creates it, the other gets AlreadyExists) or replaced with a
//     resourceVersion precondition, then status records its hash. Nobody holds a key yet, so
//     nothing can be refused meanwhile; if the process stops between the two, the next pass
//     finds a Secret whose controller owner is this very APIKey and takes its key back: the
//     key recorded is the one delivered.
//   - Every later key (rotation, repair of a deleted or edited Secret) is recorded, then
//     delivered: status first records the new key and keeps the previous one valid for its
//     overlap, so at every instant the Secret holds a key the verifier accepts; then the Secret
//     gets the new key. Secret first would hand workloads a key the verifier does not know yet.
//     If the Secret write fails, the key stays in undelivered and the next pass delivers that
//     same key: one new key per rotation. If the process stops between the two writes, the key
//     is lost; the next pass finds the Secret still holding the previous key, still valid, and
//     mints once more, leaving that overlap as it was (repairSecret).
//   - Anything else (disable, expiry, labels) is status, then the Secret brought in line:
//     the expired key's material removed, metadata and derived data synced.
//   - A key revoked with its Application is status (Failed, and why), then its Secret emptied,
//     then the APIKey deleted, conditional on the UID and resourceVersion the status write left:
//     if the process stops between two of them, the next pass finds the key Failed and goes on.
//
// summarize and the status patch run once a pass, here; events are emitted once the status
// they describe is written.

import (
	"cmp"
	"context"
	"errors"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// commit writes what the pass decided, in the order of the protocol above.
func (r *APIKeyReconciler) commit(ctx context.Context, s *keyScope) error {
	if s.fresh != nil && !s.orig.IsMinted() {
		return r.commitFirstKey(ctx, s)
	}
	r.summarize(s)
	if s.fresh != nil {
		// Held before the status write: a write that fails after the apiserver applied it
		// (a lost answer) must not lose the key either.
		r.undelivered.hold(s.key, *s.fresh)
	}
	if err := r.patchStatus(ctx, s.orig, s.key); err != nil {
		return err
	}
	// What status now records has happened: say it, even if the Secret write below fails
	// (the next pass delivers the same key, and has nothing new to say).
	r.report(s)
	if err := r.writeSecret(ctx, s); err != nil {
		return err
	}
	if s.fresh != nil {
		r.undelivered.forget(client.ObjectKeyFromObject(s.key))
	}
	r.recordMint(s.mint)
	if s.remove {
		return r.deleteKey(ctx, s.key)
	}
	return nil
}

// deleteKey deletes an APIKey revoked with its Application, only if it is still the object
// this pass judged (same UID, same resourceVersion); its Secret goes with it by its owner
// reference.
func (r *APIKeyReconciler) deleteKey(ctx context.Context, k *v1.APIKey) error {
	uid, version := k.UID, k.ResourceVersion
	err := r.client.Delete(ctx, k, client.Preconditions{UID: &uid, ResourceVersion: &version})
	return client.IgnoreNotFound(err)
}

// commitFirstKey delivers the first key of an APIKey, then records it.
func (r *APIKeyReconciler) commitFirstKey(ctx context.Context, s *keyScope) error {
	if err := r.writeSecret(ctx, s); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		// A Secret the cache does not show: Clearance's (another replica, or an earlier
		// pass, wrote it; the next pass takes its key back), or someone else's.
		live := &corev1.Secret{}
		if err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: s.key.Namespace, Name: s.key.SecretNameOrDefault()}, live); err != nil {
			return err
		}
		if live.Labels[v1.LabelAPIKey] == s.key.Name {
			return err
		}
		s.key.Status = *s.orig.Status.DeepCopy()
		s.fresh, s.mint, s.events = nil, "", nil
		s.failed = secretTaken(live.Name, live)
	} else {
		// The Secret holds the new key now, whatever becomes of the status write below: what
		// the pass says about what it held (a revoked key, or one not trusted) is true already,
		// and after a failed status write the next pass finds its own key there and takes it
		// back without a word.
		r.emit(s)
	}
	r.summarize(s)
	if err := r.patchStatus(ctx, s.orig, s.key); err != nil {
		return err
	}
	r.report(s)
	r.recordMint(s.mint)
	return nil
}

// writeSecret brings the Secret in line with the status of the pass.
func (r *APIKeyReconciler) writeSecret(ctx context.Context, s *keyScope) error {
	k := s.key
	switch {
	case s.fresh != nil && s.secret == nil:
		created := newKeySecret(k, *s.fresh, k.Status.ApplicationID, k.Status.ExpiresAt)
		if err := r.client.Create(ctx, created); err != nil {
			return err
		}
		s.secret = created
	case s.fresh != nil:
		if !controls(k, s.secret) {
			if live, err := r.stillLive(ctx, k); !live {
				return cmp.Or(err, errNotLive)
			}
		}
		replaced := s.secret.DeepCopy()
		applySecretMeta(replaced, k, k.Status.Hash, k.Status.KeyID, k.Status.ExpiresAt)
		replaced.Data = keyData(*s.fresh, k.Status.ApplicationID)
		if err := r.client.Patch(ctx, replaced, client.MergeFromWithOptions(s.secret, client.MergeFromWithOptimisticLock{})); err != nil {
			return err
		}
		s.secret = replaced
	case s.strip:
		return r.stripKeyMaterial(ctx, s)
	case s.secret != nil && keyformat.Verify(secretToken(s.secret), k.Status.Hash):
		return r.syncSecret(ctx, s)
	}
	return nil
}

// syncSecret keeps the Secret's labels, annotations, owner and derived data (access-key,
// secret-key, authorization, application-id) in line with the key it holds.
func (r *APIKeyReconciler) syncSecret(ctx context.Context, s *keyScope) error {
	k := s.key
	current, err := r.format.Parse(secretToken(s.secret))
	if err != nil {
		return nil
	}
	desired := s.secret.DeepCopy()
	applySecretMeta(desired, k, k.Status.Hash, k.Status.KeyID, k.Status.ExpiresAt)
	desired.Data = keyData(current, k.Status.ApplicationID)
	if equality.Semantic.DeepEqual(desired.ObjectMeta, s.secret.ObjectMeta) && equality.Semantic.DeepEqual(desired.Data, s.secret.Data) &&
		desired.Type == s.secret.Type {
		return nil
	}
	patch := client.MergeFrom(s.secret)
	if !controls(k, s.secret) {
		if live, err := r.stillLive(ctx, k); !live {
			return err
		}
		// Conditional on the Secret read: a garbage collector's orphaning that lands between
		// the confirmation and this write makes it fail, never undone by it.
		patch = client.MergeFromWithOptions(s.secret, client.MergeFromWithOptimisticLock{})
	}
	if err := r.client.Patch(ctx, desired, patch); err != nil {
		return err
	}
	s.secret = desired
	return nil
}

// errNotLive fails a pass whose APIKey the apiserver no longer has, or is deleting, while the
// cache still showed it: the next pass, from a cache that has caught up, leaves it alone.
var errNotLive = errors.New("the APIKey is being deleted or was replaced since the cache showed it; its Secret is left as it is")

// controls reports whether the Secret's controller owner reference names this very APIKey.
func controls(k *v1.APIKey, secret *corev1.Secret) bool {
	owner := metav1.GetControllerOfNoCopy(secret)
	return owner != nil && owner.UID == k.UID
}

// stillLive reports whether the apiserver still has this very APIKey (same UID), not being
// deleted. A write that makes an APIKey the controller of a Secret it does not control yet asks
// first, because the cache may be behind a delete: kubectl delete --cascade=orphan has the
// garbage collector remove the APIKey's owner reference from its Secret before the APIKey goes,
// and an owner reference put back by a pass that does not see the delete yet makes the
// collector delete the Secret, and with it the key a restore would take back.
func (r *APIKeyReconciler) stillLive(ctx context.Context, k *v1.APIKey) (bool, error) {
	live := &v1.APIKey{}
	if err := r.apiReader.Get(ctx, client.ObjectKeyFromObject(k), live); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return live.UID == k.UID && live.DeletionTimestamp.IsZero(), nil
}

// stripKeyMaterial removes every data key that carries the key from the Secret.
func (r *APIKeyReconciler) stripKeyMaterial(ctx context.Context, s *keyScope) error {
	if s.secret == nil {
		return nil
	}
	stripped := s.secret.DeepCopy()
	for _, d := range keyMaterial {
		delete(stripped.Data, d)
	}
	if equality.Semantic.DeepEqual(stripped.Data, s.secret.Data) {
		return nil
	}
	return r.client.Patch(ctx, stripped, client.MergeFrom(s.secret))
}

// undelivered holds, for each APIKey, the key a pass recorded in status whose Secret write has
// not succeeded yet, so the next pass delivers that key instead of minting another. It lives
// in the operator's memory only (as the cached Secrets do) and holds at most one key per
// APIKey; an entry whose hash status no longer records is dropped when next looked at.
type undelivered struct {
	mu   sync.Mutex
	keys map[types.NamespacedName]heldKey
}

type heldKey struct {
	uid types.UID
	key keyformat.Key
}

func (u *undelivered) hold(k *v1.APIKey, key keyformat.Key) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.keys == nil {
		u.keys = map[types.NamespacedName]heldKey{}
	}
	u.keys[client.ObjectKeyFromObject(k)] = heldKey{uid: k.UID, key: key}
}

// take returns the held key of this APIKey if status records it as the current key.
func (u *undelivered) take(k *v1.APIKey) (keyformat.Key, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	name := client.ObjectKeyFromObject(k)
	held, ok := u.keys[name]
	if !ok {
		return keyformat.Key{}, false
	}
	if held.uid != k.UID || !keyformat.Verify(held.key.Token, k.Status.Hash) {
		delete(u.keys, name)
		return keyformat.Key{}, false
	}
	return held.key, true
}

func (u *undelivered) forget(name types.NamespacedName) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.keys, name)
}
