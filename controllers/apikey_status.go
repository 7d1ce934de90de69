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
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// Pure decisions about one APIKey: no client, no clock, tested as tables.

// rotationRequested reports whether the rotate-now annotation holds a request not yet handled.
func rotationRequested(key *v1.APIKey) bool {
	req := key.Annotations[v1.AnnotationRotateRequestedAt]
	return req != "" && req != key.Status.LastRotationRequest
}

// invalidationRequested reports whether the invalidate-now annotation holds a request not yet
// handled: a rotation that ends every earlier key at once.
func invalidationRequested(key *v1.APIKey) bool {
	req := key.Annotations[v1.AnnotationInvalidateRequestedAt]
	return req != "" && req != key.Status.LastInvalidationRequest
}

// nextRotation is when the scheduled rotation of the current key is due, or zero without one.
// A period that is not positive (the schema forbids it; an old CRD might not) schedules nothing,
// rather than a rotation on every pass.
func nextRotation(key *v1.APIKey) time.Time {
	if key.Spec.Rotation == nil || key.Status.MintedAt == nil || key.Spec.Rotation.Every.Duration <= 0 {
		return time.Time{}
	}
	return key.Status.MintedAt.Add(key.Spec.Rotation.Every.Duration)
}

// mintedAt is when the current key was minted; a status restored without it counts from the
// APIKey's creation.
func mintedAt(key *v1.APIKey) time.Time {
	if key.Status.MintedAt != nil {
		return key.Status.MintedAt.Time
	}
	return key.CreationTimestamp.Time
}

// rotationDue reports whether the current key must be replaced now, and why.
func rotationDue(key *v1.APIKey, now time.Time) (bool, string) {
	if invalidationRequested(key) {
		return true, "an immediate rotation was requested with the " + v1.AnnotationInvalidateRequestedAt + " annotation"
	}
	if rotationRequested(key) {
		return true, "rotation was requested with the " + v1.AnnotationRotateRequestedAt + " annotation"
	}
	if next := nextRotation(key); !next.IsZero() && !now.Before(next) {
		return true, "rotation.every (" + key.Spec.Rotation.Every.Duration.String() + ") has passed since the key was minted"
	}
	return false, ""
}

// overlapOf is how long a rotated-out key stays valid.
func overlapOf(key *v1.APIKey) time.Duration {
	if key.Spec.Rotation == nil || key.Spec.Rotation.Overlap == nil {
		return 0
	}
	return key.Spec.Rotation.Overlap.Duration
}

// requeueAfter is the time until the next instant something changes on its own: expiry, the
// next scheduled rotation, or the end of an overlap. Zero means nothing is scheduled.
func requeueAfter(key *v1.APIKey, now time.Time) time.Duration {
	var soonest time.Duration
	consider := func(t time.Time) {
		if t.IsZero() {
			return
		}
		d := t.Sub(now)
		if d <= 0 {
			d = time.Nanosecond
		}
		if soonest == 0 || d < soonest {
			soonest = d
		}
	}
	if key.Status.State == v1.KeyExpired || key.Status.State == v1.KeyFailed {
		return 0
	}
	if key.Status.ExpiresAt != nil {
		consider(key.Status.ExpiresAt.Time)
	}
	consider(nextRotation(key))
	for _, p := range key.Status.PreviousKeys {
		consider(p.ValidUntil.Time)
	}
	return soonest
}

// applicationLost says why a minted key's Application is gone for good, "" while it is there:
// ApplicationDeleted when none of the key's name exists or it is being deleted,
// ApplicationReplaced when the one there is not the object the key was minted for (it was
// deleted and applied again). A key once failed for it stays failed, whatever is applied later.
func applicationLost(key *v1.APIKey, app *v1.Application) string {
	switch {
	case !key.IsMinted() || key.Status.State == v1.KeyExpired:
		return ""
	case app == nil || app.DeletionTimestamp != nil:
		return v1.ReasonApplicationDeleted
	case key.Status.State == v1.KeyFailed, !key.MintedFor(app):
		return v1.ReasonApplicationReplaced
	}
	return ""
}

// applicationLostMessage is the Ready message of a key whose Application is gone for good, with
// what the platform engineer does next.
func applicationLostMessage(key *v1.APIKey, reason string) string {
	which := fmt.Sprintf("Application %q", key.Spec.ApplicationName)
	if uid := key.Status.ApplicationUID; uid != "" {
		which = fmt.Sprintf("Application %q (UID %s)", key.Spec.ApplicationName, uid)
	}
	what := "was deleted"
	if reason == v1.ReasonApplicationReplaced {
		what = "was deleted and an Application of the same name was created since"
	}
	return fmt.Sprintf("%s, which key %s was minted for, %s, so the key is revoked for good and its key material was removed from Secret %s; "+
		"delete this APIKey and apply it again to mint a new key", which, key.Status.Masked, what, key.SecretNameOrDefault())
}

// keyCondition is the Ready condition of a key, from its state and what the pass found.
func keyCondition(key *v1.APIKey, notReady, failed *outcome) (metav1.ConditionStatus, string, string) {
	st := key.Status
	switch {
	case failed != nil:
		return metav1.ConditionFalse, failed.reason, failed.message
	case !key.IsMinted() && notReady != nil:
		return metav1.ConditionFalse, notReady.reason, notReady.message
	case st.State == v1.KeyExpired:
		when := ""
		if st.ExpiresAt != nil {
			when = " at " + st.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return metav1.ConditionFalse, v1.ReasonExpired, "the key expired" + when +
			" and never becomes valid again: create a new APIKey for a new key"
	case notReady != nil:
		return metav1.ConditionFalse, notReady.reason, notReady.message
	case st.State == v1.KeyDisabled:
		return metav1.ConditionFalse, v1.ReasonDisabled, "spec.enabled is false, so the verifier refuses key " + st.Masked +
			"; set it to true to restore the same key"
	case st.State == v1.KeyRotating:
		last := st.PreviousKeys[len(st.PreviousKeys)-1]
		return metav1.ConditionTrue, v1.ReasonRotating, "key " + st.Masked + " is active; the previous key " + last.KeyID +
			" stays valid until " + last.ValidUntil.UTC().Format(time.RFC3339)
	}
	return metav1.ConditionTrue, v1.ReasonMinted, "key " + st.Masked + " is active and delivered in Secret " + st.SecretName
}
