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

// Each phase decides and returns stop=true when the rest of the pass must not decide more; it
// writes nothing (commit does, apikey_writes.go).

// waitForApplication holds a key that was never minted until its Application has an ID.
// A minted key whose Application went away keeps its lifecycle but is not Ready; so does one
// whose Application is switched off (spec.enabled false): the verifier refuses it meanwhile,
// and it keeps its key and state, so switching the Application on restores it at once.
func (r *APIKeyReconciler) waitForApplication(_ context.Context, s *keyScope) (bool, error) {
	if s.app != nil && s.app.Status.ApplicationID != "" {
		if !s.app.IsEnabled() {
			s.notReady = &outcome{v1.ReasonApplicationDisabled, fmt.Sprintf(
				"Application %q has spec.enabled false, so the verifier refuses every key of it in every org; set it to true to restore the same keys",
				s.app.Name)}
		}
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
	return !s.key.IsMinted(), nil
}

// keepApplication revokes, for good, a minted key whose Application is gone: deleted, or
// replaced by another object of the same name (a re-apply, even with the same pinned ID). The
// key fails, its key material leaves its Secret, and nothing re-mints it or takes it back for
// the new Application; then the APIKey is deleted, as the garbage collector would delete what
// an owner takes with it (GitOps applies it again, and it is minted anew for the Application
// there then). The decision is final, so the apiserver confirms what the cache shows first. A
// key minted before status.applicationUID existed gets its Application's UID recorded here.
func (r *APIKeyReconciler) keepApplication(ctx context.Context, s *keyScope) (bool, error) {
	k := s.key
	reason := applicationLost(k, s.app)
	if reason == "" {
		if k.IsMinted() && k.Status.ApplicationUID == "" && s.app != nil {
			k.Status.ApplicationUID = s.app.UID
		}
		return false, nil
	}
	if k.Status.State != v1.KeyFailed {
		live := &v1.Application{}
		switch err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Spec.ApplicationName}, live); {
		case apierrors.IsNotFound(err):
			live = nil
		case err != nil:
			return false, err
		}
		if reason = applicationLost(k, live); reason == "" {
			s.requeue = true // the cache is behind the apiserver
			return true, nil
		}
	}
	s.failed = &outcome{reason, applicationLostMessage(k, reason)}
	k.Status.PreviousKeys = nil
	s.strip, s.remove = true, true
	return true, nil
}

// expire makes a key Expired at its expiry instant, for good, and has the key material
// removed from its Secret. A key never minted whose spec.expiresAt is past is not minted.
func (r *APIKeyReconciler) expire(_ context.Context, s *keyScope) (bool, error) {
	k := s.key
	if !k.IsMinted() {
		if v1.ExpiredAt(k.Spec.ExpiresAt, s.now) {
			s.failed = &outcome{v1.ReasonExpired, fmt.Sprintf(
				"spec.expiresAt (%s) is already past: set a later time to mint the key", k.Spec.ExpiresAt.UTC().Format(time.RFC3339))}
			return true, nil
		}
		return false, nil
	}
	if k.Status.State != v1.KeyExpired {
		// Once the recorded instant has passed the key is expired, recorded yet or not (the
		// verifier refuses it from that instant): a spec edited since cannot move it later.
		if !v1.ExpiredAt(k.Status.ExpiresAt, s.now) {
			k.Status.ExpiresAt = k.ExpiryFor(mintedAt(k))
		}
		if !v1.ExpiredAt(k.Status.ExpiresAt, s.now) {
			return false, nil
		}
		s.event(corev1.EventTypeNormal, v1.ReasonExpired, "Expire", fmt.Sprintf(
			"key %s expired at %s and never becomes valid again; its key material was removed from Secret %s",
			k.Status.Masked, k.Status.ExpiresAt.UTC().Format(time.RFC3339), k.SecretNameOrDefault()))
	}
	k.Status.State = v1.KeyExpired
	k.Status.PreviousKeys = nil
	s.strip = true
	return true, nil
}

// mint makes the first key of an APIKey, or takes back the key of a Secret that this very
// APIKey owns (its status was lost) or that a person named on it (a restore from backup).
// A key left in a Secret by an earlier APIKey of the same name was revoked with it: it is
// never taken back by itself, and a new key replaces it with a Warning.
func (r *APIKeyReconciler) mint(_ context.Context, s *keyScope) (bool, error) {
	k := s.key
	if k.IsMinted() {
		return false, nil
	}
	name := k.SecretNameOrDefault()
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		s.failed = &outcome{v1.ReasonFailed, fmt.Sprintf("the default Secret name %q is not valid (%s): set spec.secretName", name, errs[0])}
		return true, nil
	}
	if s.secret != nil && s.secret.Labels[v1.LabelAPIKey] != k.Name {
		s.failed = secretTaken(name, s.secret)
		return true, nil
	}
	found, verdict := adoptable(s.secret, k, r.format)
	if verdict == adoptOwned && s.app.CreatedAfter(s.secret.CreationTimestamp.Time) {
		// Its key was minted for an earlier Application of that name, deleted since.
		verdict = adoptReplaced
	}
	if verdict == adoptOwned || verdict == adoptRequested {
		r.adopt(s, found, verdict)
		return true, nil
	}

	fresh, err := r.format.Generate()
	if err != nil {
		return false, err
	}
	r.setCurrentKey(s, fresh, s.now, k.ExpiryFor(s.now))
	s.fresh, s.mint = &fresh, metrics.MintNew
	named := k.Annotations[v1.AnnotationAdoptKeyID]
	if named != "" {
		if keyformat.ValidKeyID(named) {
			named = "key " + named
		} else {
			// Never repeated: it may be a whole token pasted where its key id belongs.
			named = fmt.Sprintf("a value that is no key id (%d letters and digits)", keyformat.KeyIDLen)
		}
	}
	switch verdict {
	case adoptNone:
		if named != "" {
			// A restore asked for a key that no Secret holds (the Secret restored after the
			// APIKey, or not at all): say so, rather than mint as if nothing was asked.
			s.event(corev1.EventTypeWarning, v1.ReasonKeyNotAdopted, "Mint", fmt.Sprintf(
				"the annotation %s names %s, but Secret %s does not exist: minted a new key %s into a new Secret "+
					"(a key is taken back only from its Secret, restored before the APIKey)",
				v1.AnnotationAdoptKeyID, named, name, keyformat.Mask(fresh.Token)))
		}
	case adoptRetired:
		s.mint = metrics.MintReplaced
		advice := fmt.Sprintf("to restore a key from a backup, set the annotation %s to its key ID on the APIKey before it is minted", v1.AnnotationAdoptKeyID)
		if named != "" {
			advice = fmt.Sprintf("the annotation %s names %s, which this Secret does not hold", v1.AnnotationAdoptKeyID, named)
		}
		s.event(corev1.EventTypeWarning, v1.ReasonKeyNotAdopted, "Mint", fmt.Sprintf(
			"Secret %s holds key %s of an earlier APIKey %s that was deleted, and a revoked key never comes back: minted a new key %s into it (%s)",
			name, s.secret.Annotations[annotationKeyID], k.Name, keyformat.Mask(fresh.Token), advice))
	case adoptReplaced:
		s.mint = metrics.MintReplaced
		s.event(corev1.EventTypeWarning, v1.ReasonKeyNotAdopted, "Mint", fmt.Sprintf(
			"Secret %s holds key %s, minted for an earlier Application %q that was deleted (the one there now was created after the Secret), "+
				"and a deleted Application's keys never come back: minted a new key %s into it",
			name, s.secret.Annotations[annotationKeyID], k.Spec.ApplicationName, keyformat.Mask(fresh.Token)))
	case adoptUntrusted:
		// A Secret labelled for this APIKey whose token does not match the hash recorded on
		// it was edited: it is not trusted, and the new key replaces what it holds.
		s.mint = metrics.MintReplaced
		s.event(corev1.EventTypeWarning, v1.ReasonSecretReplaced, "Mint", fmt.Sprintf(
			"Secret %s held no key matching the hash recorded on it, so it was not trusted; minted a new key %s into it",
			name, keyformat.Mask(fresh.Token)))
	}
	// Minting is the routine step: the Ready condition (reason Minted) and the mint counter
	// say it; an Event per key would be a third of the writes.
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

// adopt records the key a Secret holds as this APIKey's, without minting: the Secret is this
// APIKey's own or a person asked for its key, and its token matches the hash recorded on it.
func (r *APIKeyReconciler) adopt(s *keyScope, found keyformat.Key, verdict adoptVerdict) {
	k := s.key
	mintedAt := s.secret.CreationTimestamp.Time
	expiresAt := k.ExpiryFor(mintedAt)
	if k.Spec.ExpiresAt == nil && k.Spec.TTL != nil {
		// The instant recorded when the key was minted, not the ttl counted again from the
		// Secret's creation (a restored Secret is newer than its key). The annotation is not
		// covered by the key's hash: it may only bring the expiry closer, never push it past
		// the ttl from the Secret's creation.
		if t, err := time.Parse(time.RFC3339, s.secret.Annotations[annotationExpiresAt]); err == nil && t.Before(expiresAt.Time) {
			expiresAt = &metav1.Time{Time: t}
		}
	}
	why := "the Secret is owned by this APIKey"
	if verdict == adoptRequested {
		why = "the annotation " + v1.AnnotationAdoptKeyID + " names it"
	}
	s.event(corev1.EventTypeNormal, v1.ReasonMinted, "Adopt", fmt.Sprintf(
		"took back key %s already in Secret %s (%s, and its token matches the hash recorded on it); no new key was minted",
		keyformat.Mask(found.Token), s.secret.Name, why))
	s.mint = metrics.MintAdopted
	r.setCurrentKey(s, found, mintedAt, expiresAt)
}

// repairSecret makes sure the Secret holds the key whose hash status records. The stored
// hash decides; the Secret is never trusted. A key the last pass recorded but could not
// deliver is delivered now. Otherwise, because the cache may be behind the operator's own last
// write, the apiserver confirms before anything is replaced.
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
	switch err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.SecretNameOrDefault()}, live); {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return false, err
	}
	if live != nil && keyformat.Verify(secretToken(live), k.Status.Hash) {
		s.requeue = true
		return true, nil
	}
	if live != nil && live.Labels[v1.LabelAPIKey] != k.Name {
		s.notReady = secretTaken(live.Name, live)
		return true, nil
	}
	if held, ok := r.undelivered.take(k); ok {
		s.secret, s.fresh, s.mint = live, &held, metrics.MintNew
		if k.Status.ReplacedHash != "" {
			s.mint = metrics.MintRotated
		}
		return true, nil
	}
	if replacementInFlight(k, live, s.now) {
		s.requeue = true
		return true, nil
	}
	s.secret = live

	fresh, err := r.format.Generate()
	if err != nil {
		return false, err
	}
	old := k.Status.Masked
	s.fresh, s.mint = &fresh, metrics.MintReplaced
	if prev, ok := heldPreviousKey(live, k, s.now); ok {
		// The pass that recorded the current key stopped before delivering it: the Secret still
		// holds the previous key, valid until its overlap ends. Deliver a new current key and
		// leave that overlap as it was.
		r.setCurrentKey(s, fresh, s.now, k.Status.ExpiresAt)
		s.event(corev1.EventTypeWarning, v1.ReasonSecretReplaced, "Remint", fmt.Sprintf(
			"key %s was recorded but never reached Secret %s (the operator stopped between the two writes): minted key %s into it; "+
				"the previous key %s stays valid until %s",
			old, k.SecretNameOrDefault(), keyformat.Mask(fresh.Token), prev.KeyID, prev.ValidUntil.UTC().Format(time.RFC3339)))
		return true, nil
	}
	what := "was deleted"
	if live != nil {
		what = "no longer holds the key whose hash is recorded in status"
	}
	k.Status.ReplacedHash = k.Status.Hash
	r.setCurrentKey(s, fresh, s.now, k.Status.ExpiresAt)
	k.Status.PreviousKeys = nil
	s.event(corev1.EventTypeWarning, v1.ReasonSecretReplaced, "Remint", fmt.Sprintf(
		"Secret %s %s, so it was not trusted: minted a new key %s; the previous key %s no longer works",
		k.SecretNameOrDefault(), what, keyformat.Mask(fresh.Token), old))
	return true, nil
}

// heldPreviousKey reports whether the Secret holds one of the rotated-out keys still valid.
func heldPreviousKey(live *corev1.Secret, k *v1.APIKey, now time.Time) (v1.PreviousKey, bool) {
	token := secretToken(live)
	for _, p := range k.LivePreviousKeys(now) {
		if keyformat.Verify(token, p.Hash) {
			return p, true
		}
	}
	return v1.PreviousKey{}, false
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

// rotate replaces the current key when its rotation is due or was requested. The previous key
// stays valid until the overlap ends; an invalidation ends it, and every earlier key, at once.
func (r *APIKeyReconciler) rotate(_ context.Context, s *keyScope) (bool, error) {
	k := s.key
	due, why := rotationDue(k, s.now)
	if !due {
		return false, nil
	}
	fresh, err := r.format.Generate()
	if err != nil {
		return false, err
	}
	previous := k.LivePreviousKeys(s.now)
	note := fmt.Sprintf("rotated because %s: new key %s; the previous key %s stopped working", why, keyformat.Mask(fresh.Token), k.Status.Masked)
	switch overlap := overlapOf(k); {
	case invalidationRequested(k):
		previous = nil
		note = fmt.Sprintf("rotated because %s: new key %s; the previous key %s and every earlier key of this APIKey stopped working",
			why, keyformat.Mask(fresh.Token), k.Status.Masked)
	case overlap > 0:
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
	s.fresh, s.mint = &fresh, metrics.MintRotated
	s.event(corev1.EventTypeNormal, v1.ReasonRotating, "Rotate", note)
	return true, nil
}

// setCurrentKey records a key's public facts in status.
func (r *APIKeyReconciler) setCurrentKey(s *keyScope, k keyformat.Key, mintedAt time.Time, expiresAt *metav1.Time) {
	st := &s.key.Status
	st.KeyID = k.KeyID
	st.Masked = keyformat.Mask(k.Token)
	st.Hash = keyformat.Hash(k.Token)
	st.MintedAt = &metav1.Time{Time: mintedAt.Truncate(time.Second)}
	st.ExpiresAt = expiresAt
	st.SecretName = s.key.SecretNameOrDefault()
	st.LastRotationRequest = s.key.Annotations[v1.AnnotationRotateRequestedAt]
	st.LastInvalidationRequest = s.key.Annotations[v1.AnnotationInvalidateRequestedAt]
	if s.app != nil && s.app.Status.ApplicationID != "" {
		st.ApplicationID = s.app.Status.ApplicationID
		st.ApplicationUID = s.app.UID
	}
}

func (r *APIKeyReconciler) recordMint(reason string) {
	if r.metrics != nil && reason != "" {
		r.metrics.Mints.WithLabelValues(reason).Inc()
	}
}
