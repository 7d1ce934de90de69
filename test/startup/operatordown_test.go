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
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestWithTheOperatorStoppedTheAPIServerStillAdmitsAndRefuses: the operator registers its
// webhooks and then stops (an upgrade, a crash), leaving them registered at an address nobody
// answers. An org admin still creates an APIKey and an OrgConnection (a role within their bind),
// each with its creator recorded; a person without bind on the role is still refused, by the
// apiserver's policy, with its message; and the key is minted when the operator is back.
func TestWithTheOperatorStoppedTheAPIServerStillAdmitsAndRefuses(t *testing.T) {
	ctx := context.Background()
	forgetOperator(t)
	t.Cleanup(func() { forgetOperator(t) })
	if out, err := env.Kubectl(t, "apply", "-f", "config/rbac/people_roles.yaml"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	org := env.Namespace(t, "operator-down")
	op, err := env.StartOperator(testenv.OperatorOptions{Name: "before", WithWebhooks: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Cleanup)
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "BI"}}
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	waitApplicationID(t, app)
	op.Stop()

	// ada is an org admin; carl observes and may create connections, but binds only Observer.
	bind := func(name string, ref rbacv1.RoleRef, user string) {
		t.Helper()
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name}, RoleRef: ref,
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}}}
		if err := env.Client.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
	}
	creator := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "connection-creator"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgconnections"}, Verbs: []string{"create"}}}}
	if err := env.Client.Create(ctx, creator); err != nil {
		t.Fatal(err)
	}
	bind("ada", rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "clearance-org-admin"}, "ada@acme.example")
	bind("carl", rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "clearance-observer"}, "carl@acme.example")
	bind("carl-creator", rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: creator.Name}, "carl@acme.example")
	as := func(user string) client.Client {
		c, err := client.New(env.As(user, []string{"system:authenticated", "acme-people"}, map[string][]string{"acr": {"mfa"}}), client.Options{Scheme: env.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ada, carl := as("ada@acme.example"), as("carl@acme.example")

	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "exporter"},
		Spec: v1.APIKeySpec{ApplicationName: "bi", TTL: &metav1.Duration{Duration: 720 * time.Hour}}}
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "partner"},
		Spec: v1.OrgConnectionSpec{ApplicationID: "app_00000000000000000000000077", Role: v1.RoleAnalyst}}
	for _, obj := range []client.Object{key, conn} {
		if err := ada.Create(ctx, obj); err != nil {
			t.Fatalf("with the operator stopped, the org admin's %T was refused: %v", obj, err)
		}
		if by := obj.GetAnnotations()[v1.AnnotationCreatedBy]; by != "ada@acme.example" {
			t.Errorf("with the operator stopped, %T %s records creator %q, want ada@acme.example", obj, obj.GetName(), by)
		}
	}
	// A forged creator: with no webhook to replace the name (and warn), the apiserver's creator
	// check refuses it; a manifest naming its own creator passes untouched.
	forged := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "forged", Annotations: map[string]string{v1.AnnotationCreatedBy: "mallory@acme.example"}},
		Spec: v1.APIKeySpec{ApplicationName: "bi", TTL: &metav1.Duration{Duration: 720 * time.Hour}}}
	const refused = `ValidatingAdmissionPolicy 'clearance-created-by' with binding 'clearance-created-by' denied request: annotation access.clearance.dev/created-by is recorded by Clearance, ` +
		`and it says "mallory@acme.example" while "ada@acme.example" is creating APIKey forged: remove the annotation from the manifest`
	if err := ada.Create(ctx, forged, client.DryRunAll); err == nil || !strings.Contains(err.Error(), refused) {
		t.Errorf("with the operator stopped, a key naming another creator: %v, want the policy's refusal (%s)", err, refused)
	}
	own := forged.DeepCopy()
	own.Annotations[v1.AnnotationCreatedBy] = "ada@acme.example"
	if err := ada.Create(ctx, own, client.DryRunAll); err != nil || own.Annotations[v1.AnnotationCreatedBy] != "ada@acme.example" {
		t.Errorf("with the operator stopped, a key naming its own creator: %v, recorded %q", err, own.Annotations[v1.AnnotationCreatedBy])
	}
	err = carl.Create(ctx, &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "carls"},
		Spec: v1.OrgConnectionSpec{ApplicationID: "app_00000000000000000000000078", Role: v1.RoleAnalyst}})
	const want = `ValidatingAdmissionPolicy 'clearance-role-assignment' with binding 'clearance-role-assignment' denied request: user "carl@acme.example" may not assign role Analyst in org "`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("with the operator stopped, carl assigning Analyst: %v, want the policy's refusal (%s…)", err, want)
	}

	back, err := env.StartOperator(testenv.OperatorOptions{Name: "after", WithWebhooks: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Cleanup)
	// The org goes while this operator still runs (cleanups run last first), so the next test's
	// operator finds no objects of it left to finalize in a terminating namespace.
	t.Cleanup(func() { deleteOrgAndWait(t, org) })
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), key); err == nil && key.Status.State == v1.KeyActive && key.Status.SecretName != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key created while the operator was down was not minted within 60s of its return: %+v", key.Status)
		}
	}
	if key.Status.CreatedBy != "ada@acme.example" {
		t.Errorf("the minted key's status.createdBy is %q, want ada@acme.example", key.Status.CreatedBy)
	}
}

// deleteOrgAndWait deletes the namespace org and waits until it is gone, at most a minute.
func deleteOrgAndWait(t *testing.T, org string) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: org}}
	if err := env.Client.Delete(context.Background(), ns); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting namespace %s: %v", org, err)
		return
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ns), ns)
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("namespace %s was not gone a minute after its deletion: %v %+v", org, err, ns.Status)
			return
		}
	}
}

// TestWithTheOperatorStoppedAnEmptyCreatorIsRefusedSayingToRemoveIt: a manifest may carry the
// created-by annotation empty (a template that rendered nothing there). The operator's webhook
// replaces it with the creating user, as any name not theirs; while the operator is down the
// apiserver's policy refuses the create, and must say to remove the annotation, not that the
// cluster lacks the mutating policy that records the creator (it has it).
func TestWithTheOperatorStoppedAnEmptyCreatorIsRefusedSayingToRemoveIt(t *testing.T) {
	ctx := context.Background()
	forgetOperator(t)
	org := env.Namespace(t, "empty-creator")
	empty := metav1.ObjectMeta{Namespace: org, Name: "bi", Annotations: map[string]string{v1.AnnotationCreatedBy: ""}}
	for _, o := range []client.Object{
		&v1.Application{ObjectMeta: *empty.DeepCopy(), Spec: v1.ApplicationSpec{Description: "BI"}},
		&v1.APIKey{ObjectMeta: *empty.DeepCopy(), Spec: v1.APIKeySpec{ApplicationName: "bi", TTL: &metav1.Duration{Duration: 720 * time.Hour}}},
		&v1.OrgConnection{ObjectMeta: *empty.DeepCopy(), Spec: v1.OrgConnectionSpec{ApplicationID: "app_00000000000000000000000079", Role: v1.RoleObserver}},
	} {
		err := env.Client.Create(ctx, o, client.DryRunAll)
		const want = `denied request: annotation access.clearance.dev/created-by is recorded by Clearance, and it says "" while "`
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), ": remove the annotation from the manifest") {
			t.Errorf("with the operator stopped, %T %s with an empty %s: %v, want the policy's refusal saying to remove the annotation (%s…)",
				o, o.GetName(), v1.AnnotationCreatedBy, err, want)
		}
	}
}
