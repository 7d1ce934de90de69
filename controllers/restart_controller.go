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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// RestartReconciler gives workloads that opted in (label access.clearance.dev/restart-on-rotation)
// a rolling restart when a key Secret they use gets a new key, so nobody needs an extra tool.
type RestartReconciler struct {
	reconcilerBase
	events events.EventRecorder
}

// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;patch

// Reconcile stamps the key's ID on the pod template of every opted-in workload that uses its
// Secret. The stamp is the key ID, not a time, so a pass is idempotent and a workload restarts
// exactly once per new key.
func (r *RestartReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	key, err := fetch[v1.APIKey](ctx, r.client, req)
	if key == nil || key.Status.KeyID == "" || key.Status.SecretName == "" {
		return ctrl.Result{}, err
	}
	opted := client.MatchingLabels{v1.LabelRestartOnRotation: "true"}
	var deployments appsv1.DeploymentList
	if err := r.client.List(ctx, &deployments, client.InNamespace(key.Namespace), opted); err != nil {
		return ctrl.Result{}, err
	}
	for i := range deployments.Items {
		d := &deployments.Items[i]
		if err := r.restart(ctx, key, d, &d.Spec.Template); err != nil {
			return ctrl.Result{}, err
		}
	}
	var sets appsv1.StatefulSetList
	if err := r.client.List(ctx, &sets, client.InNamespace(key.Namespace), opted); err != nil {
		return ctrl.Result{}, err
	}
	for i := range sets.Items {
		s := &sets.Items[i]
		if err := r.restart(ctx, key, s, &s.Spec.Template); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// restart patches the workload's pod template when it uses the key's Secret and carries
// another key's ID. A workload that never saw a replaced key is left alone: its pods already
// started with the current key.
func (r *RestartReconciler) restart(ctx context.Context, key *v1.APIKey, obj client.Object, tmpl *corev1.PodTemplateSpec) error {
	if !usesSecret(&tmpl.Spec, key.Status.SecretName) {
		return nil
	}
	stamped, ok := tmpl.Annotations[v1.AnnotationKeyID]
	if stamped == key.Status.KeyID || (!ok && key.Status.ReplacedHash == "") {
		return nil
	}
	orig := obj.DeepCopyObject().(client.Object)
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	tmpl.Annotations[v1.AnnotationKeyID] = key.Status.KeyID
	if err := r.client.Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		return err
	}
	r.events.Eventf(obj, key, corev1.EventTypeNormal, "KeyRotated", "Restart",
		"restarting: Secret %s it uses now holds key %s", key.Status.SecretName, key.Status.Masked)
	return nil
}

// usesSecret reports whether a pod spec mounts the Secret or reads it into the environment.
func usesSecret(spec *corev1.PodSpec, name string) bool {
	for _, vol := range spec.Volumes {
		if vol.Secret != nil && vol.Secret.SecretName == name {
			return true
		}
		if vol.Projected != nil {
			for _, src := range vol.Projected.Sources {
				if src.Secret != nil && src.Secret.Name == name {
					return true
				}
			}
		}
	}
	containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range containers {
		for _, from := range c.EnvFrom {
			if from.SecretRef != nil && from.SecretRef.Name == name {
				return true
			}
		}
		for _, env := range c.Env {
			if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil && env.ValueFrom.SecretKeyRef.Name == name {
				return true
			}
		}
	}
	return false
}

// SetupWithManager reacts to a key getting a new key ID.
func (r *RestartReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("restart-on-rotation").
		For(&v1.APIKey{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(event.CreateEvent) bool { return false },
			DeleteFunc:  func(event.DeleteEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false },
			UpdateFunc: func(e event.UpdateEvent) bool {
				return e.ObjectOld.(*v1.APIKey).Status.KeyID != e.ObjectNew.(*v1.APIKey).Status.KeyID
			},
		})).
		Complete(quietConflicts(r))
}
