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

// MetricSetSpec says which metrics of the catalog an org has switched on.
// +kubebuilder:validation:XValidation:rule="!has(self.metrics) || self.metrics.filter(m, !has(m.enabled) || m.enabled).size() <= self.maxEnabled",message="more metrics are enabled than spec.maxEnabled allows: disable some or raise maxEnabled",fieldPath=".metrics"
type MetricSetSpec struct {
	// maxEnabled caps how many metrics may be enabled, because each costs computation and
	// bandwidth.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	MaxEnabled *int32 `json:"maxEnabled,omitempty"`

	// catalogRef names a ConfigMap in this namespace listing the known metrics; names not in
	// it are refused. Without it any well-formed name is accepted.
	// +optional
	CatalogRef *CatalogReference `json:"catalogRef,omitempty"`

	// metrics lists metrics and whether each is enabled.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=2000
	Metrics []Metric `json:"metrics,omitempty"`
}

// CatalogReference names the ConfigMap holding the metric catalog.
type CatalogReference struct {
	// name of the catalog ConfigMap in this namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="catalogRef.name must be the metadata.name of a ConfigMap in this namespace"
	Name string `json:"name"`
}

// Metric switches one catalog metric on or off.
type Metric struct {
	// name of the metric, dotted lowercase words, e.g. occupancy.current.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z][a-z0-9_]*([.][a-z0-9_]+)*$')",message="metric names are lowercase words joined by '.', e.g. occupancy.current"
	Name string `json:"name"`

	// enabled switches the metric on; listing a metric with enabled: false keeps it visible.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
}

// Cap is spec.maxEnabled, or its default when a client did not send it.
func (s *MetricSetSpec) Cap() int32 {
	if s.MaxEnabled == nil {
		return DefaultMaxEnabled
	}
	return *s.MaxEnabled
}

// DefaultMaxEnabled is the cap of a MetricSet that does not set spec.maxEnabled.
const DefaultMaxEnabled = 50

// MetricSetStatus counts what is switched on and where the enabled list is published.
type MetricSetStatus struct {
	// enabledCount is the number of enabled metrics.
	// +optional
	EnabledCount int32 `json:"enabledCount,omitempty"`
	// disabledCount is the number of listed but disabled metrics.
	// +optional
	DisabledCount int32 `json:"disabledCount,omitempty"`
	// configMapName is the ConfigMap the enabled list is published to.
	// +optional
	ConfigMapName string `json:"configMapName,omitempty"`
	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready says whether the enabled list is published.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// MetricSet says which metrics, out of a catalog of hundreds, an org has switched on.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=clmetrics;clms,categories=clearance
// +kubebuilder:printcolumn:name="Enabled",type=integer,JSONPath=`.status.enabledCount`
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=`.spec.maxEnabled`
// +kubebuilder:printcolumn:name="Disabled",type=integer,JSONPath=`.status.disabledCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MetricSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec MetricSetSpec `json:"spec"`
	// +optional
	Status MetricSetStatus `json:"status,omitempty"`
}

// MetricSetList is a list of MetricSets.
// +kubebuilder:object:root=true
type MetricSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricSet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MetricSet{}, &MetricSetList{})
}
