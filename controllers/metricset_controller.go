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
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// Data keys of a published metrics ConfigMap.
const (
	publishedMetrics = "metrics"
	publishedCount   = "count"
	publishedCost    = "cost"
)

// MetricSetReconciler counts what a MetricSet switches on, checks it against the cap and the
// catalog, and publishes the enabled list in a ConfigMap for dashboards and metric services.
type MetricSetReconciler struct {
	reconcilerBase
	events events.EventRecorder
	// systemNamespace holds the cluster-wide catalog a catalogRef falls back to ("": none).
	systemNamespace string
}

// +kubebuilder:rbac:groups=access.clearance.dev,resources=metricsets,verbs=get;list;watch
// +kubebuilder:rbac:groups=access.clearance.dev,resources=metricsets/status,verbs=get;patch
// +kubebuilder:rbac:groups=access.clearance.dev,resources=metricsets/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;patch

// Reconcile publishes the enabled metrics, unless they exceed the cap or the catalog.
func (r *MetricSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ms, err := fetchLive[v1.MetricSet](ctx, r.client, req)
	if ms == nil {
		return ctrl.Result{}, err
	}
	orig := ms.DeepCopy()
	enabledNames, disabled := splitMetrics(ms.Spec.Metrics)
	ms.Status.EnabledCount, ms.Status.DisabledCount = int32(len(enabledNames)), int32(disabled)
	ms.Status.ObservedGeneration = ms.Generation

	reason, message, err := r.publish(ctx, ms, enabledNames)
	if err != nil {
		return ctrl.Result{}, err
	}
	status := metav1.ConditionFalse
	if reason == v1.ReasonPublished {
		status = metav1.ConditionTrue
	}
	r.setCondition(&ms.Status.Conditions, ms.Generation, status, reason, message)
	if err := r.patchStatus(ctx, orig, ms); err != nil {
		return ctrl.Result{}, err
	}
	if status == metav1.ConditionFalse && (ready(orig.Status.Conditions) || conditionReason(orig.Status.Conditions) != reason) {
		r.events.Eventf(ms, nil, corev1.EventTypeWarning, reason, "Publish", "%s", message)
	}
	return ctrl.Result{}, nil
}

// publish checks the enabled list and writes it; the reason is Published or why not.
func (r *MetricSetReconciler) publish(ctx context.Context, ms *v1.MetricSet, enabledNames []string) (string, string, error) {
	if limit := ms.Spec.Cap(); int32(len(enabledNames)) > limit {
		return v1.ReasonOverCap, fmt.Sprintf(
			"%d metrics are enabled, over spec.maxEnabled (%d): disable some or raise maxEnabled; the published list is unchanged",
			len(enabledNames), limit), nil
	}
	var catalog map[string]string
	if ref := ms.Spec.CatalogRef; ref != nil {
		cm, err := r.catalog(ctx, ms.Namespace, ref.Name)
		if err != nil {
			return "", "", err
		}
		if cm == nil {
			where := "namespace " + ms.Namespace
			if r.systemNamespace != "" && r.systemNamespace != ms.Namespace {
				where += " or, cluster-wide, in " + r.systemNamespace
			}
			return v1.ReasonCatalogNotFound, fmt.Sprintf(
				"catalog ConfigMap %s was not found in %s with label %s=%s: create it or remove spec.catalogRef; the published list is unchanged",
				ref.Name, where, v1.LabelConfigMap, v1.ConfigMapCatalog), nil
		}
		catalog = cm.Data
		if unknown := notInCatalog(ms.Spec.Metrics, catalog); len(unknown) > 0 {
			return v1.ReasonUnknownMetric, fmt.Sprintf(
				"%s not in catalog %s: fix the names or add them to the catalog; the published list is unchanged",
				summarizeNames(unknown), ref.Name), nil
		}
	}
	name := ms.Name + "-metrics"
	written, err := r.writeConfigMap(ctx, ms, name, publishedData(enabledNames, catalog))
	if err != nil {
		return "", "", err
	}
	if !written {
		return v1.ReasonConflict, fmt.Sprintf(
			"ConfigMap %s already exists and is not the published list of this MetricSet: delete or rename it, or give this MetricSet another name; nothing was published",
			name), nil
	}
	ms.Status.ConfigMapName = name
	return v1.ReasonPublished, fmt.Sprintf("%d of at most %d metrics enabled, published in ConfigMap %s",
		len(enabledNames), ms.Spec.Cap(), name), nil
}

// catalog is the catalog ConfigMap name for a MetricSet in namespace: the org's own, else the
// cluster-wide one of the operator's namespace; nil when neither exists (with the catalog label).
func (r *MetricSetReconciler) catalog(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	for _, ns := range []string{namespace, r.systemNamespace} {
		if ns == "" {
			continue
		}
		cm := &corev1.ConfigMap{}
		err := r.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm)
		switch {
		case err == nil && cm.Labels[v1.LabelConfigMap] == v1.ConfigMapCatalog:
			return cm, nil
		case err != nil && !apierrors.IsNotFound(err):
			return nil, err
		}
	}
	return nil, nil
}

// writeConfigMap creates the published ConfigMap, or patches it when its data differs. A
// ConfigMap of that name that is not this MetricSet's published list (an org's catalog, or
// anything else) is left as it is, and written reports false.
func (r *MetricSetReconciler) writeConfigMap(ctx context.Context, ms *v1.MetricSet, name string, data map[string]string) (bool, error) {
	desired := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ms.Namespace,
			Labels:    map[string]string{v1.LabelConfigMap: v1.ConfigMapMetrics, v1.LabelMetricSet: ms.Name},
		},
		Data: data,
	}
	if err := controllerutil.SetControllerReference(ms, desired, r.client.Scheme()); err != nil {
		return false, err
	}
	current := &corev1.ConfigMap{}
	switch err := r.client.Get(ctx, client.ObjectKeyFromObject(desired), current); {
	case apierrors.IsNotFound(err):
		// The cache holds only ConfigMaps labelled by Clearance: one it does not show may still
		// exist, someone else's.
		err := r.client.Create(ctx, desired)
		if !apierrors.IsAlreadyExists(err) {
			return err == nil, err
		}
		live := &corev1.ConfigMap{}
		if getErr := r.apiReader.Get(ctx, client.ObjectKeyFromObject(desired), live); getErr != nil {
			return false, getErr // gone meanwhile too: the retry creates it
		}
		if !publishedBy(live, ms) {
			return false, nil
		}
		return false, err // the cache is behind: retried
	case err != nil:
		return false, err
	}
	if !publishedBy(current, ms) {
		return false, nil
	}
	updated := current.DeepCopy()
	maps.Copy(updated.Labels, desired.Labels)
	updated.OwnerReferences = desired.OwnerReferences
	updated.Data = data
	if equality.Semantic.DeepEqual(updated, current) {
		return true, nil
	}
	return true, r.client.Patch(ctx, updated, client.MergeFrom(current))
}

// publishedBy reports whether a ConfigMap is the published list of the MetricSet (of that name,
// in that namespace: one left by an earlier MetricSet of the name is taken over).
func publishedBy(cm *corev1.ConfigMap, ms *v1.MetricSet) bool {
	return cm.Labels[v1.LabelConfigMap] == v1.ConfigMapMetrics && cm.Labels[v1.LabelMetricSet] == ms.Name
}

// splitMetrics returns the sorted names of enabled metrics and the number of disabled ones.
func splitMetrics(metrics []v1.Metric) ([]string, int) {
	var on []string
	off := 0
	for _, m := range metrics {
		if m.IsEnabled() {
			on = append(on, m.Name)
		} else {
			off++
		}
	}
	slices.Sort(on)
	return on, off
}

// notInCatalog lists the listed metrics (enabled or not) the catalog does not know.
func notInCatalog(metrics []v1.Metric, catalog map[string]string) []string {
	var unknown []string
	for _, m := range metrics {
		if _, ok := catalog[m.Name]; !ok {
			unknown = append(unknown, m.Name)
		}
	}
	return unknown
}

// summarizeNames names up to three metrics and counts the rest, to keep messages short.
func summarizeNames(names []string) string {
	const shown = 3
	if len(names) == 1 {
		return "metric " + names[0] + " is"
	}
	if len(names) <= shown {
		return "metrics " + strings.Join(names, ", ") + " are"
	}
	return fmt.Sprintf("metrics %s and %d more are", strings.Join(names[:shown], ", "), len(names)-shown)
}

// publishedData is the ConfigMap content: the enabled names one per line, their count and,
// with a catalog, their total cost weight.
func publishedData(enabledNames []string, catalog map[string]string) map[string]string {
	data := map[string]string{
		publishedMetrics: strings.Join(enabledNames, "\n"),
		publishedCount:   strconv.Itoa(len(enabledNames)),
	}
	if catalog != nil {
		cost := 0
		for _, n := range enabledNames {
			if w, err := strconv.Atoi(strings.TrimSpace(catalog[n])); err == nil && w > 0 {
				cost += w
			}
		}
		data[publishedCost] = strconv.Itoa(cost)
	}
	return data
}

// SetupWithManager watches MetricSets, their published ConfigMaps and catalog ConfigMaps.
func (r *MetricSetReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("metricset").
		For(&v1.MetricSet{}, builder.WithPredicates(specChanged())).
		Owns(&corev1.ConfigMap{}).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.setsUsingCatalog)).
		Complete(quietConflicts(r))
}

// setsUsingCatalog maps a catalog ConfigMap to the MetricSets that use it: those of its
// namespace, and for the cluster-wide catalog, those of every namespace (an org's own catalog of
// the same name wins, which their reconcile finds).
func (r *MetricSetReconciler) setsUsingCatalog(ctx context.Context, o client.Object) []reconcile.Request {
	if o.GetLabels()[v1.LabelConfigMap] != v1.ConfigMapCatalog {
		return nil
	}
	var sets v1.MetricSetList
	var opts []client.ListOption
	if o.GetNamespace() != r.systemNamespace {
		opts = append(opts, client.InNamespace(o.GetNamespace()))
	}
	if err := r.client.List(ctx, &sets, opts...); err != nil {
		return nil
	}
	return requestsFor(sets.Items, func(ms *v1.MetricSet) bool {
		return ms.Spec.CatalogRef != nil && ms.Spec.CatalogRef.Name == o.GetName()
	})
}
