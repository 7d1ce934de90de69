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
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

const (
	// countRefreshDelay batches the key and connection counts of an Application: they are
	// refreshed once its keys and connections have been quiet this long, so a burst of new
	// keys for one application becomes one status write instead of one per key, written
	// after the burst rather than in the middle of minting it.
	countRefreshDelay = 3 * time.Second
	// countRefreshMax bounds the wait under a steady stream of changes.
	countRefreshMax = 30 * time.Second
)

// ApplicationReconciler gives each Application its permanent ID and counts its keys and the
// orgs connected to it.
type ApplicationReconciler struct {
	reconcilerBase
	events events.EventRecorder
	bursts countBursts
	// burstClock times the bursts. It is the workqueue's time, real time, whatever clock the
	// reconcilers are given: a burst waits on requeues the workqueue makes in real time, and
	// the counts it batches carry no time of their own.
	burstClock clock.PassiveClock
}

// countBursts remembers, for each Application whose keys or connections changed since its
// last count, when the first and the last of those changes arrived.
type countBursts struct {
	mu   sync.Mutex
	open map[types.NamespacedName]burst
}

type burst struct{ first, last time.Time }

// add records a change for app at now.
func (c *countBursts) add(app types.NamespacedName, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open = map[types.NamespacedName]burst{}
	}
	b, ok := c.open[app]
	if !ok {
		b.first = now
	}
	b.last = now
	c.open[app] = b
}

// due returns how long app's count can still wait at now: until its changes have been quiet
// for countRefreshDelay, or countRefreshMax after the first. Zero means count now, and the
// burst is forgotten (a change after this opens a new one).
func (c *countBursts) due(app types.NamespacedName, now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.open[app]
	if !ok {
		return 0
	}
	if wait := min(b.last.Add(countRefreshDelay).Sub(now), b.first.Add(countRefreshMax).Sub(now)); wait > 0 {
		return wait
	}
	delete(c.open, app)
	return 0
}

// forget drops app's burst (the Application is gone).
func (c *countBursts) forget(app types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.open, app)
}

// +kubebuilder:rbac:groups=access.clearance.dev,resources=applications,verbs=get;list;watch
// +kubebuilder:rbac:groups=access.clearance.dev,resources=applications/status,verbs=get;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile allocates the ID once and refreshes the counts.
func (r *ApplicationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	app, err := fetchLive[v1.Application](ctx, r.client, req)
	if app == nil {
		r.bursts.forget(req.NamespacedName)
		return ctrl.Result{}, err
	}
	// Counts wait for their burst of changes to end; an ID to allocate or a new spec does not.
	if wait := r.bursts.due(req.NamespacedName, r.burstClock.Now()); wait > 0 &&
		app.Status.ApplicationID != "" && app.Status.ObservedGeneration == app.Generation {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	orig := app.DeepCopy()

	if app.Status.ApplicationID == "" {
		if err := r.allocateID(ctx, app); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.count(ctx, app); err != nil {
		return ctrl.Result{}, err
	}
	app.Status.ObservedGeneration = app.Generation
	if err := r.patchStatus(ctx, orig, app); err != nil {
		return ctrl.Result{}, err
	}
	if orig.Status.ApplicationID == "" && app.Status.ApplicationID != "" {
		r.events.Eventf(app, nil, corev1.EventTypeNormal, v1.ReasonApplicationID, "Allocate",
			"Application ID %s allocated; share it with orgs that should connect this application", app.Status.ApplicationID)
	}
	return ctrl.Result{}, nil
}

// allocateID gives the Application its pinned ID, or a new random one, unless another
// Application already holds or earlier claimed the pinned ID.
func (r *ApplicationReconciler) allocateID(ctx context.Context, app *v1.Application) error {
	id := app.Spec.ApplicationID
	if id == "" {
		generated, err := keyformat.NewApplicationID(rand.Reader)
		if err != nil {
			return err
		}
		id = generated
	} else {
		var claimants v1.ApplicationList
		if err := r.client.List(ctx, &claimants, client.MatchingFields{index.ApplicationClaimedID: id}); err != nil {
			return err
		}
		if other := firstClaimant(app, id, claimants.Items); other != nil {
			r.setCondition(&app.Status.Conditions, app.Generation, metav1.ConditionFalse, v1.ReasonConflict,
				fmt.Sprintf("Application ID %s already belongs to Application %s/%s: remove spec.applicationID to get a new ID, or delete the other Application",
					id, other.Namespace, other.Name))
			return nil
		}
	}
	app.Status.ApplicationID = id
	r.setCondition(&app.Status.Conditions, app.Generation, metav1.ConditionTrue, v1.ReasonApplicationID,
		"Application ID "+id+" is allocated")
	return nil
}

// firstClaimant returns another Application that holds id, or claimed it before app did.
// An Application claims the ID it holds or, holding none yet, the one it pins: the index
// (index.ApplicationClaimedID) lists both IDs of one holding one and pinning another.
func firstClaimant(app *v1.Application, id string, claimants []v1.Application) *v1.Application {
	for i := range claimants {
		other := &claimants[i]
		if other.UID == app.UID {
			continue
		}
		if held := other.Status.ApplicationID; held != id && (held != "" || other.Spec.ApplicationID != id) {
			continue
		}
		if other.Status.ApplicationID != "" || claimedEarlier(other, app) {
			return other
		}
	}
	return nil
}

// claimedEarlier orders claims by creation time, then by namespace and name, so every pass
// and every replica picks the same winner.
func claimedEarlier(a, b *v1.Application) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// count refreshes keyCount and connectedOrgs from the cache.
func (r *ApplicationReconciler) count(ctx context.Context, app *v1.Application) error {
	var keys v1.APIKeyList
	if err := r.client.List(ctx, &keys, client.InNamespace(app.Namespace),
		client.MatchingFields{index.KeyApplication: app.Name}); err != nil {
		return err
	}
	app.Status.KeyCount = int32(len(keys.Items))

	var orgs []string
	if app.Status.ApplicationID != "" {
		var conns v1.OrgConnectionList
		if err := r.client.List(ctx, &conns, client.MatchingFields{index.ConnectionApplicationID: app.Status.ApplicationID}); err != nil {
			return err
		}
		for _, c := range conns.Items {
			if c.Status.ApplicationNamespace == app.Namespace && c.Status.ApplicationName == app.Name && ready(c.Status.Conditions) {
				orgs = append(orgs, c.Namespace)
			}
		}
		slices.Sort(orgs)
		orgs = slices.Compact(orgs)
	}
	app.Status.ConnectedOrgs = orgs
	return nil
}

// SetupWithManager watches Applications, and their keys and connections for the counts.
func (r *ApplicationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("application").
		For(&v1.Application{}, builder.WithPredicates(specChanged())).
		Watches(&v1.APIKey{}, r.countLater(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.(*v1.APIKey).Spec.ApplicationName}}}
		}), builder.WithPredicates(createOrDelete())).
		Watches(&v1.OrgConnection{}, r.countLater(r.applicationsOfConnection), builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				o, n := e.ObjectOld.(*v1.OrgConnection), e.ObjectNew.(*v1.OrgConnection)
				return o.Status.ApplicationNamespace != n.Status.ApplicationNamespace || ready(o.Status.Conditions) != ready(n.Status.Conditions) || madeAgain(e)
			},
		})).
		// An Application refused an ID another held or claimed first (Conflict) takes it once that
		// one is gone, as its condition tells the user: nothing else would look at it again.
		Watches(&v1.Application{}, handler.EnqueueRequestsFromMapFunc(r.otherClaimants), builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(event.CreateEvent) bool { return false },
			UpdateFunc:  func(event.UpdateEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		Complete(quietConflicts(r))
}

// otherClaimants maps a deleted Application to the Applications still waiting for an ID it
// held or claimed.
func (r *ApplicationReconciler) otherClaimants(ctx context.Context, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, id := range index.ApplicationClaimedIDs(o) {
		var apps v1.ApplicationList
		if err := r.client.List(ctx, &apps, client.MatchingFields{index.ApplicationClaimedID: id}); err != nil {
			return nil
		}
		reqs = append(reqs, requestsFor(apps.Items, func(a *v1.Application) bool {
			return a.UID != o.GetUID() && a.Status.ApplicationID == ""
		})...)
	}
	return reqs
}

// applicationsOfConnection maps a connection to the Application holding its ID.
func (r *ApplicationReconciler) applicationsOfConnection(ctx context.Context, o client.Object) []reconcile.Request {
	var apps v1.ApplicationList
	if err := r.client.List(ctx, &apps, client.MatchingFields{index.ApplicationHeldID: o.(*v1.OrgConnection).Spec.ApplicationID}); err != nil {
		return nil
	}
	return requestsFor(apps.Items, nil)
}

// countLater is EnqueueRequestsFromMapFunc for a change an Application's counts follow: it
// records the change in the Application's burst and asks for a pass after countRefreshDelay,
// which counts once the burst has ended (countBursts.due).
func (r *ApplicationReconciler) countLater(fn handler.MapFunc) handler.EventHandler {
	add := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for _, req := range fn(ctx, o) {
			r.bursts.add(req.NamespacedName, r.burstClock.Now())
			q.AddAfter(req, countRefreshDelay)
		}
	}
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if madeAgain(e) {
				add(ctx, e.ObjectOld, q) // the object deleted may have counted elsewhere
			}
			add(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
	}
}
