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
	"maps"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestTheCreatedByWebhookRecordsTheCreatorWhateverAnnotationsTheManifestHas: the apiserver
// calls the webhook only for a create naming another creator (its match condition), but the
// webhook does not rely on that: called for a manifest without annotations, or with others
// only, its patch records the creating user as well, keeping every other annotation; one that
// already names the creating user is admitted unchanged.
func TestTheCreatedByWebhookRecordsTheCreatorWhateverAnnotationsTheManifestHas(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		warned      bool
	}{
		{"no annotations", nil, false},
		{"others only", map[string]string{"note": "a/b~c"}, false},
		{"another creator", map[string]string{v1.AnnotationCreatedBy: "mallory", "note": "x"}, true},
		{"the creating user", map[string]string{v1.AnnotationCreatedBy: "ada"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := json.Marshal(&v1.Application{
				TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "Application"},
				ObjectMeta: metav1.ObjectMeta{Namespace: "acme", Name: "bi", Annotations: tc.annotations},
			})
			if err != nil {
				t.Fatal(err)
			}
			resp := createdBy{}.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				Operation: admissionv1.Create, UserInfo: authenticationv1.UserInfo{Username: "ada"}, Object: runtime.RawExtension{Raw: obj},
			}})
			if !resp.Allowed {
				t.Fatalf("refused: %v", resp.Result)
			}
			if got := len(resp.Warnings) > 0; got != tc.warned {
				t.Errorf("warned %v, want %v: %q", got, tc.warned, resp.Warnings)
			}
			ops, err := json.Marshal(resp.Patches)
			if err != nil {
				t.Fatal(err)
			}
			patched := obj
			if len(resp.Patches) > 0 {
				patch, err := jsonpatch.DecodePatch(ops)
				if err != nil {
					t.Fatal(err)
				}
				if patched, err = patch.Apply(obj); err != nil {
					t.Fatalf("the patch %s does not apply: %v", ops, err)
				}
			}
			var got v1.Application
			if err := json.Unmarshal(patched, &got); err != nil {
				t.Fatal(err)
			}
			want := maps.Clone(tc.annotations)
			if want == nil {
				want = map[string]string{}
			}
			want[v1.AnnotationCreatedBy] = "ada"
			if !maps.Equal(got.Annotations, want) {
				t.Errorf("annotations after the patch %s: %v, want %v", ops, got.Annotations, want)
			}
		})
	}
}
