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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestAnOrgGetsItsProtectedDefaultMetricSetOnceAndKeepsItsOwn: the first Application of a
// namespace makes it an org with a protected MetricSet `default` naming the cluster-wide
// catalog, which a Created event announces, and so does the first OrgConnection of one without Applications; a second pass
// changes nothing; an org that applied its own `default` first keeps it
// as it is; a namespace with nothing of Clearance's gets nothing; the default cannot be
// deleted.
func TestAnOrgGetsItsProtectedDefaultMetricSetOnceAndKeepsItsOwn(t *testing.T) {
	ctx := context.Background()
	r := &OrgDefaultsReconciler{reconcilerBase: direct.reconcilerBase, events: direct.events}
	reconcile := func(ns string) {
		t.Helper()
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(ns string) (*v1.MetricSet, error) {
		ms := &v1.MetricSet{}
		return ms, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: DefaultMetricSetName}, ms)
	}

	empty := env.Namespace(t, "nothing")
	reconcile(empty)
	if _, err := get(empty); !apierrors.IsNotFound(err) {
		t.Errorf("a namespace with no Application or connection got a MetricSet: %v", err)
	}

	org := env.Namespace(t, "org")
	must(t, env.Client.Create(ctx, &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "BI"}}))
	var ms *v1.MetricSet
	testenv.Within(t, 30*time.Second, "the org's default MetricSet", func() error { // once the cache has the Application
		reconcile(org)
		var err error
		ms, err = get(org)
		return err
	})
	var enabled []string
	for _, m := range ms.Spec.Metrics {
		if m.IsEnabled() {
			enabled = append(enabled, m.Name)
		}
	}
	if ms.Labels[v1.LabelProtected] != "true" || ms.Spec.CatalogRef == nil || ms.Spec.CatalogRef.Name != DefaultCatalogName ||
		!slices.Equal(enabled, DefaultEnabledMetrics) {
		t.Errorf("the default MetricSet: labels %v, spec %+v", ms.Labels, ms.Spec)
	}
	if e := waitEvent(t, ms, "Created"); e.Type != corev1.EventTypeNormal || !strings.Contains(e.Note, DefaultCatalogName) {
		t.Errorf("the event about the default MetricSet: %s %q", e.Type, e.Note)
	}
	gen := ms.Generation
	reconcile(org)
	if again, _ := get(org); again.Generation != gen {
		t.Error("a second pass wrote the default MetricSet")
	}
	err := env.Client.Delete(ctx, ms)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "protected system default") {
		t.Errorf("deleting the org's default MetricSet: %v", err)
	}

	// An org that only grants (an OrgConnection, no Application of its own) is an org too.
	granting := env.Namespace(t, "granting")
	must(t, env.Client.Create(ctx, &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: granting, Name: "c"},
		Spec: v1.OrgConnectionSpec{ApplicationID: "app_0123456789abcdefghijklmnop", Role: v1.RoleObserver}}))
	testenv.Within(t, 30*time.Second, "the default MetricSet of an org holding only a connection", func() error {
		reconcile(granting)
		_, err := get(granting)
		return err
	})

	own := env.Namespace(t, "own")
	mine := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: own, Name: DefaultMetricSetName},
		Spec: v1.MetricSetSpec{Metrics: []v1.Metric{{Name: "x.y", Enabled: ptr.To(true)}}}}
	must(t, env.Client.Create(ctx, mine))
	must(t, env.Client.Create(ctx, &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: own, Name: "c"},
		Spec: v1.OrgConnectionSpec{ApplicationID: "app_0123456789abcdefghijklmnop", Role: v1.RoleObserver}}))
	testenv.Within(t, 30*time.Second, "the cache to hold the connection", func() error {
		var list v1.OrgConnectionList
		if err := direct.client.List(ctx, &list, client.InNamespace(own)); err != nil || len(list.Items) == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	reconcile(own)
	if got, err := get(own); err != nil || got.Generation != mine.Generation || got.Labels[v1.LabelProtected] != "" || got.Spec.Metrics[0].Name != "x.y" {
		t.Errorf("an org's own default MetricSet was touched: %v %+v", err, got)
	}
}

// TestAMetricSetUsesTheClusterWideCatalogUnlessItsOrgHasItsOwn: catalogRef is looked up in the
// MetricSet's namespace, then in the operator's; the org's own catalog of the same name wins.
func TestAMetricSetUsesTheClusterWideCatalogUnlessItsOrgHasItsOwn(t *testing.T) {
	ctx := context.Background()
	system, org, ownOrg := systemNamespace, env.Namespace(t, "org"), env.Namespace(t, "own")
	// The system namespace outlives the test (the suite's controllers look catalogs up in it), so
	// a second run in the same process (go test -count) finds it already there.
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: system}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	catalog := shippedCatalog(t)
	catalog.Namespace = system
	must(t, env.Client.Create(ctx, catalog))
	t.Cleanup(func() { _ = env.Client.Delete(ctx, catalog) })
	// The suite's running MetricSet controller resolves catalogs as this one does (the same
	// system namespace), so whichever writes the condition writes the same.
	r := &MetricSetReconciler{reconcilerBase: direct.reconcilerBase, events: direct.events, systemNamespace: system}
	testenv.Within(t, 30*time.Second, "the cache to hold the cluster-wide catalog", func() error {
		if cm, err := r.catalog(ctx, org, DefaultCatalogName); err != nil || cm == nil {
			return errors.New("not yet")
		}
		return nil
	})
	publish := func(ms *v1.MetricSet) *metav1.Condition {
		t.Helper()
		must(t, env.Client.Create(ctx, ms))
		var cond *metav1.Condition
		testenv.Within(t, 30*time.Second, "the MetricSet's Ready condition", func() error {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ms)}); err != nil {
				return err
			}
			got := &v1.MetricSet{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ms), got); err != nil {
				return err
			}
			if cond = meta.FindStatusCondition(got.Status.Conditions, v1.ConditionReady); cond == nil || cond.ObservedGeneration != got.Generation {
				return errors.New("no Ready condition yet")
			}
			return nil
		})
		return cond
	}
	if c := publish(DefaultMetricSet(org)); c.Reason != v1.ReasonPublished {
		t.Errorf("the default MetricSet with the cluster-wide catalog: %s %s", c.Reason, c.Message)
	}
	must(t, env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ownOrg, Name: DefaultCatalogName,
		Labels: map[string]string{v1.LabelConfigMap: v1.ConfigMapCatalog}}, Data: map[string]string{"only.this": "1"}}))
	if c := publish(DefaultMetricSet(ownOrg)); c.Reason != v1.ReasonUnknownMetric {
		t.Errorf("an org's own catalog should win (it lacks the default metrics): %s %s", c.Reason, c.Message)
	}
	missing := DefaultMetricSet(env.Namespace(t, "missing"))
	missing.Spec.CatalogRef.Name = "no-such-catalog"
	if c := publish(missing); c.Reason != v1.ReasonCatalogNotFound || !strings.Contains(c.Message, "cluster-wide, in "+system) {
		t.Errorf("no catalog anywhere: %s %s", c.Reason, c.Message)
	}
}

// systemNamespace is the operator's namespace of the suite's controllers: where the
// cluster-wide catalog is looked up.
const systemNamespace = "clearance-controllers-system"

// shippedCatalog is config/catalog's ConfigMap, as make run applies it and the chart ships it.
func shippedCatalog(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "config", "catalog", "metric-catalog.yaml"))
	must(t, err)
	cm := &corev1.ConfigMap{}
	must(t, yaml.Unmarshal(data, cm))
	if len(cm.Data) < 500 {
		t.Fatalf("the shipped catalog lists %d metrics, want over 500", len(cm.Data))
	}
	for _, m := range DefaultEnabledMetrics {
		if _, ok := cm.Data[m]; !ok {
			t.Errorf("%s is enabled by default but not in the shipped catalog", m)
		}
	}
	return cm
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAnOrgWhoseDefaultMetricSetIsRefusedGetsItOnceTheRefusalGoes: a create refused for any
// reason but the namespace's deletion (here an admission policy answering 403, as a missing RBAC
// verb would) is an error the workqueue tries again, not taken for the namespace going away: once
// the refusal is lifted the org gets its default MetricSet. A namespace being deleted is still
// not retried (quietConflicts).
func TestAnOrgWhoseDefaultMetricSetIsRefusedGetsItOnceTheRefusalGoes(t *testing.T) {
	ctx := context.Background()
	r := &OrgDefaultsReconciler{reconcilerBase: direct.reconcilerBase, events: direct.events}
	org := env.Namespace(t, "refused")
	env.NamespacePolicy(t, org, "metricsets", admissionregistrationv1.Validation{
		Expression: "false", Message: "MetricSets are not allowed here yet", Reason: ptr.To(metav1.StatusReasonForbidden),
	}, admissionregistrationv1.Deny)
	// The apiserver loads policies asynchronously: until a dry run is refused.
	testenv.Within(t, 30*time.Second, "the policy refusing MetricSets in force", func() error {
		err := env.Client.Create(ctx, DefaultMetricSet(org), client.DryRunAll)
		if apierrors.IsForbidden(err) {
			return nil
		}
		return fmt.Errorf("a dry-run create: %v", err)
	})

	must(t, env.Client.Create(ctx, &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "BI"}}))
	testenv.Within(t, 30*time.Second, "a pass refused by the policy", func() error { // once the cache has the Application
		_, err := quietConflicts(r).Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: org}})
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "not allowed here yet") {
			return nil
		}
		return fmt.Errorf("the pass answered %v, want the refusal, to be tried again", err)
	})

	must(t, env.Client.Delete(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: org}}))
	testenv.Within(t, 30*time.Second, "the default MetricSet once the refusal is lifted", func() error {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: org}}); err != nil {
			return err
		}
		return env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: DefaultMetricSetName}, &v1.MetricSet{})
	})
}
