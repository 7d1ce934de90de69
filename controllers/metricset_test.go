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
	"maps"
	"slices"
	"testing"

	"k8s.io/utils/ptr"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

func TestUnsetEnabledCountsAsEnabledAndNamesComeOutSorted(t *testing.T) {
	tests := []struct {
		name         string
		metrics      []v1.Metric
		wantEnabled  []string
		wantDisabled int
	}{
		{"no metrics", nil, nil, 0},
		{
			name: "mixed, unsorted input",
			metrics: []v1.Metric{
				{Name: "occupancy.current"},
				{Name: "energy.total", Enabled: ptr.To(true)},
				{Name: "air.co2", Enabled: ptr.To(false)},
				{Name: "air.humidity"},
				{Name: "doors.open", Enabled: ptr.To(false)},
			},
			wantEnabled:  []string{"air.humidity", "energy.total", "occupancy.current"},
			wantDisabled: 2,
		},
		{
			name:         "all disabled",
			metrics:      []v1.Metric{{Name: "b", Enabled: ptr.To(false)}, {Name: "a", Enabled: ptr.To(false)}},
			wantEnabled:  nil,
			wantDisabled: 2,
		},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.metrics)
		on, off := splitMetrics(tt.metrics)
		if !slices.Equal(on, tt.wantEnabled) || off != tt.wantDisabled {
			t.Errorf("%s: splitMetrics = %v, %d; want %v, %d", tt.name, on, off, tt.wantEnabled, tt.wantDisabled)
		}
		if !slices.Equal(in, tt.metrics) {
			t.Errorf("%s: splitMetrics reordered its input", tt.name)
		}
	}
}

func TestMetricsMissingFromTheCatalogAreListedEnabledOrNot(t *testing.T) {
	catalog := map[string]string{"air.co2": "2", "energy.total": "1"}
	tests := []struct {
		name    string
		metrics []v1.Metric
		catalog map[string]string
		want    []string
	}{
		{"all known", []v1.Metric{{Name: "air.co2"}, {Name: "energy.total", Enabled: ptr.To(false)}}, catalog, nil},
		{
			name: "unknown ones in listing order, disabled included",
			metrics: []v1.Metric{
				{Name: "zz.unknown"}, {Name: "air.co2"}, {Name: "aa.unknown", Enabled: ptr.To(false)},
			},
			catalog: catalog,
			want:    []string{"zz.unknown", "aa.unknown"},
		},
		{"empty catalog knows nothing", []v1.Metric{{Name: "air.co2"}}, map[string]string{}, []string{"air.co2"}},
		{"no metrics", nil, catalog, nil},
	}
	for _, tt := range tests {
		if got := notInCatalog(tt.metrics, tt.catalog); !slices.Equal(got, tt.want) {
			t.Errorf("%s: notInCatalog = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLongListsOfNamesAreSummarized(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"a.one"}, "metric a.one is"},
		{[]string{"a.one", "b.two", "c.three"}, "metrics a.one, b.two, c.three are"},
		{[]string{"a.one", "b.two", "c.three", "d.four", "e.five"}, "metrics a.one, b.two, c.three and 2 more are"},
	}
	for _, tt := range tests {
		if got := summarizeNames(tt.names); got != tt.want {
			t.Errorf("summarizeNames(%d names) = %q, want %q", len(tt.names), got, tt.want)
		}
	}
}

func TestPublishedListCountsNamesAndCostsWithACatalog(t *testing.T) {
	tests := []struct {
		name    string
		enabled []string
		catalog map[string]string
		want    map[string]string
	}{
		{
			name:    "without a catalog there is no cost",
			enabled: []string{"air.co2", "energy.total"},
			want:    map[string]string{"metrics": "air.co2\nenergy.total", "count": "2"},
		},
		{
			name:    "nothing enabled, no catalog",
			enabled: nil,
			want:    map[string]string{"metrics": "", "count": "0"},
		},
		{
			name:    "cost sums the catalog weights of the enabled metrics",
			enabled: []string{"air.co2", "energy.total", "occupancy.current"},
			catalog: map[string]string{"air.co2": "2", "energy.total": " 5\n", "occupancy.current": "10", "not.enabled": "100"},
			want:    map[string]string{"metrics": "air.co2\nenergy.total\noccupancy.current", "count": "3", "cost": "17"},
		},
		{
			name:    "bad, empty, zero and negative weights are ignored",
			enabled: []string{"a", "b", "c", "d", "e", "f"},
			catalog: map[string]string{"a": "heavy", "b": "", "c": "0", "d": "-4", "e": "1.5", "f": "3"},
			want:    map[string]string{"metrics": "a\nb\nc\nd\ne\nf", "count": "6", "cost": "3"},
		},
		{
			name:    "an empty catalog still reports a zero cost",
			enabled: nil,
			catalog: map[string]string{},
			want:    map[string]string{"metrics": "", "count": "0", "cost": "0"},
		},
	}
	for _, tt := range tests {
		if got := publishedData(tt.enabled, tt.catalog); !maps.Equal(got, tt.want) {
			t.Errorf("%s: publishedData = %q, want %q", tt.name, got, tt.want)
		}
	}
}
