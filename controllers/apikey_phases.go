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
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/metrics"
)

// secretWriteGrace is how long after a key replacement a Secret that still holds the replaced
// key (or is missing) is taken for the replacing pass's write still in flight, not an edit.
const secretWriteGrace = 30 * time.Second

// maxPreviousKeys bounds how many rotated-out keys stay valid at once, however often a
// rotation is requested during one overlap.
const maxPreviousKeys = 5

// Each phase returns stop=true when the rest of the pass must not run.

// waitForApplication holds a key that was never minted until its Application has an ID.
// A minted key whose Application went away keeps its lifecycle but is not Ready.
func (r *APIKeyReconciler) waitForApplication(_ context.Context, s *keyScope) (bool, error) {
	if s.app != nil && s.app.Status.ApplicationID != "" {
		return false, nil
	}
	why := &outcome{v1.ReasonApplicationNotFound, fmt.Sprintf(
		"Application %q was not found in namespace %q: create it or fix spec.applicationName; the key is minted as soon as it exists",
		s.key.Spec.ApplicationName, s.key.Namespace)}
	if s.app != nil {
		why.message = fmt.Sprintf("Application %q has no Application ID yet (see its Ready condition); the key is minted as soon as it has one",
			s.key.Spec.ApplicationName)
	}
	s.notReady = why
	return !minted(s.key), nil
}

// expire makes a key Expired at its expiry instant, for good, and empties the key material
// from its Secret. A key never minted whose spec.expiresAt is past is not minted at all.
func (r *APIKeyReconciler) expire(ctx context.Context, s *keyScope) (bool, error) {
	k := s.key
	if !minted(k) {
		if expired(k.Spec.ExpiresAt, s.now) {
			s.failed = &outcome{v1.ReasonExpired, fmt.Sprintf(
				"spec.expiresAt (%s) is already past: set a later time to mint the key", k.Spec.ExpiresAt.UTC().Format(time.RFC3339))}
			return true, nil
		}
		return false, nil
	}
	if k.Status.State != v1.KeyExpired {
		k.Status.ExpiresAt = expiryFor(k, mintedAt(k))
		if !expired(k.Status.ExpiresAt, s.now) {
			return false, nil
		}
		s.event(corev1.EventTypeNormal, v1.ReasonExpired, "Expire", fmt.Sprintf(
			"key %s expired at %s and never becomes valid again; its key material was removed from Secret %s",
			k.Status.Masked, k.Status.ExpiresAt.UTC().Format(time.RFC3339), secretNameFor(k)))
	}
	k.Status.State = v1.KeyExpired
	k.Status.PreviousKeys = nil
	return true, r.stripKeyMaterial(ctx, s)
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

// mint delivers the first key of an APIKey: it adopts a Secret a restored APIKey left behind
// when its token matches the hash recorded on it, and otherwise mints a new key and creates
// the Secret. Creating is the fence: of two operators racing, only one Secret is created.
func (r *APIKeyReconciler) mint(ctx context.Context, s *keyScope) (bool, error) {
	k := s.key
	if minted(k) {
		return false, nil
	}
	name := secretNameFor(k)
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		s.failed = &outcome{v1.ReasonFailed, fmt.Sprintf("the default Secret name %q is not valid (%s): set spec.secretName", name, errs[0])}
		return true, nil
	}
	if s.secret != nil && s.secret.Labels[v1.LabelAPIKey] != k.Name {
		s.failed = secretTaken(name, s.secret)
		return true, nil
	}
	if found, ok := adoptable(s.secret, k, r.format); ok {
		return false, r.adopt(ctx, s, found)
	}

	fresh, err := r.format.Generate()
	if err != nil {
		return false, err
	}
	expiresAt := expiryFor(k, s.now)
	if s.secret != nil {
		// A Secret labelled for this APIKey whose token does not match the hash recorded on
		// it was edited: it is not trusted, and the new key replaces what it holds.
		replaced := s.secret.DeepCopy()
		applySecretMeta(replaced, k, keyformat.Hash(fresh.Token), fresh.KeyID, expiresAt)
		replaced.Data = keyData(fresh, s.app.Status.ApplicationID)
		if err := r.client.Patch(ctx, replaced, client.MergeFromWithOptions(s.secret, client.MergeFromWithOptimisticLock{})); err != nil {
			return false, err
		}
		s.secret = replaced
		s.event(corev1.EventTypeWarning, v1.ReasonSecretReplaced, "Mint", fmt.Sprintf(
			"Secret %s held no key matching the hash recorded on it, so it was not trusted; minted a new key %s into it",
			name, keyformat.Mask(fresh.Token)))
		r.recordMint(metrics.MintReplaced)
	} else {
		created := newKeySecret(k, fresh, s.app.Status.ApplicationID, expiresAt)
		if err := r.client.Create(ctx, created); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return r.secretAlreadyExists(ctx, s, name)
			}
			return false, err
		}
		// Minting is the routine step: the Ready condition (reason Minted) and the mint
		// counter say it; an Event per key would be a third of the writes (DESIGN.md).
		s.secret = created
		r.recordMint(metrics.MintNew)
	}
	r.setCurrentKey(s, fresh, s.now, expiresAt)
	return false, nil
}

// secretAlreadyExists handles a Secret the cache did not show: one labelled for this APIKey
// appears in the cache soon (another replica, or our own earlier pass, created it); any other
// is someone else's and is never touched.
func (r *APIKeyReconciler) secretAlreadyExists(ctx context.Context, s *keyScope, name string) (bool, error) {
	live := &corev1.Secret{}
	if err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: s.key.Namespace, Name: name}, live); err != nil {
		return false, err
	}
	if live.Labels[v1.LabelAPIKey] == s.key.Name {
		s.requeue = true
		return true, nil
	}
	s.failed = secretTaken(name, live)
	return true, nil
}

// secretTaken is the failure for a Secret name that belongs to something else.
func secretTaken(name string, s *corev1.Secret) *outcome {
	if owner := s.Labels[v1.LabelAPIKey]; owner != "" {
		return &outcome{v1.ReasonConflict, fmt.Sprintf(
			"Secret %s already holds the key of APIKey %s: set spec.secretName to another name", name, owner)}
	}
	return &outcome{v1.ReasonConflict, fmt.Sprintf(
		"Secret %s already exists and was not created by Clearance: delete it, or set spec.secretName to another name", name)}
}

// adopt takes over the Secret of an earlier APIKey of the same name (a restore, or a GitOps
// re-apply) without minting: its token was checked against the hash recorded on the Secret.
func (r *APIKeyReconciler) adopt(ctx context.Context, s *keyScope, found keyformat.Key) error {
	k := s.key
	mintedAt := s.secret.CreationTimestamp.Time
	expiresAt := expiryFor(k, mintedAt)
	if k.Spec.ExpiresAt == nil && k.Spec.TTL != nil {
		if t, err := time.Parse(time.RFC3339, s.secret.Annotations[annotationExpiresAt]); err == nil {
			expiresAt = &metav1.Time{Time: t}
		}
	}
	adopted := s.secret.DeepCopy()
	applySecretMeta(adopted, k, keyformat.Hash(found.Token), found.KeyID, expiresAt)
	if err := r.client.Patch(ctx, adopted, client.MergeFromWithOptions(s.secret, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	s.secret = adopted
	s.event(corev1.EventTypeNormal, v1.ReasonMinted, "Adopt", fmt.Sprintf(
		"adopted key %s already in Secret %s (its token matches the hash recorded on it); no new key was minted",
		keyformat.Mask(found.Token), adopted.Name))
	r.recordMint(metrics.MintAdopted)
	r.setCurrentKey(s, found, mintedAt, expiresAt)
	return nil
}

// repairSecret re-mints a key whose Secret was deleted or no longer holds the key whose hash
// status records. The stored hash decides; the Secret is never trusted. Because the cache may
// be behind the operator's own last write, the apiserver confirms before anything is replaced.
func (r *APIKeyReconciler) repairSecret(ctx context.Context, s *keyScope) (bool, error) {
	k := s.key
	if keyformat.Verify(secretToken(s.secret), k.Status.Hash) {
		return false, nil
	}
	liveKey := &v1.APIKey{}
	if err := r.apiReader.Get(ctx, client.ObjectKeyFromObject(k), liveKey); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if liveKey.ResourceVersion != k.ResourceVersion {
		s.requeue = true
		return true, nil
	}
	live := &corev1.Secret{}
	switch err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: secretNameFor(k)}, live); {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return false, err
	}
	if live != nil && keyformat.Verify(secretToken(live), k.Status.Hash) {
		s.requeue = true
		return true, nil
	}
	if replacementInFlight(k, live, s.now) {
		s.requeue = true
		return true, nil
	}
	if live != nil && live.Labels[v1.LabelAPIKey] != k.Name {
		s.notReady = secretTaken(live.Name, live)
		return true, nil
	}
	s.secret = live

	what := "was deleted"
	if live != nil {
		what = "no longer holds the key whose hash is recorded in status"
	}
	fresh, err := r.format.Generate()
	if err != nil {
		return false, err
	}
	old := k.Status.Masked
	k.Status.ReplacedHash = k.Status.Hash
	r.setCurrentKey(s, fresh, s.now, k.Status.ExpiresAt)
	k.Status.PreviousKeys = nil
	if err := r.writeStatusThenSecret(ctx, s, fresh); err != nil {
		return false, err
	}
	s.event(corev1.EventTypeWarning, v1.ReasonSecretReplaced, "Remint", fmt.Sprintf(
		"Secret %s %s, so it was not trusted: minted a new key %s; the previous key %s no longer works",
		secretNameFor(k), what, keyformat.Mask(fresh.Token), old))
	r.recordMint(metrics.MintReplaced)
	return false, nil
}

// replacementInFlight reports whether the key was just replaced and its Secret is still
// missing or holds the replaced key: the pass that replaced it writes the Secret right after
// status, and another pass (a second leader) must not mistake that moment for an edit.
func replacementInFlight(k *v1.APIKey, live *corev1.Secret, now time.Time) bool {
	if k.Status.ReplacedHash == "" || k.Status.MintedAt == nil || now.Sub(k.Status.MintedAt.Time) >= secretWriteGrace {
		return false
	}
	return live == nil || keyformat.Verify(secretToken(live), k.Status.ReplacedHash)
}

// rotate replaces the current key when its rotation is due or was requested; the previous key
// stays valid until the overlap ends.
func (r *APIKeyReconciler) rotate(ctx context.Context, s *keyScope) (bool, error) {
	k := s.key
	due, why := rotationDue(k, s.now)
	if !due {
		return false, nil
	}
	fresh, err := r.format.Generate()
	if err != nil {
		return false, err
	}
	previous := livePreviousKeys(k.Status.PreviousKeys, s.now)
	note := fmt.Sprintf("rotated because %s: new key %s; the previous key %s stopped working", why, keyformat.Mask(fresh.Token), k.Status.Masked)
	if overlap := overlapOf(k); overlap > 0 {
		until := metav1.NewTime(s.now.Add(overlap).Truncate(time.Second))
		previous = append(previous, v1.PreviousKey{KeyID: k.Status.KeyID, Hash: k.Status.Hash, ValidUntil: until})
		if len(previous) > maxPreviousKeys {
			previous = previous[len(previous)-maxPreviousKeys:]
		}
		note = fmt.Sprintf("rotated because %s: new key %s; the previous key %s stays valid until %s",
			why, keyformat.Mask(fresh.Token), k.Status.Masked, until.UTC().Format(time.RFC3339))
	}
	k.Status.ReplacedHash = k.Status.Hash
	r.setCurrentKey(s, fresh, s.now, k.Status.ExpiresAt)
	k.Status.PreviousKeys = previous
	if err := r.writeStatusThenSecret(ctx, s, fresh); err != nil {
		return false, err
	}
	s.event(corev1.EventTypeNormal, v1.ReasonRotating, "Rotate", note)
	r.recordMint(metrics.MintRotated)
	return false, nil
}

// writeStatusThenSecret replaces the key of a minted APIKey. The status write, conditional on
// the resourceVersion read, is the fence: a stale pass or a second leader fails there and never
// reaches the Secret. A crash between the two leaves a Secret that does not match the recorded
// hash, which the next pass repairs (with a Warning) rather than trusts.
func (r *APIKeyReconciler) writeStatusThenSecret(ctx context.Context, s *keyScope, fresh keyformat.Key) error {
	r.summarize(s)
	if err := r.patchStatus(ctx, s.orig, s.key); err != nil {
		return err
	}
	s.statusWritten = true
	k := s.key
	appID := k.Status.ApplicationID
	if s.secret == nil {
		created := newKeySecret(k, fresh, appID, k.Status.ExpiresAt)
		if err := r.client.Create(ctx, created); err != nil {
			return err
		}
		s.secret = created
		return nil
	}
	replaced := s.secret.DeepCopy()
	applySecretMeta(replaced, k, k.Status.Hash, k.Status.KeyID, k.Status.ExpiresAt)
	replaced.Data = keyData(fresh, appID)
	if err := r.client.Patch(ctx, replaced, client.MergeFrom(s.secret)); err != nil {
		return err
	}
	s.secret = replaced
	return nil
}

// syncSecret keeps the Secret's labels, annotations, owner and derived data (access-key,
// secret-key, authorization, application-id) in line with the key it holds.
func (r *APIKeyReconciler) syncSecret(ctx context.Context, s *keyScope) (bool, error) {
	k := s.key
	if s.app != nil && s.app.Status.ApplicationID != "" {
		k.Status.ApplicationID = s.app.Status.ApplicationID
	}
	current, err := r.format.Parse(secretToken(s.secret))
	if err != nil || s.statusWritten {
		return false, nil
	}
	desired := s.secret.DeepCopy()
	applySecretMeta(desired, k, k.Status.Hash, k.Status.KeyID, k.Status.ExpiresAt)
	desired.Data = keyData(current, k.Status.ApplicationID)
	if equality.Semantic.DeepEqual(desired.ObjectMeta, s.secret.ObjectMeta) && equality.Semantic.DeepEqual(desired.Data, s.secret.Data) &&
		desired.Type == s.secret.Type {
		return false, nil
	}
	if err := r.client.Patch(ctx, desired, client.MergeFrom(s.secret)); err != nil {
		return false, err
	}
	s.secret = desired
	return false, nil
}

// setCurrentKey records a key's public facts in status.
func (r *APIKeyReconciler) setCurrentKey(s *keyScope, k keyformat.Key, mintedAt time.Time, expiresAt *metav1.Time) {
	st := &s.key.Status
	st.KeyID = k.KeyID
	st.Masked = keyformat.Mask(k.Token)
	st.Hash = keyformat.Hash(k.Token)
	st.MintedAt = &metav1.Time{Time: mintedAt.Truncate(time.Second)}
	st.ExpiresAt = expiresAt
	st.SecretName = secretNameFor(s.key)
	st.LastRotationRequest = s.key.Annotations[v1.AnnotationRotateRequestedAt]
	if s.app != nil && s.app.Status.ApplicationID != "" {
		st.ApplicationID = s.app.Status.ApplicationID
	}
}

func (r *APIKeyReconciler) recordMint(reason string) {
	if r.metrics != nil {
		r.metrics.Mints.WithLabelValues(reason).Inc()
	}
}
