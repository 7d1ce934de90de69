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

// Package revocation proves that revocation sticks and that the APIKey write protocol keeps a
// workload's key good through every failure. The operator and the verifier run in-process
// against a real kube-apiserver, etcd and kube-controller-manager (garbage collection), with a
// fake clock the tests step and the operator's client wrapped so chosen writes fail.
package revocation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/controllers"
	"github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
	"github.com/clearance-dev/clearance/internal/wiring"
)

var (
	env    *testenv.Env
	clk    *clocktesting.FakeClock
	format keyformat.Format
	faults = &faultSet{}
	// verifierURL serves the in-process verifier, fed by the operator's informers.
	verifierURL string
	tokens      = &tokenLog{}
)

var epoch = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) { testenv.Main(m, &env, startOperator) }

func startOperator(e *testenv.Env) (func() error, error) {
	clk = clocktesting.NewFakeClock(epoch)
	var err error
	if format, err = keyformat.New(keyformat.DefaultPrefix); err != nil {
		return nil, err
	}
	testenv.CollectTokensForLeakCheck(tokens.all)
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  wiring.CacheOptions(clock.RealClock{}),
		NewClient: func(cfg *rest.Config, opts client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(cfg, opts)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, faults.funcs()), nil
		},
	})
	if err != nil {
		return nil, err
	}
	if err := index.Register(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	if err := controllers.Setup(mgr, controllers.Options{Clock: clk, KeyFormat: format}); err != nil {
		return nil, err
	}
	vf, err := verifier.New(verifier.Options{Clock: clk, Format: format, Registerer: prometheus.NewRegistry(), FlushInterval: time.Hour})
	if err != nil {
		return nil, err
	}
	if err := vf.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	srv := httptest.NewServer(vf.Handler())
	verifierURL = srv.URL
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		srv.Close()
		return nil, errors.New("the operator's caches did not sync")
	}
	return func() error {
		cancel()
		srv.Close()
		return <-done
	}, nil
}

// A fault makes one kind of write of the operator fail, in one namespace, a number of times:
// before the write reaches the apiserver, or after it was applied (a lost response).
type fault struct {
	namespace string
	op        string // "create", "patch" (of a Secret) or "status" (APIKey status patch)
	after     bool
	err       error
	times     int
	hits      int // how many writes it failed
}

// faultSet holds the armed faults and watches every write the operator makes, for the tests'
// invariant checks.
type faultSet struct {
	mu      sync.Mutex
	armed   []*fault
	onWrite map[string]func(op string) // namespace → called after each write applied there
}

func (f *faultSet) arm(t *testing.T, x fault) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	armed := &x
	f.armed = append(f.armed, armed)
	t.Cleanup(func() {
		f.mu.Lock()
		hits := armed.hits
		f.mu.Unlock()
		// A fault that never fired tested nothing: the write it stands for was not intercepted.
		if hits == 0 {
			t.Errorf("the %q fault armed in %s never fired: no write of the operator's matched it", armed.op, armed.namespace)
		}
		f.disarm(x.namespace)
	})
}

func (f *faultSet) disarm(namespace string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := f.armed[:0]
	for _, x := range f.armed {
		if x.namespace != namespace {
			kept = append(kept, x)
		}
	}
	f.armed = kept
	delete(f.onWrite, namespace)
}

// watch calls fn after each write the operator applies in namespace, until the test ends. fn
// runs on the operator's goroutine: it must not call t.Fatal.
func (f *faultSet) watch(t *testing.T, namespace string, fn func(op string)) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onWrite == nil {
		f.onWrite = map[string]func(string){}
	}
	f.onWrite[namespace] = fn
	t.Cleanup(func() { f.disarm(namespace) })
}

// take returns the fault armed for this write, if any, and counts it down.
func (f *faultSet) take(namespace, op string) *fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.armed {
		if x.namespace == namespace && x.op == op && x.times > 0 {
			x.times--
			x.hits++
			return x
		}
	}
	return nil
}

func (f *faultSet) observer(namespace string) func(string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.onWrite[namespace]
}

// do runs one write of the operator through the armed faults and the namespace's observer.
func (f *faultSet) do(namespace, op string, write func() error) error {
	x := f.take(namespace, op)
	if x != nil && !x.after {
		return x.err
	}
	if err := write(); err != nil {
		return err
	}
	if observe := f.observer(namespace); observe != nil {
		observe(op)
	}
	if x != nil {
		return x.err
	}
	return nil
}

func (f *faultSet) funcs() interceptor.Funcs {
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.Secret); !ok {
				return c.Create(ctx, obj, opts...)
			}
			return f.do(obj.GetNamespace(), "create", func() error { return c.Create(ctx, obj, opts...) })
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if _, ok := obj.(*corev1.Secret); !ok {
				return c.Patch(ctx, obj, patch, opts...)
			}
			return f.do(obj.GetNamespace(), "patch", func() error { return c.Patch(ctx, obj, patch, opts...) })
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if !testenv.IsAPIKey(obj) || sub != "status" {
				return c.Status().Patch(ctx, obj, patch, opts...)
			}
			return f.do(obj.GetNamespace(), "status", func() error { return c.Status().Patch(ctx, obj, patch, opts...) })
		},
	}
}

// Errors the apiserver gives.
var (
	errInternal = apierrors.NewInternalError(errors.New("injected: etcd timed out"))
	errConflict = apierrors.NewConflict(schema.GroupResource{Group: v1.GroupVersion.Group, Resource: "apikeys"}, "k",
		errors.New("injected: the object has been modified"))
)

// tokenLog remembers every token the tests read from a Secret, for the suite's leak check.
type tokenLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *tokenLog) add(token string) {
	if token == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, token)
}

func (l *tokenLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

// Objects and waits.

func ctx() context.Context { return context.Background() }

// org creates a namespace with an Application and a connection of it to its own org, Ready.
func org(t *testing.T, prefix string) string {
	t.Helper()
	ns := env.Namespace(t, prefix)
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "Acme BI export"}}
	must(t, env.Client.Create(ctx(), app))
	eventually(t, "the Application's ID", func() (bool, error) {
		err := env.Client.Get(ctx(), client.ObjectKeyFromObject(app), app)
		return app.Status.ApplicationID != "", err
	})
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bi"},
		Spec: v1.OrgConnectionSpec{ApplicationID: app.Status.ApplicationID, Role: v1.RoleObserver}}
	must(t, env.Client.Create(ctx(), conn))
	eventually(t, "the connection to be Ready", func() (bool, error) {
		err := env.Client.Get(ctx(), client.ObjectKeyFromObject(conn), conn)
		return meta.IsStatusConditionTrue(conn.Status.Conditions, v1.ConditionReady), err
	})
	return ns
}

func newKey(ns, name string, mutate ...func(*v1.APIKey)) *v1.APIKey {
	k := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.APIKeySpec{ApplicationName: "bi"}}
	for _, m := range mutate {
		m(k)
	}
	return k
}

func withOverlap(k *v1.APIKey) {
	k.Spec.Rotation = &v1.KeyRotation{Every: metav1.Duration{Duration: 720 * time.Hour}, Overlap: &metav1.Duration{Duration: time.Hour}}
}

// settled waits until the key is Active or Rotating and its Secret holds the key status
// records, and returns both.
func settled(t *testing.T, key *v1.APIKey, what string, extra ...func(*v1.APIKey) bool) (*v1.APIKey, string) {
	t.Helper()
	var token string
	got := &v1.APIKey{}
	eventually(t, what, func() (bool, error) {
		if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(key), got); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		if got.Status.State != v1.KeyActive && got.Status.State != v1.KeyRotating {
			return false, nil
		}
		for _, ok := range extra {
			if !ok(got) {
				return false, nil
			}
		}
		token = secretToken(t, got)
		return keyformat.Verify(token, got.Status.Hash), nil
	})
	return got, token
}

// secretToken reads the token the key's Secret holds now ("" without one).
func secretToken(t *testing.T, key *v1.APIKey) string {
	t.Helper()
	token, err := readToken(key)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// readToken is secretToken for the operator's goroutine: it returns its error.
func readToken(key *v1.APIKey) (string, error) {
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx(), client.ObjectKey{Namespace: key.Namespace, Name: key.SecretNameOrDefault()}, s); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	token := string(s.Data[v1.SecretKeyToken])
	tokens.add(token)
	return token, nil
}

// verify asks the running verifier about a token in the key's own org.
func verify(t *testing.T, ns, token string) verifier.VerifyResponse {
	t.Helper()
	_, answer, err := verifier.Verify(http.DefaultClient, verifierURL, verifier.VerifyRequest{Key: token, Org: ns, Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	return answer
}

// waitVerdict waits until the running verifier answers reason for token ("" = valid), and
// returns how long that took.
func waitVerdict(t *testing.T, ns, token, reason, what string) time.Duration {
	t.Helper()
	start := time.Now()
	var last verifier.VerifyResponse
	eventually(t, what, func() (bool, error) {
		last = verify(t, ns, token)
		if reason == "" {
			return last.Valid, nil
		}
		return !last.Valid && last.Reason == reason, nil
	})
	return time.Since(start)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// errNotYet is what eventually reports when its condition is not met yet, without an error.
var errNotYet = errors.New("not yet")

// eventually polls cond for up to 30 s.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	testenv.Within(t, 30*time.Second, what, func() error {
		ok, err := cond()
		if err == nil && !ok {
			err = errNotYet
		}
		return err
	})
}

func events(t *testing.T, ns, reason string) []string {
	t.Helper()
	var list corev1.EventList
	must(t, env.Client.List(ctx(), &list, client.InNamespace(ns)))
	var notes []string
	for _, e := range list.Items {
		if e.Reason == reason {
			notes = append(notes, fmt.Sprintf("%s: %s", e.Type, e.Message))
		}
	}
	return notes
}
