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

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Labels and annotations that make up the contract between Clearance, its users and workloads.
const (
	// LabelAPIKey is set on every key Secret to the name of its APIKey. The operator caches only
	// Secrets carrying it, so memory does not grow with the cluster's other Secrets.
	LabelAPIKey = "access.clearance.dev/apikey"
	// LabelConfigMap marks the ConfigMaps Clearance reads or writes: a metric catalog
	// (ConfigMapCatalog), a published list of enabled metrics (ConfigMapMetrics) or the
	// permission catalog (ConfigMapPermissions). The operator caches only ConfigMaps carrying it.
	LabelConfigMap = "access.clearance.dev/configmap"
	// LabelMetricSet names the MetricSet a published ConfigMap belongs to.
	LabelMetricSet = "access.clearance.dev/metricset"
	// LabelProtected marks system defaults that may not be deleted.
	LabelProtected = "access.clearance.dev/protected"
	// AnnotationRotateRequestedAt asks for an immediate rotation when its value changes
	// (kubectl clearance rotate sets it to the current time). The previous key stays valid for
	// spec.rotation.overlap.
	AnnotationRotateRequestedAt = "access.clearance.dev/rotate-requested-at"
	// AnnotationInvalidateRequestedAt asks, when its value changes, for a rotation that ends
	// every earlier key of the APIKey at once, including keys still in their overlap
	// (kubectl clearance rotate --now sets it to the current time).
	AnnotationInvalidateRequestedAt = "access.clearance.dev/invalidate-requested-at"
	// AnnotationAdoptKeyID, set on an APIKey to the key ID of the key its Secret holds, lets
	// an APIKey restored from a backup (new UID, no status) take back that key instead of
	// minting a new one. Without it only a Secret whose controller owner is this very APIKey
	// is adopted: the key of a deleted APIKey never comes back by itself.
	AnnotationAdoptKeyID = "access.clearance.dev/adopt-key-id"
	// LabelRestartOnRotation opts a Deployment or StatefulSet into a rolling restart when a key
	// Secret it uses gets a new key.
	LabelRestartOnRotation = "access.clearance.dev/restart-on-rotation"
	// AnnotationKeyID is set on the pod template of such a workload to the key ID of each key
	// Secret it uses; changing it is what restarts the pods.
	AnnotationKeyID = "access.clearance.dev/key-id"
	// AnnotationCreatedBy records the user who created an object (set at admission).
	AnnotationCreatedBy = "access.clearance.dev/created-by"
	// AnnotationConsent, set on an OrgConnection by the person who clicks Allow on an OAuth
	// consent page (with their own credentials), names the authorization request they
	// consented to (docs/oauth.md). The verifier issues that request's code only once it sees
	// the connection carrying it.
	AnnotationConsent = "access.clearance.dev/consent"
	// AnnotationConsentedBy records who set AnnotationConsent, stamped by the apiserver
	// (admission policy clearance-consent) and never written by anyone else: the subject of the
	// ID token the consent leads to.
	AnnotationConsentedBy = "access.clearance.dev/consented-by"
)

// Data keys of a key Secret, one for every way clients send a key. The operator writes them all
// when it mints a key; workloads mount the one their client needs.
const (
	// SecretKeyToken holds the whole key, as clients send it (X-API-Key: K).
	SecretKeyToken = "token"
	// SecretKeyAccessKey holds the key's public half, for clients that send a key in two parts
	// (the accessKey header, or an OAuth client_id).
	SecretKeyAccessKey = "access-key"
	// SecretKeySecretKey holds the key's secret half (the secretKey header, or an OAuth
	// client_secret).
	SecretKeySecretKey = "secret-key"
	// SecretKeyAuthorization holds a whole Authorization header value: "api-key " and the key.
	SecretKeyAuthorization = "authorization"
	// SecretKeyApplicationID holds the Application ID the key belongs to; it is no key material.
	SecretKeyApplicationID = "application-id"
)

// Values of LabelConfigMap.
const (
	ConfigMapCatalog     = "catalog"
	ConfigMapMetrics     = "metrics"
	ConfigMapPermissions = "permissions"
)

// The cluster-wide permission catalog: the permissions an APIKey's spec.scopes may name, in one
// ConfigMap of the operator's namespace that the platform team edits (config/catalog; the chart
// ships it as permissionCatalog). The ValidatingAdmissionPolicy clearance-permissions reads it as
// its parameter; internal/ops reads it for the console and the plugin.
const (
	// PermissionCatalogName is the catalog ConfigMap's name.
	PermissionCatalogName = "clearance-permission-catalog"
	// PermissionCatalogKey is its data key: one permission a line, "name: description", e.g.
	// "reports:read: Read reports and their rows"; blank lines and lines starting with # are
	// skipped.
	PermissionCatalogKey = "permissions"
)

// ConditionReady is the summary condition every Clearance kind reports.
const ConditionReady = "Ready"

// Condition reasons, one CamelCase word each, shared by all kinds.
const (
	ReasonMinted              = "Minted"
	ReasonDisabled            = "Disabled"
	ReasonExpired             = "Expired"
	ReasonRotating            = "Rotating"
	ReasonSecretReplaced      = "SecretReplaced"
	ReasonApplicationNotFound = "ApplicationNotFound"
	ReasonApplicationID       = "ApplicationIDAllocated"
	ReasonConnected           = "Connected"
	ReasonConflict            = "Conflict"
	ReasonOverCap             = "OverCap"
	ReasonUnknownMetric       = "UnknownMetric"
	ReasonCatalogNotFound     = "CatalogNotFound"
	ReasonPublished           = "Published"
	ReasonFailed              = "Failed"
	ReasonPending             = "Pending"
	// ReasonApplicationDisabled: the key's Application has spec.enabled false.
	ReasonApplicationDisabled = "ApplicationDisabled"
	// ReasonKeyNotAdopted (a Warning event): a Secret left by an earlier APIKey held a key
	// that was revoked with it, so a new key was minted instead of taking it back.
	ReasonKeyNotAdopted = "KeyNotAdopted"
	// ReasonApplicationDeleted: the Application the key was minted for was deleted, so the key
	// is revoked for good.
	ReasonApplicationDeleted = "ApplicationDeleted"
	// ReasonApplicationReplaced: the Application of the key's name is not the one the key was
	// minted for (it was deleted and created again), so the key is revoked for good.
	ReasonApplicationReplaced = "ApplicationReplaced"
)

// RateLimit is a named request budget: at most Limit requests per Period.
// +kubebuilder:validation:XValidation:rule="duration(self.period) >= duration('1s') && duration(self.period) <= duration('8760h')",message="period must be between 1s and 8760h (one year), for example 1h"
type RateLimit struct {
	// name of the bucket the verifier's bucket= parameter selects, e.g. general or generation.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9-]*$`
	Name string `json:"name"`

	// limit is the number of requests allowed per period.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000
	Limit int64 `json:"limit"`

	// period is the window the limit applies to, as a duration such as 1h or 15m.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	Period metav1.Duration `json:"period"`
}
