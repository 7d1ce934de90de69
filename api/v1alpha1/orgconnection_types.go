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

// Role is what a connected application may do in the granting org, lowest first. The
// console's roles and permissions page (/roles) says what each allows an application and a person.
// +kubebuilder:validation:Enum=Observer;Analyst;Technician;OrgAdmin
type Role string

const (
	// RoleObserver reads only: a connected application may send requests that change nothing (GET, HEAD, OPTIONS); the recommended default.
	RoleObserver Role = "Observer"
	// RoleAnalyst reads and changes data: also requests with any other method, which need Analyst unless the verifier's --write-min-role says otherwise.
	RoleAnalyst Role = "Analyst"
	// RoleTechnician adds what the org's APIs reserve for technicians (minRole=Technician), such as operating devices and configuration.
	RoleTechnician Role = "Technician"
	// RoleOrgAdmin may do everything, including what the org's APIs reserve for org admins (minRole=OrgAdmin).
	RoleOrgAdmin Role = "OrgAdmin"
)

// Roles lists every role from lowest to highest.
var Roles = []Role{RoleObserver, RoleAnalyst, RoleTechnician, RoleOrgAdmin}

// Rank orders roles: a higher rank includes everything a lower one may do. An unknown role
// ranks below every known one, so it never satisfies a minimum.
func (r Role) Rank() int {
	for i, known := range Roles {
		if r == known {
			return i
		}
	}
	return -1
}

// OrgConnectionSpec grants one application a role in this org (the namespace).
type OrgConnectionSpec struct {
	// applicationID is the ID of the application to connect, from its own org or another.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=30
	// +kubebuilder:validation:XValidation:rule="self.matches('^app_[0-9a-z]{26}$')",message="applicationID must be app_ followed by 26 lowercase letters or digits, as shown in the Application's status.applicationID"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.applicationID cannot change: delete this OrgConnection and create one for the other application"
	ApplicationID string `json:"applicationID"`

	// role is what the application may do in this org: Observer (read-only, recommended),
	// Analyst, Technician or OrgAdmin.
	// +optional
	// +kubebuilder:default=Observer
	Role Role `json:"role,omitempty"`

	// metricSets limits the connection to these MetricSets of this org; empty means all.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="each metricSets entry must be the metadata.name of a MetricSet in this namespace"
	MetricSets []string `json:"metricSets,omitempty"`

	// transports allows or refuses, for this connection, each way a client holds a request
	// open: WebSockets, Server-Sent Events and long polling. Each is Allowed unless set to
	// Refused; a connection without transports allows all three. The verifier refuses the
	// opening request of a refused one with 403 transport_not_allowed.
	// +optional
	// +kubebuilder:default={}
	Transports *ConnectionTransports `json:"transports,omitempty"`
}

// TransportPolicy says whether a connection may use a transport.
// +kubebuilder:validation:Enum=Allowed;Refused
type TransportPolicy string

const (
	// TransportAllowed lets the connection's keys and tokens open the transport; the default.
	TransportAllowed TransportPolicy = "Allowed"
	// TransportRefused makes the verifier refuse the transport's opening request.
	TransportRefused TransportPolicy = "Refused"
)

// Transport is a way a client holds a request open, which an org may refuse per connection.
type Transport string

const (
	// TransportWebSockets is a WebSocket: an HTTP upgrade (RFC 6455).
	TransportWebSockets Transport = "WebSockets"
	// TransportServerSentEvents is a stream of Server-Sent Events (Accept: text/event-stream).
	TransportServerSentEvents Transport = "ServerSentEvents"
	// TransportLongPolling is a request the server holds until it has something to say.
	TransportLongPolling Transport = "LongPolling"
)

// Transports lists every transport a connection may refuse.
var Transports = []Transport{TransportWebSockets, TransportServerSentEvents, TransportLongPolling}

// ConnectionTransports allows or refuses each transport for one connection.
type ConnectionTransports struct {
	// webSockets: Allowed (the default) or Refused, for WebSocket upgrades.
	// +optional
	// +kubebuilder:default=Allowed
	WebSockets TransportPolicy `json:"webSockets,omitempty"`
	// serverSentEvents: Allowed (the default) or Refused, for requests that ask for a stream
	// of events (Accept: text/event-stream).
	// +optional
	// +kubebuilder:default=Allowed
	ServerSentEvents TransportPolicy `json:"serverSentEvents,omitempty"`
	// longPolling: Allowed (the default) or Refused, for requests that ask the server to wait
	// (Prefer: wait=N) or routes the proxy marks as long polling (docs/verifier.md).
	// +optional
	// +kubebuilder:default=Allowed
	LongPolling TransportPolicy `json:"longPolling,omitempty"`
}

// Policy is the policy of transport t: Allowed unless set to Refused (an unset field, a nil
// ConnectionTransports and an unknown transport are all Allowed).
func (ct *ConnectionTransports) Policy(t Transport) TransportPolicy {
	if ct == nil {
		return TransportAllowed
	}
	var p TransportPolicy
	switch t {
	case TransportWebSockets:
		p = ct.WebSockets
	case TransportServerSentEvents:
		p = ct.ServerSentEvents
	case TransportLongPolling:
		p = ct.LongPolling
	}
	if p == TransportRefused {
		return TransportRefused
	}
	return TransportAllowed
}

// Set sets the policy of transport t; it reports false for an unknown transport.
func (ct *ConnectionTransports) Set(t Transport, p TransportPolicy) bool {
	switch t {
	case TransportWebSockets:
		ct.WebSockets = p
	case TransportServerSentEvents:
		ct.ServerSentEvents = p
	case TransportLongPolling:
		ct.LongPolling = p
	default:
		return false
	}
	return true
}

// TransportAllowed reports whether the connection allows transport t.
func (s *OrgConnectionSpec) TransportAllowed(t Transport) bool {
	return s.Transports.Policy(t) == TransportAllowed
}

// OrgConnectionStatus shows the connected application as the granting org sees it.
type OrgConnectionStatus struct {
	// description is the connected application's description.
	// +optional
	Description string `json:"description,omitempty"`
	// createdBy is the org (namespace) that owns the connected application.
	// +optional
	CreatedBy string `json:"createdBy,omitempty"`
	// applicationNamespace is where the application was found at first resolution. It is
	// pinned: a later Application claiming the same ID elsewhere cannot take the connection.
	// +optional
	ApplicationNamespace string `json:"applicationNamespace,omitempty"`
	// applicationName is the name of the resolved Application.
	// +optional
	ApplicationName string `json:"applicationName,omitempty"`
	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready says whether the application was found and the grant is in force.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// OrgConnection grants an application a role in the org that holds it (its namespace).
// Editing the role is a patch; deleting it disconnects the application.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=clconn;clconns,categories=clearance
// +kubebuilder:selectablefield:JSONPath=`.spec.applicationID`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.spec.applicationID`
// +kubebuilder:printcolumn:name="Description",type=string,JSONPath=`.status.description`
// +kubebuilder:printcolumn:name="Created-By",type=string,JSONPath=`.status.createdBy`
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.role`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OrgConnection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec OrgConnectionSpec `json:"spec"`
	// +optional
	Status OrgConnectionStatus `json:"status,omitempty"`
}

// OrgConnectionList is a list of OrgConnections.
// +kubebuilder:object:root=true
type OrgConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OrgConnection `json:"items"`
}

func init() {
	SchemeBuilder.Register(&OrgConnection{}, &OrgConnectionList{})
}
