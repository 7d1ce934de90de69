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
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	flag.Parse()
	// Fuzzing runs the binary once per worker; decoding admission requests needs no apiserver.
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	testenv.MainWithWebhooks(m, &env, startWebhooks)
}

// startWebhooks runs the webhook server where the apiserver expects it, and installs the
// people ClusterRoles the way an install does.
func startWebhooks(e *testenv.Env) (func() error, error) {
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host: e.Webhook.LocalServingHost, Port: e.Webhook.LocalServingPort, CertDir: e.Webhook.LocalServingCertDir,
		}),
	})
	if err != nil {
		return nil, err
	}
	if err := index.Register(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	if err := Setup(mgr, Options{}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	addr := net.JoinHostPort(e.Webhook.LocalServingHost, strconv.Itoa(e.Webhook.LocalServingPort))
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // readiness probe only
		if err == nil {
			_ = conn.Close()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			return nil, fmt.Errorf("the webhook server did not come up on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return nil, fmt.Errorf("caches did not sync")
	}
	return func() error { cancel(); return <-done }, nil
}

func peopleRoles(t *testing.T) {
	t.Helper()
	if out, err := env.Kubectl(t, "apply", "-f", "config/rbac/people_roles.yaml"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// person is a user bound to one of the people ClusterRoles in an org, acting through
// impersonation with groups and extra, as an OIDC login carries them.
type person struct {
	user, clusterRole string
	c                 client.Client
	warnings          *warningCollector
}

func newPerson(t *testing.T, org, user, clusterRole string, groups ...string) *person {
	t.Helper()
	if clusterRole != "" {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: user + "-" + clusterRole},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
		}
		if err := env.Client.Create(context.Background(), rb); err != nil {
			t.Fatal(err)
		}
	}
	cfg := env.As(user, append([]string{"system:authenticated"}, groups...), map[string][]string{"acr": {"mfa"}})
	w := &warningCollector{}
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &person{user: user, clusterRole: clusterRole, c: c, warnings: w}
}

// warningCollector keeps the admission warnings the apiserver returns.
type warningCollector struct {
	mu   sync.Mutex
	list []string
}

func (w *warningCollector) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warningCollector) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

var _ rest.WarningHandler = &warningCollector{}

var idCounter int

// newID returns a well-formed, unused Application ID.
func newID() string {
	idCounter++
	return fmt.Sprintf("app_%026d", idCounter)
}

func conn(org, name, id string, role v1.Role) *v1.OrgConnection {
	return &v1.OrgConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name},
		Spec:       v1.OrgConnectionSpec{ApplicationID: id, Role: role},
	}
}

func TestOnlyThoseWhoMayBindARoleCanAssignIt(t *testing.T) {
	peopleRoles(t)
	org := env.Namespace(t, "matrix")
	// What each person may assign on create: org admins create connections with any role;
	// the others may not create connections at all (RBAC refuses before the webhook).
	allowed := map[string][]v1.Role{"clearance-org-admin": v1.Roles}
	people := []*person{
		newPerson(t, org, "olga", "clearance-observer"),
		newPerson(t, org, "anna", "clearance-analyst"),
		newPerson(t, org, "tom", "clearance-technician"),
		newPerson(t, org, "ada", "clearance-org-admin"),
		newPerson(t, org, "nobody", ""),
	}
	for _, p := range people {
		for _, role := range v1.Roles {
			name := strings.ToLower(p.user + "-" + string(role))
			err := p.c.Create(context.Background(), conn(org, name, newID(), role))
			want := false
			for _, r := range allowed[p.clusterRole] {
				want = want || r == role
			}
			switch {
			case want && err != nil:
				t.Errorf("%s (%s) assigning %s: refused: %v", p.user, p.clusterRole, role, err)
			case !want && err == nil:
				t.Errorf("%s (%s) assigning %s: allowed", p.user, p.clusterRole, role)
			case !want:
				msg := fmt.Sprintf(`orgconnections.access.clearance.dev is forbidden: User "%s" cannot create resource "orgconnections" in API group "access.clearance.dev" in the namespace "%s"`, p.user, org)
				if err.Error() != msg {
					t.Errorf("%s assigning %s:\n got: %v\nwant: %s", p.user, role, err, msg)
				}
			}
		}
	}
}

func TestTheWebhookRefusesARoleTheCreatorMayNotBind(t *testing.T) {
	peopleRoles(t)
	org := env.Namespace(t, "bind")
	// A user who may create connections (a custom Role) but bind only Observer.
	creator := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "connection-creator"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgconnections"}, Verbs: []string{"create", "get"}}},
	}
	if err := env.Client.Create(context.Background(), creator); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "carl-creator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "connection-creator"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "carl"}},
	}
	if err := env.Client.Create(context.Background(), rb); err != nil {
		t.Fatal(err)
	}
	carl := newPerson(t, org, "carl", "clearance-observer")
	if err := carl.c.Create(context.Background(), conn(org, "observer", newID(), v1.RoleObserver)); err != nil {
		t.Fatalf("carl may bind Observer: %v", err)
	}
	err := carl.c.Create(context.Background(), conn(org, "analyst", newID(), v1.RoleAnalyst))
	want := policyDenied("orgconnections", "analyst", "clearance-role-assignment") + fmt.Sprintf(`user "carl" may not assign role Analyst in org "%s": assigning it needs the bind verb on orgroles.access.clearance.dev named "Analyst" in that namespace, which an org admin of "%s" can grant (the clearance-org-admin ClusterRole has it for every role)`, org, org)
	if err == nil || err.Error() != want {
		t.Errorf("\n got: %v\nwant: %s", err, want)
	}

	// A subject known only by a group (as OIDC users are) is judged by its groups.
	groupRB := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "admins-group"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "clearance-org-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "oidc:acme-admins"}},
	}
	if err := env.Client.Create(context.Background(), groupRB); err != nil {
		t.Fatal(err)
	}
	gina := newPerson(t, org, "gina", "", "oidc:acme-admins")
	if err := gina.c.Create(context.Background(), conn(org, "via-group", newID(), v1.RoleOrgAdmin)); err != nil {
		t.Errorf("a group member with clearance-org-admin may assign OrgAdmin: %v", err)
	}
}

func TestRaisingARoleNeedsBindButLoweringDoesNot(t *testing.T) {
	peopleRoles(t)
	org := env.Namespace(t, "edit")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	tom := newPerson(t, org, "tom", "clearance-technician")
	c := conn(org, "bi", newID(), v1.RoleObserver)
	if err := ada.c.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	setRole := func(p *person, role v1.Role) error {
		patch := []byte(`{"spec":{"role":"` + string(role) + `"}}`)
		return p.c.Patch(context.Background(), c.DeepCopy(), client.RawPatch(types.MergePatchType, patch))
	}
	if err := setRole(tom, v1.RoleTechnician); err != nil {
		t.Errorf("a technician may raise a role to Technician: %v", err)
	}
	err := setRole(tom, v1.RoleOrgAdmin)
	if err == nil || !strings.Contains(err.Error(), `user "tom" may not assign role OrgAdmin in org`) {
		t.Errorf("a technician may not raise a role to OrgAdmin: %v", err)
	}
	if err := setRole(ada, v1.RoleOrgAdmin); err != nil {
		t.Fatal(err)
	}
	if err := setRole(tom, v1.RoleAnalyst); err != nil {
		t.Errorf("lowering is allowed to whoever may update: %v", err)
	}
}

func TestAnOrgConnectsAnApplicationOnlyOnce(t *testing.T) {
	org := env.Namespace(t, "unique")
	id := newID()
	if err := env.Client.Create(context.Background(), conn(org, "first", id, v1.RoleObserver)); err != nil {
		t.Fatal(err)
	}
	// The webhook reads its cache: wait until it has the first, as the hostile-input test
	// does. A second connection that beats the first into it is the OrgConnection
	// controller's to mark Conflict (controllers' TestASecondConnection...).
	eventually(t, func() bool {
		return env.Client.Create(context.Background(), conn(org, "probe", id, v1.RoleObserver), client.DryRunAll) != nil
	})
	err := env.Client.Create(context.Background(), conn(org, "second", id, v1.RoleObserver))
	want := fmt.Sprintf(`admission webhook "vorgconnection.access.clearance.dev" denied the request: org "%s" already connects application %s with OrgConnection "first": edit the role there instead of creating another connection`, org, id)
	if err == nil || err.Error() != want {
		t.Errorf("\n got: %v\nwant: %s", err, want)
	}
}

// TestOnlyAnotherConnectionOfTheSameApplicationInTheSameOrgIsRefused: the uniqueness check
// reads the connecting org's own connections only. Another org connects the same application
// freely, and a connection applied again is told that it exists (AlreadyExists), never that it
// duplicates itself (a replace of a connection the webhook's cache still holds).
func TestOnlyAnotherConnectionOfTheSameApplicationInTheSameOrgIsRefused(t *testing.T) {
	ctx := context.Background()
	org, other := env.Namespace(t, "once"), env.Namespace(t, "once-other")
	id := newID()
	if err := env.Client.Create(ctx, conn(org, "first", id, v1.RoleObserver)); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { // the webhook's cache has the first
		return env.Client.Create(ctx, conn(org, "probe", id, v1.RoleObserver), client.DryRunAll) != nil
	})
	duplicate := fmt.Sprintf(`admission webhook "vorgconnection.access.clearance.dev" denied the request: org "%s" already connects application %s with OrgConnection "first": edit the role there instead of creating another connection`, org, id)
	for _, tc := range []struct {
		org, name string
		ok        func(error) bool
		want      string
	}{
		{org, "second", func(err error) bool { return err != nil && err.Error() == duplicate }, duplicate},
		{org, "first", apierrors.IsAlreadyExists, "AlreadyExists"},
		{other, "first", func(err error) bool { return err == nil }, "admitted"},
		{other, "second", func(err error) bool { return err == nil }, "admitted"},
	} {
		for _, role := range []v1.Role{v1.RoleObserver, v1.RoleOrgAdmin} {
			err := env.Client.Create(ctx, conn(tc.org, tc.name, id, role), client.DryRunAll)
			if !tc.ok(err) {
				t.Errorf("%s/%s (%s) connecting application %s: got %v, want %s", tc.org, tc.name, role, id, err, tc.want)
			}
		}
	}
}

// TestTheNotFoundWarningComesOnlyWhileNoApplicationHasTheID: connecting an ID that no
// Application holds or pins is warned about (GitOps may apply it later); connecting one that an
// Application pins or holds is not.
func TestTheNotFoundWarningComesOnlyWhileNoApplicationHasTheID(t *testing.T) {
	peopleRoles(t)
	ctx := context.Background()
	owner, org := env.Namespace(t, "found-owner"), env.Namespace(t, "found")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	pinned, unknown := newID(), newID()
	// This suite runs no controllers: the Application pins its ID and holds none, as until the
	// operator's first pass.
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: owner, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "BI", ApplicationID: pinned}}
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { // the webhook's cache has it: a second claim of the ID is refused
		probe := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: owner, Name: "probe"}, Spec: v1.ApplicationSpec{Description: "BI", ApplicationID: pinned}}
		return env.Client.Create(ctx, probe, client.DryRunAll) != nil
	})
	notFound := func(id string) string {
		return "no Application has ID " + id + " yet; the connection resolves by itself when it appears (GitOps may apply it later)"
	}
	ada.warnings.take()
	if err := ada.c.Create(ctx, conn(org, "pinned", pinned, v1.RoleObserver)); err != nil {
		t.Fatal(err)
	}
	if got := ada.warnings.take(); len(got) != 0 {
		t.Errorf("connecting the ID an Application pins was warned about: %q", got)
	}
	if err := ada.c.Create(ctx, conn(org, "unknown", unknown, v1.RoleObserver)); err != nil {
		t.Fatal(err)
	}
	if got := ada.warnings.take(); !slices.Equal(got, []string{notFound(unknown)}) {
		t.Errorf("connecting an ID no Application has: warnings %q, want %q", got, notFound(unknown))
	}
}

// TestACreateNamingAnotherCreatorKeepsEveryOtherAnnotation: when a manifest names another
// creator, the webhook replaces that one annotation; every other annotation of the manifest
// (Argo CD's tracking id, a note) stays, for each kind it records the creator of.
func TestACreateNamingAnotherCreatorKeepsEveryOtherAnnotation(t *testing.T) {
	peopleRoles(t)
	ctx := context.Background()
	org := env.Namespace(t, "keeps")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	annotated := func() map[string]string {
		return map[string]string{v1.AnnotationCreatedBy: "mallory", "argocd.argoproj.io/tracking-id": "org:bi", "note": "exported from prod"}
	}
	for _, obj := range []client.Object{
		&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi", Annotations: annotated()}, Spec: v1.ApplicationSpec{Description: "BI"}},
		&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi", Annotations: annotated()}, Spec: v1.APIKeySpec{ApplicationName: "bi", TTL: &metav1.Duration{Duration: time.Hour}}},
		&v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi", Annotations: annotated()}, Spec: v1.OrgConnectionSpec{ApplicationID: newID(), Role: v1.RoleObserver}},
	} {
		if err := ada.c.Create(ctx, obj); err != nil {
			t.Fatalf("%T: %v", obj, err)
		}
		want := annotated()
		want[v1.AnnotationCreatedBy] = "ada"
		if got := obj.GetAnnotations(); !maps.Equal(got, want) {
			t.Errorf("%T created naming mallory: annotations %v, want %v", obj, got, want)
		}
	}
}

func TestWarningsComeBackWithTheAPIResponse(t *testing.T) {
	peopleRoles(t)
	org := env.Namespace(t, "warn")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	id := newID()
	if err := ada.c.Create(context.Background(), conn(org, "bi", id, v1.RoleAnalyst)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(ada.warnings.take(), "\n")
	for _, want := range []string{
		"no Application has ID " + id + " yet; the connection resolves by itself when it appears (GitOps may apply it later)",
		"role Analyst grants more than Observer (read-only, the recommended default): make sure application " + id + " needs it",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing warning %q in:\n%s", want, got)
		}
	}
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "forever"}, Spec: v1.APIKeySpec{ApplicationName: "bi"}}
	if err := ada.c.Create(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if got := ada.warnings.take(); len(got) != 1 || got[0] != policyWarned("clearance-advice")+"APIKey forever never expires and never rotates: consider spec.ttl (e.g. 2160h0m0s) or spec.rotation" {
		t.Errorf("warnings: %q", got)
	}
}

func TestAPinnedApplicationIDBelongsToOneApplication(t *testing.T) {
	a, b := env.Namespace(t, "pin-a"), env.Namespace(t, "pin-b")
	id := newID()
	app := func(ns string) *v1.Application {
		return &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "BI", ApplicationID: id}}
	}
	if err := env.Client.Create(context.Background(), app(a)); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		err := env.Client.Create(context.Background(), app(b))
		return err != nil && err.Error() == fmt.Sprintf(`admission webhook "vapplication.access.clearance.dev" denied the request: application ID %s already belongs to Application %s/bi: remove spec.applicationID to have a new ID generated`, id, a)
	})
}

// TestAPinnedApplicationIDIsRefusedToEveryOtherApplicationOfItsOrgOrAnother: an ID one
// Application pins is refused to any other Application, in the same org under another name as
// much as in another org under any name; the Application itself applied again is told that it
// exists, never that its ID belongs to itself.
func TestAPinnedApplicationIDIsRefusedToEveryOtherApplicationOfItsOrgOrAnother(t *testing.T) {
	ctx := context.Background()
	org, other := env.Namespace(t, "pin-own"), env.Namespace(t, "pin-other")
	id := newID()
	app := func(ns, name string) *v1.Application {
		return &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ApplicationSpec{Description: "BI", ApplicationID: id}}
	}
	if err := env.Client.Create(ctx, app(org, "bi")); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { // the webhook's cache has it
		return env.Client.Create(ctx, app(other, "probe"), client.DryRunAll) != nil
	})
	taken := fmt.Sprintf(`admission webhook "vapplication.access.clearance.dev" denied the request: application ID %s already belongs to Application %s/bi: remove spec.applicationID to have a new ID generated`, id, org)
	for _, tc := range []struct{ ns, name string }{{org, "bi-copy"}, {org, "a"}, {other, "bi"}, {other, "bi-copy"}} {
		if err := env.Client.Create(ctx, app(tc.ns, tc.name), client.DryRunAll); err == nil || err.Error() != taken {
			t.Errorf("Application %s/%s pinning %s:\n got: %v\nwant: %s", tc.ns, tc.name, id, err, taken)
		}
	}
	if err := env.Client.Create(ctx, app(org, "bi"), client.DryRunAll); !apierrors.IsAlreadyExists(err) {
		t.Errorf("Application %s/bi applied again: got %v, want AlreadyExists", org, err)
	}
}

func TestProtectedObjectsStayUnlessTheOperatorRemovesThem(t *testing.T) {
	org := env.Namespace(t, "protected")
	app := &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "system-default", Labels: map[string]string{v1.LabelProtected: "true"}},
		Spec:       v1.ApplicationSpec{Description: "system default"},
	}
	if err := env.Client.Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	err := env.Client.Delete(context.Background(), app)
	want := policyDenied("applications", "system-default", "clearance-protected") + fmt.Sprintf(`Application %s/system-default is a protected system default (label access.clearance.dev/protected=true) and cannot be deleted`, org)
	if err == nil || err.Error() != want {
		t.Errorf("\n got: %v\nwant: %s", err, want)
	}
	unprotect := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"access.clearance.dev/protected":null}}}`))
	if err := env.Client.Patch(context.Background(), app, unprotect); err == nil || !strings.Contains(err.Error(), "label of Application "+org+"/system-default cannot be removed: it marks a system default") {
		t.Errorf("removing the label: %v", err)
	}
	operator, err := client.New(env.As(testenv.OperatorUser, []string{"system:masters"}, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := operator.Delete(context.Background(), app); err != nil {
		t.Errorf("the operator may delete a protected object: %v", err)
	}
}

func TestTheCreatorIsRecordedAndCannotBeRewritten(t *testing.T) {
	peopleRoles(t)
	org := env.Namespace(t, "creator")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	app := &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi", Annotations: map[string]string{v1.AnnotationCreatedBy: "mallory"}},
		Spec:       v1.ApplicationSpec{Description: "BI"},
	}
	if err := ada.c.Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	if got := app.Annotations[v1.AnnotationCreatedBy]; got != "ada" {
		t.Errorf("created-by is %q, want ada", got)
	}
	if w := ada.warnings.take(); len(w) != 1 || !strings.Contains(w[0], `"mallory" was replaced with the creating user "ada"`) {
		t.Errorf("warnings: %q", w)
	}
	app.Annotations[v1.AnnotationCreatedBy] = "mallory"
	err := ada.c.Update(context.Background(), app)
	if err == nil || !strings.Contains(err.Error(), `annotation access.clearance.dev/created-by records who created Application bi and cannot change (it is "ada")`) {
		t.Errorf("rewriting the creator: %v", err)
	}

	// A manifest with annotations of its own (Argo CD's tracking id, say) keeps them all and gains
	// the record beside them.
	tracked := &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "tracked", Annotations: map[string]string{"argocd.argoproj.io/tracking-id": "org:app"}},
		Spec:       v1.ApplicationSpec{Description: "BI"},
	}
	if err := ada.c.Create(context.Background(), tracked); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"argocd.argoproj.io/tracking-id": "org:app", v1.AnnotationCreatedBy: "ada"}; !maps.Equal(tracked.Annotations, want) {
		t.Errorf("annotations are %v, want %v", tracked.Annotations, want)
	}

	// The recorded creator can be neither removed nor forged, whoever asks.
	operator, err := client.New(env.As(testenv.OperatorUser, []string{"system:masters"}, nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	old := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "old"}, Spec: v1.ApplicationSpec{Description: "before the webhook"}}
	if err := ada.c.Create(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	strip := client.RawPatch(types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/annotations"}]`))
	if err := operator.Patch(context.Background(), old, strip); err == nil {
		t.Fatal("removing the creator must be refused too")
	}
	forge := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"access.clearance.dev/created-by":"mallory"}}}`))
	if err := ada.c.Patch(context.Background(), old, forge); err == nil || !strings.Contains(err.Error(), "cannot change") {
		t.Errorf("forging the creator: %v", err)
	}
}

func TestMalformedAdmissionRequestsGetACleanErrorAndTheServerStaysUp(t *testing.T) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.Webhook.LocalServingCAData)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	base := "https://" + net.JoinHostPort(env.Webhook.LocalServingHost, strconv.Itoa(env.Webhook.LocalServingPort))
	review := func(object string) string {
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"DELETE","kind":{"group":"access.clearance.dev","version":"v1alpha1","kind":"Application"},"oldObject":` + object + `}}`
	}
	bodies := []string{"", "{", "null", "[]", strings.Repeat("x", 1<<20), `{"request":null}`, review(`"a string"`), review(`[1,2]`), review(`{"metadata":{"labels":[]}}`)}
	for _, path := range []string{"/mutate-created-by", "/validate-access-clearance-dev-v1alpha1-orgconnection",
		"/validate-access-clearance-dev-v1alpha1-application", "/validate-access-clearance-dev-v1alpha1-apikey"} {
		for i, body := range bodies {
			resp, err := hc.Post(base+path, "application/json", bytes.NewBufferString(body))
			if err != nil {
				t.Fatalf("%s body %d: %v", path, i, err)
			}
			data, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode >= 500 || strings.Contains(string(data), "panic") {
				t.Errorf("%s body %d: %d %s", path, i, resp.StatusCode, data)
			}
			if resp.StatusCode == 200 && strings.Contains(string(data), `"allowed":true`) && i >= 6 {
				t.Errorf("%s body %d was allowed: %s", path, i, data)
			}
		}
	}
}

// policyDenied is how the apiserver prefixes the message of an admission policy's refusal
// (reason Forbidden) of an object of resource named name.
func policyDenied(resource, name, policy string) string {
	return fmt.Sprintf(`%s.access.clearance.dev %q is forbidden: ValidatingAdmissionPolicy '%s' with binding '%s' denied request: `, resource, name, policy, policy)
}

// policyWarned is how the apiserver prefixes the message of an admission policy's warning.
func policyWarned(policy string) string {
	return fmt.Sprintf("Validation failed for ValidatingAdmissionPolicy '%s' with binding '%s': ", policy, policy)
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
