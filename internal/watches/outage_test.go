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
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/watches"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	log.SetLogger(logr.Discard()) // the retry's one line per outage is not what these tests read
	testenv.Main(m, &env)
}

// outage is long enough for client-go's own reflector backoff to grow to several seconds.
const outage = 15 * time.Second

// resumeTimeout bounds how long after the apiserver's return an informer must follow it again:
// a retry at most every MaxRetryInterval, and a slow, shared machine.
const resumeTimeout = 10 * time.Second

// TestInformersFollowTheAPIServerAgainSoonAfterAnOutage: informers built here watch again
// within seconds of the apiserver's return after an outage of 15 s, and say so; an object
// created after the return reaches their store. A plain client-go informer, run beside them
// for comparison, is logged, not judged.
func TestInformersFollowTheAPIServerAgainSoonAfterAnOutage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "watches-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	newCache := func(opts cache.Options) (cache.Cache, cache.Informer) {
		opts.Scheme = env.Scheme
		c, err := cache.New(env.Config, opts)
		if err != nil {
			t.Fatal(err)
		}
		inf := startConfigMaps(t, ctx, c)
		if !c.WaitForCacheSync(ctx) {
			t.Fatal("cache never synced")
		}
		return c, inf
	}
	ours, inf := newCache(cache.Options{NewInformer: watches.NewInformerFunc(clock.RealClock{})})
	plain, _ := newCache(cache.Options{})
	watching, ok := inf.(watches.Health)
	if !ok {
		t.Fatalf("the cache's informer is a %T, not this package's Informer", inf)
	}
	eventually(t, resumeTimeout, "the informer to open its first watch", func() bool {
		_, open := watching.Watching()
		return open
	})
	before, _ := watching.Watching()

	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = env.StartAPIServer()
		}
	}()
	eventually(t, resumeTimeout, "the informer to notice its watch broke", func() bool {
		_, open := watching.Watching()
		return !open
	})
	time.Sleep(outage) // the outage itself: nothing to wait for but time
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	back := time.Now()

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "after-the-outage"}}
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(cm)
	eventually(t, resumeTimeout, "a ConfigMap created after the apiserver returned to reach the informer's store", func() bool {
		return ours.Get(ctx, key, &corev1.ConfigMap{}) == nil
	})
	seen := time.Since(back)
	opened, open := watching.Watching()
	if !open || opened <= before {
		t.Errorf("after the outage: %d watches opened (%d before), one open %v; want a new one open", opened, before, open)
	}
	plainSeen := "not within 30s"
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if plain.Get(ctx, key, &corev1.ConfigMap{}) == nil {
			plainSeen = time.Since(back).Round(100 * time.Millisecond).String()
			break
		}
	}
	t.Logf("outage %s: an object created after the return reached this package's informer %s after it, a plain client-go informer's %s",
		outage, seen.Round(100*time.Millisecond), plainSeen)
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
	}
}
