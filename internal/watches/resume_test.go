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
	inf, err := c.GetInformer(ctx, &corev1.ConfigMap{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	return c, inf
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
