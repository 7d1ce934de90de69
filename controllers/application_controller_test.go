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
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
)

// TestCountsWaitUntilTheirBurstEnds: an Application's counts are taken once its keys and
// connections have been quiet for countRefreshDelay, or countRefreshMax after the first change
// under a steady stream, never in the middle of a burst.
func TestCountsWaitUntilTheirBurstEnds(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	app := types.NamespacedName{Namespace: "org", Name: "bi"}
	var c countBursts
	if got := c.due(app, t0); got != 0 {
		t.Errorf("no change recorded: due in %s, want now", got)
	}
	c.add(app, t0)
	c.add(app, t0.Add(2*time.Second))
	if got := c.due(app, t0.Add(3*time.Second)); got != 2*time.Second {
		t.Errorf("3 s after a burst's first change, 1 s after its last: due in %s, want 2s", got)
	}
	if got := c.due(app, t0.Add(5*time.Second)); got != 0 {
		t.Errorf("quiet for 3 s: due in %s, want now", got)
	}
	if len(c.open) != 0 {
		t.Errorf("a counted burst is still remembered: %v", c.open)
	}

	// A change every second: the count still comes countRefreshMax after the first.
	for s := 0; s < 40; s++ {
		now := t0.Add(time.Duration(s) * time.Second)
		c.add(app, now)
		want := countRefreshDelay
		if rest := countRefreshMax - time.Duration(s)*time.Second; rest < want {
			want = max(rest, 0)
		}
		if got := c.due(app, now); got != want {
			t.Fatalf("second %d of a steady stream: due in %s, want %s", s, got, want)
		}
		if want == 0 {
			break
		}
	}

	c.add(app, t0)
	c.forget(app)
	if len(c.open) != 0 {
		t.Errorf("the burst of a deleted Application is still remembered: %v", c.open)
	}
}

// TestApplicationPassInABurstWaitsAndThenCounts: a pass while the Application's burst is open
// writes nothing and asks to come back when it ends; the pass then counts.
func TestApplicationPassInABurstWaitsAndThenCounts(t *testing.T) {
	ns := env.Namespace(t, "burst")
	app := readyApp(t, ns, "bi")
	create(t, newKey(ns, "k1", "bi"))
	r, clock := applicationReconcilerOnAFakeClock(nil)
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(app)}
	ctx := context.Background()
	// The running operator may have counted already: clear the count, so this pass's is seen.
	eventually(t, "the operator's count", func() (bool, error) {
		err := env.Client.Get(ctx, req.NamespacedName, app)
		return app.Status.KeyCount == 1, err
	})
	read := app.DeepCopy()
	app.Status.KeyCount = 0
	if err := r.patchStatus(ctx, read, app); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cleared count in the cache", func() (bool, error) {
		err := env.Client.Get(ctx, req.NamespacedName, app)
		return app.Status.KeyCount == 0, err
	})

	r.bursts.add(req.NamespacedName, clock.Now())
	clock.Step(time.Second)
	res, err := r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter != 2*time.Second {
		t.Errorf("a pass 1 s into a burst: requeue after %s, want 2s", res.RequeueAfter)
	}
	if err := env.Client.Get(ctx, req.NamespacedName, app); err != nil {
		t.Fatal(err)
	}
	if app.Status.KeyCount != 0 {
		t.Errorf("a pass in the middle of a burst wrote the count %d", app.Status.KeyCount)
	}
	clock.Step(2 * time.Second)
	if res, err := r.Reconcile(ctx, req); err != nil || res.RequeueAfter != 0 {
		t.Fatalf("the pass after the burst: %+v, %v", res, err)
	}
	got := &v1.Application{}
	if err := env.Client.Get(ctx, req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.KeyCount != 1 {
		t.Errorf("after the burst the count is %d, want 1", got.Status.KeyCount)
	}
}

// TestAPinnedApplicationIDGoesToOneApplicationWhateverTheOrderOfClaims: of the Applications
// claiming one ID (index.ApplicationClaimedID lists them, in any order), none takes it while
// another holds it, and while none holds it exactly one may take it: the earliest claimant,
// created first, then by namespace and name, the same for every pass and every replica.
func TestAPinnedApplicationIDGoesToOneApplicationWhateverTheOrderOfClaims(t *testing.T) {
	const id, another = "app_0000000000000000000000000a", "app_0000000000000000000000000b"
	rng := rand.New(rand.NewPCG(2026, 6))
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for range 5000 {
		apps := make([]v1.Application, 1+rng.IntN(5))
		holders := 0
		for i := range apps {
			a := &apps[i]
			a.UID = types.UID(fmt.Sprintf("uid-%d", i))
			a.Namespace, a.Name = fmt.Sprintf("org-%d", rng.IntN(3)), fmt.Sprintf("app-%d", i)
			a.CreationTimestamp = metav1.NewTime(t0.Add(time.Duration(rng.IntN(3)) * time.Second))
			switch rng.IntN(5) {
			case 0: // holds the ID, generated once or pinned
				if holders == 0 {
					holders++
					a.Status.ApplicationID = id
					if rng.IntN(2) == 0 {
						a.Spec.ApplicationID = id
					}
					break
				}
				a.Spec.ApplicationID = id
			case 1: // holds another ID, and may pin this one (a restore writes status beside a spec
				// that an edit could not pin so): it never takes this one, so it keeps nobody from it
				a.Status.ApplicationID = another
				if rng.IntN(2) == 0 {
					a.Spec.ApplicationID = id
				}
			default: // pins the ID, not allocated yet (or refused)
				a.Spec.ApplicationID = id
			}
		}
		var claimants []v1.Application
		for i := range apps {
			if slices.Contains(index.ApplicationClaimedIDs(&apps[i]), id) {
				claimants = append(claimants, apps[i])
			}
		}
		var earliest *v1.Application
		var winners []string
		for i := range apps {
			a := &apps[i]
			if a.Status.ApplicationID != "" || a.Spec.ApplicationID != id {
				continue // only an Application pinning the ID and holding none asks for it
			}
			// What the rule says, spelled out: created first, then by namespace and name.
			if earliest == nil || a.CreationTimestamp.Before(&earliest.CreationTimestamp) ||
				a.CreationTimestamp.Equal(&earliest.CreationTimestamp) && a.Namespace+"/"+a.Name < earliest.Namespace+"/"+earliest.Name {
				earliest = a
			}
			rng.Shuffle(len(claimants), func(i, j int) { claimants[i], claimants[j] = claimants[j], claimants[i] })
			if firstClaimant(a, id, claimants) == nil {
				winners = append(winners, a.Namespace+"/"+a.Name)
			}
		}
		var want []string
		if holders == 0 && earliest != nil {
			want = []string{earliest.Namespace + "/" + earliest.Name}
		}
		if !slices.Equal(winners, want) {
			var b strings.Builder
			for _, a := range apps {
				fmt.Fprintf(&b, "\n  %s/%s created %s pins %q holds %q", a.Namespace, a.Name, a.CreationTimestamp.Format(time.TimeOnly), a.Spec.ApplicationID, a.Status.ApplicationID)
			}
			t.Fatalf("would take ID %s: %v, want %v, of:%s", id, winners, want, b.String())
		}
	}
}

// TestConnectedOrgsAreTheOrgsWhoseConnectionIsInForceForThisVeryApplicationEachOnce: an
// Application lists an org as connected only when a connection there is Ready and resolved to
// this Application, not to another one holding the same ID elsewhere (a restored status) nor to
// another one of its org, and lists the org once however many connections there say so (two
// can both be Ready for a moment, until the controller picks the one in force).
func TestConnectedOrgsAreTheOrgsWhoseConnectionIsInForceForThisVeryApplicationEachOnce(t *testing.T) {
	ctx := context.Background()
	owner := env.Namespace(t, "connected-owner")
	app := readyApp(t, owner, "bi")
	id := app.Status.ApplicationID
	inForce, elsewhere, otherApp, notReady := env.Namespace(t, "connected-in-force"), env.Namespace(t, "connected-elsewhere"),
		env.Namespace(t, "connected-other-app"), env.Namespace(t, "connected-not-ready")
	first, second := connection(inForce, "bi", id), connection(inForce, "bi-again", id)
	create(t, first)
	getConn(t, first, "Connected", readyReason(v1.ReasonConnected))
	create(t, second)
	getConn(t, second, "Conflict", readyReason(v1.ReasonConflict))

	// What each connection's status says once settled, written over what the controller wrote.
	type said struct {
		conn                *v1.OrgConnection
		ready               bool
		namespace, resolved string
	}
	says := []said{
		{second, true, owner, "bi"},
		{connection(elsewhere, "bi", id), true, "another-org", "bi"},
		{connection(otherApp, "bi", id), true, owner, "another-app"},
		{connection(notReady, "bi", id), false, owner, "bi"},
	}
	for _, s := range says[1:] {
		create(t, s.conn)
		getConn(t, s.conn, "Connected", readyReason(v1.ReasonConnected))
	}
	for _, s := range says {
		got := getConn(t, s.conn, "settled", func(c *v1.OrgConnection) bool { return c.Status.ObservedGeneration == c.Generation })
		read := got.DeepCopy()
		status, reason := metav1.ConditionFalse, v1.ReasonConflict
		if s.ready {
			status, reason = metav1.ConditionTrue, v1.ReasonConnected
		}
		meta.SetStatusCondition(&got.Status.Conditions, metav1.Condition{Type: v1.ConditionReady, Status: status, Reason: reason,
			Message: "set by the test", ObservedGeneration: got.Generation})
		got.Status.ApplicationNamespace, got.Status.ApplicationName = s.namespace, s.resolved
		if err := env.Client.Status().Patch(ctx, got, client.MergeFrom(read)); err != nil {
			t.Fatal(err)
		}
		waitCached(t, "the cache to hold the status written", got)
	}

	r, _ := applicationReconcilerOnAFakeClock(events.NewFakeRecorder(10))
	eventually(t, "a pass not beaten to its write by the running operator", func() (bool, error) {
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(app)})
		return err == nil, err
	})
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
		t.Fatal(err)
	}
	if want := []string{inForce}; !slices.Equal(app.Status.ConnectedOrgs, want) {
		t.Errorf("connected orgs %v, want %v", app.Status.ConnectedOrgs, want)
	}
}

// TestAnApplicationWithoutAnIDGetsItAtOnceEvenInABurstAndOneEventSaysSo: an Application whose
// status holds no ID at the generation it saw (one refused its pin until the holder went, or a
// status restored without the ID; the pin gives the same ID back) is given it by the first pass,
// even while a burst of its keys holds back the counts, with one ApplicationID event; later
// passes, the counts once the burst ends included, send no other.
func TestAnApplicationWithoutAnIDGetsItAtOnceEvenInABurstAndOneEventSaysSo(t *testing.T) {
	ctx := context.Background()
	const id = "app_testpinned000000000000000f"
	ns := env.Namespace(t, "id-event")
	app := newApp(ns, "bi", id)
	create(t, app)
	eventually(t, "the Application ID", func() (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app)
		return app.Status.ApplicationID == id, err
	})
	read := app.DeepCopy()
	app.Status.ApplicationID = ""
	if err := env.Client.Status().Patch(ctx, app, client.MergeFrom(read)); err != nil {
		t.Fatal(err)
	}
	waitCached(t, "the cache to hold the status without an ID", app)

	recorder := events.NewFakeRecorder(10)
	r, clock := applicationReconcilerOnAFakeClock(recorder)
	res := passInABurst(t, r, clock, app)
	if app.Status.ApplicationID != id || res.RequeueAfter != 0 {
		t.Errorf("the pass in a burst: ID %q, requeue after %s; want %s at once", app.Status.ApplicationID, res.RequeueAfter, id)
	}
	clock.Step(countRefreshDelay)
	for range 2 {
		eventually(t, "a pass that is not behind the cache", func() (bool, error) {
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(app)})
			return err == nil, err
		})
	}
	close(recorder.Events)
	var sent []string
	for e := range recorder.Events {
		sent = append(sent, e)
	}
	if len(sent) != 1 || !strings.Contains(sent[0], v1.ReasonApplicationID) || !strings.Contains(sent[0], id) {
		t.Errorf("events %q, want one %s event naming %s", sent, v1.ReasonApplicationID, id)
	}
}

// TestAConnectionComingOrGoingOpensItsApplicationsBurst: the watch of connections (and keys)
// does not ask for a count at once: it records the change in the burst of the Application that
// holds the connection's ID and asks for a pass after countRefreshDelay, and a pass before the
// burst ends waits, so a burst of changes becomes one count.
func TestAConnectionComingOrGoingOpensItsApplicationsBurst(t *testing.T) {
	ctx := context.Background()
	app := readyApp(t, env.Namespace(t, "burst-opened"), "bi")
	r, clock := applicationReconcilerOnAFakeClock(events.NewFakeRecorder(10))
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	h := r.countLater(r.applicationsOfConnection)
	conn := connection(env.Namespace(t, "burst-opener"), "bi", app.Status.ApplicationID)
	h.Create(ctx, event.CreateEvent{Object: conn}, q)
	clock.Step(time.Second)
	h.Delete(ctx, event.DeleteEvent{Object: conn}, q)
	if n := q.Len(); n != 0 {
		t.Errorf("%d passes asked for at once, want none before countRefreshDelay", n)
	}
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(app)})
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter != countRefreshDelay {
		t.Errorf("a pass just after the burst's last change: requeue after %s, want %s", res.RequeueAfter, countRefreshDelay)
	}
}

// TestAnApplicationsNewGenerationIsObservedAtOnceEvenInABurst: a pass over an Application whose
// status has not seen its generation yet (an edit, here the status rolled back, so that the
// running operator is not the one to see it) writes observedGeneration at once, even while a
// burst of its keys holds back the counts: a health check waiting for it is not kept waiting.
func TestAnApplicationsNewGenerationIsObservedAtOnceEvenInABurst(t *testing.T) {
	ctx := context.Background()
	app := readyApp(t, env.Namespace(t, "burst-generation"), "bi")
	read := app.DeepCopy()
	app.Status.ObservedGeneration = app.Generation - 1
	if err := env.Client.Status().Patch(ctx, app, client.MergeFrom(read)); err != nil {
		t.Fatal(err)
	}
	waitCached(t, "the cache to hold the status written", app)
	r, clock := applicationReconcilerOnAFakeClock(events.NewFakeRecorder(10))
	res := passInABurst(t, r, clock, app)
	if app.Status.ObservedGeneration != app.Generation || res.RequeueAfter != 0 {
		t.Errorf("the pass in a burst: observedGeneration %d of generation %d, requeue after %s; want it observed at once",
			app.Status.ObservedGeneration, app.Generation, res.RequeueAfter)
	}
}

// applicationReconcilerOnAFakeClock is an ApplicationReconciler on the shared cache whose
// clock and burst clock are one fake clock, sending its events to recorder (nil: none).
func applicationReconcilerOnAFakeClock(recorder events.EventRecorder) (*ApplicationReconciler, *clocktesting.FakeClock) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	return &ApplicationReconciler{reconcilerBase: reconcilerBase{client: direct.client, apiReader: direct.apiReader, clock: clock},
		events: recorder, burstClock: clock}, clock
}

// passInABurst runs one pass of r over app while a burst of its keys is open (on clock, r's)
// and reads app back from the apiserver.
func passInABurst(t *testing.T, r *ApplicationReconciler, clock *clocktesting.FakeClock, app *v1.Application) ctrl.Result {
	t.Helper()
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(app)}
	r.bursts.add(req.NamespacedName, clock.Now())
	res, err := r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(context.Background(), req.NamespacedName, app); err != nil {
		t.Fatal(err)
	}
	return res
}

// waitCached waits until the shared cache holds o at the version o has.
func waitCached(t *testing.T, what string, o client.Object) {
	t.Helper()
	eventually(t, what, func() (bool, error) {
		cached := o.DeepCopyObject().(client.Object)
		err := direct.client.Get(context.Background(), client.ObjectKeyFromObject(o), cached)
		return err == nil && cached.GetResourceVersion() == o.GetResourceVersion(), err
	})
}
