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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// reconcilerBase holds what every reconciler needs.
type reconcilerBase struct {
	// client reads from the informer cache and writes to the apiserver.
	client client.Client
	// apiReader reads the apiserver directly, to confirm a decision the cache may be stale for.
	apiReader client.Reader
	clock     clock.PassiveClock
}

// patchStatus writes obj's status as a merge patch against orig, only when it differs, with a
// resourceVersion precondition so a stale pass (or a second leader) cannot overwrite a newer one.
//
// Only the two statuses are compared, once, and the precondition added to their diff: the
// status subresource ignores everything else, and client.MergeFromWithOptimisticLock would
// serialize both whole objects twice, on the hot path of minting.
func (b *reconcilerBase) patchStatus(ctx context.Context, orig, obj client.Object) error {
	version := orig.GetResourceVersion()
	if version == "" {
		return fmt.Errorf("cannot patch the status of %s: the copy read has no resourceVersion to hold the write to", client.ObjectKeyFromObject(obj))
	}
	was, err := statusJSON(orig)
	if err != nil {
		return err
	}
	is, err := statusJSON(obj)
	if err != nil {
		return err
	}
	if bytes.Equal(was, is) {
		return nil
	}
	diff, err := jsonpatch.CreateMergePatch(was, is)
	if err != nil {
		return err
	}
	if string(diff) == "{}" {
		return nil
	}
	data, err := json.Marshal(map[string]any{
		"metadata": map[string]string{"resourceVersion": version},
		"status":   json.RawMessage(diff),
	})
	if err != nil {
		return err
	}
	// Sent as PartialObjectMetadata, so the apiserver answers with the object's metadata
	// alone (the metadata client asks for it): obj already holds the status written, and only
	// the new resourceVersion is taken back. The whole object, encoded by the apiserver and
	// decoded again here, was about a twentieth of the operator's CPU per key minted.
	gvk, err := b.client.GroupVersionKindFor(obj)
	if err != nil {
		return err
	}
	answer := &metav1.PartialObjectMetadata{}
	answer.SetGroupVersionKind(gvk)
	answer.Namespace, answer.Name = obj.GetNamespace(), obj.GetName()
	if err := b.client.Status().Patch(ctx, answer, client.RawPatch(types.MergePatchType, data)); err != nil {
		return err
	}
	obj.SetResourceVersion(answer.ResourceVersion)
	return nil
}

// statusJSON serializes the Status field of one of Clearance's kinds.
func statusJSON(obj client.Object) ([]byte, error) {
	v := reflect.ValueOf(obj)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var status reflect.Value
	if v.Kind() == reflect.Struct {
		status = v.FieldByName("Status")
	}
	if !status.IsValid() {
		return nil, fmt.Errorf("%T has no status to patch", obj)
	}
	return json.Marshal(status.Interface())
}

// setCondition sets a condition with the injected clock's time. The transition time only moves
// when the status flips, so an unchanged condition causes no write.
func (b *reconcilerBase) setCondition(conds *[]metav1.Condition, generation int64, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type:               v1.ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
		LastTransitionTime: metav1.NewTime(b.clock.Now()),
	})
}

// ready reports whether the Ready condition is True.
func ready(conds []metav1.Condition) bool {
	return meta.IsStatusConditionTrue(conds, v1.ConditionReady)
}

// object is a pointer to an API type T: what the generic helpers below read and map.
type object[T any] interface {
	*T
	client.Object
}

// fetch reads the object req names from the cache; nil, with no error, when it is gone.
func fetch[T any, P object[T]](ctx context.Context, c client.Reader, req ctrl.Request) (P, error) {
	obj := P(new(T))
	if err := c.Get(ctx, req.NamespacedName, obj); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return obj, nil
}

// fetchLive is fetch for a reconciler with nothing to do for an object being deleted: nil,
// with no error, when the object is gone or going (what it owns goes with it through owner
// references).
func fetchLive[T any, P object[T]](ctx context.Context, c client.Reader, req ctrl.Request) (P, error) {
	obj, err := fetch[T, P](ctx, c, req)
	if obj == nil || !obj.GetDeletionTimestamp().IsZero() {
		return nil, err
	}
	return obj, nil
}

// requestsFor maps listed objects to requests to reconcile them, for a watch's map function;
// keep, unless nil, picks which.
func requestsFor[T any, P object[T]](items []T, keep func(P) bool) []reconcile.Request {
	var reqs []reconcile.Request
	for i := range items {
		if obj := P(&items[i]); keep == nil || keep(obj) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		}
	}
	return reqs
}

// quietConflicts runs a reconciler with routine errors turned into quiet retries (retry).
func quietConflicts(r reconcile.Reconciler) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		res, err := r.Reconcile(ctx, req)
		if err != nil {
			return retry(ctx, err)
		}
		return res, nil
	})
}

// retry turns the errors of routine work into a quiet retry, not an error logged with a stack
// trace: a conflict (another writer was first, or the cache was behind the apiserver), an
// object that already exists (the next pass reads what the cache did not show), an APIKey the
// cache still showed after its delete began (errNotLive). A write into a
// namespace being deleted is not retried: the object goes with its namespace.
func retry(ctx context.Context, err error) (ctrl.Result, error) {
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		log.FromContext(ctx).V(1).Info("namespace is being deleted, not retrying", "error", err.Error())
		return ctrl.Result{}, nil
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err), errors.Is(err, errNotLive):
		log.FromContext(ctx).V(1).Info("conflict, retrying", "error", err.Error())
		return ctrl.Result{Requeue: true}, nil
	}
	return ctrl.Result{}, err
}
