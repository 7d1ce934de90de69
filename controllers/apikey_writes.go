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

// The write protocol of an APIKey. Every pass writes through commit, in this order, once:
//
//  1. Status, as one merge patch conditional on the resourceVersion the pass read. It records
//     the hash of every key the verifier must accept (the current key, and previous keys with
//     the instant their overlap ends). The precondition is the fence: a stale pass, or a second
//     leader for a moment, fails here and writes nothing else.
//  2. The Secret, derived from that status: the new key's plaintext when the pass made one
//     (create, or replace the data, conditional on the Secret's resourceVersion), the key
//     material removed when the key expired, or labels, annotations, owner and derived data
//     brought in line.
//
// Why status first:
//   - The verifier reads only status. Written first, a rotation makes the new key valid before
//     any workload can read it, while the previous key stays valid for its overlap; so at every
//     instant the Secret holds a key the verifier accepts (with an overlap of 0 the rotation is
//     a cut on purpose).
//   - The plaintext lives in the Secret and in memory only. If the Secret write fails, the key
//     stays in undelivered and the next pass delivers that same key: one new key per rotation.
//     If the process stops between the two writes, the key is lost; the next pass finds the
//     Secret still holding the previous key, still valid, and mints once more, keeping the
//     previous key's overlap as it was (repairSecret).
//   - Secret first would hand workloads a key the verifier does not know yet, and one that is
//     never recorded if the status write then fails.
//
// Phases only decide (and read the apiserver to confirm what the cache may be behind on);
// summarize and the status patch run once a pass, here.

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// commit writes what the pass decided: status, then the Secret.
func (r *APIKeyReconciler) commit(ctx context.Context, s *keyScope) error {
	r.summarize(s)
	if s.fresh != nil {
		// Held before the status write: a write that fails after the apiserver applied it
		// (a lost response) must not lose the key either.
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
	return nil
}

// writeSecret brings the Secret in line with the status just written.
func (r *APIKeyReconciler) writeSecret(ctx context.Context, s *keyScope) error {
	k := s.key
	switch {
	case s.fresh != nil && s.secret == nil:
		created := newKeySecret(k, *s.fresh, k.Status.ApplicationID, k.Status.ExpiresAt)
		if err := r.client.Create(ctx, created); err != nil {
			return err // AlreadyExists: the next pass reads the Secret the cache did not show
		}
		s.secret = created
	case s.fresh != nil:
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
	if err := r.client.Patch(ctx, desired, client.MergeFrom(s.secret)); err != nil {
		return err
	}
	s.secret = desired
	return nil
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
