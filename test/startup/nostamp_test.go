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

package startup

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestWithoutTheCreatorStampEveryCreateIsRefusedRatherThanUnrecorded: the creator record is a
// MutatingAdmissionPolicy's work. Should its binding be gone (deleted by hand, an apiserver with
// the API switched off after install), the validating policy refuses every Application, APIKey and
// OrgConnection create, saying what is missing and what to do, rather than admit one nobody
// recorded; with the binding back, creates are stamped again.
func TestWithoutTheCreatorStampEveryCreateIsRefusedRatherThanUnrecorded(t *testing.T) {
	ctx := context.Background()
	binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "clearance-created-by"}, binding); err != nil {
		t.Fatalf("the test environment installs the binding clearance-created-by: %v", err)
	}
	restore := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binding.Name, Labels: binding.Labels, Annotations: binding.Annotations}, Spec: binding.Spec}
	restored := false
	putBack := func() {
		if err := env.Client.Create(ctx, restore.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Errorf("putting the binding clearance-created-by back: %v", err)
		}
		restored = true
	}
	t.Cleanup(func() {
		if !restored {
			putBack()
		}
	})
	if err := env.Client.Delete(ctx, binding); err != nil {
		t.Fatal(err)
	}
	org := env.Namespace(t, "no-stamp")
	objects := []client.Object{
		&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "BI"}},
		&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi-prod"}, Spec: v1.APIKeySpec{ApplicationName: "bi"}},
		&v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.OrgConnectionSpec{ApplicationID: "app_0123456789abcdefghijklmnop", Role: v1.RoleObserver}},
	}
	for _, o := range objects {
		var last error
		// The apiserver drops the binding from its policies as its informer sees the delete.
		testenv.Within(t, 30*time.Second, "a create without the stamp to be refused", func() error {
			last = env.Client.Create(ctx, o.DeepCopyObject().(client.Object))
			switch {
			case last == nil:
				_ = env.Client.Delete(ctx, o)
				return errors.New("admitted: the binding is still in force")
			case apierrors.IsAlreadyExists(last): // the one just admitted, still going
				return last
			}
			return nil
		})
		msg := last.Error()
		for _, want := range []string{"ValidatingAdmissionPolicy 'clearance-created-by'", "was not stamped with its creator (annotation access.clearance.dev/created-by)",
			"MutatingAdmissionPolicy clearance-created-by, which needs Kubernetes 1.36 or later", "install the chart (or make install)"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%T %s: refused with %q, want it to say %q", o, o.GetName(), msg, want)
			}
		}
	}

	putBack()
	app := objects[0].DeepCopyObject().(*v1.Application)
	testenv.Within(t, 30*time.Second, "a create to be stamped again", func() error {
		return env.Client.Create(ctx, app.DeepCopy())
	})
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
		t.Fatal(err)
	}
	if app.Annotations[v1.AnnotationCreatedBy] == "" {
		t.Errorf("with the binding back, the Application was admitted without %s", v1.AnnotationCreatedBy)
	}
}
