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

package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// +kubebuilder:webhook:path=/validate-protected,mutating=false,failurePolicy=fail,sideEffects=None,groups=access.clearance.dev,resources=applications;apikeys;orgconnections;metricsets,verbs=update;delete,versions=v1alpha1,name=vprotected.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"objectSelector":{"matchLabels":{"access.clearance.dev/protected":"true"}}}`

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// protectedGuard keeps system defaults (label access.clearance.dev/protected=true) from being
// deleted or unprotected by anyone but the operator. Its configuration selects only labelled
// objects, so deleting an ordinary key never waits on the webhook.
//
// A protected object goes with its namespace: once the namespace is being deleted (it has a
// deletionTimestamp), deleting the object is allowed to anyone, or the namespace controller
// could never empty it and the namespace would stay Terminating for ever. Deleting a namespace
// takes the delete permission on namespaces, which no org role grants, and cannot be undone:
// nothing can be created in a Terminating namespace.
type protectedGuard struct {
	operator string
	// namespaces reads namespaces from the apiserver, not a cache (a namespace whose deletion
	// began a moment ago must count); nil refuses every delete of a protected object.
	namespaces client.Reader
}

func (g *protectedGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.UserInfo.Username == g.operator && g.operator != "" {
		return admission.Allowed("")
	}
	old, err := objectMeta(req.OldObject)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if old.Labels[v1.LabelProtected] != "true" {
		return admission.Allowed("")
	}
	what := fmt.Sprintf("%s %s/%s", req.Kind.Kind, req.Namespace, req.Name)
	switch req.Operation {
	case admissionv1.Delete:
		terminating, err := g.namespaceTerminating(ctx, req.Namespace)
		if err != nil {
			return admission.Denied(fmt.Sprintf("%s is a protected system default (label %s=true) and cannot be deleted, "+
				"except with its namespace, and namespace %q could not be read: %v", what, v1.LabelProtected, req.Namespace, err))
		}
		if terminating {
			return admission.Allowed("namespace " + req.Namespace + " is being deleted")
		}
		return admission.Denied(fmt.Sprintf("%s is a protected system default (label %s=true) and cannot be deleted", what, v1.LabelProtected))
	case admissionv1.Update:
		updated, err := objectMeta(req.Object)
		if err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if updated.Labels[v1.LabelProtected] != "true" {
			return admission.Denied(fmt.Sprintf("the %s=true label of %s cannot be removed: it marks a system default", v1.LabelProtected, what))
		}
	}
	return admission.Allowed("")
}

// namespaceTerminating reports whether namespace ns is being deleted (or is gone already).
func (g *protectedGuard) namespaceTerminating(ctx context.Context, ns string) (bool, error) {
	if g.namespaces == nil || ns == "" {
		return false, nil
	}
	namespace := &corev1.Namespace{}
	if err := g.namespaces.Get(ctx, client.ObjectKey{Name: ns}, namespace); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
	return namespace.DeletionTimestamp != nil, nil
}

// +kubebuilder:webhook:path=/mutate-created-by,mutating=true,failurePolicy=fail,sideEffects=None,groups=access.clearance.dev,resources=applications;apikeys;orgconnections,verbs=create;update,versions=v1alpha1,name=mcreatedby.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"creation-or-created-by-edited","expression":"request.operation != 'UPDATE' || object.metadata.?annotations[?'access.clearance.dev/created-by'].orValue('') != oldObject.metadata.?annotations[?'access.clearance.dev/created-by'].orValue('')"}]}`

// createdBy records the user who created an object, so status can show "created by".
type createdBy struct{}

func (createdBy) Handle(_ context.Context, req admission.Request) admission.Response {
	meta, err := objectMeta(req.Object)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	current, set := meta.Annotations[v1.AnnotationCreatedBy]
	switch req.Operation {
	case admissionv1.Create:
		if set && current == req.UserInfo.Username {
			return admission.Allowed("")
		}
		resp := admission.Patched("", jsonPatchAnnotation(meta.Annotations == nil, req.UserInfo.Username))
		if set {
			resp = resp.WithWarnings(fmt.Sprintf("annotation %s is recorded by Clearance: %q was replaced with the creating user %q",
				v1.AnnotationCreatedBy, current, req.UserInfo.Username))
		}
		return resp
	case admissionv1.Update:
		old, err := objectMeta(req.OldObject)
		if err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		// Only creation records the creator: an update may neither change nor add it (an
		// object created before the webhook existed has none, and keeps none).
		if was := old.Annotations[v1.AnnotationCreatedBy]; was != current {
			if was == "" {
				return admission.Denied(fmt.Sprintf("annotation %s is recorded by Clearance when %s %s is created and cannot be added afterwards: remove it",
					v1.AnnotationCreatedBy, req.Kind.Kind, req.Name))
			}
			return admission.Denied(fmt.Sprintf("annotation %s records who created %s %s and cannot change (it is %q): leave it as it is",
				v1.AnnotationCreatedBy, req.Kind.Kind, req.Name, was))
		}
	}
	return admission.Allowed("")
}

// jsonPatchAnnotation sets the created-by annotation, creating the map when there is none.
func jsonPatchAnnotation(noAnnotations bool, user string) jsonpatch.JsonPatchOperation {
	path := "/metadata/annotations/" + strings.ReplaceAll(strings.ReplaceAll(v1.AnnotationCreatedBy, "~", "~0"), "/", "~1")
	if noAnnotations {
		return jsonpatch.JsonPatchOperation{Operation: "add", Path: "/metadata/annotations", Value: map[string]string{v1.AnnotationCreatedBy: user}}
	}
	return jsonpatch.JsonPatchOperation{Operation: "add", Path: path, Value: user}
}

// objectMeta decodes only the metadata of a raw object, refusing what is not an object.
func objectMeta(raw runtime.RawExtension) (*metav1.PartialObjectMetadata, error) {
	if len(raw.Raw) == 0 {
		return nil, fmt.Errorf("the admission request carries no object")
	}
	meta := &metav1.PartialObjectMetadata{}
	if err := json.Unmarshal(raw.Raw, meta); err != nil {
		return nil, fmt.Errorf("the admission request's object is not a Kubernetes object: %v", err)
	}
	return meta, nil
}
