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

package watches_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/clearance-dev/clearance/internal/watches"
)

// startCache starts a cache of ConfigMaps through cfg whose informers are this package's, on
// clk, with wrap around each ListerWatcher (nil: none), and returns its informer of ConfigMaps.
// It does not wait for the cache to sync. Its REST mapping is asked of the apiserver directly.
func startCache(t *testing.T, cfg *rest.Config, clk clock.Clock, wrap func(toolscache.ListerWatcher) toolscache.ListerWatcher) (cache.Cache, cache.Informer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(env.Config, hc)
	if err != nil {
		t.Fatal(err)
	}
	newInformer := watches.NewInformerFunc(clk)
	c, err := cache.New(cfg, cache.Options{Scheme: env.Scheme, Mapper: mapper,
		NewInformer: func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, ix toolscache.Indexers) toolscache.SharedIndexInformer {
			if wrap != nil {
				lw = wrap(lw)
			}
			return newInformer(lw, obj, resync, ix)
		}})
	if err != nil {
		t.Fatal(err)
	}
	return c, startConfigMaps(t, ctx, c)
}

// startConfigMaps asks c for its informer of ConfigMaps, starts c until ctx ends, and returns
// the informer without waiting for it to sync.
func startConfigMaps(t *testing.T, ctx context.Context, c cache.Cache) cache.Informer {
	t.Helper()
	inf, err := c.GetInformer(ctx, &corev1.ConfigMap{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	return inf
}

// TestWhileTheAPIServerCannotBeReachedTheInformerRetriesOnItsClockAndFollowsItOnceItAnswers:
// the apiserver is reached through a loopback forwarder that is off at first and cut later.
// Both while the informer first syncs and after its watch broke, the call that gets no answer
// waits on the injected clock inside the call, not on the reflector's own growing backoff, and
// one tick of that clock after the apiserver answers again brings the informer back: in sync,
// watching, with what was created meanwhile.
func TestWhileTheAPIServerCannotBeReachedTheInformerRetriesOnItsClockAndFollowsItOnceItAnswers(t *testing.T) {
	ns := env.Namespace(t, "watches-resume")
	ctx := context.Background()
	target, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	fwd := newForwarder(t, target.Host)
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://" + fwd.addr
	clk := clocktesting.NewFakeClock(time.Now())
	c, inf := startCache(t, cfg, clk, nil)
	watching := inf.(watches.Health)

	eventually(t, resumeTimeout, "the first sync, refused, to wait on the injected clock", clk.HasWaiters)
	fwd.start(t)
	clk.Step(watches.MaxRetryInterval)
	eventually(t, resumeTimeout, "the informer to sync once the apiserver answers", inf.HasSynced)
	eventually(t, resumeTimeout, "the informer to watch", func() bool { _, open := watching.Watching(); return open })

	// An object created while watching reaches the store: the watch delivers events (a watch
	// that delivered none and broke at once would be relisted, not watched again).
	created := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "before-the-cut"}}
	if err := env.Client.Create(ctx, created); err != nil {
		t.Fatal(err)
	}
	eventually(t, resumeTimeout, "a ConfigMap created while watching to reach the store", func() bool {
		return c.Get(ctx, client.ObjectKeyFromObject(created), &corev1.ConfigMap{}) == nil
	})
	before, _ := watching.Watching()

	fwd.stop()
	eventually(t, resumeTimeout, "the informer to notice its watch broke", func() bool { _, open := watching.Watching(); return !open })
	eventually(t, resumeTimeout, "the watch, refused, to wait on the injected clock", clk.HasWaiters)
	meanwhile := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "during-the-cut"}}
	if err := env.Client.Create(ctx, meanwhile); err != nil {
		t.Fatal(err)
	}
	fwd.start(t)
	clk.Step(watches.MaxRetryInterval)
	eventually(t, resumeTimeout, "a ConfigMap created during the cut to reach the store", func() bool {
		return c.Get(ctx, client.ObjectKeyFromObject(meanwhile), &corev1.ConfigMap{}) == nil
	})
	if opened, open := watching.Watching(); !open || opened <= before {
		t.Errorf("after the cut: %d watches opened (%d before), one open %v; want a new one open", opened, before, open)
	}
}

// TestAWatchTheAPIServerRefusesIsNotCountedAsOpen: an identity that may list ConfigMaps but not
// watch them gets its informer synced by lists while every watch is refused (403). Such an
// informer does not follow the apiserver, and says so: no watch opened, none open, however
// many were tried. (The verifier takes a watch opened after an outage as proof that its view
// is current again.)
func TestAWatchTheAPIServerRefusesIsNotCountedAsOpen(t *testing.T) {
	ns := env.Namespace(t, "watches-refused")
	ctx := context.Background()
	user := "watches-test:lister"
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-list-configmaps"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-list-configmaps"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	for _, obj := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
	}
	var watchesTried atomic.Int64
	_, inf := startCache(t, env.As(user, nil, nil), clock.RealClock{}, func(lw toolscache.ListerWatcher) toolscache.ListerWatcher {
		return &countingWatches{ListerWatcherWithContext: toolscache.ToListerWatcherWithContext(lw), tried: &watchesTried}
	})
	eventually(t, 30*time.Second, "the informer to sync by a list", inf.HasSynced)
	eventually(t, 30*time.Second, "two refused watches", func() bool { return watchesTried.Load() >= 2 })
	if opened, open := inf.(watches.Health).Watching(); opened != 0 || open {
		t.Errorf("with every watch refused: %d watches opened, one open %v; want none", opened, open)
	}
}

// countingWatches counts the watches tried through a ListerWatcher, once each has returned.
type countingWatches struct {
	toolscache.ListerWatcherWithContext
	tried *atomic.Int64
}

func (c *countingWatches) List(options metav1.ListOptions) (runtime.Object, error) {
	return c.ListWithContext(context.Background(), options)
}

func (c *countingWatches) Watch(options metav1.ListOptions) (watch.Interface, error) {
	return c.WatchWithContext(context.Background(), options)
}

func (c *countingWatches) WatchWithContext(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
	defer c.tried.Add(1)
	return c.ListerWatcherWithContext.WatchWithContext(ctx, options)
}

// forwarder relays TCP connections from a loopback port to target while started; stopped, the
// port refuses connections and those it relayed are cut.
type forwarder struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func newForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{addr: ln.Addr().String(), target: target}
	_ = ln.Close()
	t.Cleanup(f.stop)
	return f
}

func (f *forwarder) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", f.target)
			if err != nil {
				_ = in.Close()
				continue
			}
			f.mu.Lock()
			if f.ln != ln { // stopped meanwhile
				f.mu.Unlock()
				_, _ = in.Close(), out.Close()
				continue
			}
			f.conns = append(f.conns, in, out)
			f.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
}

func (f *forwarder) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		_ = f.ln.Close()
		f.ln = nil
	}
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
}
