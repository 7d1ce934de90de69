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
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

const pinnedID = "app_testpinned000000000000000a"

func getConn(t *testing.T, c *v1.OrgConnection, what string, cond func(*v1.OrgConnection) bool) *v1.OrgConnection {
	t.Helper()
	got := &v1.OrgConnection{}
	eventually(t, what, func() (bool, error) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c), got)
		return err == nil && cond(got), err
	})
	return got
}

func readyReason(reason string) func(*v1.OrgConnection) bool {
	return func(c *v1.OrgConnection) bool {
		cond := meta.FindStatusCondition(c.Status.Conditions, v1.ConditionReady)
		return cond != nil && cond.Reason == reason && cond.ObservedGeneration == c.Generation
	}
}

func connection(ns, name, id string) *v1.OrgConnection {
	c := connectionSpec(id)
	c.Namespace, c.Name = ns, name
	return c
}

func connectionSpec(id string) *v1.OrgConnection {
	return &v1.OrgConnection{Spec: v1.OrgConnectionSpec{ApplicationID: id, Role: v1.RoleObserver}}
}

func TestApplicationIDIsAllocatedOnceAndCountsKeysAndConnectedOrgs(t *testing.T) {
	owner, granter := env.Namespace(t, "owner"), env.Namespace(t, "granter")
	app := readyApp(t, owner, "bi")
	id := app.Status.ApplicationID
	if !strings.HasPrefix(id, "app_") || len(id) != 30 {
		t.Fatalf("generated ID %q is not app_ and 26 characters", id)
	}
	create(t, newKey(owner, "k1", "bi"))
	create(t, newKey(owner, "k2", "bi"))
	create(t, connection(granter, "bi", id))
	eventually(t, "two keys and one connected org", func() (bool, error) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(app), app)
		return app.Status.KeyCount == 2 && slices.Equal(app.Status.ConnectedOrgs, []string{granter}), err
	})

	app.Spec.Description = "renamed"
	if err := env.Client.Update(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	conn := getConn(t, connection(granter, "bi", id), "the new description", func(c *v1.OrgConnection) bool {
		return c.Status.Description == "renamed"
	})
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(app), app); err != nil || app.Status.ApplicationID != id {
		t.Errorf("the ID changed after an edit: %s", app.Status.ApplicationID)
	}
	if conn.Status.CreatedBy != owner {
		t.Errorf("created by %q, want the owning org %q", conn.Status.CreatedBy, owner)
	}
}

// TestAnApplicationsCountsFollowItsKeysAndConnectionsAsTheyComeAndGo: keyCount goes down as keys
// are deleted, not only up as they are made; connectedOrgs lists an org once its connection is in
// force, also when it was applied before the Application and when the Application is applied
// again, and drops it when the connection is deleted.
func TestAnApplicationsCountsFollowItsKeysAndConnectionsAsTheyComeAndGo(t *testing.T) {
	ctx := context.Background()
	owner, granter := env.Namespace(t, "counts-owner"), env.Namespace(t, "counts-granter")
	id := "app_testpinned000000000000000e"
	counted := func(app *v1.Application, what string, keys int32, orgs ...string) {
		t.Helper()
		eventually(t, what, func() (bool, error) {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app)
			return err == nil && app.Status.KeyCount == keys && slices.Equal(app.Status.ConnectedOrgs, orgs), err
		})
	}

	conn := connection(granter, "bi", id) // GitOps applies the grant first
	create(t, conn)
	getConn(t, conn, "ApplicationNotFound", readyReason(v1.ReasonApplicationNotFound))
	app := newApp(owner, "bi", id)
	create(t, app)
	counted(app, "the org whose connection resolved to the new Application", 0, granter)

	k1, k2 := newKey(owner, "k1", "bi"), newKey(owner, "k2", "bi")
	create(t, k1)
	create(t, k2)
	counted(app, "two keys", 2, granter)
	for i, k := range []*v1.APIKey{k1, k2} {
		if err := env.Client.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		counted(app, fmt.Sprintf("%d keys after a delete", 1-i), int32(1-i), granter)
	}

	// Applied again (deleted, then the same manifest): the connection, pinned to this org, comes
	// back in force only after the new Application holds the ID, so after its first count.
	if err := env.Client.Delete(ctx, app); err != nil {
		t.Fatal(err)
	}
	getConn(t, conn, "the loss", readyReason(v1.ReasonApplicationNotFound))
	again := newApp(owner, "bi", id)
	create(t, again)
	counted(again, "the org connected again to the Application applied again", 0, granter)

	if err := env.Client.Delete(ctx, conn); err != nil {
		t.Fatal(err)
	}
	counted(again, "no connected org once the connection is deleted", 0)
}

// TestConnectionAppliedBeforeItsApplicationResolvesWhenItAppears: a connection to an ID no
// Application holds yet waits (ApplicationNotFound) and resolves by itself when the Application
// appears; a later edit of its role is shown at the new generation.
func TestConnectionAppliedBeforeItsApplicationResolvesWhenItAppears(t *testing.T) {
	owner, granter := env.Namespace(t, "gitops-owner"), env.Namespace(t, "gitops-granter")
	conn := connection(granter, "early", pinnedID)
	create(t, conn)
	waiting := getConn(t, conn, "ApplicationNotFound", readyReason(v1.ReasonApplicationNotFound))
	if msg := conditionMessage(waiting.Status.Conditions); !strings.Contains(msg, "resolves by itself when it appears") {
		t.Errorf("message: %s", msg)
	}
	create(t, newApp(owner, "bi", pinnedID))
	resolved := getConn(t, conn, "Connected", readyReason(v1.ReasonConnected))
	st := resolved.Status
	if st.ApplicationNamespace != owner || st.CreatedBy != owner || st.Description != "integration bi" || st.ApplicationName != "bi" {
		t.Errorf("status: %+v", st)
	}
	waitEvent(t, conn, v1.ReasonConnected)

	// An edit of the role: the status is computed again, at the new generation, and says so.
	resolved.Spec.Role = v1.RoleAnalyst
	if err := env.Client.Update(context.Background(), resolved); err != nil {
		t.Fatal(err)
	}
	getConn(t, conn, "the new role in the status of the new generation", func(c *v1.OrgConnection) bool {
		return c.Generation == resolved.Generation && c.Status.ObservedGeneration == c.Generation && readyReason(v1.ReasonConnected)(c) &&
			strings.Contains(conditionMessage(c.Status.Conditions), "has role Analyst in this org")
	})
}

func TestConnectionStaysWithTheOrgItFirstResolvedTo(t *testing.T) {
	first, second, granter := env.Namespace(t, "first"), env.Namespace(t, "second"), env.Namespace(t, "pin-granter")
	id := "app_testpinned000000000000000b"
	app := newApp(first, "bi", id)
	create(t, app)
	conn := connection(granter, "bi", id)
	create(t, conn)
	getConn(t, conn, "Connected", readyReason(v1.ReasonConnected))

	// The owner deletes its Application; another org then claims the same ID.
	if err := env.Client.Delete(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	getConn(t, conn, "the loss", readyReason(v1.ReasonApplicationNotFound))
	waitEvent(t, conn, v1.ReasonApplicationNotFound)
	create(t, newApp(second, "impostor", id))
	got := getConn(t, conn, "Conflict", readyReason(v1.ReasonConflict))
	if got.Status.ApplicationNamespace != first {
		t.Errorf("the connection moved to %s", got.Status.ApplicationNamespace)
	}
	want := fmt.Sprintf("Application ID %s is now held by Application %s/impostor, but this connection was made to the application of org %s", id, second, first)
	if msg := conditionMessage(got.Status.Conditions); !strings.HasPrefix(msg, want) {
		t.Errorf("message:\n got: %s\nwant: %s…", msg, want)
	}
}

func TestTwoOrgsPinningTheSameIDTheLaterOneIsAConflict(t *testing.T) {
	first, second := env.Namespace(t, "collide-a"), env.Namespace(t, "collide-b")
	id := "app_testpinned000000000000000c"
	create(t, newApp(first, "bi", id))
	eventually(t, "the first holder", func() (bool, error) {
		var a v1.Application
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: first, Name: "bi"}, &a)
		return a.Status.ApplicationID == id, err
	})
	late := newApp(second, "bi", id)
	create(t, late)
	eventually(t, "the Conflict", func() (bool, error) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(late), late)
		return conditionReason(late.Status.Conditions) == v1.ReasonConflict, err
	})
	if late.Status.ApplicationID != "" {
		t.Errorf("the later Application got the ID %s", late.Status.ApplicationID)
	}
	if msg := conditionMessage(late.Status.Conditions); !strings.Contains(msg, "already belongs to Application "+first+"/bi") {
		t.Errorf("message: %s", msg)
	}
}

// TestAnApplicationRefusedAPinnedIDTakesItOnceItsHolderIsDeleted: an Application pinning an ID
// another Application holds (the webhook fails open, so one can get through while it is down) is
// a Conflict whose message says to delete the other Application; once that one is deleted it
// takes the ID by itself, with no edit of its own and no key or connection to prompt it.
func TestAnApplicationRefusedAPinnedIDTakesItOnceItsHolderIsDeleted(t *testing.T) {
	ctx := context.Background()
	first, second := env.Namespace(t, "holder-gone-a"), env.Namespace(t, "holder-gone-b")
	id := "app_testpinned000000000000000d"
	holder := newApp(first, "bi", id)
	create(t, holder)
	eventually(t, "the first holder", func() (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(holder), holder)
		return holder.Status.ApplicationID == id, err
	})
	late := newApp(second, "bi", id)
	create(t, late)
	eventually(t, "the Conflict", func() (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(late), late)
		return conditionReason(late.Status.Conditions) == v1.ReasonConflict, err
	})
	if ready(late.Status.Conditions) || late.Status.ApplicationID != "" {
		t.Errorf("an Application refused its pinned ID: Ready %t, ID %q; want not Ready and no ID", ready(late.Status.Conditions), late.Status.ApplicationID)
	}
	if msg := conditionMessage(late.Status.Conditions); !strings.Contains(msg, "delete the other Application") {
		t.Fatalf("message: %s", msg)
	}

	if err := env.Client.Delete(ctx, holder); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the refused Application to take its pinned ID once the holder is deleted", func() (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(late), late)
		return late.Status.ApplicationID == id && ready(late.Status.Conditions), err
	})
}

// The webhook refuses a second connection of the same application in one org, but it reads a
// cache, so one created moments after the first can get through (this suite runs no webhook).
// The controller then keeps one in force and marks the other Conflict: it grants nothing.
func TestASecondConnectionOfTheSameApplicationGrantsNothing(t *testing.T) {
	owner, granter := env.Namespace(t, "dup-owner"), env.Namespace(t, "dup-granter")
	id := readyApp(t, owner, "bi").Status.ApplicationID

	// The one already Ready stays in force, whatever the names.
	first := connection(granter, "zz-first", id)
	create(t, first)
	getConn(t, first, "Connected", readyReason(v1.ReasonConnected))
	second := connection(granter, "aa-second", id)
	second.Spec.Role = v1.RoleOrgAdmin
	create(t, second)
	got := getConn(t, second, "Conflict", readyReason(v1.ReasonConflict))
	want := `OrgConnection "zz-first" already connects application ` + id + ` in this org, so this one grants nothing: delete this one and edit the role on "zz-first"`
	if msg := conditionMessage(got.Status.Conditions); msg != want {
		t.Errorf("\n got: %s\nwant: %s", msg, want)
	}
	if c := getConn(t, first, "still Connected", readyReason(v1.ReasonConnected)); c.Status.ApplicationNamespace != owner {
		t.Errorf("first connection's status: %+v", c.Status)
	}

	// Deleting the one in force hands the grant to the other.
	if err := env.Client.Delete(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	getConn(t, second, "Connected once the first is gone", readyReason(v1.ReasonConnected))

	// Two created back to back: exactly one is in force.
	a, b := connection(granter, "race-a", id), connection(granter, "race-b", id)
	other := connection(owner, "race", id) // another org's connection is no sibling
	create(t, other)
	create(t, a)
	create(t, b)
	getConn(t, other, "Connected", readyReason(v1.ReasonConnected))
	for _, c := range []*v1.OrgConnection{a, b} {
		getConn(t, c, "Conflict", readyReason(v1.ReasonConflict))
	}
	if err := env.Client.Delete(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "exactly one of two back-to-back connections Connected, the other Conflict", func() (bool, error) {
		connected, conflict := 0, 0
		for _, c := range []*v1.OrgConnection{a, b} {
			got := &v1.OrgConnection{}
			if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c), got); err != nil {
				return false, err
			}
			if readyReason(v1.ReasonConnected)(got) {
				connected++
			}
			if readyReason(v1.ReasonConflict)(got) {
				conflict++
			}
		}
		return connected == 1 && conflict == 1, nil
	})
}

// TestPassesOverASettledConnectionSendNoEvent: Connect and Disconnect events mark transitions
// only; a pass over a connection that stays unresolved or stays Connected sends none.
func TestPassesOverASettledConnectionSendNoEvent(t *testing.T) {
	ctx := context.Background()
	owner, granter := env.Namespace(t, "settled-owner"), env.Namespace(t, "settled-granter")
	const id = "app_testpinned000000000000000g"
	conn := connection(granter, "bi", id)
	create(t, conn)
	recorder := events.NewFakeRecorder(10)
	r := &OrgConnectionReconciler{reconcilerBase: direct.reconcilerBase, events: recorder}
	passes := func(settled func(*v1.OrgConnection) bool) {
		t.Helper()
		getConn(t, conn, "settled", settled)
		for range 2 {
			eventually(t, "a pass that is not behind the cache", func() (bool, error) {
				_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(conn)})
				return err == nil, err
			})
		}
		select {
		case e := <-recorder.Events:
			t.Errorf("a pass over a settled connection sent %q", e)
		default:
		}
	}
	passes(readyReason(v1.ReasonApplicationNotFound))
	create(t, newApp(owner, "bi", id))
	passes(readyReason(v1.ReasonConnected))
}
