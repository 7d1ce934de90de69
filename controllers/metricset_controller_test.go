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
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

func TestMetricSetPublishesOnlyCatalogMetricsItSwitchedOn(t *testing.T) {
	ns := env.Namespace(t, "metrics")
	create(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "catalog", Labels: map[string]string{v1.LabelConfigMap: v1.ConfigMapCatalog}},
		Data:       map[string]string{"occupancy.current": "1", "occupancy.peak": "2", "dwell.p95": "3"},
	})
	ms := &v1.MetricSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"},
		Spec: v1.MetricSetSpec{
			CatalogRef: &v1.CatalogReference{Name: "catalog"},
			Metrics: []v1.Metric{
				{Name: "occupancy.current"}, {Name: "occupancy.peak"}, {Name: "dwell.p95", Enabled: ptr.To(false)}, {Name: "made.up"},
			},
		},
	}
	create(t, ms)
	waitSet := func(what, reason string) *v1.MetricSet {
		got := &v1.MetricSet{}
		eventually(t, what, func() (bool, error) {
			err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ms), got)
			return err == nil && got.Status.ObservedGeneration == got.Generation && conditionReason(got.Status.Conditions) == reason, err
		})
		return got
	}
	got := waitSet("UnknownMetric", v1.ReasonUnknownMetric)
	if msg := conditionMessage(got.Status.Conditions); msg != "metric made.up is not in catalog catalog: fix the names or add them to the catalog; the published list is unchanged" {
		t.Errorf("message: %s", msg)
	}
	if got.Status.ConfigMapName != "" || ready(got.Status.Conditions) {
		t.Errorf("a set with unknown metrics: published in %q, Ready %t; want neither", got.Status.ConfigMapName, ready(got.Status.Conditions))
	}

	got.Spec.Metrics = got.Spec.Metrics[:3]
	if err := env.Client.Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	got = waitSet("Published", v1.ReasonPublished)
	if got.Status.EnabledCount != 2 || got.Status.DisabledCount != 1 || got.Status.ConfigMapName != "default-metrics" {
		t.Errorf("status: %+v", got.Status)
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "default-metrics"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data[publishedMetrics] != "occupancy.current\noccupancy.peak" || cm.Data[publishedCount] != "2" || cm.Data[publishedCost] != "3" {
		t.Errorf("published: %v", cm.Data)
	}
	// The owner reference the ConfigMap has always had: the garbage collector takes it with
	// its MetricSet, and blocks the MetricSet's foreground deletion until it is gone.
	want := []metav1.OwnerReference{{APIVersion: "access.clearance.dev/v1alpha1", Kind: "MetricSet", Name: "default", UID: got.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	if !equality.Semantic.DeepEqual(cm.OwnerReferences, want) {
		t.Errorf("the published ConfigMap's owner references: %+v, want %+v", cm.OwnerReferences, want)
	}
}

func TestMetricSetWithoutItsCatalogSaysHowToFixIt(t *testing.T) {
	ns := env.Namespace(t, "no-catalog")
	ms := &v1.MetricSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"},
		Spec:       v1.MetricSetSpec{CatalogRef: &v1.CatalogReference{Name: "missing"}, Metrics: []v1.Metric{{Name: "occupancy.current"}}},
	}
	create(t, ms)
	eventually(t, "CatalogNotFound", func() (bool, error) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ms), ms)
		return conditionReason(ms.Status.Conditions) == v1.ReasonCatalogNotFound, err
	})
	want := "catalog ConfigMap missing was not found in namespace " + ns + " or, cluster-wide, in " + systemNamespace +
		" with label access.clearance.dev/configmap=catalog: create it or remove spec.catalogRef; the published list is unchanged"
	if msg := conditionMessage(ms.Status.Conditions); msg != want {
		t.Errorf("message:\n got: %s\nwant: %s", msg, want)
	}
	if ready(ms.Status.Conditions) {
		t.Error("a MetricSet without its catalog is Ready")
	}

	// The Warning event marks the change to CatalogNotFound; passes that find it so again send none.
	recorder := events.NewFakeRecorder(10)
	r := &MetricSetReconciler{reconcilerBase: direct.reconcilerBase, events: recorder, systemNamespace: systemNamespace}
	for range 2 {
		eventually(t, "a pass that is not behind the cache", func() (bool, error) {
			_, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ms)})
			return err == nil, err
		})
	}
	select {
	case e := <-recorder.Events:
		t.Errorf("a pass over a MetricSet still without its catalog sent %q", e)
	default:
	}
}

// The operator writes ConfigMaps, which an org admin (who may create MetricSets) may not: a
// MetricSet named so that its published list would land on a ConfigMap that is something else
// (here the org's own catalog, or one Clearance never labelled) leaves that ConfigMap as it is,
// owner references and all, and says so.
func TestAMetricSetNeverWritesOverAConfigMapThatIsNotItsPublishedList(t *testing.T) {
	ns := env.Namespace(t, "cm-taken")
	catalog := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-metrics", Labels: map[string]string{v1.LabelConfigMap: v1.ConfigMapCatalog}},
		Data:       map[string]string{"occupancy.current": "1"},
	}
	other := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "exporter-metrics"},
		Data:       map[string]string{"scrape.yaml": "interval: 30s"},
	}
	for _, cm := range []*corev1.ConfigMap{catalog, other} {
		create(t, cm)
		ms := &v1.MetricSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: strings.TrimSuffix(cm.Name, "-metrics")},
			Spec:       v1.MetricSetSpec{Metrics: []v1.Metric{{Name: "occupancy.current"}}},
		}
		create(t, ms)
		eventually(t, "MetricSet "+ms.Name+" to say its ConfigMap is taken", func() (bool, error) {
			err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ms), ms)
			return err == nil && ms.Status.ObservedGeneration == ms.Generation && conditionReason(ms.Status.Conditions) != "", err
		})
		if reason := conditionReason(ms.Status.Conditions); reason != v1.ReasonConflict || ready(ms.Status.Conditions) {
			t.Errorf("MetricSet %s: Ready reason %s (%s), want Conflict", ms.Name, reason, conditionMessage(ms.Status.Conditions))
		}
		got := &corev1.ConfigMap{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(cm), got); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(got.Data, cm.Data) || !equality.Semantic.DeepEqual(got.Labels, cm.Labels) || len(got.OwnerReferences) != 0 {
			t.Errorf("ConfigMap %s was written over: labels %v, data %v, owners %+v", cm.Name, got.Labels, got.Data, got.OwnerReferences)
		}
	}
}

// TestOnlyItsOwnPublishedListIsWrittenOverWhateverLabelsAConfigMapCarries: a ConfigMap where a
// MetricSet would publish is written over only when its labels say it is that MetricSet's
// published list (kind metrics, and that MetricSet's name); every other combination of the two
// labels (none, a catalog, another kind, another MetricSet's name) is left as it is, and the
// MetricSet says Conflict.
func TestOnlyItsOwnPublishedListIsWrittenOverWhateverLabelsAConfigMapCarries(t *testing.T) {
	ns := env.Namespace(t, "cm-labels")
	kinds := []string{"", v1.ConfigMapCatalog, v1.ConfigMapMetrics, "dashboards"}
	owners := []string{"", "own", "another-set"}
	type tc struct {
		ms *v1.MetricSet
		cm *corev1.ConfigMap
	}
	var cases []tc
	for i, kind := range kinds {
		for j, owner := range owners {
			name := fmt.Sprintf("set-%d-%d", i, j)
			labels := map[string]string{}
			if kind != "" {
				labels[v1.LabelConfigMap] = kind
			}
			switch owner {
			case "own":
				labels[v1.LabelMetricSet] = name
			case "another-set":
				labels[v1.LabelMetricSet] = "another-set"
			}
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-metrics", Labels: labels},
				Data: map[string]string{"occupancy.current": "1"}}
			create(t, cm)
			ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: v1.MetricSetSpec{Metrics: []v1.Metric{{Name: "occupancy.current"}}}}
			create(t, ms)
			cases = append(cases, tc{ms, cm})
		}
	}
	for _, c := range cases {
		eventually(t, "MetricSet "+c.ms.Name+" to be judged", func() (bool, error) {
			err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c.ms), c.ms)
			return err == nil && c.ms.Status.ObservedGeneration == c.ms.Generation && conditionReason(c.ms.Status.Conditions) != "", err
		})
		own := c.cm.Labels[v1.LabelConfigMap] == v1.ConfigMapMetrics && c.cm.Labels[v1.LabelMetricSet] == c.ms.Name
		got := &corev1.ConfigMap{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c.cm), got); err != nil {
			t.Fatal(err)
		}
		written := !equality.Semantic.DeepEqual(got.Data, c.cm.Data) || len(got.OwnerReferences) != 0
		reason := conditionReason(c.ms.Status.Conditions)
		if own && (reason != v1.ReasonPublished || !written) {
			t.Errorf("ConfigMap labelled %v, its own published list: reason %s, written %v; want Published and written", c.cm.Labels, reason, written)
		}
		// Taken over, it is the MetricSet's like one it made: it goes with it, and its changes reach it.
		if own && !metav1.IsControlledBy(got, c.ms) {
			t.Errorf("ConfigMap labelled %v, taken over as its own published list: owners %+v, want the MetricSet %s", c.cm.Labels, got.OwnerReferences, c.ms.UID)
		}
		if !own && (reason != v1.ReasonConflict || written || !equality.Semantic.DeepEqual(got.Labels, c.cm.Labels)) {
			t.Errorf("ConfigMap labelled %v, not its published list: reason %s, labels now %v, data %v, owners %d; want Conflict and left as it is",
				c.cm.Labels, reason, got.Labels, got.Data, len(got.OwnerReferences))
		}
	}
}

// TestACatalogRefNamingAConfigMapThatIsNoCatalogFindsNoCatalog: only a ConfigMap labelled as a
// catalog is one. A catalogRef naming the org's own published list, or another Clearance
// ConfigMap, finds no catalog (its data keys are no metric names): CatalogNotFound, and nothing
// is published.
func TestACatalogRefNamingAConfigMapThatIsNoCatalogFindsNoCatalog(t *testing.T) {
	ns := env.Namespace(t, "not-a-catalog")
	for _, kind := range []string{v1.ConfigMapMetrics, "dashboards"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: kind + "-list", Labels: map[string]string{v1.LabelConfigMap: kind}},
			Data: map[string]string{"metrics": "occupancy.current", "count": "1"}}
		create(t, cm)
		ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "uses-" + kind},
			Spec: v1.MetricSetSpec{CatalogRef: &v1.CatalogReference{Name: cm.Name}, Metrics: []v1.Metric{{Name: "count"}, {Name: "metrics"}}}}
		create(t, ms)
		eventually(t, "MetricSet "+ms.Name+" to be judged", func() (bool, error) {
			err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ms), ms)
			return err == nil && ms.Status.ObservedGeneration == ms.Generation && conditionReason(ms.Status.Conditions) != "", err
		})
		if reason := conditionReason(ms.Status.Conditions); reason != v1.ReasonCatalogNotFound || ms.Status.ConfigMapName != "" {
			t.Errorf("a catalogRef naming a ConfigMap labelled %s: reason %s, published %q; want CatalogNotFound and nothing published", kind, reason, ms.Status.ConfigMapName)
		}
	}
}

// TestAPublishedListFollowsEveryEditAndIsWrittenBackWhenChangedByHand: a MetricSet with exactly
// as many metrics on as its cap allows is published; switching metrics on and off rewrites the
// published list; a published list deleted or edited by hand is written again.
func TestAPublishedListFollowsEveryEditAndIsWrittenBackWhenChangedByHand(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "published")
	ms := &v1.MetricSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dashboards"},
		Spec: v1.MetricSetSpec{MaxEnabled: ptr.To[int32](2), Metrics: []v1.Metric{
			{Name: "occupancy.current"}, {Name: "occupancy.peak", Enabled: ptr.To(true)}, {Name: "dwell.p95", Enabled: ptr.To(false)}}},
	}
	create(t, ms)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dashboards-metrics"}}
	published := func(what, metrics string) {
		t.Helper()
		eventually(t, what, func() (bool, error) {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ms), ms); err != nil {
				return false, err
			}
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(cm), cm)
			return err == nil && ms.Status.ObservedGeneration == ms.Generation && conditionReason(ms.Status.Conditions) == v1.ReasonPublished &&
				cm.Data[publishedMetrics] == metrics, client.IgnoreNotFound(err)
		})
	}
	published("the set at its cap published", "occupancy.current\noccupancy.peak")

	ms.Spec.Metrics[1].Enabled = ptr.To(false)
	ms.Spec.Metrics[2].Enabled = ptr.To(true)
	if err := env.Client.Update(ctx, ms); err != nil {
		t.Fatal(err)
	}
	published("the edit published", "dwell.p95\noccupancy.current")
	if cm.Data[publishedCount] != "2" || ms.Status.EnabledCount != 2 || ms.Status.DisabledCount != 1 {
		t.Errorf("after the edit: published %v, status %+v", cm.Data, ms.Status)
	}

	edited := cm.DeepCopy()
	edited.Data[publishedMetrics] = "everything"
	if err := env.Client.Update(ctx, edited); err != nil {
		t.Fatal(err)
	}
	published("the list edited by hand written again", "dwell.p95\noccupancy.current")
	if err := env.Client.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	published("the list deleted by hand written again", "dwell.p95\noccupancy.current")
}

// TestAMetricSetWaitingForItsCatalogIsPublishedOnceTheCatalogAppears: a MetricSet whose catalog
// is not there yet (CatalogNotFound) is published as soon as a catalog of that name appears, in its
// own org or cluster-wide in the operator's namespace, without an edit of its own.
func TestAMetricSetWaitingForItsCatalogIsPublishedOnceTheCatalogAppears(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, where := range []string{"org", "cluster-wide"} {
		ns := env.Namespace(t, "late-catalog")
		ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"},
			Spec: v1.MetricSetSpec{CatalogRef: &v1.CatalogReference{Name: "late-catalog-" + ns}, Metrics: []v1.Metric{{Name: "occupancy.current"}}}}
		create(t, ms)
		reason := func(want string) {
			t.Helper()
			eventually(t, where+": "+want, func() (bool, error) {
				err := env.Client.Get(ctx, client.ObjectKeyFromObject(ms), ms)
				return err == nil && ms.Status.ObservedGeneration == ms.Generation && conditionReason(ms.Status.Conditions) == want, err
			})
		}
		reason(v1.ReasonCatalogNotFound)
		catalog := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ms.Spec.CatalogRef.Name,
			Labels: map[string]string{v1.LabelConfigMap: v1.ConfigMapCatalog}}, Data: map[string]string{"occupancy.current": "1"}}
		if where == "cluster-wide" {
			catalog.Namespace = systemNamespace
			t.Cleanup(func() { _ = env.Client.Delete(ctx, catalog) })
		}
		create(t, catalog)
		reason(v1.ReasonPublished)
	}
}
