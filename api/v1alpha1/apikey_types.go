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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// KeyState is where an APIKey is in its life.
// +kubebuilder:validation:Enum=Pending;Active;Disabled;Expired;Rotating;Failed
type KeyState string

const (
	// KeyPending: the key has not been minted yet.
	KeyPending KeyState = "Pending"
	// KeyActive: the key is minted, enabled and unexpired.
	KeyActive KeyState = "Active"
	// KeyDisabled: the key is kept but refused until spec.enabled is true again.
	KeyDisabled KeyState = "Disabled"
	// KeyExpired: the key reached its expiry and never becomes valid again.
	KeyExpired KeyState = "Expired"
	// KeyRotating: a new key is active and the previous one is still valid for the overlap.
	KeyRotating KeyState = "Rotating"
	// KeyFailed: the key cannot be minted until the user fixes something (see conditions), or,
	// once minted, its Application was deleted and the key is revoked for good.
	KeyFailed KeyState = "Failed"
)

// APIKeySpec declares one credential of an Application in the same namespace.
// +kubebuilder:validation:XValidation:rule="!(has(self.expiresAt) && has(self.ttl))",message="set either spec.expiresAt or spec.ttl, not both",fieldPath=".ttl"
// +kubebuilder:validation:XValidation:rule="self.applicationName == oldSelf.applicationName",message="spec.applicationName cannot change: create a new APIKey for the other application",fieldPath=".applicationName"
type APIKeySpec struct {
	// applicationName is the Application (in this namespace) the key belongs to.
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="applicationName must be the metadata.name of an Application in this namespace (lowercase letters, digits, '-' and '.')"
	ApplicationName string `json:"applicationName"`

	// description says what the key is for, e.g. prod exporter.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'[\\p{Cc}\\p{Cf}]')",message="description must be plain text without control or invisible formatting characters (zero-width spaces, bidi overrides): remove them"
	Description string `json:"description,omitempty"`

	// enabled: false keeps the key and its Secret but makes the verifier refuse it.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// expiresAt is the instant the key stops working. Set it or ttl, not both.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// ttl is the key's lifetime from minting, e.g. 720h; it becomes a fixed status.expiresAt.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) >= duration('1m')",message="ttl must be at least 1m, written as a duration such as 720h"
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// scopes narrow what the application's role allows this key to do, e.g. reports:read: each
	// one a permission of the cluster-wide permission catalog (ConfigMap
	// clearance-permission-catalog of the operator's namespace; `kubectl clearance permissions`
	// lists it), or NAME:* over some of them; the admission policy clearance-permissions refuses a
	// create or update that adds another. None: the key has its application's whole role.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[a-z][a-z0-9_-]*(:[a-z*][a-z0-9_*-]*)*$')",message="each scope must be lowercase words joined by ':', e.g. reports:read"
	Scopes []string `json:"scopes,omitempty"`

	// rotation replaces the key on a schedule, keeping the previous one valid for an overlap.
	// +optional
	Rotation *KeyRotation `json:"rotation,omitempty"`

	// secretName is the Secret the key is delivered in; default <apikey name>-key.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="secretName must be a valid Secret name (lowercase letters, digits, '-' and '.')"
	SecretName string `json:"secretName,omitempty"`

	// secretTemplate adds labels and annotations to the key Secret.
	// +optional
	SecretTemplate *SecretTemplate `json:"secretTemplate,omitempty"`

	// rateLimits narrow the Application's named budgets for this key; a bucket the
	// Application does not define cannot be added here.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	RateLimits []RateLimit `json:"rateLimits,omitempty"`
}

// KeyRotation replaces a key every period, keeping the old key valid for the overlap.
// +kubebuilder:validation:XValidation:rule="!has(self.overlap) || duration(self.overlap) < duration(self.every)",message="rotation.overlap must be shorter than rotation.every, e.g. every: 720h with overlap: 24h",fieldPath=".overlap"
type KeyRotation struct {
	// every is the time between rotations, e.g. 720h.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) >= duration('1m')",message="rotation.every must be at least 1m, written as a duration such as 720h"
	Every metav1.Duration `json:"every"`

	// overlap is how long the previous key keeps working after a rotation, e.g. 24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) >= duration('0s')",message="rotation.overlap must be a duration such as 24h, not negative"
	Overlap *metav1.Duration `json:"overlap,omitempty"`
}

// SecretTemplate holds extra metadata for a key Secret. It can never set the Secret's type,
// owner, Clearance labels or service-account-token annotations.
type SecretTemplate struct {
	// labels are added to the key Secret.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.lowerAscii().startsWith('access.clearance.dev/'))",message="secretTemplate.labels cannot use the access.clearance.dev/ prefix: the operator owns those labels"
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are added to the key Secret.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.lowerAscii().startsWith('kubernetes.io/service-account') && k.lowerAscii() != 'kubectl.kubernetes.io/last-applied-configuration' && !k.lowerAscii().startsWith('access.clearance.dev/'))",message="secretTemplate.annotations cannot set service-account, last-applied-configuration or access.clearance.dev/ annotations: remove them"
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PreviousKey is a rotated-out key that stays valid until validUntil.
type PreviousKey struct {
	// keyID is the public id part of the previous key.
	KeyID string `json:"keyID"`
	// hash is the hash of the previous key.
	Hash string `json:"hash"`
	// validUntil is the end of the rotation overlap.
	ValidUntil metav1.Time `json:"validUntil"`
}

// APIKeyStatus is what the operator observed about an APIKey. It never holds the key itself.
type APIKeyStatus struct {
	// keyID is the public id part of the current key.
	// +optional
	KeyID string `json:"keyID,omitempty"`
	// masked is a display form of the current key, e.g. clr_abcd…wxyz.
	// +optional
	Masked string `json:"masked,omitempty"`
	// hash is the hash of the current key; the verifier compares presented keys with it.
	// +optional
	Hash string `json:"hash,omitempty"`
	// state is where the key is in its life.
	// +optional
	State KeyState `json:"state,omitempty"`
	// applicationID is the ID of the key's application, copied when the key is minted.
	// +optional
	ApplicationID string `json:"applicationID,omitempty"`
	// applicationUID is the UID of the Application the key was minted for. The key works only
	// while that very Application exists: an Application created later under the same name,
	// even with the same pinned spec.applicationID, never makes it valid again.
	// +optional
	ApplicationUID types.UID `json:"applicationUID,omitempty"`
	// mintedAt is when the current key was minted.
	// +optional
	MintedAt *metav1.Time `json:"mintedAt,omitempty"`
	// expiresAt is the fixed instant the key expires (from spec.expiresAt or spec.ttl).
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// previousKeys are rotated-out keys still valid during their overlap.
	// +optional
	// +listType=map
	// +listMapKey=keyID
	PreviousKeys []PreviousKey `json:"previousKeys,omitempty"`
	// replacedHash is the hash of the key the current one replaced (rotation or repair). While
	// the Secret still holds that key shortly after, its write is in flight, not an edit.
	// +optional
	ReplacedHash string `json:"replacedHash,omitempty"`
	// lastRotationRequest is the last value of the rotate-requested-at annotation acted on.
	// +optional
	LastRotationRequest string `json:"lastRotationRequest,omitempty"`
	// lastInvalidationRequest is the last value of the invalidate-requested-at annotation
	// acted on.
	// +optional
	LastInvalidationRequest string `json:"lastInvalidationRequest,omitempty"`
	// lastUsedAt is when the verifier last accepted this key.
	// +optional
	LastUsedAt *metav1.Time `json:"lastUsedAt,omitempty"`
	// usageCount is how many requests the verifier accepted with this key.
	// +optional
	UsageCount int64 `json:"usageCount,omitempty"`
	// createdBy is the user who created the APIKey.
	// +optional
	CreatedBy string `json:"createdBy,omitempty"`
	// secretName is the Secret the key was delivered in.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready says whether the key is usable.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// APIKey is one credential of an Application. The operator mints it into a Secret that
// workloads mount; the cluster keeps only its hash and a masked form.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=clkey;clkeys,categories=clearance
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.hash) || (has(self.spec.secretName) == has(oldSelf.spec.secretName) && (!has(self.spec.secretName) || self.spec.secretName == oldSelf.spec.secretName))",message="spec.secretName cannot change once the key is minted: create a new APIKey to deliver a key into another Secret",fieldPath=".spec.secretName"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.ttl) || !has(oldSelf.status) || !has(oldSelf.status.hash) || (has(oldSelf.spec.ttl) && self.spec.ttl == oldSelf.spec.ttl)",message="spec.ttl counts from the first mint and cannot be added or changed afterwards: set spec.expiresAt to change this key's expiry",fieldPath=".spec.ttl"
// +kubebuilder:printcolumn:name="Application",type=string,JSONPath=`.spec.applicationName`
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.status.masked`
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Last-Used",type=date,JSONPath=`.status.lastUsedAt`
// +kubebuilder:printcolumn:name="Uses",type=integer,JSONPath=`.status.usageCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type APIKey struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec APIKeySpec `json:"spec"`
	// +optional
	Status APIKeyStatus `json:"status,omitempty"`
}

// APIKeyList is a list of APIKeys.
// +kubebuilder:object:root=true
type APIKeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []APIKey `json:"items"`
}

func init() {
	SchemeBuilder.Register(&APIKey{}, &APIKeyList{})
}
