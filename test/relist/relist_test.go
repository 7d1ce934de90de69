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

// Package relist checks what the operator does when its informers list again. A watch that
// cannot resume (a long partition, an apiserver restart that no longer holds the informer's
// resource version) makes an informer list, and an object deleted and made again meanwhile
// under the same name reaches the controllers as an update of the old one, with the same
// generation. The operator's controllers run in this process, as main.go wires them (org
// defaults included), over a cache whose watches the tests cut (testenv.Blinders); so the
// tests here also check what reaches the controllers through their watches at all.
package relist

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/controllers"
	"github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/metrics"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/wiring"
)

var (
	env      *testenv.Env
	blinders = &testenv.Blinders{Clock: clock.RealClock{}}
)

func TestMain(m *testing.M) { testenv.Main(m, &env, startOperator) }

func startOperator(e *testenv.Env) (func() error, error) {
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		return nil, err
	}
	cacheOpts := wiring.CacheOptions(clock.RealClock{})
	cacheOpts.NewInformer = blinders.NewInformer
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cacheOpts,
	})
	if err != nil {
		return nil, err
	}
	if err := index.Register(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	m, err := metrics.NewControllers(prometheus.NewRegistry(), controllers.KeyStateCounter(mgr.GetCache()))
	if err != nil {
		return nil, err
	}
	if err := controllers.Setup(mgr, controllers.Options{Clock: clock.RealClock{}, KeyFormat: format, Metrics: m, OrgDefaults: true}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return nil, errors.New("the operator's caches did not sync")
	}
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			return errors.New("the operator did not stop within a minute")
		}
	}, nil
}

// madeAgainWhileBlind deletes obj and makes it again under its name (fresh, from again) while
// the operator's informer of its kind is cut off, then lets it list again. It returns the
// object made again.
func madeAgainWhileBlind[T client.Object](t *testing.T, obj T, again T) T {
	t.Helper()
	ctx := context.Background()
	b := blinders.For(obj)
	if b == nil {
		t.Fatalf("the operator has no informer of %T", obj)
	}
	b.Blind()
	select {
	case <-b.Held():
	case <-time.After(30 * time.Second):
		b.See()
		t.Fatalf("the operator's informer of %T did not come back to watch after its watch was cut", obj)
	}
	defer b.See()
	if err := env.Client.Delete(ctx, obj); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	if again.GetUID() == obj.GetUID() || again.GetGeneration() != obj.GetGeneration() {
		t.Fatalf("made again with UID %s generation %d, was %s generation %d: want another UID and the same generation",
			again.GetUID(), again.GetGeneration(), obj.GetUID(), obj.GetGeneration())
	}
	return again
}

func waitFor[T client.Object](t *testing.T, obj T, what string, done func(T) bool) {
	t.Helper()
	testenv.Within(t, 30*time.Second, what, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		if !done(obj) {
			return errors.New("not yet")
		}
		return nil
	})
}

func application(ns string) *v1.Application {
	return &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "BI export"}}
}

func hasID(a *v1.Application) bool { return a.Status.ApplicationID != "" }

// TestAnApplicationMadeAgainWhileTheOperatorWasBlindGetsItsID: the Application made again is
// reconciled once the informer lists again, and gets an Application ID of its own.
func TestAnApplicationMadeAgainWhileTheOperatorWasBlindGetsItsID(t *testing.T) {
	ns := env.Namespace(t, "relist-app")
	app := application(ns)
	if err := env.Client.Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	waitFor(t, app, "the Application to get its ID", hasID)
	again := madeAgainWhileBlind(t, app, application(ns))
	waitFor(t, again, "the Application made again to get an ID", hasID)
}

// TestAConnectionMadeAgainWhileTheOperatorWasBlindIsConnected: the OrgConnection made again is
// reconciled once the informer lists again, and grants its role (Ready), as one made while the
// operator watched would.
func TestAConnectionMadeAgainWhileTheOperatorWasBlindIsConnected(t *testing.T) {
	ctx := context.Background()
	owner, org := env.Namespace(t, "relist-owner"), env.Namespace(t, "relist-org")
	app := application(owner)
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	waitFor(t, app, "the Application to get its ID", hasID)
	connection := func() *v1.OrgConnection {
		return &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"},
			Spec: v1.OrgConnectionSpec{ApplicationID: app.Status.ApplicationID, Role: v1.RoleObserver}}
	}
	ready := func(c *v1.OrgConnection) bool {
		for _, cond := range c.Status.Conditions {
			if cond.Type == v1.ConditionReady {
				return cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == c.Generation
			}
		}
		return false
	}
	conn := connection()
	if err := env.Client.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, conn, "the OrgConnection to be Ready", ready)
	again := madeAgainWhileBlind(t, conn, connection())
	waitFor(t, again, "the OrgConnection made again to be Ready", ready)
}

// TestAnOrgThatDeletesItsOwnDefaultMetricSetGetsTheProtectedOneAtOnce: an org that applied its
// own MetricSet named default keeps it; once it deletes it, the operator's watch of MetricSets
// gives the org the protected default at once, not at its next Application or connection.
func TestAnOrgThatDeletesItsOwnDefaultMetricSetGetsTheProtectedOneAtOnce(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "relist-defaults")
	own := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: controllers.DefaultMetricSetName},
		Spec: v1.MetricSetSpec{Metrics: []v1.Metric{{Name: "own_metric"}}}}
	if err := env.Client.Create(ctx, own); err != nil {
		t.Fatal(err)
	}
	app := application(org)
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	waitFor(t, app, "the Application to get its ID", hasID) // the org's defaults were looked at by then
	kept := &v1.MetricSet{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(own), kept); err != nil || kept.UID != own.UID || kept.Labels[v1.LabelProtected] != "" {
		t.Fatalf("the org's own MetricSet default: %v, UID %s (was %s), labels %v: want it kept as it is", err, kept.UID, own.UID, kept.Labels)
	}
	if err := env.Client.Delete(ctx, own); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: controllers.DefaultMetricSetName}},
		"the org's protected default MetricSet", func(ms *v1.MetricSet) bool { return ms.UID != own.UID && ms.Labels[v1.LabelProtected] == "true" })
}

// TestAMetricSetMadeAgainWhileTheOperatorWasBlindIsPublished: the MetricSet made again, with
// other metrics switched on, is reconciled once the informer lists again: its status counts
// what it switches on, and it publishes them. (Two ways lead there: the relist's update, and the
// garbage collector deleting the published ConfigMap of the old MetricSet, which the watch of
// owned ConfigMaps maps to the name; either alone passes this test.)
func TestAMetricSetMadeAgainWhileTheOperatorWasBlindIsPublished(t *testing.T) {
	org := env.Namespace(t, "relist-metrics")
	metricSet := func(names ...string) *v1.MetricSet {
		ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "dashboards"}}
		for _, n := range names {
			ms.Spec.Metrics = append(ms.Spec.Metrics, v1.Metric{Name: n, Enabled: ptr.To(true)})
		}
		return ms
	}
	counted := func(n int32) func(*v1.MetricSet) bool {
		return func(ms *v1.MetricSet) bool { return ms.Status.EnabledCount == n && ms.Status.ConfigMapName != "" }
	}
	ms := metricSet("occupancy.current")
	if err := env.Client.Create(context.Background(), ms); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ms, "the MetricSet to be counted and published", counted(1))
	again := madeAgainWhileBlind(t, ms, metricSet("occupancy.current", "dwell.p95"))
	waitFor(t, again, "the MetricSet made again to be counted and published", counted(2))
}

// TestAKeyMadeAgainForAnotherApplicationWhileTheOperatorWasBlindIsCountedWhereItIs: an APIKey
// deleted and made again under its name for another Application reaches the operator as one
// update: the Application it left no longer counts it, the one it joined does.
func TestAKeyMadeAgainForAnotherApplicationWhileTheOperatorWasBlindIsCountedWhereItIs(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "relist-key")
	left, joined := application(ns), application(ns)
	joined.Name = "other"
	for _, app := range []*v1.Application{left, joined} {
		if err := env.Client.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
		waitFor(t, app, "the Application to get its ID", hasID)
	}
	key := func(app string) *v1.APIKey {
		return &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "exporter"}, Spec: v1.APIKeySpec{ApplicationName: app}}
	}
	counts := func(n int32) func(*v1.Application) bool {
		return func(a *v1.Application) bool { return a.Status.KeyCount == n }
	}
	first := key(left.Name)
	if err := env.Client.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, left, "the key counted", counts(1))
	madeAgainWhileBlind(t, first, key(joined.Name))
	waitFor(t, left, "the key no longer counted by the Application it left", counts(0))
	waitFor(t, joined, "the key counted by the Application it joined", counts(1))
}

// TestAnOrgGetsItsDefaultMetricSetWithItsFirstApplicationOrConnection: a namespace becomes an
// org with its first Application, or its first OrgConnection when it only grants, and the
// operator's watches of both give it its protected default MetricSet at once.
func TestAnOrgGetsItsDefaultMetricSetWithItsFirstApplicationOrConnection(t *testing.T) {
	ctx := context.Background()
	owning, granting := env.Namespace(t, "defaults-app"), env.Namespace(t, "defaults-conn")
	if err := env.Client.Create(ctx, application(owning)); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: granting, Name: "bi"},
		Spec: v1.OrgConnectionSpec{ApplicationID: "app_0123456789abcdefghijklmnop", Role: v1.RoleObserver}}); err != nil {
		t.Fatal(err)
	}
	for _, org := range []string{owning, granting} {
		waitFor(t, &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: controllers.DefaultMetricSetName}},
			"the default MetricSet of org "+org, func(ms *v1.MetricSet) bool { return ms.Labels[v1.LabelProtected] == "true" })
	}
}
