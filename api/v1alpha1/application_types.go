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

// ApplicationIDPattern is the form of every Application ID: opaque, random, prefixed.
const ApplicationIDPattern = `^app_[0-9a-z]{26}$`

// ApplicationSpec is what an org declares about one of its applications.
type ApplicationSpec struct {
	// description says what the application is, as the orgs it connects to will see it.
	// Renaming is an edit of this field.
	// +required
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.trim().size() > 0",message="description must not be blank: say what the application is, e.g. Acme BI export"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'[\\p{Cc}\\p{Cf}]')",message="description must be plain text without control or invisible formatting characters (zero-width spaces, bidi overrides): remove them"
	Description string `json:"description"`

	// applicationID pins the Application ID, so a cluster rebuilt from Git keeps the IDs other
	// orgs connected to. Leave it empty to have one generated. It cannot change once set.
	// +optional
	// +kubebuilder:validation:MaxLength=30
	// +kubebuilder:validation:XValidation:rule="self.matches('^app_[0-9a-z]{26}$')",message="applicationID must be app_ followed by 26 lowercase letters or digits; copy it from the status of the original Application, or leave it empty to generate one"
	ApplicationID string `json:"applicationID,omitempty"`

	// enabled: false refuses every key of the application in every org at once, without
	// touching the keys; true again makes the same keys work again.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// allowedOrigins lists the browser origins (scheme://host[:port]) that may use this
	// application's keys. Requests with an Origin header not listed here are refused.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^https?://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?$')",message="each allowed origin must be scheme://host[:port] in lowercase with no path, e.g. https://bi.acme.example"
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`

	// rateLimits are the named request budgets for every key of this application, per key.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	RateLimits []RateLimit `json:"rateLimits,omitempty"`
}

// ApplicationStatus is what the operator observed about an Application.
type ApplicationStatus struct {
	// applicationID is the permanent ID other orgs use to connect this application.
	// +optional
	ApplicationID string `json:"applicationID,omitempty"`

	// keyCount is the number of APIKeys of this application.
	// +optional
	KeyCount int32 `json:"keyCount,omitempty"`

	// connectedOrgs lists the orgs (namespaces) that granted this application a role.
	// +optional
	// +listType=set
	ConnectedOrgs []string `json:"connectedOrgs,omitempty"`

	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready says whether the application has its ID.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Application is an identity created by an org (its namespace) for an integration, a partner
// platform or a service. Its Application ID is what other orgs use to grant it a role.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=clapp;clapps,categories=clearance
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.applicationID`
// +kubebuilder:printcolumn:name="Description",type=string,JSONPath=`.spec.description`
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="Keys",type=integer,JSONPath=`.status.keyCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.spec.applicationID) || (has(self.spec.applicationID) && self.spec.applicationID == oldSelf.spec.applicationID)",message="spec.applicationID cannot be changed or removed once set: create a new Application for a new ID",fieldPath=".spec.applicationID"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.spec.applicationID) || !has(self.spec.applicationID) || !has(oldSelf.status) || !has(oldSelf.status.applicationID) || self.spec.applicationID == oldSelf.status.applicationID",message="spec.applicationID can only pin the ID this Application already has (status.applicationID): create a new Application to use another ID",fieldPath=".spec.applicationID"
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ApplicationSpec `json:"spec"`
	// +optional
	Status ApplicationStatus `json:"status,omitempty"`
}

// ApplicationList is a list of Applications.
// +kubebuilder:object:root=true
type ApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Application `json:"items"`
}

// IsEnabled is spec.enabled, true when unset.
func (a *Application) IsEnabled() bool { return a.Spec.Enabled == nil || *a.Spec.Enabled }

func init() {
	SchemeBuilder.Register(&Application{}, &ApplicationList{})
}
