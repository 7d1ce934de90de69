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
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

func TestDecisionsLatencyIndexSizeAndStalenessAreExported(t *testing.T) {
	w := newWorld(t)
	w.authorize(w.token.Token, "")
	w.authorize(w.token.Token, "")
	w.authorize("", "")
	w.authorize(w.token.Token, "minRole=OrgAdmin")
	w.step(42 * time.Second)
	w.clk.Step(3 * time.Second) // no contact for 3s

	got := gather(t, w.reg)
	for series, want := range map[string]float64{
		`clearance_verifier_decisions_total{reason="ok",result="allowed"}`:               2,
		`clearance_verifier_decisions_total{reason="key_missing",result="denied"}`:       1,
		`clearance_verifier_decisions_total{reason="role_insufficient",result="denied"}`: 1,
		`clearance_verifier_decisions_total{reason="stale",result="error"}`:              0,
		`clearance_verifier_index_entries{kind="keys"}`:                                  1,
		`clearance_verifier_index_entries{kind="applications"}`:                          1,
		`clearance_verifier_index_entries{kind="connections"}`:                           1,
		`clearance_verifier_index_entries{kind="metricsets"}`:                            1,
		`clearance_verifier_staleness_seconds`:                                           3,
		`clearance_verifier_request_duration_seconds_count{endpoint="authorize"}`:        4,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
}

// gather reads every series of a registry as name{label="value",...} → value.
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[name] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[strings.Replace(name, "{", "_count{", 1)] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func TestUsageIsCountedInMemoryAndFlushedAsOnePatchPerKey(t *testing.T) {
	w := newWorld(t)
	c := w.realAPI(0)
	patches := &c.patches
	for range 25 {
		expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	}
	expect(t, w.authorize(w.token.Token, "minRole=OrgAdmin"), http.StatusForbidden, ReasonRoleInsufficient) // not counted
	if patches.Load() != 0 {
		t.Fatal("usage must not be written per request")
	}
	w.setTime(epoch.Add(90 * time.Second))
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	if err := w.v.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := w.readKey(c)
	if got.Status.UsageCount != 26 || got.Status.LastUsedAt == nil || !got.Status.LastUsedAt.Time.Equal(epoch.Add(90*time.Second)) {
		t.Errorf("usage %d, last used %v; want 26 at %v", got.Status.UsageCount, got.Status.LastUsedAt, epoch.Add(90*time.Second))
	}
	if patches.Load() != 1 {
		t.Errorf("%d patches, want 1", patches.Load())
	}
	// Nothing new: nothing written.
	if err := w.v.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if patches.Load() != 1 {
		t.Errorf("an idle flush wrote: %d patches", patches.Load())
	}
}

func TestUsageFromSeveralReplicasAddsUpDespiteConflicts(t *testing.T) {
	a := newWorld(t)
	// Every other patch conflicts, as when two replicas flush the same key at once.
	c := a.realAPI(2)
	b := newWorld(t)
	b.use(c)
	b.moveTo(a.key)
	b.token = a.token
	for range 7 {
		expect(t, a.authorize(a.token.Token, ""), http.StatusOK, "")
	}
	for range 5 {
		expect(t, b.authorize(a.token.Token, ""), http.StatusOK, "")
	}
	for _, w := range []*world{a, b, a} {
		if err := w.v.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.readKey(c).Status.UsageCount; got != 12 {
		t.Errorf("usageCount %d, want 12", got)
	}
}

// TestUsageAnotherReplicaWroteMeanwhileIsAddedToNeverOverwritten: another replica's usage
// lands between this replica's read of the APIKey and its patch, for real on the apiserver.
// The patch carries the resourceVersion it read, so it conflicts, reads again and adds its
// count to the other's; a patch without it would write its own count over the other's.
func TestUsageAnotherReplicaWroteMeanwhileIsAddedToNeverOverwritten(t *testing.T) {
	w := newWorld(t)
	c := w.realAPI(0)
	for range 3 {
		expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	}
	other := func() {
		k := w.readKey(c)
		k.Status.UsageCount += 5
		if err := env.Client.Status().Update(context.Background(), k); err != nil {
			t.Errorf("the other replica's write: %v", err)
		}
	}
	c.beforePatch.Store(&other)
	if err := w.v.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := w.readKey(c).Status.UsageCount; got != 8 {
		t.Errorf("usageCount %d, want 8: the other replica's 5 and this one's 3", got)
	}
}

func TestUsageThatCannotBeWrittenIsKeptForTheNextFlush(t *testing.T) {
	w := newWorld(t)
	c := w.realAPI(1) // every patch conflicts
	for range 3 {
		w.authorize(w.token.Token, "")
	}
	if err := w.v.Flush(context.Background()); err == nil || !apierrors.IsConflict(err) {
		t.Fatalf("want a conflict error, got %v", err)
	}
	if c.patches.Load() != flushAttempts {
		t.Errorf("%d attempts, want %d", c.patches.Load(), flushAttempts)
	}
	c.conflictEvery.Store(0)
	w.authorize(w.token.Token, "")
	if err := w.v.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := w.readKey(c).Status.UsageCount; got != 4 {
		t.Errorf("usageCount %d, want 4", got)
	}
}

func TestUsageOfADeletedKeyIsDropped(t *testing.T) {
	w := newWorld(t)
	c := w.realAPI(0)
	w.authorize(w.token.Token, "")
	if err := c.Delete(context.Background(), w.key.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	if err := w.v.Flush(context.Background()); err != nil {
		t.Fatalf("a deleted key's usage is not an error: %v", err)
	}
	if w.v.usage.take() != nil {
		t.Error("a deleted key's usage must not be retried")
	}
}

// TestUsageOfADeletedKeyNeverLandsOnOneMadeAgainUnderItsName: the APIKey whose usage was
// counted is deleted and applied again under the same name before the flush. The new object is
// another key: the old one's usage is dropped, never written to it.
func TestUsageOfADeletedKeyNeverLandsOnOneMadeAgainUnderItsName(t *testing.T) {
	w := newWorld(t)
	c := w.realAPI(0)
	for range 3 {
		expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	}
	ctx := context.Background()
	if err := c.Delete(ctx, w.key.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	again := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: w.key.Namespace, Name: w.key.Name}, Spec: *w.key.Spec.DeepCopy()}
	if err := env.Client.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	if err := w.v.Flush(ctx); err != nil {
		t.Fatalf("a replaced key's usage is not an error: %v", err)
	}
	if got := w.readKey(c); got.UID == w.key.UID || got.Status.UsageCount != 0 || got.Status.LastUsedAt != nil {
		t.Errorf("the APIKey made again (UID changed: %v) got usageCount %d, lastUsedAt %v: want none of the deleted one's",
			got.UID != w.key.UID, got.Status.UsageCount, got.Status.LastUsedAt)
	}
}

// apiServer is the package's kube-apiserver as a world's verifier reaches it: it counts status
// patches and, with conflictEvery n > 0, answers every n-th one with a conflict instead of
// sending it (1: all of them), as when another replica wrote the APIKey first.
type apiServer struct {
	client.WithWatch
	patches       atomic.Int32
	conflictEvery atomic.Int32
	// beforePatch, when set, runs once, just before the next status patch is sent: another
	// replica's write landing between this one's read and its patch.
	beforePatch atomic.Pointer[func()]
}

// realAPI puts the world's APIKey on the apiserver, in a namespace of the test's own and with
// the status the operator would write, moves the world there (moveTo), and has the verifier
// write usage through the returned client.
func (w *world) realAPI(conflictEvery int32) *apiServer {
	w.t.Helper()
	if env == nil {
		w.t.Skip("no kube-apiserver in this run (fuzzing)")
	}
	ctx := context.Background()
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace(w.t, "usage"), Name: w.key.Name}, Spec: *w.key.Spec.DeepCopy()}
	if err := env.Client.Create(ctx, key); err != nil {
		w.t.Fatalf("creating the APIKey: %v", err)
	}
	key.Status = *w.key.Status.DeepCopy()
	if err := env.Client.Status().Update(ctx, key); err != nil {
		w.t.Fatalf("writing the APIKey's status: %v", err)
	}
	w.moveTo(key)

	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		w.t.Fatal(err)
	}
	f := &apiServer{}
	f.conflictEvery.Store(conflictEvery)
	f.WithWatch = interceptor.NewClient(c, interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if before := f.beforePatch.Swap(nil); before != nil {
				(*before)()
			}
			n, every := f.patches.Add(1), f.conflictEvery.Load()
			if every > 0 && n%every == 0 {
				return apierrors.NewConflict(schema.GroupResource{Group: v1.GroupVersion.Group, Resource: "apikeys"},
					obj.GetName(), errors.New("the object has been modified"))
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	w.use(f)
	return f
}

// moveTo has the world's index hold key, an APIKey of the apiserver (its namespace, its UID),
// in place of the world's own, with the world's Application beside it and the OrgConnection
// resolved to that namespace.
func (w *world) moveTo(key *v1.APIKey) {
	w.v.Remove(w.key)
	w.v.Remove(w.app)
	w.updateApp(func(a *v1.Application) { a.Namespace = key.Namespace })
	w.updateKey(func(k *v1.APIKey) { *k = *key.DeepCopy() })
	conn := w.conn.DeepCopy()
	conn.Status.ApplicationNamespace = key.Namespace
	w.conn = conn
	w.v.Apply(conn)
}

func (w *world) use(c *apiServer) { w.v.client, w.v.apiReader = c, c }

func (w *world) readKey(c client.Reader) *v1.APIKey {
	w.t.Helper()
	k := &v1.APIKey{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(w.key), k); err != nil {
		w.t.Fatal(err)
	}
	return k
}
