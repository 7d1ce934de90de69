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

package wiring

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

func TestSchemeKnowsBuiltInAndClearanceKinds(t *testing.T) {
	s := Scheme()
	for _, obj := range []client.Object{
		&v1.Application{}, &v1.APIKey{}, &v1.OrgConnection{}, &v1.MetricSet{},
		&corev1.Secret{}, &corev1.ConfigMap{}, &corev1.Namespace{}, &appsv1.Deployment{}, &appsv1.StatefulSet{},
	} {
		if _, _, err := s.ObjectKinds(obj); err != nil {
			t.Errorf("%T: %v", obj, err)
		}
	}
}

func TestTuneAPIConfigSetsRateAndTurnsGzipOff(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:6443"}
	TuneAPIConfig(cfg, 200, 400)
	if cfg.QPS != 200 || cfg.Burst != 400 {
		t.Errorf("QPS %g, burst %d; want 200, 400", cfg.QPS, cfg.Burst)
	}
	if !cfg.DisableCompression {
		t.Error("compression is on: the apiserver would gzip every event of the operator's watches")
	}
}

func TestCacheOptionsSelectOnlyLabelledObjects(t *testing.T) {
	opts := CacheOptions(clock.RealClock{})
	if opts.NewInformer == nil {
		t.Error("informers are client-go's own, not package watches'")
	}
	want := map[reflect.Type]string{
		reflect.TypeFor[*corev1.Secret]():      v1.LabelAPIKey,
		reflect.TypeFor[*corev1.ConfigMap]():   v1.LabelConfigMap,
		reflect.TypeFor[*appsv1.Deployment]():  v1.LabelRestartOnRotation,
		reflect.TypeFor[*appsv1.StatefulSet](): v1.LabelRestartOnRotation,
	}
	if len(opts.ByObject) != len(want) {
		t.Errorf("%d kinds selected, want %d", len(opts.ByObject), len(want))
	}
	for obj, by := range opts.ByObject {
		label, ok := want[reflect.TypeOf(obj)]
		if !ok {
			t.Errorf("%T is selected", obj)
			continue
		}
		for _, tc := range []struct {
			labels labels.Set
			match  bool
		}{
			{labels.Set{label: "anything"}, true},
			{labels.Set{label: ""}, true},
			{labels.Set{"app": "other"}, false},
			{nil, false},
		} {
			if got := by.Label.Matches(tc.labels); got != tc.match {
				t.Errorf("%T with labels %v: selected %v, want %v", obj, tc.labels, got, tc.match)
			}
		}
	}
}

// TestCachedObjectsDropTheirManagedFields: the cache keeps objects without managedFields, and
// leaves the rest of them as they came.
func TestCachedObjectsDropTheirManagedFields(t *testing.T) {
	opts := CacheOptions(clock.RealClock{})
	if opts.DefaultTransform == nil {
		t.Fatal("no transform: cached objects keep their managedFields")
	}
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "org", Labels: map[string]string{"a": "b"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}}}
	out, err := opts.DefaultTransform(key)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1.APIKey)
	if got.ManagedFields != nil || got.Name != "k" || got.Namespace != "org" || got.Labels["a"] != "b" {
		t.Errorf("transformed %+v, want the same object without managedFields", got.ObjectMeta)
	}
}
