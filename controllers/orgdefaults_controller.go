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

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// The defaults every org gets out of the box (docs/concepts.md "Out of the box"): an org is a
// namespace holding an Application or an OrgConnection, and its first one makes the operator
// create the org's MetricSet `default`, protected (label access.clearance.dev/protected, which
// the admission policy clearance-protected keeps from deletion), naming the cluster-wide
// catalog and enabling a few metrics. It is created once, never overwritten: an org's own
// MetricSet `default` (applied before, or by GitOps) stays as it is, and the org edits the
// created one as it likes.

// DefaultMetricSetName is the name of an org's default MetricSet.
const DefaultMetricSetName = "default"

// DefaultCatalogName is the cluster-wide metric catalog's ConfigMap (config/catalog).
const DefaultCatalogName = "clearance-metric-catalog"

// DefaultEnabledMetrics are the metrics an org's default MetricSet enables: a few cheap ones
// (cost weight 1 in the catalog) of each family, far under the cap.
var DefaultEnabledMetrics = []string{"occupancy.current", "occupancy.peak", "dwell.avg", "footfall.current", "footfall.count"}

// +kubebuilder:rbac:groups=access.clearance.dev,resources=metricsets,verbs=create
// +kubebuilder:rbac:groups=access.clearance.dev,resources=applications;orgconnections,verbs=get;list;watch

// OrgDefaultsReconciler creates each org's defaults; requests name the namespace.
type OrgDefaultsReconciler struct {
	reconcilerBase
	events events.EventRecorder
}

// Reconcile creates the org's default MetricSet when the org has none and still holds an
// Application or an OrgConnection.
func (r *OrgDefaultsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	org := req.Name
	err := r.client.Get(ctx, client.ObjectKey{Namespace: org, Name: DefaultMetricSetName}, &v1.MetricSet{})
	if err == nil || !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	var apps v1.ApplicationList
	if err := r.client.List(ctx, &apps, client.InNamespace(org), client.Limit(1)); err != nil {
		return ctrl.Result{}, err
	}
	var conns v1.OrgConnectionList
	if err := r.client.List(ctx, &conns, client.InNamespace(org), client.Limit(1)); err != nil {
		return ctrl.Result{}, err
	}
	if len(apps.Items) == 0 && len(conns.Items) == 0 {
		return ctrl.Result{}, nil // not an org (any more)
	}
	ms := DefaultMetricSet(org)
	if err := r.client.Create(ctx, ms); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil // the namespace is gone
		}
		// Made meanwhile, or the namespace is being deleted: quietConflicts. Any other refusal
		// (RBAC, an admission policy) is an error, logged and tried again with backoff, so the
		// org gets its MetricSet once it goes rather than never.
		return ctrl.Result{}, err
	}
	r.events.Eventf(ms, nil, corev1.EventTypeNormal, "Created", "Create",
		"the org's default MetricSet: %d metrics of the cluster-wide catalog %s enabled; edit it to switch others on", len(DefaultEnabledMetrics), DefaultCatalogName)
	return ctrl.Result{}, nil
}

// DefaultMetricSet is the MetricSet an org gets out of the box.
func DefaultMetricSet(org string) *v1.MetricSet {
	ms := &v1.MetricSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: DefaultMetricSetName,
			Labels: map[string]string{v1.LabelProtected: "true", "app.kubernetes.io/managed-by": "clearance"}},
		Spec: v1.MetricSetSpec{CatalogRef: &v1.CatalogReference{Name: DefaultCatalogName}},
	}
	for _, m := range DefaultEnabledMetrics {
		ms.Spec.Metrics = append(ms.Spec.Metrics, v1.Metric{Name: m, Enabled: ptr.To(true)})
	}
	return ms
}

// SetupWithManager reconciles a namespace when an Application or an OrgConnection appears in
// it, or its default MetricSet goes (while it is still an org, a new one is made).
func (r *OrgDefaultsReconciler) SetupWithManager(mgr ctrl.Manager) error {
	toOrg := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.GetNamespace()}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("orgdefaults").
		Watches(&v1.Application{}, toOrg).
		Watches(&v1.OrgConnection{}, toOrg).
		Watches(&v1.MetricSet{}, toOrg).
		Complete(quietConflicts(r))
}
