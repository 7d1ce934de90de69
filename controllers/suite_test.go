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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/metrics"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/wiring"
)

// The operator runs in-process against a real kube-apiserver, with a fake clock the tests
// step. Every token it ever writes to a Secret is recorded, and after the tests none may
// appear in the operator's logs, events, metrics or any Clearance object.
var (
	env      *testenv.Env
	clk      *clocktesting.FakeClock
	format   keyformat.Format
	registry *prometheus.Registry
	logs     = &syncBuffer{}
	tokens   = &tokenRecorder{seen: map[string]bool{}}
	// direct is a reconciler sharing the operator's client and clock, for calling Reconcile
	// synchronously and reading its result.
	direct *APIKeyReconciler
)

func TestMain(m *testing.M) { testenv.Main(m, &env, startOperator) }

func startOperator(e *testenv.Env) (func() error, error) {
	// Level -1 logs V(1) lines too, so the leak check sees everything the operator can log.
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-1))))
	// make test's suite-wide leak check searches this log too, for every key recorded below.
	testenv.CollectForLeakCheck("controllers: in-process operator log", logs.String)
	testenv.CollectTokensForLeakCheck(tokens.all)
	clk = clocktesting.NewFakeClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	var err error
	if format, err = keyformat.New(keyformat.DefaultPrefix); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  wiring.CacheOptions(clock.RealClock{}),
	})
	if err != nil {
		return nil, err
	}
	if err := index.Register(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	registry = prometheus.NewRegistry()
	m, err := metrics.NewControllers(registry, KeyStateCounter(mgr.GetCache()))
	if err != nil {
		return nil, err
	}
	if err := Setup(mgr, Options{Clock: clk, KeyFormat: format, Metrics: m, Namespace: systemNamespace}); err != nil {
		return nil, err
	}
	direct = &APIKeyReconciler{
		reconcilerBase: reconcilerBase{client: mgr.GetClient(), apiReader: mgr.GetAPIReader(), clock: clk},
		events:         mgr.GetEventRecorder("clearance-apikey"),
		format:         format,
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := tokens.record(ctx, e); err != nil {
		cancel()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return nil, fmt.Errorf("the operator's caches did not sync")
	}
	return func() error {
		leakErr := checkNoLeaks(e)
		cancel()
		if err := <-done; err != nil {
			return err
		}
		return leakErr
	}, nil
}

// syncBuffer collects the operator's log output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tokenRecorder watches key Secrets and remembers every token written to one.
type tokenRecorder struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *tokenRecorder) record(ctx context.Context, e *testenv.Env) error {
	wc, err := client.NewWithWatch(e.Config, client.Options{Scheme: e.Scheme})
	if err != nil {
		return err
	}
	go func() {
		for ctx.Err() == nil {
			w, err := wc.Watch(ctx, &corev1.SecretList{}, client.HasLabels{v1.LabelAPIKey})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if s, ok := ev.Object.(*corev1.Secret); ok && ev.Type != watch.Error {
					if t := string(s.Data[v1.SecretKeyToken]); t != "" {
						r.mu.Lock()
						r.seen[t] = true
						r.mu.Unlock()
					}
				}
			}
		}
	}()
	return nil
}

func (r *tokenRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.seen))
	for t := range r.seen {
		out = append(out, t)
	}
	return out
}

// checkNoLeaks searches the operator's logs, every Event, every Clearance object and the
// metrics for the secret part of every token the suite minted.
func checkNoLeaks(e *testenv.Env) error {
	ctx := context.Background()
	var hay strings.Builder
	hay.WriteString(logs.String())
	for _, list := range []client.ObjectList{&eventsv1.EventList{}, &corev1.EventList{}, &v1.ApplicationList{}, &v1.APIKeyList{},
		&v1.OrgConnectionList{}, &v1.MetricSetList{}, &corev1.ConfigMapList{}} {
		if err := e.Client.List(ctx, list); err != nil {
			return err
		}
		data, err := json.Marshal(list)
		if err != nil {
			return err
		}
		hay.Write(data)
	}
	families, err := registry.Gather()
	if err != nil {
		return err
	}
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&hay, f); err != nil {
			return err
		}
	}
	all := tokens.all()
	if len(all) == 0 {
		// A -run that selects only table tests mints nothing; the full suite always does.
		fmt.Println("leak check: skipped, no test that ran minted a key")
		return nil
	}
	text := hay.String()
	leaked := 0
	for _, t := range all {
		k, err := format.Parse(t)
		if err != nil {
			return fmt.Errorf("leak check: a recorded token does not parse: %v", err)
		}
		if strings.Contains(text, k.Secret) {
			leaked++
		}
	}
	if leaked > 0 {
		return fmt.Errorf("leak check: %d of %d minted keys appear outside their Secrets (logs, events, objects or metrics)", leaked, len(all))
	}
	fmt.Printf("leak check: %d minted keys, none found in %d bytes of logs, events, objects and metrics\n", len(all), len(text))
	return nil
}

// Helpers for the tests.

func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last error: %v)", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

func newApp(ns, name, pinnedID string) *v1.Application {
	return &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.ApplicationSpec{Description: "integration " + name, ApplicationID: pinnedID},
	}
}

func newKey(ns, name, app string, mutate ...func(*v1.APIKey)) *v1.APIKey {
	k := &v1.APIKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.APIKeySpec{ApplicationName: app},
	}
	for _, m := range mutate {
		m(k)
	}
	return k
}

// readyApp creates an Application and waits for its ID.
func readyApp(t *testing.T, ns, name string) *v1.Application {
	t.Helper()
	app := newApp(ns, name, "")
	create(t, app)
	eventually(t, "the Application ID", func() (bool, error) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(app), app)
		return app.Status.ApplicationID != "", err
	})
	return app
}

// activeKey creates an org with an Application "bi" and an APIKey of it, and waits until the
// key is Active.
func activeKey(t *testing.T, org, name string, mutate ...func(*v1.APIKey)) (string, *v1.APIKey) {
	t.Helper()
	ns := env.Namespace(t, org)
	readyApp(t, ns, "bi")
	key := newKey(ns, name, "bi", mutate...)
	create(t, key)
	key = waitKey(t, key, "Active", inState(v1.KeyActive))
	tokenOnceWritten(t, key)
	return ns, key
}

func getKey(t *testing.T, key *v1.APIKey) *v1.APIKey {
	t.Helper()
	got := &v1.APIKey{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(key), got); err != nil {
		t.Fatal(err)
	}
	return got
}

// waitKey waits until the key satisfies cond and returns it.
func waitKey(t *testing.T, key *v1.APIKey, what string, cond func(*v1.APIKey) bool) *v1.APIKey {
	t.Helper()
	got := &v1.APIKey{}
	eventually(t, what, func() (bool, error) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(key), got)
		return err == nil && got.Status.ObservedGeneration == got.Generation && cond(got), err
	})
	return got
}

// reconcileNow runs one pass over the key synchronously and returns the key after it.
func reconcileNow(t *testing.T, key *v1.APIKey) *v1.APIKey {
	t.Helper()
	passNow(t, key)
	return getKey(t, key)
}

// passNow runs passes over the key synchronously until one is neither behind the cache nor
// beaten to a write by the running operator (a conflict, retried), and returns its result.
func passNow(t *testing.T, key *v1.APIKey) ctrl.Result {
	t.Helper()
	var res ctrl.Result
	eventually(t, "a pass that is not behind the cache", func() (bool, error) {
		var err error
		res, err = direct.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)})
		return err == nil && res.RequeueAfter != cacheLagRequeue && !res.Requeue, err
	})
	return res
}

func inState(state v1.KeyState) func(*v1.APIKey) bool {
	return func(k *v1.APIKey) bool { return k.Status.State == state }
}

// secretOf reads the key's Secret, waiting for it to exist: the operator writes status first,
// then the Secret, so a key seen Active may be a moment ahead of its Secret.
func secretOf(t *testing.T, key *v1.APIKey) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	eventually(t, "Secret "+key.SecretNameOrDefault(), func() (bool, error) {
		err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: key.Namespace, Name: key.SecretNameOrDefault()}, s)
		return err == nil, client.IgnoreNotFound(err)
	})
	return s
}

// tokenOnceWritten waits until the key's Secret holds the key status records (a replacement
// writes status first, then the Secret) and returns its token.
func tokenOnceWritten(t *testing.T, key *v1.APIKey) string {
	t.Helper()
	var token string
	eventually(t, "the Secret to hold the key recorded in status", func() (bool, error) {
		s := &corev1.Secret{}
		err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: key.Namespace, Name: key.SecretNameOrDefault()}, s)
		token = string(s.Data[v1.SecretKeyToken])
		return err == nil && keyformat.Hash(token) == key.Status.Hash, err
	})
	return token
}

// nudge changes an annotation, which makes the operator reconcile the object now; tests use
// it after stepping the fake clock, where production relies on the requeue at that instant.
func nudge(t *testing.T, obj client.Object) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"test.clearance.dev/nudge":"%d"}}}`, time.Now().UnixNano()))
	if err := env.Client.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// keyStory says, for a test that failed, what became of the APIKey's name: the key its Secret
// holds now and who owns it, and every Event about any APIKey of that name (key IDs and masked
// keys only: no key material).
func keyStory(t *testing.T, key *v1.APIKey) string {
	t.Helper()
	var b strings.Builder
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: key.Namespace, Name: key.SecretNameOrDefault()}, s); err != nil {
		fmt.Fprintf(&b, "Secret %s: %v\n", key.SecretNameOrDefault(), err)
	} else {
		owner := "none"
		if ref := metav1.GetControllerOf(s); ref != nil {
			owner = string(ref.UID)
		}
		fmt.Fprintf(&b, "Secret %s holds key %s, controller %s (this APIKey is %s)\n", s.Name, s.Annotations[annotationKeyID], owner, key.UID)
	}
	var list eventsv1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(key.Namespace)); err != nil {
		return b.String() + err.Error()
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].CreationTimestamp.Before(&list.Items[j].CreationTimestamp) })
	for _, e := range list.Items {
		if e.Regarding.Kind == "APIKey" && e.Regarding.Name == key.Name {
			fmt.Fprintf(&b, "event %s %s/%s about %s: %s\n", e.CreationTimestamp.Format(time.RFC3339), e.Reason, e.Action, e.Regarding.UID, e.Note)
		}
	}
	return b.String()
}

// eventsFor lists the Events about an object, with the given reason.
func eventsFor(t *testing.T, obj client.Object, reason string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(obj.GetNamespace())); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == obj.GetName() && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func waitEvent(t *testing.T, obj client.Object, reason string) eventsv1.Event {
	t.Helper()
	var found []eventsv1.Event
	eventually(t, "a "+reason+" event", func() (bool, error) {
		found = eventsFor(t, obj, reason)
		return len(found) > 0, nil
	})
	return found[len(found)-1]
}
