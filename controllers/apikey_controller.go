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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/metrics"
)

// cacheLagRequeue is how soon a pass retries when the cache is behind the apiserver.
const cacheLagRequeue = 200 * time.Millisecond

// APIKeyReconciler mints each APIKey into a Secret, and keeps it: enabled or not, expired at
// the instant, rotated on schedule, repaired (never trusted) when its Secret is lost or edited.
// Every pass decides first (the phases, apikey_phases.go) and writes last, through one writer
// in one order (commit, apikey_writes.go).
type APIKeyReconciler struct {
	reconcilerBase
	events  events.EventRecorder
	format  keyformat.Format
	metrics *metrics.Controllers
	workers int
	// undelivered holds keys recorded in status whose Secret write has not succeeded yet.
	undelivered undelivered
}

// keyScope is what one pass gathered about an APIKey and what it decided.
type keyScope struct {
	key  *v1.APIKey // status is computed in place
	orig *v1.APIKey // as read; the base of the status patch
	app  *v1.Application
	// secret is the key Secret as last seen (cache, or the apiserver after a confirmation).
	secret *corev1.Secret
	now    time.Time

	// notReady, when set, is why Ready is False even though the key may be usable.
	notReady *outcome
	// failed, when set, is why the key cannot be minted until the user acts.
	failed *outcome
	// fresh is a new key whose hash status now records; the writer delivers it to the Secret
	// after the status. mint says why it was made, for the mints counter.
	fresh *keyformat.Key
	mint  string
	// strip asks the writer to remove the key material from the Secret (the key expired, or
	// was revoked with its Application).
	strip bool
	// remove asks the writer to delete the APIKey once status says why: its Application was
	// deleted, and a deleted Application's keys go with it.
	remove bool
	// requeue asks for a quick retry because the cache was behind; the pass writes nothing.
	requeue bool
	events  []keyEvent
}

type outcome struct{ reason, message string }

type keyEvent struct{ eventType, reason, action, note string }

func (s *keyScope) event(eventType, reason, action, note string) {
	s.events = append(s.events, keyEvent{eventType, reason, action, note})
}

// +kubebuilder:rbac:groups=access.clearance.dev,resources=apikeys,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=access.clearance.dev,resources=apikeys/status,verbs=get;patch
// +kubebuilder:rbac:groups=access.clearance.dev,resources=apikeys/finalizers,verbs=update
// apikeys/credentials is served by nothing: the admission policy clearance-apikey-status
// (config/policies) lets only holders of this verb write status beyond usage (hashes, states).
// +kubebuilder:rbac:groups=access.clearance.dev,resources=apikeys/credentials,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch

// Reconcile walks the key through its phases, each of which may end the decisions of the
// pass, then commits what they decided.
func (r *APIKeyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	key := &v1.APIKey{}
	if err := r.client.Get(ctx, req.NamespacedName, key); err != nil {
		if apierrors.IsNotFound(err) {
			r.undelivered.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !key.DeletionTimestamp.IsZero() {
		// The owner reference removes the Secret; the verifier already refuses a deleting key.
		r.undelivered.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	s := &keyScope{key: key, orig: key.DeepCopy(), now: r.clock.Now()}
	if err := r.gather(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	for _, phase := range []func(context.Context, *keyScope) (bool, error){
		r.waitForApplication,
		r.keepApplication,
		r.expire,
		r.mint,
		r.repairSecret,
		r.rotate,
	} {
		stop, err := phase(ctx, s)
		if err != nil {
			return retry(ctx, err)
		}
		if stop {
			break
		}
	}
	if s.requeue {
		return ctrl.Result{RequeueAfter: cacheLagRequeue}, nil
	}
	if err := r.commit(ctx, s); err != nil {
		return retry(ctx, err)
	}
	return ctrl.Result{RequeueAfter: requeueAfter(s.key, s.now)}, nil
}

// gather reads the key's Application and Secret from the cache.
func (r *APIKeyReconciler) gather(ctx context.Context, s *keyScope) error {
	app := &v1.Application{}
	switch err := r.client.Get(ctx, types.NamespacedName{Namespace: s.key.Namespace, Name: s.key.Spec.ApplicationName}, app); {
	case err == nil:
		s.app = app
	case !apierrors.IsNotFound(err):
		return err
	}
	secret := &corev1.Secret{}
	switch err := r.client.Get(ctx, types.NamespacedName{Namespace: s.key.Namespace, Name: s.key.SecretNameOrDefault()}, secret); {
	case err == nil:
		s.secret = secret
	case !apierrors.IsNotFound(err):
		return err
	}
	return nil
}

// report emits the pass's events and records metrics, once its status write succeeded.
func (r *APIKeyReconciler) report(s *keyScope) {
	r.emit(s)
	if r.metrics != nil && !ready(s.orig.Status.Conditions) && ready(s.key.Status.Conditions) && s.orig.Status.Hash == "" {
		r.metrics.ObserveTimeToReady(s.now.Sub(s.key.CreationTimestamp.Time))
	}
}

// emit emits the events the pass has gathered so far, once.
func (r *APIKeyReconciler) emit(s *keyScope) {
	for _, e := range s.events {
		r.events.Eventf(s.key, nil, e.eventType, e.reason, e.action, "%s", e.note)
	}
	s.events = nil
}

// SetupWithManager watches APIKeys (spec and annotation changes), their Secrets (changes and
// deletions, never the operator's own creations) and their Applications (ID and enabled
// changes).
func (r *APIKeyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("apikey").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.workers}).
		For(&v1.APIKey{}, builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{},
			predicate.Funcs{UpdateFunc: statusLost}, predicate.Funcs{UpdateFunc: madeAgain}))).
		Owns(&corev1.Secret{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false },
		})).
		Watches(&v1.Application{}, handler.EnqueueRequestsFromMapFunc(r.keysOfApplication), builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				was, is := e.ObjectOld.(*v1.Application), e.ObjectNew.(*v1.Application)
				return was.Status.ApplicationID != is.Status.ApplicationID || was.IsEnabled() != is.IsEnabled() || madeAgain(e)
			},
		})).
		Complete(r)
}

// statusLost reports an update that wiped a minted key's status (a restore, a status write
// from an old backup): the key is taken back from the Secret this APIKey owns.
func statusLost(e event.UpdateEvent) bool {
	was, is := e.ObjectOld.(*v1.APIKey), e.ObjectNew.(*v1.APIKey)
	return was.IsMinted() && !is.IsMinted()
}

// keysOfApplication maps an Application to the APIKeys that belong to it.
func (r *APIKeyReconciler) keysOfApplication(ctx context.Context, o client.Object) []reconcile.Request {
	var keys v1.APIKeyList
	if err := r.client.List(ctx, &keys, client.InNamespace(o.GetNamespace()), client.MatchingFields{index.KeyApplication: o.GetName()}); err != nil {
		return nil
	}
	return requestsFor(keys.Items, nil)
}

// summarize computes the key's state and Ready condition from what the pass observed.
func (r *APIKeyReconciler) summarize(s *keyScope) {
	k := s.key
	k.Status.CreatedBy = k.Annotations[v1.AnnotationCreatedBy]
	k.Status.ObservedGeneration = k.Generation
	if s.app != nil && s.app.Status.ApplicationID != "" && (s.failed == nil || !k.IsMinted()) {
		k.Status.ApplicationID = s.app.Status.ApplicationID
	}
	switch {
	case s.failed != nil:
		k.Status.State = v1.KeyFailed
	case k.IsMinted():
		k.Status.PreviousKeys = k.LivePreviousKeys(s.now)
		k.Status.State = k.StateAt(s.now)
	default:
		k.Status.State = v1.KeyPending
	}
	status, reason, message := keyCondition(k, s.notReady, s.failed)
	r.setCondition(&k.Status.Conditions, k.Generation, status, reason, message)

	was, is := s.orig.Status.State, k.Status.State
	switch {
	case was == v1.KeyDisabled && (is == v1.KeyActive || is == v1.KeyRotating):
		s.event(corev1.EventTypeNormal, "Enabled", "Enable", "key "+k.Status.Masked+" is enabled again")
	case was != v1.KeyDisabled && was != "" && was != v1.KeyPending && is == v1.KeyDisabled:
		s.event(corev1.EventTypeNormal, v1.ReasonDisabled, "Disable", "key "+k.Status.Masked+" is disabled: the verifier refuses it until spec.enabled is true")
	case was != v1.KeyFailed && is == v1.KeyFailed && k.IsMinted():
		s.event(corev1.EventTypeWarning, reason, "Revoke", message)
	case was != v1.KeyFailed && is == v1.KeyFailed:
		s.event(corev1.EventTypeWarning, reason, "Mint", message)
	}
}
