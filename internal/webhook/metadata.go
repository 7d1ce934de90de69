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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// +kubebuilder:webhook:path=/mutate-created-by,mutating=true,failurePolicy=ignore,sideEffects=None,groups=access.clearance.dev,resources=applications;apikeys;orgconnections,verbs=create,versions=v1alpha1,name=mcreatedby.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"created-by-names-another-user","expression":"object.metadata.?annotations[?'access.clearance.dev/created-by'].orValue(request.userInfo.username) != request.userInfo.username"}]}`

// createdBy answers the one created-by case the apiserver's policies cannot answer kindly: a
// create whose manifest already names another creator (exported from a live object, say). It
// records the creating user instead and says so in a warning (a MutatingAdmissionPolicy cannot
// warn). Every other create is stamped by the policy clearance-created-by, and every update is
// held to the recorded creator by it (config/policies/created_by.yaml). It fails open: while the
// operator is down, that policy refuses such a create and says to remove the annotation.
type createdBy struct{}

func (createdBy) Handle(_ context.Context, req admission.Request) admission.Response {
	meta, err := objectMeta(req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if req.Operation != admissionv1.Create {
		return admission.Allowed("")
	}
	current, set := meta.Annotations[v1.AnnotationCreatedBy]
	if set && current == req.UserInfo.Username {
		return admission.Allowed("")
	}
	resp := admission.Patched("", jsonPatchAnnotation(meta.Annotations == nil, req.UserInfo.Username))
	if set {
		resp = resp.WithWarnings(fmt.Sprintf("annotation %s is recorded by Clearance: %q was replaced with the creating user %q",
			v1.AnnotationCreatedBy, current, req.UserInfo.Username))
	}
	return resp
}

// jsonPatchAnnotation sets the created-by annotation, creating the map when there is none.
func jsonPatchAnnotation(noAnnotations bool, user string) jsonpatch.JsonPatchOperation {
	path := "/metadata/annotations/" + strings.ReplaceAll(strings.ReplaceAll(v1.AnnotationCreatedBy, "~", "~0"), "/", "~1")
	if noAnnotations {
		return jsonpatch.JsonPatchOperation{Operation: "add", Path: "/metadata/annotations", Value: map[string]string{v1.AnnotationCreatedBy: user}}
	}
	return jsonpatch.JsonPatchOperation{Operation: "add", Path: path, Value: user}
}

// objectMeta decodes only the metadata of the request's object.
func objectMeta(req admission.Request) (*metav1.PartialObjectMetadata, error) {
	meta := &metav1.PartialObjectMetadata{}
	return meta, decodeObject(req, meta)
}

// decodeObject decodes the request's object into into, a struct of only the fields a webhook
// reads (the rest of the object is skipped, not decoded), refusing what is not an object.
func decodeObject(req admission.Request, into any) error {
	if len(req.Object.Raw) == 0 {
		return fmt.Errorf("the admission request carries no object")
	}
	if err := json.Unmarshal(req.Object.Raw, into); err != nil {
		return fmt.Errorf("the admission request's object is not a %s this webhook can read: %v", req.Kind.Kind, err)
	}
	return nil
}

// namespaceOf is the request's namespace, which the apiserver sets for every namespaced object
// (the object's own metadata may leave it out on create).
func namespaceOf(req admission.Request, fromObject string) string {
	if req.Namespace != "" {
		return req.Namespace
	}
	return fromObject
}
