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
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestConsentIsRecordedByTheAPIServerAndCannotBeForged: whoever sets the consent annotation
// on an OrgConnection is recorded as the one who consented, by the apiserver; nobody (the
// console, the operator, a cluster admin) writes that record themselves.
func TestConsentIsRecordedByTheAPIServerAndCannotBeForged(t *testing.T) {
	peopleRoles(t)
	org := env.Namespace(t, "consent")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	bob := newPerson(t, org, "bob", "clearance-org-admin")
	admin, err := client.New(env.As("root", []string{"system:masters"}, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	annotate := func(c client.Client, name string, kv ...string) error {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "-" {
				m[kv[i]] = nil
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": m}})
		obj := &v1.OrgConnection{}
		obj.Namespace, obj.Name = org, name
		return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
	}
	recorded := func(name string) (string, string) {
		var c v1.OrgConnection
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: org, Name: name}, &c); err != nil {
			t.Fatal(err)
		}
		return c.Annotations[v1.AnnotationConsent], c.Annotations[v1.AnnotationConsentedBy]
	}

	// Consent given while creating the connection (the first Allow), a forged record replaced.
	first := conn(org, "partner", newID(), v1.RoleObserver)
	first.Annotations = map[string]string{v1.AnnotationConsent: "req-1", v1.AnnotationConsentedBy: "mallory"}
	if err := ada.c.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	if c, by := recorded("partner"); c != "req-1" || by != "ada" {
		t.Errorf("after ada's Allow: consent %q by %q, want req-1 by ada", c, by)
	}
	// Consent given again on the existing connection, by another admin.
	if err := annotate(bob.c, "partner", v1.AnnotationConsent, "req-2"); err != nil {
		t.Fatal(err)
	}
	if c, by := recorded("partner"); c != "req-2" || by != "bob" {
		t.Errorf("after bob's Allow: consent %q by %q, want req-2 by bob", c, by)
	}
	// The record alone can be changed by nobody, and set on creation by nobody.
	for _, tc := range []struct {
		who string
		c   client.Client
	}{{"ada", ada.c}, {"a cluster admin", admin}} {
		err := annotate(tc.c, "partner", v1.AnnotationConsentedBy, "ada")
		if err == nil || !strings.Contains(err.Error(), "is written only by the apiserver when consent is given: leave both annotations as they are") {
			t.Errorf("%s rewriting consented-by: %v", tc.who, err)
		}
		err = annotate(tc.c, "partner", v1.AnnotationConsentedBy, "-")
		if err == nil || !strings.Contains(err.Error(), "is written only by the apiserver") {
			t.Errorf("%s removing consented-by: %v", tc.who, err)
		}
	}
	forged := conn(org, "forged", newID(), v1.RoleObserver)
	forged.Annotations = map[string]string{v1.AnnotationConsentedBy: "ada"}
	if err := bob.c.Create(ctx, forged); err == nil || !strings.Contains(err.Error(), "is written only by the apiserver") {
		t.Errorf("creating a connection with only a consent record: %v", err)
	}
	if err := annotate(ada.c, "partner", v1.AnnotationConsent, "not an id!"); err == nil ||
		!strings.Contains(err.Error(), "must be the ID of an OAuth authorization request") {
		t.Errorf("a malformed consent: %v", err)
	}
	// Withdrawing consent (both annotations) is allowed; the connection stays.
	if err := annotate(ada.c, "partner", v1.AnnotationConsent, "-", v1.AnnotationConsentedBy, "-"); err != nil {
		t.Errorf("removing the consent: %v", err)
	}
	if c, by := recorded("partner"); c != "" || by != "" {
		t.Errorf("after removing the consent: %q by %q", c, by)
	}
}

// TestConsentNeedsBindOnTheRoleItGrants: consenting gives the partner's app tokens with the
// connection's role, so it needs what assigning that role needs, bind on it, even when the
// connection already has the role: a technician (who may edit connections and bind up to
// Technician) cannot consent on a connection an org admin made OrgAdmin — which would hand a
// public client they run themselves OrgAdmin tokens — but may consent at a role they may bind,
// lowering it in the same write, as the console's Allow does.
func TestConsentNeedsBindOnTheRoleItGrants(t *testing.T) {
	peopleRoles(t)
	org := env.Namespace(t, "consent-bind")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	tom := newPerson(t, org, "tom", "clearance-technician")
	ctx := context.Background()
	consent := func(c client.Client, name, id string, role v1.Role) error {
		patch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{v1.AnnotationConsent: id}}}
		if role != "" {
			patch["spec"] = map[string]any{"role": role}
		}
		body, _ := json.Marshal(patch)
		obj := &v1.OrgConnection{}
		obj.Namespace, obj.Name = org, name
		return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
	}
	current := func(name string) v1.OrgConnection {
		var c v1.OrgConnection
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: org, Name: name}, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	if err := ada.c.Create(ctx, conn(org, "partner", newID(), v1.RoleOrgAdmin)); err != nil {
		t.Fatal(err)
	}
	// The role as it is (the console's Allow patches it unchanged), and with the annotation alone.
	for _, role := range []v1.Role{v1.RoleOrgAdmin, ""} {
		err := consent(tom.c, "partner", "req-tom", role)
		if err == nil || !strings.Contains(err.Error(), "may not consent") {
			t.Errorf("a technician consenting at OrgAdmin (role in the patch %q): %v", role, err)
		}
	}
	if c := current("partner"); c.Annotations[v1.AnnotationConsent] != "" || c.Annotations[v1.AnnotationConsentedBy] != "" || c.Spec.Role != v1.RoleOrgAdmin {
		t.Fatalf("a refused consent changed the connection: role %s, annotations %v", c.Spec.Role, c.Annotations)
	}
	// At a role they may bind, lowering it in the same write: theirs.
	if err := consent(tom.c, "partner", "req-tom", v1.RoleTechnician); err != nil {
		t.Fatalf("a technician consenting at Technician: %v", err)
	}
	if c := current("partner"); c.Annotations[v1.AnnotationConsentedBy] != "tom" || c.Spec.Role != v1.RoleTechnician {
		t.Errorf("after tom's consent at Technician: role %s, annotations %v", c.Spec.Role, c.Annotations)
	}
	// An org admin may consent at any role.
	if err := consent(ada.c, "partner", "req-ada", v1.RoleOrgAdmin); err != nil {
		t.Fatalf("an org admin consenting at OrgAdmin: %v", err)
	}
	if c := current("partner"); c.Annotations[v1.AnnotationConsentedBy] != "ada" || c.Spec.Role != v1.RoleOrgAdmin {
		t.Errorf("after ada's consent at OrgAdmin: role %s, annotations %v", c.Spec.Role, c.Annotations)
	}
}

// TestTheConsentRecordKeepsWhoConsentedWhoeverEditsTheConnectionAfterwards: the apiserver
// records who consented when consent is given, and only then. Everyone who may edit the
// connection afterwards (another org admin, a technician lowering its role, a cluster admin
// labelling it, the same consent sent again by someone else) gets the edit, and the record
// still names the person who consented: no later edit is taken for consent.
func TestTheConsentRecordKeepsWhoConsentedWhoeverEditsTheConnectionAfterwards(t *testing.T) {
	peopleRoles(t)
	ctx := context.Background()
	org := env.Namespace(t, "consent-kept")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	bob := newPerson(t, org, "bob", "clearance-org-admin")
	tom := newPerson(t, org, "tom", "clearance-technician")
	admin, err := client.New(env.As("root", []string{"system:masters"}, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	c := conn(org, "partner", newID(), v1.RoleTechnician)
	c.Annotations = map[string]string{v1.AnnotationConsent: "req-1"}
	if err := ada.c.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, edit := range []struct {
		who   string
		c     client.Client
		patch obj
	}{
		{"another org admin labelling it", bob.c, obj{"metadata": obj{"labels": obj{"team": "bi"}}}},
		{"another org admin narrowing its metric sets", bob.c, obj{"spec": obj{"metricSets": []string{"default"}}}},
		{"a technician lowering its role", tom.c, obj{"spec": obj{"role": v1.RoleAnalyst}}},
		{"a technician sending the same consent again", tom.c, obj{"metadata": obj{"annotations": obj{v1.AnnotationConsent: "req-1"}}}},
		{"a cluster admin annotating it", admin, obj{"metadata": obj{"annotations": obj{"example.com/note": "audited"}}}},
	} {
		if err := mergePatch(edit.c, c, edit.patch); err != nil {
			t.Errorf("%s: refused: %v", edit.who, err)
		}
		got := &v1.OrgConnection{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(c), got); err != nil {
			t.Fatal(err)
		}
		if consent, by := got.Annotations[v1.AnnotationConsent], got.Annotations[v1.AnnotationConsentedBy]; consent != "req-1" || by != "ada" {
			t.Errorf("after %s: consent %q by %q, want req-1 by ada", edit.who, consent, by)
		}
	}
}
