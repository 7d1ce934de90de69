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

package ops_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/ops"
)

func applicationID(t *testing.T) string {
	t.Helper()
	id, err := keyformat.ApplicationID()
	must(t, err)
	return id
}

func TestConnectNamesTheConnectionAfterTheApplicationIDUnlessNamed(t *testing.T) {
	// The default name is conn- and the ID's last 12 characters (docs/kubectl-plugin.md): how
	// someone who may only get connections finds one by its Application ID.
	if got := ops.ConnectionName("app_7k2m9q4x8v1c5n3b6z0w2r4t8y"); got != "conn-3b6z0w2r4t8y" {
		t.Errorf("the default name of app_7k2m9q4x8v1c5n3b6z0w2r4t8y's connection is %q, want conn-3b6z0w2r4t8y", got)
	}
	ns := env.Namespace(t, "connect")
	id := applicationID(t)
	conn, err := ops.Connect(ctx(), env.Client, ns, id, v1.RoleObserver, ops.ConnectOptions{})
	must(t, err)
	var got v1.OrgConnection
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: ops.ConnectionName(id)}, &got))
	if got.UID != conn.UID || got.Spec.ApplicationID != id || got.Spec.Role != v1.RoleObserver || got.Spec.MetricSets != nil {
		t.Errorf("created %s with %+v", got.Name, got.Spec)
	}

	other := applicationID(t)
	conn, err = ops.Connect(ctx(), env.Client, ns, other, v1.RoleAnalyst, ops.ConnectOptions{Name: "partner", MetricSets: []string{"default"}})
	must(t, err)
	if conn.Name != "partner" || conn.Spec.Role != v1.RoleAnalyst || len(conn.Spec.MetricSets) != 1 {
		t.Errorf("created %s with %+v", conn.Name, conn.Spec)
	}

	if _, err := ops.Connect(ctx(), env.Client, ns, id, v1.RoleObserver, ops.ConnectOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("connecting twice under the default name: %v, want AlreadyExists", err)
	}
}

func TestFindConnectionFindsItByNameOrByApplicationIDWhateverItsName(t *testing.T) {
	ns := env.Namespace(t, "find")
	byDefault, named := applicationID(t), applicationID(t)
	_, err := ops.Connect(ctx(), env.Client, ns, byDefault, v1.RoleObserver, ops.ConnectOptions{})
	must(t, err)
	_, err = ops.Connect(ctx(), env.Client, ns, named, v1.RoleAnalyst, ops.ConnectOptions{Name: "partner"})
	must(t, err)

	for ref, want := range map[string]string{byDefault: ops.ConnectionName(byDefault), named: "partner", "partner": "partner"} {
		conn, err := ops.FindConnection(ctx(), env.Client, ns, ref)
		if err != nil || conn.Name != want {
			t.Errorf("finding %s: %v, %v, want %s", ref, conn, err, want)
		}
	}

	if _, err := ops.FindConnection(ctx(), env.Client, ns, applicationID(t)); !errors.Is(err, ops.ErrNotConnected) {
		t.Errorf("an application that is not connected: %v, want ErrNotConnected", err)
	}
	if _, err := ops.FindConnection(ctx(), env.Client, ns, "nope"); !apierrors.IsNotFound(err) {
		t.Errorf("a name nothing has: %v, want NotFound", err)
	}

	// Connected twice (the webhook that refuses a second connection fails open while the
	// operator is down): the ID does not say which, so a name is asked for.
	_, err = ops.Connect(ctx(), env.Client, ns, named, v1.RoleObserver, ops.ConnectOptions{Name: "partner-again"})
	must(t, err)
	_, err = ops.FindConnection(ctx(), env.Client, ns, named)
	want := "application " + named + " is connected to " + ns + " by 2 OrgConnections (partner, partner-again): name the one meant instead of the ID"
	var several *ops.SeveralConnectionsError
	if !errors.As(err, &several) || err.Error() != want {
		t.Errorf("an application connected twice:\n got %v\nwant %s", err, want)
	}
}

func TestFindConnectionByIDWithoutListFindsTheOneUnderItsDefaultName(t *testing.T) {
	ns := env.Namespace(t, "findget")
	id := applicationID(t)
	_, err := ops.Connect(ctx(), env.Client, ns, id, v1.RoleObserver, ops.ConnectOptions{})
	must(t, err)
	getter := person(t, ns, "gail", clearanceRule("orgconnections", []string{"get"}))

	conn, err := ops.FindConnection(ctx(), getter, ns, id)
	if err != nil || conn.Name != ops.ConnectionName(id) {
		t.Errorf("someone who may only get: %v, %v", conn, err)
	}
	if _, err := ops.FindConnection(ctx(), getter, ns, applicationID(t)); !apierrors.IsForbidden(err) {
		t.Errorf("someone who may only get, for an application not under its default name: %v, want the list's refusal", err)
	}
}

// TestSetRoleActsAsThePersonWhoseClientItIsGiven: the apiserver's role assignment policy
// decides with the client's user, so a technician raises a role up to Technician, is refused
// OrgAdmin in the policy's words, and may always lower one. Only the role changes: the
// MetricSets the connection is limited to stay (none would be all of them).
func TestSetRoleActsAsThePersonWhoseClientItIsGiven(t *testing.T) {
	ns := env.Namespace(t, "setrole")
	id := applicationID(t)
	_, err := ops.Connect(ctx(), env.Client, ns, id, v1.RoleObserver, ops.ConnectOptions{MetricSets: []string{"default"}})
	must(t, err)
	tech := person(t, ns, "theo", clearanceRule("orgconnections", []string{"get", "list", "patch"}),
		clearanceRule("orgroles", []string{"bind"}, string(v1.RoleObserver), string(v1.RoleAnalyst), string(v1.RoleTechnician)))

	conn, err := ops.FindConnection(ctx(), tech, ns, id)
	must(t, err)
	must(t, ops.SetRole(ctx(), tech, conn, v1.RoleTechnician))
	if conn.Spec.Role != v1.RoleTechnician || !slices.Equal(conn.Spec.MetricSets, []string{"default"}) {
		t.Errorf("after raising to Technician the answer holds role %s, MetricSets %v: the role changes and nothing else", conn.Spec.Role, conn.Spec.MetricSets)
	}

	err = ops.SetRole(ctx(), tech, conn, v1.RoleOrgAdmin)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `user "theo" may not assign role OrgAdmin in org "`+ns+`"`) {
		t.Errorf("a technician raising to OrgAdmin: %v, want the role assignment policy's refusal", err)
	}
	var got v1.OrgConnection
	must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(conn), &got))
	if got.Spec.Role != v1.RoleTechnician {
		t.Errorf("after the refusal the role is %s", got.Spec.Role)
	}

	must(t, ops.SetRole(ctx(), tech, conn, v1.RoleObserver))
	if conn.Spec.Role != v1.RoleObserver {
		t.Errorf("after lowering to Observer the answer holds role %s", conn.Spec.Role)
	}
}

func TestDisconnectDeletesOnlyTheConnectionItWasGiven(t *testing.T) {
	ns := env.Namespace(t, "disconnect")
	id := applicationID(t)
	old, err := ops.Connect(ctx(), env.Client, ns, id, v1.RoleObserver, ops.ConnectOptions{})
	must(t, err)
	must(t, env.Client.Delete(ctx(), old.DeepCopy()))
	again := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: old.Name},
		Spec: v1.OrgConnectionSpec{ApplicationID: id, Role: v1.RoleObserver}}
	must(t, env.Client.Create(ctx(), again))

	if err := ops.Disconnect(ctx(), env.Client, old); !apierrors.IsConflict(err) {
		t.Errorf("disconnecting a connection that was replaced meanwhile: %v, want a precondition conflict", err)
	}
	must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(again), &v1.OrgConnection{}))

	must(t, ops.Disconnect(ctx(), env.Client, again))
	if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(again), &v1.OrgConnection{}); !apierrors.IsNotFound(err) {
		t.Errorf("after disconnecting: %v, want NotFound", err)
	}
}

// TestSetTransportsRefusesAndAllowsAsThePersonWhoseClientItIsGiven: a new connection allows
// every transport (the apiserver's defaults); someone who may only patch refuses one and
// leaves the others as they were, but allowing it again widens what the connection grants, so
// it needs bind on the connection's role, as the role assignment policy says.
func TestSetTransportsRefusesAndAllowsAsThePersonWhoseClientItIsGiven(t *testing.T) {
	ns := env.Namespace(t, "transports")
	id := applicationID(t)
	conn, err := ops.Connect(ctx(), env.Client, ns, id, v1.RoleAnalyst, ops.ConnectOptions{})
	must(t, err)
	all := v1.ConnectionTransports{WebSockets: v1.TransportAllowed, ServerSentEvents: v1.TransportAllowed, LongPolling: v1.TransportAllowed}
	if conn.Spec.Transports == nil || *conn.Spec.Transports != all {
		t.Fatalf("a new connection's transports: %+v, want all Allowed", conn.Spec.Transports)
	}
	patcher := person(t, ns, "pat", clearanceRule("orgconnections", []string{"get", "patch"}),
		clearanceRule("orgroles", []string{"bind"}, string(v1.RoleObserver)))

	must(t, ops.SetTransports(ctx(), patcher, conn, map[v1.Transport]v1.TransportPolicy{v1.TransportWebSockets: v1.TransportRefused}))
	want := all
	want.WebSockets = v1.TransportRefused
	var got v1.OrgConnection
	must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(conn), &got))
	if *got.Spec.Transports != want || *conn.Spec.Transports != want {
		t.Errorf("after refusing WebSockets: stored %+v, answer %+v", got.Spec.Transports, conn.Spec.Transports)
	}
	if got.Spec.Role != v1.RoleAnalyst || got.Spec.ApplicationID != id {
		t.Errorf("refusing a transport changed the rest of the spec: %+v", got.Spec)
	}

	err = ops.SetTransports(ctx(), patcher, conn, map[v1.Transport]v1.TransportPolicy{v1.TransportWebSockets: v1.TransportAllowed})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(),
		`user "pat" may not allow a transport that OrgConnection "`+conn.Name+`" refuses, which grants role Analyst in org "`+ns+`"`) {
		t.Errorf("allowing WebSockets again without bind on Analyst: %v, want the role assignment policy's refusal", err)
	}
	// Refusing more is still anyone's who may patch.
	must(t, ops.SetTransports(ctx(), patcher, conn, map[v1.Transport]v1.TransportPolicy{
		v1.TransportServerSentEvents: v1.TransportRefused, v1.TransportLongPolling: v1.TransportRefused}))

	// An org admin allows all three again.
	must(t, ops.SetTransports(ctx(), env.Client, conn, map[v1.Transport]v1.TransportPolicy{
		v1.TransportWebSockets: v1.TransportAllowed, v1.TransportServerSentEvents: v1.TransportAllowed, v1.TransportLongPolling: v1.TransportAllowed}))
	must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(conn), &got))
	if *got.Spec.Transports != all {
		t.Errorf("after allowing all again: %+v", got.Spec.Transports)
	}

	// Neither a transport nor a policy of none is sent: an empty policy would patch nothing and
	// look like success.
	for bad, want := range map[string]map[v1.Transport]v1.TransportPolicy{
		`"Carrier pigeon" is not a transport`:       {"Carrier pigeon": v1.TransportRefused},
		`"Off" is not a transport policy`:           {v1.TransportWebSockets: "Off"},
		`"" is not a transport policy: use Allowed`: {v1.TransportWebSockets: ""},
	} {
		if err := ops.SetTransports(ctx(), env.Client, conn, want); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("SetTransports(%v): %v, want %s", want, err, bad)
		}
	}
}

// TestFindingAnApplicationByIDNeverFindsAnotherApplicationsConnection: for someone who may not
// list the org's connections, the connection under the application's default name is the
// application's only if it connects that application; another one named so is not found.
func TestFindingAnApplicationByIDNeverFindsAnotherApplicationsConnection(t *testing.T) {
	ns := env.Namespace(t, "findother")
	id, other := applicationID(t), applicationID(t)
	_, err := ops.Connect(ctx(), env.Client, ns, other, v1.RoleObserver, ops.ConnectOptions{Name: ops.ConnectionName(id)})
	must(t, err)
	getter := person(t, ns, "gus", clearanceRule("orgconnections", []string{"get"}))

	conn, err := ops.FindConnection(ctx(), getter, ns, id)
	if !apierrors.IsForbidden(err) {
		t.Errorf("finding %s, whose default name connects %s: %v, %v, want the list's refusal", id, other, conn, err)
	}
}

// TestFindingAnApplicationByIDLooksOnlyInTheOrgAsked: an application connected to two orgs is
// found by its ID in each as that org's connection, never the other org's, whoever asks (an
// admin who may list every org's connections too).
func TestFindingAnApplicationByIDLooksOnlyInTheOrgAsked(t *testing.T) {
	org, other := env.Namespace(t, "findhere"), env.Namespace(t, "findthere")
	id := applicationID(t)
	_, err := ops.Connect(ctx(), env.Client, org, id, v1.RoleObserver, ops.ConnectOptions{Name: "here"})
	must(t, err)
	_, err = ops.Connect(ctx(), env.Client, other, id, v1.RoleAnalyst, ops.ConnectOptions{Name: "there"})
	must(t, err)

	for ns, want := range map[string]string{org: "here", other: "there"} {
		conn, err := ops.FindConnection(ctx(), env.Client, ns, id)
		if err != nil || conn.Namespace != ns || conn.Name != want {
			t.Errorf("finding %s in %s: %v, %v; want %s/%s", id, ns, conn, err, ns, want)
		}
	}
}
