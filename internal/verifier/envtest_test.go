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
	"flag"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// A real kube-apiserver, and a manager running only the verifier (no controllers): the tests
// write the status the operator would, and talk to the verifier over HTTP on loopback. One test
// runs the operator's controllers too, for its signing-key controller (startLiveOperator).
var (
	env       *testenv.Env
	live      *Verifier
	liveClock *clocktesting.FakeClock
)

// revocationCeiling is generous on purpose: the design target is p99 ≤ 250 ms, measured by
// make bench; this only catches a verifier that does not follow its informers at all.
const revocationCeiling = 10 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	// Fuzzing runs the binary once per worker; header parsing needs no apiserver.
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	testenv.Main(m, &env, startVerifier)
}

// needAPIServer skips a test when the package runs without its control plane (fuzzing).
func needAPIServer(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Skip("no kube-apiserver in this run (fuzzing)")
	}
}

func startVerifier(e *testenv.Env) (func() error, error) {
	liveClock = clocktesting.NewFakeClock(epoch)
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, err
	}
	// make test's leak check searches the live verifier's log for keys, access tokens and
	// signing keys, and every text for the access tokens the tests were issued.
	testenv.CollectForLeakCheck("verifier: live verifier log", liveLog.String)
	testenv.CollectSecretsForLeakCheck(liveIssued.All)
	live, err = New(Options{Addr: "127.0.0.1:0", Clock: liveClock, Format: format, Registerer: prometheus.NewRegistry(),
		OAuth: OAuthOptions{SigningSecret: liveSigningSecret}, Logger: funcr.New(liveLog.Write, funcr.Options{Verbosity: 10})})
	if err != nil {
		return nil, err
	}
	if err := live.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return nil, errors.New("the verifier's caches did not sync")
	}
	deadline := time.Now().Add(30 * time.Second)
	for live.Addr() == "" || live.ReadyzCheck(nil) != nil {
		if time.Now().After(deadline) {
			cancel()
			return nil, errors.New("the verifier did not start listening and become ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			return errors.New("the manager did not stop within a minute")
		}
	}, nil
}

// liveKey is one APIKey of an Application of org owner, connected to org grant, with the status
// the operator would write.
type liveKey struct {
	token keyformat.Key
	key   *v1.APIKey
	conn  *v1.OrgConnection
	grant string
}

func newLiveKey(t *testing.T) *liveKey {
	t.Helper()
	needAPIServer(t)
	owner, grant := env.Namespace(t, "owner"), env.Namespace(t, "grant")
	id, err := keyformat.ApplicationID()
	if err != nil {
		t.Fatal(err)
	}
	app := &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: owner, Name: "bi"},
		Spec:       v1.ApplicationSpec{Description: "BI export"},
	}
	mustCreate(t, app)
	app.Status.ApplicationID = id
	mustUpdateStatus(t, app)

	format, _ := keyformat.New(keyformat.DefaultPrefix)
	token, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: owner, Name: "prod"}, Spec: v1.APIKeySpec{ApplicationName: "bi"}}
	mustCreate(t, key)
	key.Status = v1.APIKeyStatus{KeyID: token.KeyID, Hash: keyformat.Hash(token.Token), Masked: keyformat.Mask(token.Token),
		State: v1.KeyActive, ApplicationID: id}
	mustUpdateStatus(t, key)

	conn := &v1.OrgConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: grant, Name: "bi"},
		Spec:       v1.OrgConnectionSpec{ApplicationID: id, Role: v1.RoleObserver},
	}
	mustCreate(t, conn)
	conn.Status.ApplicationNamespace, conn.Status.ApplicationName, conn.Status.CreatedBy = owner, "bi", owner
	conn.Status.Conditions = []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonConnected,
		Message: "connected", LastTransitionTime: metav1.NewTime(epoch)}}
	mustUpdateStatus(t, conn)

	lk := &liveKey{token: token, key: key, conn: conn, grant: grant}
	lk.waitFor(t, "the verifier to accept the new key", http.StatusOK, "")
	return lk
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func mustUpdateStatus(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Status().Update(context.Background(), obj); err != nil {
		t.Fatalf("writing the status of %T %s: %v", obj, obj.GetName(), err)
	}
}

// ask sends one forward-auth request to the running verifier over HTTP.
func (lk *liveKey) ask(t *testing.T) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+live.Addr()+PathAuthorize+"?org="+lk.grant, nil)
	req.Header.Set("Authorization", "api-key "+lk.token.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Clearance-Reason")
}

// waitFor asks until the verifier answers status and reason, and returns how long that took.
func (lk *liveKey) waitFor(t *testing.T, what string, status int, reason string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		code, got := lk.ask(t)
		if code == status && got == reason {
			return time.Since(start)
		}
		if time.Since(start) > revocationCeiling {
			t.Fatalf("waited %s for %s: still %d %q", revocationCeiling, what, code, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestADisabledAPIKeyIsRefusedWithinTheBound(t *testing.T) {
	lk := newLiveKey(t)
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"enabled":false}}`))
	if err := env.Client.Patch(context.Background(), lk.key, patch); err != nil {
		t.Fatal(err)
	}
	took := lk.waitFor(t, "the disabled key to be refused", http.StatusUnauthorized, ReasonKeyDisabled)
	t.Logf("disable → refused in %s", took)
	reenable := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"enabled":true}}`))
	if err := env.Client.Patch(context.Background(), lk.key, reenable); err != nil {
		t.Fatal(err)
	}
	t.Logf("re-enable → accepted in %s", lk.waitFor(t, "the re-enabled key to work", http.StatusOK, ""))
}

func TestADeletedAPIKeyIsRefusedWithinTheBound(t *testing.T) {
	lk := newLiveKey(t)
	if err := env.Client.Delete(context.Background(), lk.key); err != nil {
		t.Fatal(err)
	}
	t.Logf("delete APIKey → refused in %s", lk.waitFor(t, "the deleted key to be refused", http.StatusUnauthorized, ReasonKeyUnknown))
}

func TestDisconnectingAnApplicationIsRefusedWithinTheBound(t *testing.T) {
	lk := newLiveKey(t)
	if err := env.Client.Delete(context.Background(), lk.conn); err != nil {
		t.Fatal(err)
	}
	t.Logf("delete OrgConnection → refused in %s", lk.waitFor(t, "the disconnected org to refuse the key", http.StatusForbidden, ReasonOrgNotConnected))
}

func TestUsageIsWrittenToTheAPIKeyStatusInOneBatch(t *testing.T) {
	lk := newLiveKey(t)
	ctx := context.Background()
	const n = 37
	// newLiveKey's wait was accepted once already.
	for i := 1; i < n; i++ {
		if code, reason := lk.ask(t); code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, code, reason)
		}
	}
	if err := live.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := &v1.APIKey{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(lk.key), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.UsageCount != n || got.Status.LastUsedAt == nil || !got.Status.LastUsedAt.Time.Equal(liveClock.Now()) {
		t.Fatalf("usageCount %d, lastUsedAt %v; want %d at %v", got.Status.UsageCount, got.Status.LastUsedAt, n, liveClock.Now())
	}
	// The operator's own status is untouched, and more usage adds to what is there, even when
	// the cache has not seen the last write yet (the optimistic lock catches that).
	if got.Status.KeyID != lk.token.KeyID || got.Status.State != v1.KeyActive {
		t.Errorf("the flush changed other status fields: %+v", got.Status)
	}
	for range 5 {
		lk.ask(t)
	}
	if err := live.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(lk.key), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.UsageCount != n+5 {
		t.Errorf("usageCount %d, want %d", got.Status.UsageCount, n+5)
	}
	t.Logf("usage of %d requests written with 2 flushes", n+5)
}

func TestUsageAnsweredDuringShutdownIsFlushedBeforeTheReplicaStops(t *testing.T) {
	lk := newLiveKey(t)
	ctx := context.Background()
	// Whatever the shared verifier counted for this key goes out first, as a baseline.
	if err := live.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	base := &v1.APIKey{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(lk.key), base); err != nil {
		t.Fatal(err)
	}

	// A second replica, stopped gracefully after serving: its counts must reach the status
	// without anyone calling Flush.
	r := newReplica(t, "127.0.0.1:0", cache.Options{})
	replica := r.v
	stop := r.start(t)

	accepted := 0
	deadline := time.Now().Add(revocationCeiling)
	for accepted < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the second replica accepted %d requests in %s", accepted, revocationCeiling)
		}
		if replica.Addr() == "" {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+replica.Addr()+PathAuthorize+"?org="+lk.grant, nil)
		req.Header.Set("X-API-Key", lk.token.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			accepted++
		} else {
			time.Sleep(5 * time.Millisecond) // not ready yet
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := &v1.APIKey{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(lk.key), got); err != nil {
		t.Fatal(err)
	}
	if want := base.Status.UsageCount + int64(accepted); got.Status.UsageCount != want {
		t.Errorf("usageCount %d after shutdown, want %d", got.Status.UsageCount, want)
	}
}

// replica is a second verifier on the test's apiserver, with a manager of its own.
type replica struct {
	v   *Verifier
	mgr ctrl.Manager
}

// newReplica sets a replica up, serving on addr ("": not at all) from a cache made with
// cacheOpts; start runs it.
func newReplica(t *testing.T, addr string, cacheOpts cache.Options) *replica {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0", Cache: cacheOpts,
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Options{Addr: addr, Clock: liveClock, Format: live.rules.format, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	return &replica{v: v, mgr: mgr}
}

// start runs the replica's manager until stop (which returns what the manager returned) or the
// test's end.
func (r *replica) start(t *testing.T) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.mgr.Start(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				err = errors.New("the replica did not stop within a minute")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}
