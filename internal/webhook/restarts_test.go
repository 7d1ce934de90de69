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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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
