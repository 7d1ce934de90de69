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

package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The meaning of an APIKey's fields, for every package that needs it (the controllers, the
// verifier, the webhook, the kubectl plugin): each rule is written here once.

// IsEnabled is spec.enabled, true when unset.
func (k *APIKey) IsEnabled() bool { return k.Spec.Enabled == nil || *k.Spec.Enabled }

// SecretNameOrDefault is the Secret the key is delivered in: spec.secretName or <name>-key.
func (k *APIKey) SecretNameOrDefault() string {
	if k.Spec.SecretName != "" {
		return k.Spec.SecretName
	}
	return k.Name + "-key"
}

// IsMinted reports whether a key was ever minted (or taken back) for this APIKey.
func (k *APIKey) IsMinted() bool { return k.Status.Hash != "" }

// ExpiryFor is the instant to record as the key's expiry: spec.expiresAt when set; with
// spec.ttl, the instant fixed at the first mint (status.expiresAt) or, for a key minted at
// mintedAt, mintedAt+ttl. Nil: the key never expires.
func (k *APIKey) ExpiryFor(mintedAt time.Time) *metav1.Time {
	switch {
	case k.Spec.ExpiresAt != nil:
		return k.Spec.ExpiresAt.DeepCopy()
	case k.Spec.TTL != nil && k.Status.ExpiresAt != nil:
		return k.Status.ExpiresAt.DeepCopy()
	case k.Spec.TTL != nil:
		t := metav1.NewTime(mintedAt.Add(k.Spec.TTL.Duration).Truncate(time.Second))
		return &t
	}
	return nil
}

// EffectiveExpiry is the instant the key stops working as the verifier sees it: the earlier of
// status.expiresAt and spec.expiresAt, so a shortened spec.expiresAt takes effect before the
// controller records it. Nil: no expiry.
func (k *APIKey) EffectiveExpiry() *metav1.Time {
	var soonest *metav1.Time
	for _, t := range []*metav1.Time{k.Status.ExpiresAt, k.Spec.ExpiresAt} {
		if t != nil && !t.IsZero() && (soonest == nil || t.Before(soonest)) {
			soonest = t
		}
	}
	return soonest
}

// ExpiredAt reports whether an expiry instant is reached at now: the instant itself is
// already expired. A nil instant never expires.
func ExpiredAt(expiresAt *metav1.Time, now time.Time) bool {
	return expiresAt != nil && !now.Before(expiresAt.Time)
}

// LivePreviousKeys are the rotated-out keys still within their overlap at now.
func (k *APIKey) LivePreviousKeys(now time.Time) []PreviousKey {
	var live []PreviousKey
	for _, p := range k.Status.PreviousKeys {
		if now.Before(p.ValidUntil.Time) {
			live = append(live, p)
		}
	}
	return live
}

// StateAt is the state of a minted key at now, from its spec and status: Expired for good once
// its expiry is reached, Failed for good once its Application was deleted (a minted key fails
// for no other reason), Disabled while spec.enabled is false, Rotating while a previous key is
// in its overlap, Active otherwise.
func (k *APIKey) StateAt(now time.Time) KeyState {
	switch {
	case k.Status.State == KeyExpired, ExpiredAt(k.Status.ExpiresAt, now):
		return KeyExpired
	case k.Status.State == KeyFailed && k.IsMinted():
		return KeyFailed
	case !k.IsEnabled():
		return KeyDisabled
	case len(k.Status.PreviousKeys) > 0:
		return KeyRotating
	}
	return KeyActive
}

// MintClockSkew is how far the operator's clock, which stamps status.mintedAt, may trail the
// apiserver's, which stamps an Application's creationTimestamp: generous, since a key revived
// by a re-applied Application was minted long before it.
const MintClockSkew = 5 * time.Minute

// MintedFor reports whether app is the Application the key was minted for: the very object
// whose UID status.applicationUID records, not merely one of the same name (a deleted
// Application applied again, pinned ID and all, is another object with another UID). A key
// minted before that field existed records no UID: it is taken for app's unless app was created
// after the key was minted, and gets app's UID recorded by the operator's next pass.
func (k *APIKey) MintedFor(app *Application) bool {
	if k.Status.ApplicationUID != "" {
		return k.Status.ApplicationUID == app.UID
	}
	return k.Status.MintedAt == nil || !app.CreatedAfter(k.Status.MintedAt.Time)
}

// CreatedAfter reports whether the Application was created after t, beyond MintClockSkew: a
// key minted (or a key Secret created) at t cannot be one of its keys.
func (a *Application) CreatedAfter(t time.Time) bool {
	return a.CreationTimestamp.After(t.Add(MintClockSkew))
}

// Works reports whether keys of a key in this state may be accepted at all.
func (s KeyState) Works() bool { return s == KeyActive || s == KeyRotating }

// IsEnabled is the metric's enabled, true when unset.
func (m Metric) IsEnabled() bool { return m.Enabled == nil || *m.Enabled }
