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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/clearance-dev/clearance/internal/signingkey"
)

// SigningKeyReconciler keeps the OAuth token signing keys: one Secret in the operator's
// namespace (package signingkey), created when missing, rotated every Rotation (the next key
// becomes current, the current previous, a new key next), and replaced with a Warning event
// when it holds no valid set. It reads and watches that one Secret only, through a cache of
// its own selected by name. The verifiers load it (internal/verifier/signingkeys.go).
type SigningKeyReconciler struct {
	reconcilerBase
	events events.EventRecorder
	secret types.NamespacedName
	every  time.Duration
	cache  *signingkey.Cache
}

// SigningKeyOptions say where the signing keys live and how often they rotate; the zero value
// runs no signing-key controller.
type SigningKeyOptions struct {
	// Secret is the Secret's namespace (the operator's) and name (--oauth-signing-secret).
	Secret types.NamespacedName
	// Rotation is how often the keys shift (--oauth-signing-key-rotation); it must be longer
	// than the longest token lifetime. Default signingkey.DefaultRotation.
	Rotation time.Duration
}

// Reconcile creates, repairs or rotates the Secret, and asks to come back when the next
// rotation is due.
func (r *SigningKeyReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	now := r.clock.Now()
	var sec corev1.Secret
	err := r.cache.Get(ctx, r.secret, &sec)
	if apierrors.IsNotFound(err) {
		return r.create(ctx, now)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	set, err := signingkey.FromSecret(&sec)
	if err != nil {
		if sec.Labels[signingkey.Label] != "true" {
			return r.leaveForeign(ctx, &sec)
		}
		return r.replace(ctx, &sec, now, err)
	}
	if set.RefreshKey == nil { // written before refresh keys existed: add one, keep the keys
		if set.RefreshKey, err = signingkey.NewRefreshKey(); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.write(ctx, &sec, set); err != nil {
			return ctrl.Result{}, err
		}
		r.events.Eventf(&sec, nil, corev1.EventTypeNormal, "RefreshKeyAdded", "Update",
			"added %s, which refresh tokens of the authorization code grant are derived with; the signing keys are unchanged", signingkey.DataRefresh)
	}
	if due := set.DueAt(r.every); now.Before(due) {
		return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
	}
	next, err := set.Rotate(now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.write(ctx, &sec, next); err != nil {
		return ctrl.Result{}, err
	}
	r.events.Eventf(&sec, nil, corev1.EventTypeNormal, "Rotated", "Rotate",
		"token signing keys rotated: %s signs now, %s is next, %s stays published until the next rotation",
		next.Current.KeyID, next.Next.KeyID, next.Previous.KeyID)
	return ctrl.Result{RequeueAfter: next.DueAt(r.every).Sub(now)}, nil
}

// create writes the first set. A missing namespace (an operator run outside its cluster
// namespace) is waited for quietly.
func (r *SigningKeyReconciler) create(ctx context.Context, now time.Time) (ctrl.Result, error) {
	set, err := signingkey.NewSet(now)
	if err != nil {
		return ctrl.Result{}, err
	}
	data, ann, err := set.Data()
	if err != nil {
		return ctrl.Result{}, err
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.secret.Namespace, Name: r.secret.Name, Annotations: ann,
			Labels: map[string]string{signingkey.Label: "true", "app.kubernetes.io/managed-by": "clearance"}},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	if err := r.client.Create(ctx, sec); err != nil {
		if apierrors.IsNotFound(err) {
			log.FromContext(ctx).Info("the namespace of the token signing keys does not exist yet; retrying in a minute", "secret", r.secret.String())
			return ctrl.Result{RequeueAfter: time.Minute}, nil
		}
		return ctrl.Result{}, err // AlreadyExists: the cache was behind; quietConflicts retries
	}
	r.events.Eventf(sec, nil, corev1.EventTypeNormal, "Created", "Create",
		"token signing keys created: %s signs, %s is next", set.Current.KeyID, set.Next.KeyID)
	return ctrl.Result{RequeueAfter: set.DueAt(r.every).Sub(now)}, nil
}

// replace writes a new set over a Secret that holds no valid one: tokens it signed can no
// longer be checked, which the Warning says.
func (r *SigningKeyReconciler) replace(ctx context.Context, sec *corev1.Secret, now time.Time, why error) (ctrl.Result, error) {
	set, err := signingkey.NewSet(now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.write(ctx, sec, set); err != nil {
		return ctrl.Result{}, err
	}
	r.events.Eventf(sec, nil, corev1.EventTypeWarning, "Replaced", "Replace",
		"%v; wrote a new set (%s signs): access tokens signed before are refused", why, set.Current.KeyID)
	return ctrl.Result{RequeueAfter: set.DueAt(r.every).Sub(now)}, nil
}

// leaveForeign leaves a Secret of the configured name that is not Clearance's (no signing-keys
// label, no signing set) as it is, and says so: replacing it would destroy somebody's Secret,
// named by mistake in --oauth-signing-secret. Tokens are not issued meanwhile (the verifier
// reads no set from it and answers 503); deleting the Secret, or naming another, lets the next
// reconcile (the cache watches this name) write the keys.
func (r *SigningKeyReconciler) leaveForeign(ctx context.Context, sec *corev1.Secret) (ctrl.Result, error) {
	msg := fmt.Sprintf("Secret %s/%s is not Clearance's token signing keys (no label %s=true, no signing set in it) and was left as it is: "+
		"set --oauth-signing-secret (the chart's oauth.signingSecret) to a name no other Secret has, or delete this Secret if it is not needed; "+
		"OAuth tokens are not issued until then", sec.Namespace, sec.Name, signingkey.Label)
	log.FromContext(ctx).Error(nil, msg)
	r.events.Eventf(sec, nil, corev1.EventTypeWarning, "Conflict", "Leave", msg)
	return ctrl.Result{}, nil
}

// write patches the Secret to hold set, conditional on the resourceVersion read, so two
// leaders for a moment cannot both rotate.
func (r *SigningKeyReconciler) write(ctx context.Context, sec *corev1.Secret, set signingkey.Set) error {
	data, ann, err := set.Data()
	if err != nil {
		return err
	}
	orig := sec.DeepCopy()
	sec.Data = data
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	for k, v := range ann {
		sec.Annotations[k] = v
	}
	if sec.Labels == nil {
		sec.Labels = map[string]string{}
	}
	sec.Labels[signingkey.Label] = "true"
	return r.client.Patch(ctx, sec, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

// SetupWithManager watches the one Secret through its own cache, and reconciles once at start
// so a missing Secret is created.
func (r *SigningKeyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	c, err := signingkey.NewCache(mgr.GetConfig(), mgr.GetScheme(), r.secret)
	if err != nil {
		return fmt.Errorf("a cache of the signing keys Secret %s: %w", r.secret, err)
	}
	if err := mgr.Add(c); err != nil {
		return err
	}
	r.cache = c
	req := reconcile.Request{NamespacedName: r.secret}
	return ctrl.NewControllerManagedBy(mgr).
		Named("signingkeys").
		WatchesRawSource(source.Kind(c.Cache, &corev1.Secret{}, handler.TypedEnqueueRequestsFromMapFunc(
			func(context.Context, *corev1.Secret) []reconcile.Request { return []reconcile.Request{req} }))).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(req)
			return nil
		})).
		Complete(quietConflicts(r))
}
