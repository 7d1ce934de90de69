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
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ApplicationIDPattern is the form of every Application ID: opaque, random, prefixed.
const ApplicationIDPattern = `^app_[0-9a-z]{26}$`

// AllowedOriginPattern is the form of an allowed browser origin: scheme://host[:port] in
// lowercase with no path. spec.allowedOrigins' CEL rule below spells the same expression.
const AllowedOriginPattern = `^https?://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?$`

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

	// oauth registers the application as an OAuth 2.0 client of the verifier for the
	// authorization code grant (docs/oauth.md): an org admin consents by granting it a role,
	// and the application's client_id is its Application ID. Absent: no authorization code
	// grant (client credentials with a key work either way).
	// +optional
	OAuth *OAuthClient `json:"oauth,omitempty"`
}

// OAuthClientType says how an OAuth client authenticates at the token endpoint.
// +kubebuilder:validation:Enum=Confidential;Public
type OAuthClientType string

const (
	// OAuthConfidential clients authenticate with one of the application's keys (its access key
	// as the username, its secret key as the password) and PKCE.
	OAuthConfidential OAuthClientType = "Confidential"
	// OAuthPublic clients (native and browser apps, which cannot keep a secret) send their
	// client_id and prove the flow with PKCE only.
	OAuthPublic OAuthClientType = "Public"
)

// OAuthClient is an Application's registration as an OAuth client.
type OAuthClient struct {
	// clientType is Confidential (authenticates with one of the application's keys) or Public
	// (PKCE only, for apps that cannot keep a secret). PKCE with S256 is required of both.
	// +optional
	// +kubebuilder:default=Confidential
	ClientType OAuthClientType `json:"clientType,omitempty"`

	// redirectURIs are where the verifier may send an org admin's browser back with a code:
	// compared as exact strings (no prefix, case or trailing-slash match), except that an
	// http://127.0.0.1 or http://[::1] redirect matches any port (RFC 8252 §7.3). Each is
	// https://host/path, http://127.0.0.1[:port]/path, http://[::1][:port]/path or a
	// private-use scheme such as com.example.app:/callback.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:XValidation:rule="self.matches(r'^https://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(/[^#\\s]*)?$') || self.matches(r'^http://(127\\.0\\.0\\.1|\\[::1\\])(:[0-9]{1,5})?(/[^#\\s]*)?$') || self.matches(r'^[a-z][a-z0-9+-]*(\\.[a-z0-9+-]+)+:/[^#\\s]*$')",message="each redirect URI must be https://host/path, http://127.0.0.1[:port]/path or http://[::1][:port]/path for a native app, or a private-use scheme such as com.example.app:/callback; lowercase scheme and host, no fragment, userinfo or spaces"
	RedirectURIs []string `json:"redirectURIs"`
}

// AllowsRedirect says whether uri, as an authorization request names it, is one of the
// registered redirect URIs: the exact string, or for a registered loopback redirect the same
// string with any port (RFC 8252 §7.3). Nothing else: no prefix, host-suffix, case,
// trailing-slash, userinfo or query match.
func (c *OAuthClient) AllowsRedirect(uri string) bool {
	if c == nil || uri == "" {
		return false
	}
	for _, r := range c.RedirectURIs {
		if uri == r || sameBarPort(r, uri) {
			return true
		}
	}
	return false
}

// sameBarPort says whether uri is the registered loopback redirect reg with another (or no)
// port: both http://127.0.0.1 or both http://[::1], the rest of the string identical.
func sameBarPort(reg, uri string) bool {
	for _, host := range []string{"http://127.0.0.1", "http://[::1]"} {
		if !strings.HasPrefix(reg, host) || !strings.HasPrefix(uri, host) {
			continue
		}
		r, u := stripPort(reg[len(host):]), stripPort(uri[len(host):])
		return r.ok && u.ok && r.rest == u.rest
	}
	return false
}

type afterPort struct {
	rest string
	ok   bool
}

// stripPort removes a leading ":<digits>" (1 to 5 digits) from what follows the host; ok is
// false for a colon without digits, or anything but a path, end or port after the host.
func stripPort(s string) afterPort {
	if !strings.HasPrefix(s, ":") {
		return afterPort{rest: s, ok: s == "" || s[0] == '/'}
	}
	n := 1
	for n < len(s) && n <= 5 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 1 || (n < len(s) && s[n] != '/') {
		return afterPort{}
	}
	return afterPort{rest: s[n:], ok: true}
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
