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

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
)

// OrgConnectionReconciler resolves the Application ID a connection grants a role to, in any
// namespace, and pins the namespace it was first found in.
type OrgConnectionReconciler struct {
	reconcilerBase
	events events.EventRecorder
}

// +kubebuilder:rbac:groups=access.clearance.dev,resources=orgconnections,verbs=get;list;watch
// +kubebuilder:rbac:groups=access.clearance.dev,resources=orgconnections/status,verbs=get;patch

// Reconcile resolves the connection and shows the application as the granting org sees it.
func (r *OrgConnectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	conn, err := fetchLive[v1.OrgConnection](ctx, r.client, req)
	if conn == nil {
		return ctrl.Result{}, err
	}
	orig := conn.DeepCopy()

	var holders v1.ApplicationList
	if err := r.client.List(ctx, &holders, client.MatchingFields{index.ApplicationHeldID: conn.Spec.ApplicationID}); err != nil {
		return ctrl.Result{}, err
	}
	app, reason, message := resolveConnection(conn, holders.Items)
	siblings, err := r.sameApplication(ctx, conn)
	if err != nil {
		return ctrl.Result{}, err
	}
	if first := inForce(siblings); first != nil && first.Name != conn.Name {
		app, reason, message = nil, v1.ReasonConflict, fmt.Sprintf(
			"OrgConnection %q already connects application %s in this org, so this one grants nothing: delete this one and edit the role on %q",
			first.Name, conn.Spec.ApplicationID, first.Name)
	}
	if app != nil {
		conn.Status.ApplicationNamespace = app.Namespace
		conn.Status.ApplicationName = app.Name
		conn.Status.Description = app.Spec.Description
		conn.Status.CreatedBy = app.Namespace
		r.setCondition(&conn.Status.Conditions, conn.Generation, metav1.ConditionTrue, v1.ReasonConnected, fmt.Sprintf(
			"application %s (%s, created by org %s) has role %s in this org", conn.Spec.ApplicationID, app.Spec.Description, app.Namespace, conn.Spec.Role))
	} else {
		r.setCondition(&conn.Status.Conditions, conn.Generation, metav1.ConditionFalse, reason, message)
	}
	conn.Status.ObservedGeneration = conn.Generation
	if err := r.patchStatus(ctx, orig, conn); err != nil {
		return ctrl.Result{}, err
	}

	switch was, is := ready(orig.Status.Conditions), ready(conn.Status.Conditions); {
	case !was && is:
		r.events.Eventf(conn, nil, corev1.EventTypeNormal, v1.ReasonConnected, "Connect", "%s", conditionMessage(conn.Status.Conditions))
	case was && !is:
		r.events.Eventf(conn, nil, corev1.EventTypeWarning, reason, "Disconnect", "%s", message)
	}
	return ctrl.Result{}, nil
}

// resolveConnection picks the Application a connection grants its role to, among those that
// hold its ID. Once pinned to a namespace, only an Application there can take the grant.
func resolveConnection(conn *v1.OrgConnection, holders []v1.Application) (*v1.Application, string, string) {
	id, pinned := conn.Spec.ApplicationID, conn.Status.ApplicationNamespace
	if pinned != "" {
		for i := range holders {
			if holders[i].Namespace == pinned {
				return &holders[i], "", ""
			}
		}
		if len(holders) > 0 {
			return nil, v1.ReasonConflict, fmt.Sprintf(
				"Application ID %s is now held by Application %s/%s, but this connection was made to the application of org %s: delete and re-create this OrgConnection to trust the new owner",
				id, holders[0].Namespace, holders[0].Name, pinned)
		}
		return nil, v1.ReasonApplicationNotFound, fmt.Sprintf(
			"the application %s of org %s no longer exists; the role is not in force until it is back", id, pinned)
	}
	switch len(holders) {
	case 0:
		return nil, v1.ReasonApplicationNotFound, fmt.Sprintf(
			"no Application has ID %s yet: check the ID with the org that owns it; this connection resolves by itself when it appears", id)
	case 1:
		return &holders[0], "", ""
	}
	return nil, v1.ReasonConflict, fmt.Sprintf(
		"%d Applications hold ID %s (for example in org %s and org %s): the connection stays unresolved until only one does",
		len(holders), id, holders[0].Namespace, holders[1].Namespace)
}

// inForce is the one connection, among an org's connections of the same application, that
// grants its role. The webhook refuses a second one, but it reads a cache: a second connection
// created moments after the first can get through, and is then a Conflict here. The one
// already Ready stays in force (a valid grant is never replaced by a newer one), then the
// oldest, then the first by name.
func inForce(conns []v1.OrgConnection) *v1.OrgConnection {
	var first *v1.OrgConnection
	for i := range conns {
		c := &conns[i]
		if !c.DeletionTimestamp.IsZero() {
			continue
		}
		if first == nil || before(c, first) {
			first = c
		}
	}
	return first
}

// before orders connections for inForce.
func before(a, b *v1.OrgConnection) bool {
	if ra, rb := ready(a.Status.Conditions), ready(b.Status.Conditions); ra != rb {
		return ra
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// conditionMessage is the Ready condition's message, or "".
func conditionMessage(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, v1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

// conditionReason is the Ready condition's reason, or "".
func conditionReason(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, v1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// SetupWithManager watches connections and the Applications whose ID or description changes.
func (r *OrgConnectionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("orgconnection").
		For(&v1.OrgConnection{}, builder.WithPredicates(specChanged())).
		// A connection that comes or goes changes which of its org's connections of the same
		// application is in force.
		Watches(&v1.OrgConnection{}, handler.EnqueueRequestsFromMapFunc(r.siblings), builder.WithPredicates(createOrDelete())).
		Watches(&v1.Application{}, handler.EnqueueRequestsFromMapFunc(r.connectionsOfApplication), builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				o, n := e.ObjectOld.(*v1.Application), e.ObjectNew.(*v1.Application)
				return o.Status.ApplicationID != n.Status.ApplicationID || o.Spec.Description != n.Spec.Description || madeAgain(e)
			},
		})).
		Complete(quietConflicts(r))
}

// sameApplication lists the connections of conn's org to conn's application, conn included.
func (r *OrgConnectionReconciler) sameApplication(ctx context.Context, conn *v1.OrgConnection) ([]v1.OrgConnection, error) {
	var conns v1.OrgConnectionList
	err := r.client.List(ctx, &conns, client.InNamespace(conn.Namespace), client.MatchingFields{index.ConnectionApplicationID: conn.Spec.ApplicationID})
	return conns.Items, err
}

// siblings maps a connection to the other connections of the same application in its org.
func (r *OrgConnectionReconciler) siblings(ctx context.Context, o client.Object) []reconcile.Request {
	conns, err := r.sameApplication(ctx, o.(*v1.OrgConnection))
	if err != nil {
		return nil
	}
	return requestsFor(conns, func(c *v1.OrgConnection) bool { return c.Name != o.GetName() })
}

// connectionsOfApplication maps an Application to every connection naming its ID, in any org.
func (r *OrgConnectionReconciler) connectionsOfApplication(ctx context.Context, o client.Object) []reconcile.Request {
	id := o.(*v1.Application).Status.ApplicationID
	if id == "" {
		return nil
	}
	var conns v1.OrgConnectionList
	if err := r.client.List(ctx, &conns, client.MatchingFields{index.ConnectionApplicationID: id}); err != nil {
		return nil
	}
	return requestsFor(conns.Items, nil)
}
