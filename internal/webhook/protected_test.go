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
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestProtectedObjectsGoWithTheirNamespace: the guard refuses deleting a protected object
// unless its namespace is being deleted (or gone), so the namespace controller can empty it;
// unprotecting stays refused even then, and so does a delete when the namespace cannot be read.
// The guard reads the namespaces from the apiserver: one live, one being deleted, one never
// created; "unreadable" is that apiserver answering every read with 503.
func TestProtectedObjectsGoWithTheirNamespace(t *testing.T) {
	acme, leaving := env.Namespace(t, "acme"), terminatingNamespace(t, "leaving")
	gone := acme + "-gone"
	var namespaces client.Reader = env.Client
	unreadable := withFaults(t, interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return apierrors.NewServiceUnavailable("apiserver unavailable")
		},
	})
	protected := `{"metadata":{"name":"system-default","labels":{"access.clearance.dev/protected":"true"}}}`
	unlabelled := `{"metadata":{"name":"system-default","labels":{}}}`

	for _, tc := range []struct {
		name, ns    string
		op          admissionv1.Operation
		user        string
		object, old string
		reader      client.Reader
		allowed     bool
		message     string
	}{
		{name: "delete in a live namespace", ns: acme, op: admissionv1.Delete, old: protected, reader: namespaces,
			message: "APIKey " + acme + "/system-default is a protected system default (label access.clearance.dev/protected=true) and cannot be deleted"},
		{name: "delete in a namespace being deleted", ns: leaving, op: admissionv1.Delete, old: protected, reader: namespaces, allowed: true},
		{name: "delete in a namespace already gone", ns: gone, op: admissionv1.Delete, old: protected, reader: namespaces, allowed: true},
		{name: "delete by the operator", ns: acme, op: admissionv1.Delete, user: operatorUser, old: protected, reader: namespaces, allowed: true},
		{name: "delete when the namespace cannot be read", ns: leaving, op: admissionv1.Delete, old: protected, reader: unreadable,
			message: fmt.Sprintf(`cannot be deleted, except with its namespace, and namespace %q could not be read`, leaving)},
		{name: "delete without a namespace reader", ns: leaving, op: admissionv1.Delete, old: protected,
			message: "cannot be deleted"},
		{name: "unprotect in a namespace being deleted", ns: leaving, op: admissionv1.Update, object: unlabelled, old: protected, reader: namespaces,
			message: "the access.clearance.dev/protected=true label of APIKey " + leaving + "/system-default cannot be removed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := tc.user
			if user == "" {
				user = "ada"
			}
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				UID:       types.UID("u"),
				Kind:      metav1.GroupVersionKind{Group: v1.GroupVersion.Group, Version: v1.GroupVersion.Version, Kind: "APIKey"},
				Namespace: tc.ns, Name: "system-default", Operation: tc.op,
				UserInfo:  authenticationv1.UserInfo{Username: user},
				OldObject: runtime.RawExtension{Raw: []byte(tc.old)},
			}}
			if tc.object != "" {
				req.Object = runtime.RawExtension{Raw: []byte(tc.object)}
			}
			g := &protectedGuard{operator: operatorUser}
			if tc.reader != nil {
				g.namespaces = tc.reader
			}
			resp := g.Handle(context.Background(), req)
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%s)", resp.Allowed, tc.allowed, resp.Result.Message)
			}
			if !tc.allowed && !strings.Contains(resp.Result.Message, tc.message) {
				t.Errorf("message %q, want it to contain %q", resp.Result.Message, tc.message)
			}
		})
	}
}

// terminatingNamespace is a namespace of one test that is being deleted until the test ends: a
// ConfigMap in it holds a finalizer of the test's, so kube-controller-manager's namespace
// controller cannot empty it and remove it. Afterwards the finalizer goes and the namespace
// with it.
func terminatingNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ctx := context.Background()
	ns := env.Namespace(t, prefix)
	hold := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hold", Finalizers: []string{"test.clearance.dev/hold"}}}
	if err := env.Client.Create(ctx, hold); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		release := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
		if err := env.Client.Patch(ctx, hold, release); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("removing the finalizer holding namespace %s: %v", ns, err)
		}
	})
	if err := env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	namespace := &corev1.Namespace{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: ns}, namespace); err != nil || namespace.DeletionTimestamp == nil {
		t.Fatalf("namespace %s is not being deleted after its deletion (%v)", ns, err)
	}
	return ns
}

// TestDeletingANamespaceWithProtectedObjectsCompletes deletes an org holding a protected object
// of every kind against the real apiserver and kube-controller-manager: the org admin cannot
// delete them, but the namespace controller empties the namespace and it goes away.
func TestDeletingANamespaceWithProtectedObjectsCompletes(t *testing.T) {
	peopleRoles(t)
	ctx := context.Background()
	org := env.Namespace(t, "leaving")
	protected := map[string]string{v1.LabelProtected: "true"}
	objects := []client.Object{
		&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}, Spec: v1.ApplicationSpec{Description: "system default"}},
		&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}, Spec: v1.APIKeySpec{ApplicationName: "system-default", TTL: &metav1.Duration{Duration: 720 * time.Hour}}},
		&v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}, Spec: v1.OrgConnectionSpec{ApplicationID: newID(), Role: v1.RoleObserver}},
		&v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}},
		&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "ordinary"}, Spec: v1.APIKeySpec{ApplicationName: "system-default", TTL: &metav1.Duration{Duration: 720 * time.Hour}}},
	}
	for _, o := range objects {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	if err := ada.c.Delete(ctx, objects[0]); err == nil || !strings.Contains(err.Error(), "is a protected system default") {
		t.Fatalf("the org admin deleting the protected Application: %v, want the guard's refusal", err)
	}

	start := time.Now()
	if err := env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: org}}); err != nil {
		t.Fatal(err)
	}
	deadline := start.Add(time.Minute)
	for {
		err := env.Client.Get(ctx, client.ObjectKey{Name: org}, &corev1.Namespace{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			ns := &corev1.Namespace{}
			_ = env.Client.Get(ctx, client.ObjectKey{Name: org}, ns)
			t.Fatalf("namespace %s still there a minute after its deletion (%v); conditions: %+v\nend of kube-controller-manager's log:\n%s",
				org, err, ns.Status.Conditions, lastLines(env.ControllerManagerLog(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("namespace %s with protected objects of every kind gone %s after its deletion", org, time.Since(start).Round(10*time.Millisecond))
}

// lastLines is the end of a log.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
