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
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

func deployment(ns, name string, optIn bool, secret string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "exporter", Image: "exporter:1"}},
					Volumes: []corev1.Volume{{Name: "key", VolumeSource: corev1.VolumeSource{
						Secret: &corev1.SecretVolumeSource{SecretName: secret},
					}}},
				},
			},
		},
	}
	if optIn {
		d.Labels = map[string]string{v1.LabelRestartOnRotation: "true"}
	}
	return d
}

func TestOptedInWorkloadsRestartWhenTheirKeyRotates(t *testing.T) {
	ns, key := activeKey(t, "restart", "k")

	optedIn := deployment(ns, "exporter", true, "k-key")
	notOptedIn := deployment(ns, "other", false, "k-key")
	unrelated := deployment(ns, "unrelated", true, "some-other-secret")
	for _, d := range []*appsv1.Deployment{optedIn, notOptedIn, unrelated} {
		create(t, d)
	}

	metav1.SetMetaDataAnnotation(&key.ObjectMeta, v1.AnnotationRotateRequestedAt, "2026-11-23T13:00:00Z") // beside the recorded creator
	if err := env.Client.Update(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	old := key.Status.KeyID
	key = waitKey(t, key, "the rotation", func(k *v1.APIKey) bool { return k.Status.KeyID != old })

	got := &appsv1.Deployment{}
	eventually(t, "the opted-in Deployment's pod template to carry the new key ID", func() (bool, error) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(optedIn), got)
		return got.Spec.Template.Annotations[v1.AnnotationKeyID] == key.Status.KeyID, err
	})
	waitEvent(t, optedIn, "KeyRotated")
	for _, d := range []*appsv1.Deployment{notOptedIn, unrelated} {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(d), got); err != nil {
			t.Fatal(err)
		}
		if _, ok := got.Spec.Template.Annotations[v1.AnnotationKeyID]; ok {
			t.Errorf("Deployment %s was restarted", d.Name)
		}
	}
}

func TestAWorkloadUsesASecretThroughVolumesProjectionsOrEnvironment(t *testing.T) {
	ref := corev1.LocalObjectReference{Name: "k-key"}
	cases := map[string]struct {
		spec corev1.PodSpec
		want bool
	}{
		"secret volume": {corev1.PodSpec{Volumes: []corev1.Volume{{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "k-key"}}}}}, true},
		"projected volume": {corev1.PodSpec{Volumes: []corev1.Volume{{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: ref}}}}}}}}, true},
		"envFrom in an init container": {corev1.PodSpec{InitContainers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref}}}}}}, true},
		"one env variable": {corev1.PodSpec{Containers: []corev1.Container{{Env: []corev1.EnvVar{{Name: "KEY", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref, Key: v1.SecretKeyToken}}}}}}}, true},
		"another Secret": {corev1.PodSpec{Volumes: []corev1.Volume{{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "other"}}}}}, false},
		"nothing":        {corev1.PodSpec{}, false},
	}
	for name, tc := range cases {
		if got := usesSecret(&tc.spec, "k-key"); got != tc.want {
			t.Errorf("%s: usesSecret = %v, want %v", name, got, tc.want)
		}
	}
}

// TestTheRestartIsAWriteTheOperatorsAdmissionPolicyAdmits: the restart pass, run with the
// operator's own username (which the admission policy clearance-operator-restarts judges:
// only the key-id stamp of an opted-in workload), stamps the new key's ID, so the policy that
// narrows the operator's ClusterRole leaves its one use of it working.
func TestTheRestartIsAWriteTheOperatorsAdmissionPolicyAdmits(t *testing.T) {
	ctx := context.Background()
	ns, key := activeKey(t, "restart-as-operator", "k")
	d := deployment(ns, "exporter", true, "k-key")
	d.Spec.Template.Annotations = map[string]string{v1.AnnotationKeyID: "an-earlier-key", "team": "bi"}
	create(t, d)
	operator, err := client.New(env.As(testenv.OperatorUser, []string{"system:masters"}, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	r := &RestartReconciler{reconcilerBase: reconcilerBase{client: operator, apiReader: operator, clock: direct.clock}, events: events.NewFakeRecorder(10)}
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)}); err != nil {
		t.Fatalf("the restart pass as the operator: %v", err)
	}
	got := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Template.Annotations[v1.AnnotationKeyID] != key.Status.KeyID || got.Spec.Template.Annotations["team"] != "bi" {
		t.Errorf("pod template annotations %v, want the key's ID %s and the rest unchanged", got.Spec.Template.Annotations, key.Status.KeyID)
	}
}

// TestARotationStampsOnlyOptedInWorkloadsOfTheKeysOwnOrgWithTheNewKeyID: another org may name
// a Secret of its own like a key's Secret, and a workload may carry the opt-in label with
// another value than "true" (the operator's cache holds every workload that has the label at
// all). Over every combination of org, kind and label value, the restart pass stamps the new
// key's ID on exactly the Deployments and StatefulSets of the key's own org labelled "true",
// with one event each, and leaves every other pod template as it was, including an opted-in one
// whose pods started with this key (never stamped, and no key replaced yet) or were restarted
// for it already.
func TestARotationStampsOnlyOptedInWorkloadsOfTheKeysOwnOrgWithTheNewKeyID(t *testing.T) {
	ctx := context.Background()
	ns, key := activeKey(t, "restart-scope", "k")
	other := env.Namespace(t, "restart-scope-other")
	const earlier = "an-earlier-key"
	type workload struct {
		obj     client.Object
		stamped bool   // restarted: stamped with the new key's ID
		before  string // else the stamp it keeps
	}
	var workloads []workload
	for _, org := range []string{ns, other} {
		for i, label := range []string{"true", "false", "", "True", "yes"} {
			d := deployment(org, fmt.Sprintf("exporter-%d", i), false, key.Status.SecretName)
			d.Labels = map[string]string{v1.LabelRestartOnRotation: label}
			d.Spec.Template.Annotations = map[string]string{v1.AnnotationKeyID: earlier}
			set := &appsv1.StatefulSet{ObjectMeta: *d.ObjectMeta.DeepCopy(),
				Spec: appsv1.StatefulSetSpec{ServiceName: d.Name, Selector: d.Spec.Selector, Template: *d.Spec.Template.DeepCopy()}}
			for _, obj := range []client.Object{d, set} {
				create(t, obj)
				workloads = append(workloads, workload{obj, org == ns && label == "true", earlier})
			}
		}
	}

	// Opted in too, but nothing to restart: pods that started after the first key was minted,
	// and pods already restarted for this key.
	for stamp, name := range map[string]string{"": "started-with-this-key", key.Status.KeyID: "restarted-already"} {
		d := deployment(ns, name, true, key.Status.SecretName)
		if stamp != "" {
			d.Spec.Template.Annotations = map[string]string{v1.AnnotationKeyID: stamp}
		}
		create(t, d)
		workloads = append(workloads, workload{d, false, stamp})
	}

	recorder := events.NewFakeRecorder(100)
	r := &RestartReconciler{reconcilerBase: reconcilerBase{client: env.Client, apiReader: env.Client, clock: direct.clock}, events: recorder}
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)}); err != nil {
		t.Fatal(err)
	}
	if n := len(recorder.Events); n != 2 {
		t.Errorf("%d KeyRotated events, want 2: one per workload restarted", n)
	}
	for _, w := range workloads {
		var got map[string]string
		switch obj := w.obj.(type) {
		case *appsv1.Deployment:
			d := &appsv1.Deployment{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), d); err != nil {
				t.Fatal(err)
			}
			got = d.Spec.Template.Annotations
		case *appsv1.StatefulSet:
			s := &appsv1.StatefulSet{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), s); err != nil {
				t.Fatal(err)
			}
			got = s.Spec.Template.Annotations
		}
		want := w.before
		if w.stamped {
			want = key.Status.KeyID
		}
		if got[v1.AnnotationKeyID] != want {
			t.Errorf("%T %s/%s labelled %q: key-id stamp %q, want %q", w.obj, w.obj.GetNamespace(), w.obj.GetName(),
				w.obj.GetLabels()[v1.LabelRestartOnRotation], got[v1.AnnotationKeyID], want)
		}
	}
}
