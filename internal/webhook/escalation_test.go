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
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// The escalation matrix. Every kind of subject an org binds (a user with groups and extra as
// an OIDC login carries them, a member of a bound group, a ServiceAccount) holds each of the
// four people ClusterRoles in its org, and tries to read another org's keys, to assign a role
// above its own, to make another org's key count for its org, to rewrite a key, and to delete
// system defaults. Each attempt must be refused by the layer that owns the rule (RBAC, the
// CRD's CEL rules or the webhook), with that layer's message, and must change nothing.
// webhook_test.go and hostile_test.go prove the single rules for plain users; this covers the
// subject kinds and the roles they leave out.

// subjectKind is how an identity is named in a RoleBinding and presented to the apiserver.
type subjectKind string

const (
	kindUser           subjectKind = "user"
	kindGroup          subjectKind = "group"
	kindServiceAccount subjectKind = "serviceaccount"
)

var subjectKinds = []subjectKind{kindUser, kindGroup, kindServiceAccount}

// peopleRole is one of the people ClusterRoles of config/rbac/people_roles.yaml, the role a
// holder may assign at most, and the writes it grants in its org (reads are granted to all).
type peopleRole struct {
	clusterRole string
	own         v1.Role
	writes      map[string][]string // resource -> verbs
}

var allWrites = []string{"create", "update", "patch", "delete"}

var peopleRoleMatrix = []peopleRole{
	{"clearance-observer", v1.RoleObserver, nil},
	{"clearance-analyst", v1.RoleAnalyst, nil},
	{"clearance-technician", v1.RoleTechnician, map[string][]string{"orgconnections": {"update", "patch"}, "metricsets": {"update", "patch"}}},
	{"clearance-org-admin", v1.RoleOrgAdmin, map[string][]string{"applications": allWrites, "apikeys": allWrites, "orgconnections": allWrites, "metricsets": allWrites}},
}

// connectionEditor lets a subject write OrgConnections whatever its people role, so that the
// webhook, not RBAC, is what stands between it and a role above its own.
var connectionEditor = &rbacv1.Role{
	ObjectMeta: metav1.ObjectMeta{Name: "connection-editor"},
	Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgconnections"},
		Verbs: []string{"get", "create", "update", "patch"}}},
}

// subject is one identity bound in an org, and a client acting as it.
type subject struct {
	kind   subjectKind
	user   string // the username the apiserver sees and names in its refusals
	groups []string
	extra  map[string][]string
	c      client.Client
}

// bindSubject makes an identity of the given kind named after id, binds it in org with a
// RoleBinding per roleRef, and waits until RBAC allows what the bindings grant.
func bindSubject(t *testing.T, kind subjectKind, org, id string, roleRefs ...rbacv1.RoleRef) *subject {
	t.Helper()
	ctx := context.Background()
	s := &subject{kind: kind}
	var rbSubject rbacv1.Subject
	switch kind {
	case kindUser:
		// Bound by name; its groups and extra come from the identity provider.
		s.user = "user-" + id
		s.groups = []string{"oidc:staff", "system:authenticated"}
		s.extra = map[string][]string{"acr": {"mfa"}, "amr": {"pwd", "otp"}}
		rbSubject = rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: s.user}
	case kindGroup:
		// Bound only through a group: the user name is bound nowhere.
		s.user = "member-of-" + id
		s.groups = []string{"oidc:" + id, "system:authenticated"}
		s.extra = map[string][]string{"acr": {"mfa"}}
		rbSubject = rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "oidc:" + id}
	case kindServiceAccount:
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: id}}
		if err := env.Client.Create(ctx, sa); err != nil {
			t.Fatal(err)
		}
		// What a projected ServiceAccount token authenticates as.
		s.user = "system:serviceaccount:" + org + ":" + id
		s.groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + org, "system:authenticated"}
		s.extra = map[string][]string{
			"authentication.kubernetes.io/credential-id": {"JTI=" + id},
			"authentication.kubernetes.io/pod-name":      {id + "-0"},
		}
		rbSubject = rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: id, Namespace: org}
	}
	for _, ref := range roleRefs {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: id + "-" + ref.Name},
			RoleRef:    ref,
			Subjects:   []rbacv1.Subject{rbSubject},
		}
		if err := env.Client.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
	}
	cfg := env.As(s.user, s.groups, s.extra)
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	s.c = c
	// RBAC learns about new bindings from its informers: wait, so that a refusal below is the
	// rule's and not a binding not seen yet.
	s.waitAllowed(t, org, "list", "apikeys")
	for _, ref := range roleRefs {
		if ref.Kind == "Role" && ref.Name == connectionEditor.Name {
			s.waitAllowed(t, org, "create", "orgconnections")
		}
	}
	return s
}

// waitAllowed waits until a SubjectAccessReview for the subject, exactly as it authenticates,
// allows verb on resource in org.
func (s *subject) waitAllowed(t *testing.T, org, verb, resource string) {
	t.Helper()
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range s.extra {
		extra[k] = v
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := env.Review(t, authorizationv1.SubjectAccessReviewSpec{
			User: s.user, Groups: s.groups, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: org, Verb: verb, Group: v1.GroupVersion.Group, Resource: resource},
		})
		if st.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s was never allowed to %s %s in %s: %s", s.kind, s.user, verb, resource, org, st.Reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forbidden is RBAC's refusal, as the apiserver words it for any kind of subject.
func forbidden(user, verb, resource, ns string) string {
	group := v1.GroupVersion.Group
	if resource == "secrets" {
		group = ""
	}
	return fmt.Sprintf(`is forbidden: User %q cannot %s resource %q in API group %q in the namespace %q`, user, verb, resource, group, ns)
}

// outcome is what an attempt must come to.
type outcome int

const (
	// refused: an error carrying want, and nothing changed.
	refused outcome = iota
	// ignored: the apiserver accepts the request but drops what it asked for (status sent to
	// the main resource); nothing changed.
	ignored
	// allowed: a dry-run control that must pass, so the refusals are not an artefact of a
	// subject RBAC or the webhook fail to recognise.
	allowed
)

type attempt struct {
	name string
	do   func(c client.Client) error
	want string
	is   outcome
}

func TestEscalationMatrixRefusesEveryKindOfSubjectInEveryRole(t *testing.T) {
	ctx := context.Background()
	peopleRoles(t)
	org, other := env.Namespace(t, "esc-home"), env.Namespace(t, "esc-other")
	admin := env.Client
	if err := admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: connectionEditor.Name}, Rules: connectionEditor.Rules}); err != nil {
		t.Fatal(err)
	}

	// Each org has an Application with a minted key (status and Secret as the operator leaves
	// them); the home org connects the other org's application, the other org connects the
	// home org's; the home org has a protected system default of every kind.
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	idA, idB := newID(), newID()
	protected := map[string]string{v1.LabelProtected: "true"}
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "BI", ApplicationID: idA}}
	otherApp := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "partner"}, Spec: v1.ApplicationSpec{Description: "partner", ApplicationID: idB}}
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "exporter"}, Spec: v1.APIKeySpec{ApplicationName: "bi", TTL: &metav1.Duration{Duration: 720 * time.Hour}}}
	otherKey := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "partner"}, Spec: v1.APIKeySpec{ApplicationName: "partner", TTL: &metav1.Duration{Duration: 720 * time.Hour}}}
	connection := conn(org, "partner", idB, v1.RoleObserver)
	otherConnection := conn(other, "bi", idA, v1.RoleObserver)
	// An org admin's connection with a role above everyone else's, limited to two metric sets.
	limited := conn(org, "analytics", newID(), v1.RoleOrgAdmin)
	limited.Spec.MetricSets = []string{"default", "extra"}
	limited.Spec.Transports = &v1.ConnectionTransports{WebSockets: v1.TransportRefused}
	protectedApp := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}, Spec: v1.ApplicationSpec{Description: "system default"}}
	protectedKey := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}, Spec: v1.APIKeySpec{ApplicationName: "system-default", TTL: &metav1.Duration{Duration: 720 * time.Hour}}}
	protectedConn := conn(org, "system-default", newID(), v1.RoleObserver)
	protectedConn.Labels = protected
	protectedMS := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: protected}}
	for _, o := range []client.Object{app, otherApp, key, otherKey, connection, otherConnection, limited, protectedApp, protectedKey, protectedConn, protectedMS} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating %s/%s: %v", o.GetNamespace(), o.GetName(), err)
		}
	}
	mint := func(k *v1.APIKey, appID string) keyformat.Key {
		t.Helper()
		minted := mustGenerate(t, format)
		k.Status = v1.APIKeyStatus{KeyID: minted.KeyID, Masked: keyformat.Mask(minted.Token), Hash: keyformat.Hash(minted.Token),
			State: v1.KeyActive, ApplicationID: appID, SecretName: k.Name + "-key"}
		if err := admin.Status().Update(ctx, k); err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name + "-key", Labels: map[string]string{v1.LabelAPIKey: k.Name}},
			Type: corev1.SecretTypeOpaque, StringData: map[string]string{v1.SecretKeyToken: minted.Token}}
		if err := admin.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		return minted
	}
	mint(key, idA)
	otherMinted := mint(otherKey, idB)
	// The uniqueness check reads the webhook's cache: wait until it holds the other org's ID.
	eventually(t, func() bool {
		return admin.Create(ctx, &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "probe"},
			Spec: v1.ApplicationSpec{Description: "probe", ApplicationID: idB}}, client.DryRunAll) != nil
	})

	webhookDenied := func(name, msg string) string {
		return fmt.Sprintf("admission webhook %q denied the request: %s", name, msg)
	}
	policyRefused := func(policy, msg string) string {
		return fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s", policy, policy, msg)
	}
	mayNotAssign := func(user string, role v1.Role) string {
		return policyRefused("clearance-role-assignment", fmt.Sprintf(
			"user %q may not assign role %s in org %q: assigning it needs the bind verb on orgroles.access.clearance.dev named %q in that namespace, which an org admin of %q can grant (the clearance-org-admin ClusterRole has it for every role)",
			user, role, org, role, org))
	}
	mayNotWiden := func(user string) string {
		return policyRefused("clearance-role-assignment", fmt.Sprintf(
			"user %q may not widen the metric sets of OrgConnection %q, which grants role OrgAdmin in org %q: widening them needs the bind verb on orgroles.access.clearance.dev named %q in that namespace, which an org admin of %q can grant (or narrow them, or lower the role, instead)",
			user, limited.Name, org, v1.RoleOrgAdmin, org))
	}
	mayNotAllowTransport := func(user string) string {
		return policyRefused("clearance-role-assignment", fmt.Sprintf(
			"user %q may not allow a transport that OrgConnection %q refuses, which grants role OrgAdmin in org %q: allowing it needs the bind verb on orgroles.access.clearance.dev named %q in that namespace, which an org admin of %q can grant (refusing transports is allowed to anyone who may edit the connection)",
			user, limited.Name, org, v1.RoleOrgAdmin, org))
	}
	setTransport := func(t v1.Transport, p v1.TransportPolicy, opts ...client.PatchOption) func(client.Client) error {
		return func(c client.Client) error {
			patch := &v1.ConnectionTransports{}
			patch.Set(t, p)
			return c.Patch(ctx, limited.DeepCopy(), client.RawPatch(types.MergePatchType, js(obj{"spec": obj{"transports": patch}})), opts...)
		}
	}
	setMetricSets := func(sets []string, opts ...client.PatchOption) func(client.Client) error {
		return func(c client.Client) error {
			return c.Patch(ctx, limited.DeepCopy(), client.RawPatch(types.MergePatchType, js(obj{"spec": obj{"metricSets": sets}})), opts...)
		}
	}
	protectedDelete := func(kind string) string {
		return policyRefused("clearance-protected", fmt.Sprintf(
			"%s %s/system-default is a protected system default (label access.clearance.dev/protected=true) and cannot be deleted", kind, org))
	}
	// Marking an object a system default is the platform team's: protected, no org admin could
	// delete it again.
	protectedMark := func(creating bool, kind, name, resource string) string {
		doing, fix := "labelling", "leave the label off"
		if creating {
			doing, fix = "creating", "remove the label"
		}
		return policyRefused("clearance-protected", fmt.Sprintf(
			"%s %s %s/%s as a protected system default (access.clearance.dev/protected=true) needs the verb protect on %s.access.clearance.dev, which only the platform team holds (no org role grants it): %s",
			doing, kind, org, name, resource, fix))
	}
	markProtected := func(o client.Object) func(client.Client) error {
		return func(c client.Client) error { return mergePatch(c, o, obj{"metadata": obj{"labels": protected}}) }
	}
	createProtected := func(kind, name string, spec any) func(client.Client) error {
		return func(c client.Client) error {
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(js(obj{"apiVersion": v1.GroupVersion.String(), "kind": kind,
				"metadata": obj{"namespace": org, "name": name, "labels": protected}, "spec": spec})); err != nil {
				return err
			}
			return c.Create(ctx, u)
		}
	}
	statusPatch := func(o client.Object, status any) func(client.Client) error {
		return func(c client.Client) error {
			return c.Status().Patch(ctx, o.DeepCopyObject().(client.Object), client.RawPatch(types.MergePatchType, js(obj{"status": status})))
		}
	}
	connect := func(ns, id string, role v1.Role, opts ...client.CreateOption) func(client.Client) error {
		return func(c client.Client) error {
			return c.Create(ctx, conn(ns, "esc-"+strings.ToLower(string(role)), id, role), opts...)
		}
	}
	setRole := func(o *v1.OrgConnection, role v1.Role, opts ...client.PatchOption) func(client.Client) error {
		return func(c client.Client) error {
			return c.Patch(ctx, o.DeepCopy(), client.RawPatch(types.MergePatchType, js(obj{"spec": obj{"role": role}})), opts...)
		}
	}
	patchSpec := func(o client.Object, patch any) func(client.Client) error {
		return func(c client.Client) error { return mergePatch(c, o, patch) }
	}
	remove := func(o client.Object) func(client.Client) error {
		return func(c client.Client) error { return c.Delete(ctx, o.DeepCopyObject().(client.Object)) }
	}

	// peopleAttempts are what a subject holding only its people role tries. expect says who
	// must refuse a write: RBAC when the role does not grant the verb there, else admission.
	peopleAttempts := func(s *subject, r peopleRole) []attempt {
		expect := func(verb, resource, ns, admission string) string {
			if ns == org && slices.Contains(r.writes[resource], verb) {
				return admission
			}
			return forbidden(s.user, verb, resource, ns)
		}
		var list []attempt
		add := func(name string, do func(client.Client) error, want string) {
			list = append(list, attempt{name: name, do: do, want: want})
		}
		control := func(name string, do func(client.Client) error) {
			list = append(list, attempt{name: name, do: do, is: allowed})
		}

		// The subject really holds its role here, and its reads work.
		control("list its org's APIKeys", func(c client.Client) error { return c.List(ctx, &v1.APIKeyList{}, client.InNamespace(org)) })
		if r.own == v1.RoleOrgAdmin {
			control("connect an application as OrgAdmin (dry run)", connect(org, newID(), v1.RoleOrgAdmin, client.DryRunAll))
		}

		// Another org's key Secrets.
		add("read the other org's key Secret", func(c client.Client) error {
			return c.Get(ctx, client.ObjectKey{Namespace: other, Name: "partner-key"}, &corev1.Secret{})
		}, forbidden(s.user, "get", "secrets", other))
		add("list the other org's key Secrets", func(c client.Client) error {
			return c.List(ctx, &corev1.SecretList{}, client.InNamespace(other), client.HasLabels{v1.LabelAPIKey})
		}, forbidden(s.user, "list", "secrets", other))
		add("watch the other org's key Secrets", func(c client.Client) error {
			wc, err := client.NewWithWatch(env.As(s.user, s.groups, s.extra), client.Options{Scheme: env.Scheme})
			if err != nil {
				return err
			}
			w, err := wc.Watch(ctx, &corev1.SecretList{}, client.InNamespace(other))
			if err == nil {
				w.Stop()
			}
			return err
		}, forbidden(s.user, "watch", "secrets", other))
		if r.own == v1.RoleObserver {
			// Observers may list APIKeys (masked) but never read Secrets (docs/security.md).
			add("read its own org's key Secret", func(c client.Client) error {
				return c.Get(ctx, client.ObjectKey{Namespace: org, Name: "exporter-key"}, &corev1.Secret{})
			}, forbidden(s.user, "get", "secrets", org))
		}

		// A role above its own, here or in the other org.
		for _, role := range v1.Roles[r.own.Rank()+1:] {
			add("connect an application as "+string(role), connect(org, newID(), role), expect("create", "orgconnections", org, mayNotAssign(s.user, role)))
			add("raise a connection to "+string(role), setRole(connection, role), expect("patch", "orgconnections", org, mayNotAssign(s.user, role)))
		}
		if r.own == v1.RoleOrgAdmin {
			control("widen the metric sets of an OrgAdmin connection (dry run)", setMetricSets(nil, client.DryRunAll))
			control("allow WebSockets on an OrgAdmin connection that refuses them (dry run)", setTransport(v1.TransportWebSockets, v1.TransportAllowed, client.DryRunAll))
		} else {
			add("lift the metric-set limit of an OrgAdmin connection", setMetricSets(nil), expect("patch", "orgconnections", org, mayNotWiden(s.user)))
			add("add a metric set to an OrgAdmin connection", setMetricSets([]string{"default", "extra", "more"}), expect("patch", "orgconnections", org, mayNotWiden(s.user)))
			add("allow WebSockets on an OrgAdmin connection that refuses them", setTransport(v1.TransportWebSockets, v1.TransportAllowed),
				expect("patch", "orgconnections", org, mayNotAllowTransport(s.user)))
		}
		add("connect its application in the other org", connect(other, idA, r.own), forbidden(s.user, "create", "orgconnections", other))
		add("raise the other org's connection of its application", setRole(otherConnection, r.own), forbidden(s.user, "patch", "orgconnections", other))

		// Another org's key made valid for this org.
		add("a key of the other org's application", func(c client.Client) error {
			return createRaw(c, org, "APIKey", "esc-foreign", obj{"applicationName": other + "/partner"})
		}, expect("create", "apikeys", org, "applicationName must be the metadata.name of an Application in this namespace"))
		add("an Application pinning the other org's application ID", func(c client.Client) error {
			return createRaw(c, org, "Application", "esc-thief", obj{"description": "thief", "applicationID": idB})
		}, expect("create", "applications", org, webhookDenied("vapplication.access.clearance.dev", fmt.Sprintf(
			"application ID %s already belongs to Application %s/partner: remove spec.applicationID to have a new ID generated", idB, other))))
		add("the other org's application ID written into its Application's status",
			statusPatch(app, obj{"applicationID": idB}), forbidden(s.user, "patch", "applications/status", org))
		add("a connection re-pinned through its status",
			statusPatch(connection, obj{"applicationNamespace": org, "applicationName": "bi", "createdBy": org}), forbidden(s.user, "patch", "orgconnections/status", org))
		add("a connection moved to another application",
			patchSpec(connection, obj{"spec": obj{"applicationID": idA}}), expect("patch", "orgconnections", org, "spec.applicationID cannot change: delete this OrgConnection and create one for the other application"))

		// A key's hash or application.
		add("the other org's key hash written into its key's status",
			statusPatch(key, obj{"keyID": otherMinted.KeyID, "hash": keyformat.Hash(otherMinted.Token)}), forbidden(s.user, "patch", "apikeys/status", org))
		add("a key moved to another application",
			patchSpec(key, obj{"spec": obj{"applicationName": "system-default"}}), expect("patch", "apikeys", org, "spec.applicationName cannot change: create a new APIKey for the other application"))
		add("the other org's key written into its key Secret", func(c client.Client) error {
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "exporter-key"}}
			return c.Patch(ctx, sec, client.RawPatch(types.MergePatchType, js(obj{"stringData": obj{v1.SecretKeyToken: otherMinted.Token}})))
		}, forbidden(s.user, "patch", "secrets", org))
		statusOnMain := patchSpec(key, obj{"status": obj{"hash": keyformat.Hash(otherMinted.Token), "keyID": otherMinted.KeyID}})
		if slices.Contains(r.writes["apikeys"], "patch") {
			list = append(list, attempt{name: "a key's status sent to the main resource", do: statusOnMain, is: ignored})
		} else {
			add("a key's status sent to the main resource", statusOnMain, forbidden(s.user, "patch", "apikeys", org))
		}

		// Protected system defaults.
		add("delete the protected Application", remove(protectedApp), expect("delete", "applications", org, protectedDelete("Application")))
		add("delete the protected APIKey", remove(protectedKey), expect("delete", "apikeys", org, protectedDelete("APIKey")))
		add("delete the protected OrgConnection", remove(protectedConn), expect("delete", "orgconnections", org, protectedDelete("OrgConnection")))
		add("delete the protected MetricSet", remove(protectedMS), expect("delete", "metricsets", org, protectedDelete("MetricSet")))
		add("delete every protected APIKey at once", func(c client.Client) error {
			return c.DeleteAllOf(ctx, &v1.APIKey{}, client.InNamespace(org), client.MatchingLabels(protected))
		}, forbidden(s.user, "deletecollection", "apikeys", org))
		add("create a protected Application", createProtected("Application", "esc-default", obj{"description": "a default of its own"}),
			expect("create", "applications", org, protectedMark(true, "Application", "esc-default", "applications")))
		add("create a protected APIKey", createProtected("APIKey", "esc-default", obj{"applicationName": "bi", "ttl": "720h"}),
			expect("create", "apikeys", org, protectedMark(true, "APIKey", "esc-default", "apikeys")))
		add("create a protected MetricSet", createProtected("MetricSet", "esc-default", obj{}),
			expect("create", "metricsets", org, protectedMark(true, "MetricSet", "esc-default", "metricsets")))
		add("mark its key protected", markProtected(key), expect("patch", "apikeys", org, protectedMark(false, "APIKey", "exporter", "apikeys")))
		add("mark a connection protected, so that no org admin can disconnect it", markProtected(connection),
			expect("patch", "orgconnections", org, protectedMark(false, "OrgConnection", "partner", "orgconnections")))
		add("unprotect the protected MetricSet",
			patchSpec(protectedMS, obj{"metadata": obj{"labels": obj{v1.LabelProtected: nil}}}),
			expect("patch", "metricsets", org, policyRefused("clearance-protected", fmt.Sprintf(
				"the access.clearance.dev/protected=true label of MetricSet %s/system-default cannot be removed: it marks a system default", org))))
		return list
	}

	// editorAttempts are what the same kind of subject tries when it may also write
	// OrgConnections: RBAC lets the write through, and the webhook alone must judge the role.
	editorAttempts := func(s *subject, r peopleRole) []attempt {
		list := []attempt{
			{name: "connect an application as " + string(r.own) + " (dry run)", do: connect(org, newID(), r.own, client.DryRunAll), is: allowed},
			{name: "raise a connection to " + string(r.own) + " (dry run)", do: setRole(connection, r.own, client.DryRunAll), is: allowed},
		}
		for _, role := range v1.Roles[r.own.Rank()+1:] {
			list = append(list,
				attempt{name: "connect an application as " + string(role), do: connect(org, newID(), role), want: mayNotAssign(s.user, role)},
				attempt{name: "raise a connection to " + string(role), do: setRole(connection, role), want: mayNotAssign(s.user, role)})
		}
		// Narrowing what a connection grants is anybody's who may edit it; widening it is not.
		list = append(list, attempt{name: "narrow the metric sets of an OrgAdmin connection (dry run)", do: setMetricSets([]string{"default"}, client.DryRunAll), is: allowed},
			attempt{name: "refuse long polling on an OrgAdmin connection (dry run)", do: setTransport(v1.TransportLongPolling, v1.TransportRefused, client.DryRunAll), is: allowed})
		if r.own != v1.RoleOrgAdmin {
			list = append(list,
				attempt{name: "lift the metric-set limit of an OrgAdmin connection", do: setMetricSets(nil), want: mayNotWiden(s.user)},
				attempt{name: "add a metric set to an OrgAdmin connection", do: setMetricSets([]string{"default", "extra", "more"}), want: mayNotWiden(s.user)},
				attempt{name: "allow WebSockets on an OrgAdmin connection that refuses them", do: setTransport(v1.TransportWebSockets, v1.TransportAllowed), want: mayNotAllowTransport(s.user)})
		}
		list = append(list,
			attempt{name: "connect an application as a protected system default", do: createProtected("OrgConnection", "esc-default", obj{"applicationID": newID(), "role": v1.RoleObserver}),
				want: protectedMark(true, "OrgConnection", "esc-default", "orgconnections")},
			attempt{name: "mark a connection protected, so that no org admin can disconnect it", do: markProtected(connection),
				want: protectedMark(false, "OrgConnection", "partner", "orgconnections")})
		return append(list, attempt{name: "unprotect the protected OrgConnection",
			do: patchSpec(protectedConn, obj{"metadata": obj{"labels": obj{v1.LabelProtected: nil}}}),
			want: policyRefused("clearance-protected", fmt.Sprintf(
				"the access.clearance.dev/protected=true label of OrgConnection %s/system-default cannot be removed: it marks a system default", org))})
	}

	run := func(t *testing.T, s *subject, a attempt) bool {
		t.Helper()
		failed := t.Failed()
		before := hostileSnapshot(t, org, other)
		err := a.do(s.c)
		after := hostileSnapshot(t, org, other)
		switch {
		case a.is == refused && err == nil:
			t.Errorf("%s: accepted", a.name)
		case a.is == refused && !strings.Contains(err.Error(), a.want):
			t.Errorf("%s:\n got: %v\nwant it to contain: %s", a.name, err, a.want)
		case a.is == refused && strings.HasPrefix(a.want, "is forbidden") && !apierrors.IsForbidden(err):
			t.Errorf("%s: refused, but not as Forbidden: %v", a.name, err)
		case a.is != refused && err != nil:
			t.Errorf("%s: must be allowed: %v", a.name, err)
		}
		if before != after {
			t.Errorf("%s: it changed something:\nbefore: %.2000s\n after: %.2000s", a.name, before, after)
		}
		return !failed && !t.Failed()
	}

	rows, refusals := 0, 0
	for _, kind := range subjectKinds {
		for _, r := range peopleRoleMatrix {
			t.Run(string(kind)+"/"+r.clusterRole, func(t *testing.T) {
				rows++
				id := string(kind) + "-" + strings.TrimPrefix(r.clusterRole, "clearance-")
				people := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.clusterRole}
				editor := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: connectionEditor.Name}
				p := bindSubject(t, kind, org, id, people)
				e := bindSubject(t, kind, org, id+"-editor", people, editor)
				for _, a := range peopleAttempts(p, r) {
					if run(t, p, a) && a.is == refused {
						refusals++
					}
				}
				for _, a := range editorAttempts(e, r) {
					if run(t, e, a) && a.is == refused {
						refusals++
					}
				}
			})
		}
	}
	if !t.Failed() {
		t.Logf("%d rows (%d subject kinds x %d roles): %d refusals, each by its rule's owner, nothing changed", rows, len(subjectKinds), len(peopleRoleMatrix), refusals)
	}
}

// TestWideningAConnectionsMetricSetsIsToldApartFromNarrowing: the role assignment policy tells
// widening an OrgAdmin connection's metric sets (refused to a user who may edit connections but
// not bind OrgAdmin) from narrowing them or leaving them be (allowed), each a dry run against
// the apiserver.
func TestWideningAConnectionsMetricSetsIsToldApartFromNarrowing(t *testing.T) {
	peopleRoles(t)
	ctx := context.Background()
	org := env.Namespace(t, "widen")
	editor := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "connection-editor"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgconnections"}, Verbs: []string{"get", "update", "patch"}}},
	}
	if err := env.Client.Create(ctx, editor); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "tom-editor"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: editor.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "tom"}},
	}); err != nil {
		t.Fatal(err)
	}
	tom := newPerson(t, org, "tom", "clearance-technician")
	for i, tt := range []struct {
		old, updated []string
		widens       bool
	}{
		{nil, nil, false},
		{nil, []string{"default"}, false}, // from every set to one
		{[]string{"default"}, nil, true},  // from one set to every set
		{[]string{"default"}, []string{"default"}, false},
		{[]string{"default", "extra"}, []string{"extra"}, false},
		{[]string{"default"}, []string{"default", "extra"}, true},
		{[]string{"default"}, []string{"extra"}, true},
	} {
		c := conn(org, fmt.Sprintf("c%d", i), newID(), v1.RoleOrgAdmin)
		c.Spec.MetricSets = tt.old
		if err := env.Client.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() bool { return tom.c.Get(ctx, client.ObjectKeyFromObject(c), &v1.OrgConnection{}) == nil })
		patch := client.RawPatch(types.MergePatchType, js(obj{"spec": obj{"metricSets": tt.updated}}))
		err := tom.c.Patch(ctx, c.DeepCopy(), patch, client.DryRunAll)
		switch {
		case tt.widens && (err == nil || !strings.Contains(err.Error(), `user "tom" may not widen the metric sets`)):
			t.Errorf("%q -> %q: want the refusal to widen, got %v", tt.old, tt.updated, err)
		case !tt.widens && err != nil:
			t.Errorf("%q -> %q: does not widen, but was refused: %v", tt.old, tt.updated, err)
		}
	}
}

// TestAllowingARefusedTransportOrWideningMetricSetsNeedsBindOnTheConnectionsRoleWhateverItIs:
// clearance-role-assignment asks bind on a connection's role to let it grant more without raising
// the role. For every people role a subject holds (with a Role that lets it edit connections),
// every role a connection may grant, and every way to grant more (allowing each transport the
// connection refuses, adding a metric set, lifting the metric-set limit), the edit passes when
// the subject may bind the connection's role and is refused, saying which, when it may not.
func TestAllowingARefusedTransportOrWideningMetricSetsNeedsBindOnTheConnectionsRoleWhateverItIs(t *testing.T) {
	ctx := context.Background()
	peopleRoles(t)
	org := env.Namespace(t, "grant-more")
	if err := env.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: connectionEditor.Name}, Rules: connectionEditor.Rules}); err != nil {
		t.Fatal(err)
	}
	refuseAll := &v1.ConnectionTransports{}
	for _, tr := range v1.Transports {
		refuseAll.Set(tr, v1.TransportRefused)
	}
	connections := map[v1.Role]*v1.OrgConnection{}
	for _, role := range v1.Roles {
		c := conn(org, "grants-"+strings.ToLower(string(role)), newID(), role)
		c.Spec.MetricSets = []string{"default", "extra"}
		c.Spec.Transports = refuseAll.DeepCopy()
		if err := env.Client.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		connections[role] = c
	}
	type edit struct {
		name, refusal string
		patch         obj
	}
	edits := []edit{
		{"add a metric set", "may not widen the metric sets", obj{"metricSets": []string{"default", "extra", "more"}}},
		{"lift the metric-set limit", "may not widen the metric sets", obj{"metricSets": nil}},
	}
	for _, tr := range v1.Transports {
		allow := &v1.ConnectionTransports{}
		allow.Set(tr, v1.TransportAllowed)
		edits = append(edits, edit{"allow " + string(tr), "may not allow a transport that", obj{"transports": allow}})
	}
	tried := 0
	for _, r := range peopleRoleMatrix {
		people := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.clusterRole}
		editor := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: connectionEditor.Name}
		s := bindSubject(t, kindUser, org, "grant-"+strings.TrimPrefix(r.clusterRole, "clearance-"), people, editor)
		for _, role := range v1.Roles {
			c := connections[role]
			for _, e := range edits {
				tried++
				err := s.c.Patch(ctx, c.DeepCopy(), client.RawPatch(types.MergePatchType, js(obj{"spec": e.patch})), client.DryRunAll)
				want := fmt.Sprintf("user %q %s", s.user, e.refusal)
				switch mayBind := role.Rank() <= r.own.Rank(); {
				case mayBind && err != nil:
					t.Errorf("%s (binds up to %s) on a %s connection: %s: refused: %v", s.user, r.own, role, e.name, err)
				case !mayBind && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "which grants role "+string(role))):
					t.Errorf("%s (binds up to %s) on a %s connection: %s: %v, want a refusal containing %q", s.user, r.own, role, e.name, err, want)
				}
			}
		}
	}
	t.Logf("%d edits granting more tried: each passed exactly when its subject may bind the connection's role", tried)
}
