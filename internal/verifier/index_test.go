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

package verifier

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// indexModel is what the index must answer, computed from scratch from the objects an informer
// holds now: the last version of each namespace/name it delivered and did not delete.
type indexModel struct {
	apps  map[nsName]*v1.Application
	conns map[nsName]*v1.OrgConnection
	sets  map[nsName]*v1.MetricSet
}

// connection is the connection that grants appID of appNamespace a role in org: Ready, not
// being deleted, resolved to appNamespace; the lowest role of several.
func (m *indexModel) connection(org, appID, appNamespace string) (v1.Role, bool) {
	var best *v1.OrgConnection
	for k, c := range m.conns {
		if k.namespace != org || c.Spec.ApplicationID != appID || c.Status.ApplicationNamespace != appNamespace ||
			c.DeletionTimestamp != nil || !metaReady(c) {
			continue
		}
		if best == nil || c.Spec.Role.Rank() < best.Spec.Role.Rank() {
			best = c
		}
	}
	if best == nil {
		return "", false
	}
	return best.Spec.Role, true
}

// metricEnabled: enabled in a MetricSet of the org that is not being deleted, and, for a
// connection limited to sets, in one of those.
func (m *indexModel) metricEnabled(org string, sets []string, metric string) bool {
	for k, ms := range m.sets {
		if k.namespace != org || ms.DeletionTimestamp != nil || (len(sets) > 0 && !slices.Contains(sets, k.name)) {
			continue
		}
		for _, x := range ms.Spec.Metrics {
			if x.Name == metric && x.IsEnabled() {
				return true
			}
		}
	}
	return false
}

func (m *indexModel) originKnown(o string) bool {
	for _, a := range m.apps {
		if slices.Contains(a.Spec.AllowedOrigins, o) {
			return true
		}
	}
	return false
}

func metaReady(c *v1.OrgConnection) bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == v1.ConditionReady {
			return cond.Status == metav1.ConditionTrue
		}
	}
	return false
}

// TestTheIndexAnswersAsTheObjectsTheInformersHoldWhateverTheOrderOfEvents: thousands of
// generated events (applications, connections and metric sets made, changed, made again under
// the same name with another UID, deleted, and deletes that arrive for an object already
// replaced) leave the index answering exactly what the objects held now say: which connection
// grants which role (Ready, not being deleted, resolved to the key's org, the lowest of
// several), which metric is enabled for a connection's sets, whether an Application is switched
// off or being deleted, which origins some Application allows. So no event order leaves a role,
// a metric or an Application in force that the objects no longer give.
func TestTheIndexAnswersAsTheObjectsTheInformersHoldWhateverTheOrderOfEvents(t *testing.T) {
	var (
		orgs       = []string{"globex", "initech"}
		appNSs     = []string{"acme", "evil"}
		appIDs     = []string{appID, otherAppID}
		connNames  = []string{"c1", "c2", "c3"}
		setNames   = []string{"default", "premium", "extra"}
		metricsAll = []string{"m1", "m2", "m3", "m4"}
		appNames   = []string{"a1", "a2"}
		origins    = []string{"https://a.example", "https://b.example", "https://c.example"}
	)
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 2026))
		format, err := keyformat.New(keyformat.DefaultPrefix)
		if err != nil {
			t.Fatal(err)
		}
		v, err := New(Options{Clock: clocktesting.NewFakeClock(epoch), Format: format, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		ix := v.index
		// inform delivers an object as the informer does: an update of the one its store holds
		// under the name (whatever its UID), else an add.
		inform := func(old, cur metav1.Object) {
			if old == nil {
				v.Apply(cur)
			} else {
				v.Update(old, cur)
			}
		}
		m := &indexModel{apps: map[nsName]*v1.Application{}, conns: map[nsName]*v1.OrgConnection{}, sets: map[nsName]*v1.MetricSet{}}
		uids := 0
		newUID := func() types.UID { uids++; return types.UID(fmt.Sprintf("uid-%d", uids)) }
		// keepOrNewUID: the same object changed, or (a third of the time) one deleted and made
		// again under the name while the informer relisted: an update with another UID.
		keepOrNewUID := func(old metav1.Object) types.UID {
			if old != nil && rng.IntN(3) > 0 {
				return old.GetUID()
			}
			return newUID()
		}
		pick := func(list []string) string { return list[rng.IntN(len(list))] }
		some := func(list []string) []string {
			var out []string
			for _, s := range list {
				if rng.IntN(2) == 0 {
					out = append(out, s)
				}
			}
			return out
		}
		deleting := func() *metav1.Time {
			if rng.IntN(5) == 0 {
				return &metav1.Time{}
			}
			return nil
		}
		var removedOnce []any // objects deleted or replaced, whose delete may arrive (again) late
		for step := range 400 {
			switch op := rng.IntN(9); op {
			case 0, 1: // apply a connection
				k := nsName{pick(orgs), pick(connNames)}
				old := m.conns[k]
				var oldMeta metav1.Object
				if old != nil {
					oldMeta = old
				}
				c := connection(k.namespace, k.name, pick(appIDs), v1.Roles[rng.IntN(len(v1.Roles))], pick(appNSs), rng.IntN(4) > 0)
				c.UID = keepOrNewUID(oldMeta)
				c.DeletionTimestamp = deleting()
				c.Spec.MetricSets = some(setNames)
				if old != nil && old.UID == c.UID {
					c.Spec.ApplicationID = old.Spec.ApplicationID // immutable (CEL)
				}
				if old != nil && old.UID != c.UID {
					removedOnce = append(removedOnce, old)
				}
				inform(oldMeta, c)
				m.conns[k] = c
			case 2: // delete a connection
				k := nsName{pick(orgs), pick(connNames)}
				if c := m.conns[k]; c != nil {
					v.Remove(c)
					delete(m.conns, k)
					removedOnce = append(removedOnce, c)
				}
			case 3, 4: // apply a metric set
				k := nsName{pick(orgs), pick(setNames)}
				old := m.sets[k]
				var oldMeta metav1.Object
				if old != nil {
					oldMeta = old
				}
				on := map[string]bool{}
				for _, x := range some(metricsAll) {
					on[x] = rng.IntN(3) > 0
				}
				ms := metricSet(k.namespace, k.name, on)
				ms.UID = keepOrNewUID(oldMeta)
				ms.DeletionTimestamp = deleting()
				if old != nil && old.UID != ms.UID {
					removedOnce = append(removedOnce, old)
				}
				inform(oldMeta, ms)
				m.sets[k] = ms
			case 5: // delete a metric set
				k := nsName{pick(orgs), pick(setNames)}
				if ms := m.sets[k]; ms != nil {
					v.Remove(ms)
					delete(m.sets, k)
					removedOnce = append(removedOnce, ms)
				}
			case 6: // apply an application
				k := nsName{pick(appNSs), pick(appNames)}
				old := m.apps[k]
				var oldMeta metav1.Object
				if old != nil {
					oldMeta = old
				}
				a := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: k.namespace, Name: k.name, UID: keepOrNewUID(oldMeta),
					DeletionTimestamp: deleting()},
					Spec:   v1.ApplicationSpec{AllowedOrigins: some(origins), Enabled: ptrTo(rng.IntN(4) > 0)},
					Status: v1.ApplicationStatus{ApplicationID: pick(appIDs)}}
				if old != nil && old.UID != a.UID {
					removedOnce = append(removedOnce, old)
				}
				inform(oldMeta, a)
				m.apps[k] = a
			case 7: // delete an application
				k := nsName{pick(appNSs), pick(appNames)}
				if a := m.apps[k]; a != nil {
					v.Remove(a)
					delete(m.apps, k)
					removedOnce = append(removedOnce, a)
				}
			case 8: // a delete arrives again, late, for an object that is gone or was replaced
				if len(removedOnce) == 0 {
					continue
				}
				v.Remove(removedOnce[rng.IntN(len(removedOnce))])
			}
			where := fmt.Sprintf("seed %d, step %d", seed, step)
			for _, org := range orgs {
				for _, id := range appIDs {
					for _, ns := range appNSs {
						want, ok := m.connection(org, id, ns)
						got := ix.connection(org, id, ns)
						if ok != (got != nil) || (got != nil && got.role != want) {
							t.Fatalf("%s: connection(%s, %s, %s) = %v, want role %q (in force: %v)", where, org, id, ns, got, want, ok)
						}
					}
				}
				for _, sets := range [][]string{nil, {"default"}, {"premium"}, {"default", "extra"}, {"gone"}} {
					for _, metric := range metricsAll {
						if got, want := ix.metricEnabled(org, sets, metric), m.metricEnabled(org, sets, metric); got != want {
							t.Fatalf("%s: metric %s for org %s limited to %v: enabled %v, want %v", where, metric, org, sets, got, want)
						}
					}
				}
			}
			for _, ns := range appNSs {
				for _, name := range appNames {
					got, want := ix.application(ns, name), m.apps[nsName{ns, name}]
					if (got == nil) != (want == nil) ||
						(got != nil && (got.uid != want.UID || got.enabled != want.IsEnabled() || got.deleting != (want.DeletionTimestamp != nil) || got.id != want.Status.ApplicationID)) {
						t.Fatalf("%s: application %s/%s = %+v, want %+v", where, ns, name, got, want)
					}
				}
			}
			for _, o := range origins {
				if got, want := ix.originKnown(o), m.originKnown(o); got != want {
					t.Fatalf("%s: origin %s known %v, want %v", where, o, got, want)
				}
			}
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestAnObjectDeletedAndMadeAgainWhileTheInformerRelistedLeavesNothingOfItselfInForce: an
// informer whose watch could not resume (too old a resource version after an apiserver restart
// or a long cut) lists again and hands over an object deleted and made again under the same name
// as an update of the old one, with another UID. The old APIKey's key and the old OrgConnection's
// grant go with it, as they would on a delete: a revoked key or a disconnected grant never stays
// in force because the verifier missed the delete.
func TestAnObjectDeletedAndMadeAgainWhileTheInformerRelistedLeavesNothingOfItselfInForce(t *testing.T) {
	w := newWorld(t)
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")

	// The APIKey deleted (its key revoked) and applied again: a new key under the same name.
	fresh := w.mint()
	again := w.key.DeepCopy()
	again.UID = "uid-key-again"
	again.Status.KeyID, again.Status.Hash, again.Status.Masked = fresh.KeyID, keyformat.Hash(fresh.Token), keyformat.Mask(fresh.Token)
	w.v.Update(w.key, again)
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyUnknown)
	expect(t, w.authorize(fresh.Token, ""), http.StatusOK, "")

	// Restored with the same key (adopt-key-id): the one key works, once.
	restored := w.key.DeepCopy()
	restored.UID = "uid-key-restored"
	w.v.Update(again, restored)
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	expect(t, w.authorize(fresh.Token, ""), http.StatusUnauthorized, ReasonKeyUnknown)

	// The connection deleted (disconnected) and made again for another application.
	other := connection(grantOrg, w.conn.Name, otherAppID, v1.RoleAnalyst, ownerOrg, true)
	other.UID = "uid-conn-again"
	w.v.Update(w.conn, other)
	expect(t, w.authorize(w.token.Token, ""), http.StatusForbidden, ReasonOrgNotConnected)
}
