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

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestProtectedObjectsGoWithTheirNamespace: the policy clearance-protected refuses deleting a
// protected object unless its namespace is being deleted, so the namespace controller can empty
// it; unprotecting stays refused even then. The operator's ServiceAccount may do both.
func TestProtectedObjectsGoWithTheirNamespace(t *testing.T) {
	ctx := context.Background()
	acme, leaving := env.Namespace(t, "acme"), env.Namespace(t, "leaving")
	key := func(ns, name string) *v1.APIKey {
		return &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{v1.LabelProtected: "true"}},
			Spec: v1.APIKeySpec{ApplicationName: "bi", TTL: &metav1.Duration{Duration: time.Hour}}}
	}
	for _, k := range []*v1.APIKey{key(acme, "system-default"), key(acme, "operators"), key(leaving, "system-default"), key(leaving, "kept")} {
		if k.Namespace == leaving {
			// Held, so that the namespace controller's own deletes leave them for the test.
			k.Finalizers = []string{"test.clearance.dev/hold"}
		}
		if err := env.Client.Create(ctx, k); err != nil {
			t.Fatal(err)
		}
		if k.Namespace == leaving {
			t.Cleanup(func() {
				release := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
				if err := env.Client.Patch(ctx, k, release); err != nil && !apierrors.IsNotFound(err) {
					t.Errorf("releasing %s: %v", k.Name, err)
				}
			})
		}
	}
	holdTerminating(t, leaving)
	operator, err := client.New(env.As(testenv.OperatorUser, []string{"system:masters"}, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	unprotect := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"access.clearance.dev/protected":null}}}`))
	for _, tc := range []struct {
		name    string
		do      func() error
		message string // empty: allowed
	}{
		{name: "delete in a live namespace", do: func() error { return env.Client.Delete(ctx, key(acme, "system-default")) },
			message: "APIKey " + acme + "/system-default is a protected system default (label access.clearance.dev/protected=true) and cannot be deleted"},
		{name: "unprotect in a namespace being deleted", do: func() error { return env.Client.Patch(ctx, key(leaving, "kept"), unprotect) },
			message: "the access.clearance.dev/protected=true label of APIKey " + leaving + "/kept cannot be removed"},
		{name: "delete in a namespace being deleted", do: func() error { return env.Client.Delete(ctx, key(leaving, "system-default")) }},
		{name: "delete by the operator", do: func() error { return operator.Delete(ctx, key(acme, "operators")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			switch {
			case tc.message == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.message != "" && (err == nil || !strings.Contains(err.Error(), tc.message)):
				t.Errorf("got %v, want a refusal containing %q", err, tc.message)
			}
		})
	}
}

// holdTerminating deletes namespace ns and keeps it Terminating until the test ends: a
// ConfigMap in it holds a finalizer of the test's, so kube-controller-manager's namespace
// controller cannot empty it and remove it. Afterwards the finalizer goes and the namespace
// with it.
func holdTerminating(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
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

// TestOnlyThePlatformTeamMakesASystemDefault: creating an object labelled protected, or adding
// the label, needs the verb protect on the object's resource, which the platform team holds and
// no org role does (TestEscalationMatrixRefusesEveryKindOfSubjectInEveryRole refuses every
// people role, whatever else it may write). Once made, a system default is as protected as
// any: the org admin cannot delete it.
func TestOnlyThePlatformTeamMakesASystemDefault(t *testing.T) {
	ctx := context.Background()
	peopleRoles(t)
	org := env.Namespace(t, "defaults")
	platform := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "test-platform-" + org},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"metricsets", "orgconnections"},
			Verbs: []string{"get", "create", "patch", "protect"}}},
	}
	if err := env.Client.Create(ctx, platform); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, platform) })
	pat := newPerson(t, org, "pat", platform.Name)
	ada := newPerson(t, org, "ada", "clearance-org-admin")

	ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: map[string]string{v1.LabelProtected: "true"}}}
	if err := pat.c.Create(ctx, ms); err != nil {
		t.Fatalf("the platform team creating a protected MetricSet: %v", err)
	}
	connection := conn(org, "partner", newID(), v1.RoleObserver)
	if err := ada.c.Create(ctx, connection); err != nil {
		t.Fatal(err)
	}
	if err := mergePatch(pat.c, connection, obj{"metadata": obj{"labels": obj{v1.LabelProtected: "true"}}}); err != nil {
		t.Fatalf("the platform team marking a connection protected: %v", err)
	}
	for _, o := range []client.Object{ms, connection} {
		if err := ada.c.Delete(ctx, o); err == nil || !strings.Contains(err.Error(), "is a protected system default") {
			t.Errorf("the org admin deleting %s: %v, want the guard's refusal", o.GetName(), err)
		}
	}
}

// TestAProtectedObjectCannotBeUnprotectedByAnyOtherValueOfItsLabel: clearance-protected judges
// only objects labelled access.clearance.dev/protected=true, so setting the label to anything
// else unprotects the object as removing it would. Every other value (false, empty, TRUE, a
// space after true, yes) is refused on every protected kind, even to a cluster admin, with the
// words of a removal, and the object stays undeletable.
func TestAProtectedObjectCannotBeUnprotectedByAnyOtherValueOfItsLabel(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "relabel")
	objects := createSystemDefaults(t, org)
	for _, o := range objects {
		kind := strings.TrimPrefix(fmt.Sprintf("%T", o), "*v1alpha1.")
		for _, value := range []string{"false", "", "TRUE", "True", "yes", "1", "true-ish"} {
			err := mergePatch(env.Client, o, obj{"metadata": obj{"labels": obj{v1.LabelProtected: value}}})
			want := fmt.Sprintf("the access.clearance.dev/protected=true label of %s %s/system-default cannot be removed: it marks a system default", kind, org)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("setting the protected label of %s to %q: %v, want a refusal containing %q", kind, value, err, want)
			}
		}
		if err := env.Client.Delete(ctx, o.DeepCopyObject().(client.Object)); err == nil || !strings.Contains(err.Error(), "is a protected system default") {
			t.Errorf("deleting %s after the relabelling: %v, want the guard's refusal", kind, err)
		}
	}
}

// TestTheVerbProtectMakesSystemDefaultsOnlyOfTheResourceItIsGrantedOn: clearance-protected asks
// the authorizer for protect on the very resource being made a system default. Someone holding
// protect on one of applications, apikeys, orgconnections and metricsets (and create and patch on
// all four) makes system defaults of that one, by creating or by labelling, and of no other.
func TestTheVerbProtectMakesSystemDefaultsOnlyOfTheResourceItIsGrantedOn(t *testing.T) {
	ctx := context.Background()
	peopleRoles(t)
	org := env.Namespace(t, "protect-verb")
	resources := []string{"applications", "apikeys", "orgconnections", "metricsets"}
	specs := map[string]obj{
		"applications": {"description": "a default"},
		"apikeys":      {"applicationName": "bi", "ttl": "720h"},
		"metricsets":   {},
	}
	kinds := map[string]string{"applications": "Application", "apikeys": "APIKey", "orgconnections": "OrgConnection", "metricsets": "MetricSet"}
	for _, granted := range resources {
		role := &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "protect-" + granted},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{v1.GroupVersion.Group}, Resources: resources, Verbs: []string{"get", "create", "patch"}},
				{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{granted}, Verbs: []string{"protect"}},
				{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgroles"}, Verbs: []string{"bind"}},
			},
		}
		if err := env.Client.Create(ctx, role); err != nil {
			t.Fatal(err)
		}
		user := "platform-" + granted
		if err := env.Client.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: user},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
		}); err != nil {
			t.Fatal(err)
		}
		p := newPerson(t, org, user, "")
		(&subject{kind: kindUser, user: user, groups: []string{"system:authenticated"}, extra: map[string][]string{"acr": {"mfa"}}}).waitAllowed(t, org, "protect", granted)
		for _, resource := range resources {
			kind := kinds[resource]
			spec := specs[resource]
			if resource == "orgconnections" {
				spec = obj{"applicationID": newID(), "role": v1.RoleObserver}
			}
			name := strings.ToLower(granted + "-" + kind)
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(js(obj{"apiVersion": v1.GroupVersion.String(), "kind": kind,
				"metadata": obj{"namespace": org, "name": name, "labels": obj{v1.LabelProtected: "true"}}, "spec": spec})); err != nil {
				t.Fatal(err)
			}
			createErr := p.c.Create(ctx, u.DeepCopy(), client.DryRunAll)
			plain := u.DeepCopy()
			plain.SetLabels(nil)
			if err := p.c.Create(ctx, plain); err != nil {
				t.Fatalf("%s creating an ordinary %s: %v", user, kind, err)
			}
			markErr := mergePatch(p.c, plain, obj{"metadata": obj{"labels": obj{v1.LabelProtected: "true"}}})
			for _, c := range []struct {
				doing string
				err   error
			}{{"creating", createErr}, {"labelling", markErr}} {
				switch {
				case resource == granted && c.err != nil:
					t.Errorf("%s (protect on %s) %s a protected %s: %v", user, granted, c.doing, kind, c.err)
				case resource != granted && (c.err == nil || !strings.Contains(c.err.Error(), "as a protected system default (access.clearance.dev/protected=true) needs the verb protect on "+resource+".access.clearance.dev")):
					t.Errorf("%s (protect on %s only) %s a protected %s: %v, want the guard's refusal", user, granted, c.doing, kind, c.err)
				}
			}
		}
	}
}

// TestOnlyTheOperatorsOwnServiceAccountGetsPastTheProtectedGuardNotANamesake: clearance-protected
// lets the operator's ServiceAccount (clearance in clearance-system) delete and unprotect system
// defaults, by its exact name. A ServiceAccount called clearance in an org's namespace, another
// ServiceAccount of the operator's namespace, a user named clearance or a name that only begins
// or ends like the operator's is refused both, of every protected kind, even holding every
// permission (system:masters); the operator itself may.
func TestOnlyTheOperatorsOwnServiceAccountGetsPastTheProtectedGuardNotANamesake(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "namesakes")
	objects := createSystemDefaults(t, org)
	namesakes := []string{
		"system:serviceaccount:" + org + ":clearance",
		"system:serviceaccount:clearance-system:clearance-verifier",
		"system:serviceaccount:clearance-system:clearance-console",
		"system:serviceaccount:clearance-system-x:clearance",
		"system:serviceaccount:clearance-system:clearance:x",
		"clearance",
	}
	unprotect := obj{"metadata": obj{"labels": obj{v1.LabelProtected: nil}}}
	for _, name := range namesakes {
		c, err := client.New(env.As(name, []string{"system:masters", "system:serviceaccounts", "system:serviceaccounts:clearance-system"}, nil), client.Options{Scheme: env.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objects {
			what := fmt.Sprintf("%T %s", o, o.GetName())
			if err := c.Delete(ctx, o.DeepCopyObject().(client.Object)); err == nil || !strings.Contains(err.Error(), "is a protected system default (label access.clearance.dev/protected=true) and cannot be deleted") {
				t.Errorf("%q deleting %s: %v, want the guard's refusal", name, what, err)
			}
			if err := mergePatch(c, o, unprotect); err == nil || !strings.Contains(err.Error(), "cannot be removed: it marks a system default") {
				t.Errorf("%q unprotecting %s: %v, want the guard's refusal", name, what, err)
			}
		}
	}
	operator, err := client.New(env.As(testenv.OperatorUser, []string{"system:masters"}, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objects {
		if err := operator.Delete(ctx, o); err != nil {
			t.Errorf("the operator deleting %T: %v", o, err)
		}
	}
}

// createSystemDefaults creates, as a cluster admin, a protected system default of every kind
// clearance-protected guards, in org.
func createSystemDefaults(t *testing.T, org string) []client.Object {
	t.Helper()
	protected := map[string]string{v1.LabelProtected: "true"}
	objects := []client.Object{
		&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}, Spec: v1.ApplicationSpec{Description: "system default"}},
		&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}, Spec: v1.APIKeySpec{ApplicationName: "system-default", TTL: &metav1.Duration{Duration: time.Hour}}},
		&v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}, Spec: v1.OrgConnectionSpec{ApplicationID: newID(), Role: v1.RoleObserver}},
		&v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}},
	}
	for _, o := range objects {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T: %v", o, err)
		}
	}
	return objects
}
