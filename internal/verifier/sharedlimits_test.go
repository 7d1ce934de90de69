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
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ratestore"
)

// sharedRedis is a miniredis whose clock follows the worlds' (TIME and TTLs), as a store.
func sharedRedis(t *testing.T) (*miniredis.Miniredis, *ratestore.Redis) {
	t.Helper()
	m := miniredis.RunT(t)
	m.SetTime(epoch)
	m.ClockTTL(true)
	s, err := ratestore.Open("redis://"+m.Addr()+"/0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return m, s
}

func withStore(s RateLimitStore, more ...func(*Options)) func(*Options) {
	return func(o *Options) {
		o.RateLimitStore = s
		for _, m := range more {
			m(o)
		}
	}
}

// rateHeaders are the answer's status and the headers a rate limit sets.
func rateHeaders(code int, h http.Header) string {
	var b strings.Builder
	b.WriteString(http.StatusText(code))
	for _, name := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit", "Retry-After"} {
		b.WriteString(" " + name + "=" + h.Get(name))
	}
	return b.String()
}

// TestTheSharedStoreAnswersWithTheSameHeaders: one verifier limiting in memory and one through
// the store, asked the same at the same instants (an edit of the limit among them), answer with
// the same statuses and rate-limit headers.
func TestTheSharedStoreAnswersWithTheSameHeaders(t *testing.T) {
	m, store := sharedRedis(t)
	mem, shared := newWorld(t), newWorld(t, withStore(store))
	shared.token, shared.key = mem.token, mem.key
	shared.v.Apply(mem.key)
	both := func(f func(w *world)) { f(mem); f(shared) }
	both(func(w *world) {
		w.updateApp(func(a *v1.Application) {
			a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 5, Period: metav1.Duration{Duration: time.Minute}}}
		})
	})
	steps := []time.Duration{0, 0, time.Second, 0, 0, 0, 0, 7 * time.Second, 0, 0, 13 * time.Second, 0, 31 * time.Second, 0, 0, 0, 0, 0, 0, time.Minute, 0}
	for i, d := range steps {
		if i == 12 { // the limit is halved, with a token or two left
			both(func(w *world) { w.updateApp(func(a *v1.Application) { a.Spec.RateLimits[0].Limit = 2 }) })
		}
		both(func(w *world) { w.step(d) })
		m.SetTime(shared.clk.Now())
		a, b := mem.authorize(mem.token.Token, ""), shared.authorize(shared.token.Token, "")
		if got, want := rateHeaders(b.Code, b.Header()), rateHeaders(a.Code, a.Header()); got != want {
			t.Fatalf("request %d at +%s: with the store %s; in memory %s", i, shared.clk.Now().Sub(epoch), got, want)
		}
	}
	if n := testutil.ToFloat64(shared.v.index.keyStore.shared.errors); n != 0 {
		t.Fatalf("%v store errors", n)
	}
}

// TestReplicasSharingTheStoreShareEachLimit: two verifiers with one store allow a key its
// limit once between them, not once each.
func TestReplicasSharingTheStoreShareEachLimit(t *testing.T) {
	_, store := sharedRedis(t)
	a, b := newWorld(t, withStore(store)), newWorld(t, withStore(store))
	b.token, b.key = a.token, a.key
	b.v.Apply(a.key)
	for _, w := range []*world{a, b} {
		w.updateApp(func(app *v1.Application) { app.Spec.RateLimits[0].Limit = 5 })
	}
	allowed := 0
	for i := range 20 {
		w := []*world{a, b}[i%2]
		rec := w.authorize(w.token.Token, "")
		switch rec.Code {
		case http.StatusOK:
			allowed++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("request %d: status %d", i, rec.Code)
		}
	}
	if allowed != 5 {
		t.Fatalf("%d requests allowed by two replicas, want the limit: 5", allowed)
	}
}

// TestAnUnreachableStoreFallsBackToEachReplicasShare: with the store down, requests are
// answered (never 5xx) from this replica's share of the limit, in memory; the store is tried
// again once per back-off, by one request; when it answers, limits are shared again. The gauge,
// the error counter and one log line per change of state tell the operator.
func TestAnUnreachableStoreFallsBackToEachReplicasShare(t *testing.T) {
	m, store := sharedRedis(t)
	var logMu sync.Mutex
	var logs []string
	logger := funcr.New(func(prefix, args string) {
		logMu.Lock()
		logs = append(logs, prefix+" "+args)
		logMu.Unlock()
	}, funcr.Options{})
	w := newWorld(t, withStore(store, func(o *Options) {
		o.Logger = logger
		o.RateLimitFallbackReplicas = 3
		o.RateLimitStoreBackoff = 10 * time.Second
	}))
	w.updateApp(func(a *v1.Application) { a.Spec.RateLimits[0].Limit = 10 }) // 10 per hour
	shared := w.v.index.keyStore.shared
	up := func() float64 { return testutil.ToFloat64(shared.up) }

	for range 2 {
		expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	}
	if up() != 1 || m.Exists(storeKeyOf(t, w)) == false {
		t.Fatalf("store up %v, bucket in the store %v", up(), m.Exists(storeKeyOf(t, w)))
	}

	m.Close() // unreachable: connections are refused
	// A share of ⌈10/3⌉ = 4 in memory, spent from full (the 2 spent in the store are not known).
	for i := range 4 {
		rec := w.authorize(w.token.Token, "")
		expect(t, rec, http.StatusOK, "")
		if got, want := rec.Header().Get("X-RateLimit-Limit"), "4"; got != want {
			t.Fatalf("fallback request %d: X-RateLimit-Limit %s, want the replica's share %s", i, got, want)
		}
	}
	rec := w.authorize(w.token.Token, "")
	expect(t, rec, http.StatusTooManyRequests, ReasonRateLimited)
	if rec.Header().Get("Retry-After") == "" {
		t.Fatal("no Retry-After from the fallback")
	}
	if up() != 0 || testutil.ToFloat64(shared.errors) != 1 {
		t.Fatalf("store up %v after it failed, %v errors; want 0 and 1 (the breaker keeps other requests off it)", up(), testutil.ToFloat64(shared.errors))
	}
	// Unknown keys are still refused, whatever the store.
	expect(t, w.authorize(w.wrongSecret(), ""), http.StatusUnauthorized, "")

	// After the back-off one request tries the store, fails, and the breaker stays open.
	w.step(10 * time.Second)
	expect(t, w.authorize(w.token.Token, ""), http.StatusTooManyRequests, ReasonRateLimited)
	if n := testutil.ToFloat64(shared.errors); n != 2 {
		t.Fatalf("%v errors after the back-off, want 2: one try", n)
	}

	// Back on the same address: the next try closes the breaker, and the store's bucket (2
	// spent, 10 per hour) counts again.
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	m.SetTime(w.clk.Now())
	expect(t, w.authorize(w.token.Token, ""), http.StatusTooManyRequests, ReasonRateLimited) // still backing off
	w.step(10 * time.Second)
	m.SetTime(w.clk.Now())
	rec = w.authorize(w.token.Token, "")
	expect(t, rec, http.StatusOK, "")
	if got := rec.Header().Get("X-RateLimit-Limit"); got != "10" || up() != 1 {
		t.Fatalf("after the store came back: X-RateLimit-Limit %s, store up %v", got, up())
	}

	logMu.Lock()
	defer logMu.Unlock()
	all := strings.Join(logs, "\n")
	if strings.Count(all, "rate-limit store unreachable") != 1 || strings.Count(all, "rate-limit store answers again") != 1 {
		t.Fatalf("want one line when the store went away and one when it came back, got:\n%s", all)
	}
	if strings.Contains(all, w.token.Secret) || strings.Contains(all, storeKeyOf(t, w)) {
		t.Fatalf("the log holds the key or its bucket:\n%s", all)
	}
}

// TestAStoreThatHangsCostsOneTimeout: a store that never answers holds a request for the call's
// timeout at most (its context's deadline), and the request is answered from memory.
func TestAStoreThatHangsCostsOneTimeout(t *testing.T) {
	hang := &hangingStore{}
	w := newWorld(t, withStore(hang, func(o *Options) { o.RateLimitStoreTimeout = 20 * time.Millisecond }))
	rec := w.authorize(w.token.Token, "")
	expect(t, rec, http.StatusOK, "")
	if got := rec.Header().Get("X-RateLimit-Limit"); got != "500" { // 1000 per hour, over 2 replicas
		t.Fatalf("X-RateLimit-Limit %s, want the share 500", got)
	}
	if hang.deadline <= 0 || hang.deadline > 20*time.Millisecond {
		t.Fatalf("the store's call had %s left until its deadline, want at most the 20ms timeout", hang.deadline)
	}
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	if hang.calls != 1 {
		t.Fatalf("%d calls to a store that hung, want 1: the breaker keeps the next off it", hang.calls)
	}
}

type hangingStore struct {
	calls    int
	deadline time.Duration
}

func (h *hangingStore) Take(ctx context.Context, _ string, _ int64, _ float64) (bool, float64, error) {
	h.calls++
	d, ok := ctx.Deadline()
	if !ok {
		return false, 0, errors.New("no deadline")
	}
	h.deadline = time.Until(d)
	<-ctx.Done()
	return false, 0, ctx.Err()
}

// TestWithoutAStoreNothingChanges: no store, no store metrics, and Options refuse nonsense.
func TestWithoutAStoreNothingChanges(t *testing.T) {
	w := newWorld(t)
	if w.v.index.keyStore.shared != nil {
		t.Fatal("a shared store without Options.RateLimitStore")
	}
	families, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.Contains(f.GetName(), "rate_limit_store") {
			t.Fatalf("metric %s without a store", f.GetName())
		}
	}
	if _, err := New(Options{Format: w.format, Registerer: w.reg, RateLimitStore: &hangingStore{}, RateLimitFallbackReplicas: -1}); err == nil {
		t.Fatal("RateLimitFallbackReplicas -1 accepted")
	}
}

// storeKeyOf is the world's key's bucket "general" in the store.
func storeKeyOf(t *testing.T, w *world) string {
	t.Helper()
	ref := w.decide(w.asking(params{})).key.row.owner
	return storeKey(*w.v.index.keyStore.storeIDs.at(ref.slot), "general")
}
