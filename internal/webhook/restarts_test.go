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
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestTheOperatorMayOnlyStampTheKeyIDOnOptedInWorkloads: the operator's ClusterRole may patch
// every Deployment and StatefulSet (RBAC cannot narrow it to one annotation of labelled
// workloads); the policy clearance-operator-restarts does, so the operator's credentials can
// restart an opted-in workload and change nothing it runs. Each refused patch is one the
// operator's credentials could make before.
func TestTheOperatorMayOnlyStampTheKeyIDOnOptedInWorkloads(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "restarts")
	operator, err := client.New(env.As(testenv.OperatorUser, []string{"system:masters"}, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "bi"}, Annotations: map[string]string{v1.AnnotationKeyID: "old", "team": "bi"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "bi", Image: "registry.example/bi:1",
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "exporter-key"}}}}}}},
	}
	optedIn := map[string]string{v1.LabelRestartOnRotation: "true"}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bi"}}
	opted := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "opted", Labels: optedIn},
		Spec: appsv1.DeploymentSpec{Selector: selector, Template: *template.DeepCopy()}}
	other := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "other"},
		Spec: appsv1.DeploymentSpec{Selector: selector, Template: *template.DeepCopy()}}
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "set", Labels: optedIn},
		Spec: appsv1.StatefulSetSpec{Selector: selector, Template: *template.DeepCopy()}}
	for _, o := range []client.Object{opted, other, set} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := func(patch obj) obj { return obj{"spec": obj{"template": patch}} }
	stamp := func(id string) obj { return tmpl(obj{"metadata": obj{"annotations": obj{v1.AnnotationKeyID: id}}}) }
	notOnly := func(what string) string {
		return fmt.Sprintf("the operator may change only the pod template annotation access.clearance.dev/key-id of %s (to restart it when a key it uses rotates), nothing else of it", what)
	}
	const refusal = "is forbidden: ValidatingAdmissionPolicy 'clearance-operator-restarts' with binding 'clearance-operator-restarts' denied request: "
	for _, tc := range []struct {
		name    string
		o       client.Object
		patch   obj
		message string // empty: allowed
	}{
		{"stamp a new key's ID on an opted-in Deployment", opted, stamp("new"), ""},
		{"stamp a new key's ID on an opted-in StatefulSet", set, stamp("new"), ""},
		{"stamp a Deployment that did not opt in", other, stamp("new"),
			"the operator restarts only workloads labelled access.clearance.dev/restart-on-rotation=true, and Deployment " + org + "/other is not"},
		{"change the image", opted, tmpl(obj{"spec": obj{"containers": []obj{{"name": "bi", "image": "registry.example/evil:1"}}}}), notOnly("Deployment " + org + "/opted")},
		{"change the ServiceAccount", set, tmpl(obj{"spec": obj{"serviceAccountName": "admin"}}), notOnly("StatefulSet " + org + "/set")},
		{"add a pod template annotation", opted, tmpl(obj{"metadata": obj{"annotations": obj{"sidecar.example/inject": "true"}}}), notOnly("Deployment " + org + "/opted")},
		{"change a pod template annotation's value", opted, tmpl(obj{"metadata": obj{"annotations": obj{"team": "mallory"}}}), notOnly("Deployment " + org + "/opted")},
		{"remove a pod template annotation", opted, tmpl(obj{"metadata": obj{"annotations": obj{"team": nil}}}), notOnly("Deployment " + org + "/opted")},
		{"change a pod template label", opted, tmpl(obj{"metadata": obj{"labels": obj{"tier": "x"}}}), notOnly("Deployment " + org + "/opted")},
		{"scale it", opted, obj{"spec": obj{"replicas": 50}}, notOnly("Deployment " + org + "/opted")},
		{"opt it out", opted, obj{"metadata": obj{"labels": obj{v1.LabelRestartOnRotation: nil}}}, notOnly("Deployment " + org + "/opted")},
		{"opt another one in", other, obj{"metadata": obj{"labels": optedIn}},
			"the operator restarts only workloads labelled access.clearance.dev/restart-on-rotation=true, and Deployment " + org + "/other is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mergePatch(operator, tc.o, tc.patch)
			switch {
			case tc.message == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.message != "" && (err == nil || !strings.HasSuffix(err.Error(), refusal+tc.message)):
				t.Errorf("got %v, want a refusal ending %q", err, tc.message)
			}
		})
	}
	// Anyone else is not judged: the workload's owners change it as they like.
	if err := mergePatch(env.Client, opted, tmpl(obj{"spec": obj{"containers": []obj{{"name": "bi", "image": "registry.example/bi:2"}}}})); err != nil {
		t.Errorf("the admin changing the image: %v", err)
	}
}

// TestTheOperatorCanChangeNoFieldOfAnOptedInWorkloadButTheKeyID takes every field of a
// Deployment's and a StatefulSet's spec, read from their Go types so that a field Kubernetes adds
// is covered or fails here, and the metadata an update can change: the operator's credentials
// changing any one of them on an opted-in workload (pausing its rollouts, dropping its revision
// history, making its volume claims go with it, handing it to an owner that does not exist so the
// garbage collector deletes it) are refused, and the workload is left as it was. Fields the
// apiserver's own validation keeps immutable need only be refused.
func TestTheOperatorCanChangeNoFieldOfAnOptedInWorkloadButTheKeyID(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "restarts-fields")
	operator, err := client.New(env.As(testenv.OperatorUser, []string{"system:masters"}, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "bi"}, Annotations: map[string]string{v1.AnnotationKeyID: "old"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "bi", Image: "registry.example/bi:1"}}},
	}
	optedIn := map[string]string{v1.LabelRestartOnRotation: "true"}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bi"}}
	deployment := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi", Labels: optedIn},
		Spec: appsv1.DeploymentSpec{Selector: selector, Template: *template.DeepCopy()}}
	statefulSet := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "db", Labels: optedIn},
		Spec: appsv1.StatefulSetSpec{Selector: selector, ServiceName: "db", Template: *template.DeepCopy()}}
	for _, o := range []client.Object{deployment, statefulSet} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// What the operator's credentials try for each field; "template" is the stamp's own field,
	// and TestTheOperatorMayOnlyStampTheKeyIDOnOptedInWorkloads tries what it holds.
	specChanges := map[string]any{
		"replicas":                             50,
		"selector":                             obj{"matchLabels": obj{"app": "other"}},
		"strategy":                             obj{"type": "Recreate", "rollingUpdate": nil},
		"minReadySeconds":                      30,
		"revisionHistoryLimit":                 0,
		"paused":                               true,
		"progressDeadlineSeconds":              60,
		"volumeClaimTemplates":                 []obj{{"metadata": obj{"name": "data"}, "spec": obj{"accessModes": []string{"ReadWriteOnce"}, "resources": obj{"requests": obj{"storage": "1Gi"}}}}},
		"serviceName":                          "other",
		"podManagementPolicy":                  "Parallel",
		"updateStrategy":                       obj{"type": "OnDelete", "rollingUpdate": nil},
		"persistentVolumeClaimRetentionPolicy": obj{"whenDeleted": "Delete", "whenScaled": "Delete"},
		"ordinals":                             obj{"start": 5},
	}
	metadataChanges := map[string]any{
		"labels":          obj{"tier": "x"},
		"annotations":     obj{"example.com/note": "x"},
		"finalizers":      []string{"example.com/hold"},
		"ownerReferences": []obj{{"apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": "00000000-0000-0000-0000-000000000001"}},
	}
	const refusal = "ValidatingAdmissionPolicy 'clearance-operator-restarts' with binding 'clearance-operator-restarts' denied request: the operator may change only the pod template annotation access.clearance.dev/key-id of "
	fields := 0
	for _, w := range []struct {
		o    client.Object
		spec reflect.Type
	}{{deployment, reflect.TypeFor[appsv1.DeploymentSpec]()}, {statefulSet, reflect.TypeFor[appsv1.StatefulSetSpec]()}} {
		kind := w.spec.Name()[:len(w.spec.Name())-len("Spec")]
		what := kind + " " + org + "/" + w.o.GetName()
		try := func(field string, patch obj) {
			t.Helper()
			fields++
			before := w.o.DeepCopyObject().(client.Object)
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(w.o), before); err != nil {
				t.Fatal(err)
			}
			err := mergePatch(operator, w.o, patch)
			switch {
			case err == nil:
				t.Errorf("%s: the operator changed %s", what, field)
			case !strings.Contains(err.Error(), refusal+what) && !apierrors.IsInvalid(err):
				t.Errorf("%s: the operator changing %s: %v, want the policy's refusal", what, field, err)
			}
			after := w.o.DeepCopyObject().(client.Object)
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(w.o), after); err != nil {
				t.Fatalf("%s after the operator changed %s: %v", what, field, err)
			}
			// The workload controllers write status meanwhile: the spec is its generation.
			if after.GetGeneration() != before.GetGeneration() || !reflect.DeepEqual(after.GetLabels(), before.GetLabels()) ||
				!reflect.DeepEqual(after.GetAnnotations(), before.GetAnnotations()) || !reflect.DeepEqual(after.GetFinalizers(), before.GetFinalizers()) ||
				!reflect.DeepEqual(after.GetOwnerReferences(), before.GetOwnerReferences()) {
				t.Errorf("%s: the operator's change of %s landed", what, field)
			}
		}
		for i := range w.spec.NumField() {
			name, _, _ := strings.Cut(w.spec.Field(i).Tag.Get("json"), ",")
			if name == "template" {
				continue
			}
			value, ok := specChanges[name]
			if !ok {
				t.Errorf("%s has spec.%s, which this test does not try: add a change of it", kind, name)
				continue
			}
			try("spec."+name, obj{"spec": obj{name: value}})
		}
		for name, value := range metadataChanges {
			try("metadata."+name, obj{"metadata": obj{name: value}})
		}
		// The control: the stamp itself passes.
		if err := mergePatch(operator, w.o, obj{"spec": obj{"template": obj{"metadata": obj{"annotations": obj{v1.AnnotationKeyID: "new"}}}}}); err != nil {
			t.Errorf("%s: stamping the key ID: %v", what, err)
		}
	}
	if !t.Failed() {
		t.Logf("%d changes of every field but the key ID tried, each refused", fields)
	}
}
