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
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/watches"
)

// blinder sits between an informer and the apiserver: blind cuts the informer's open watch and
// holds its next one until see, which then refuses it as too old (410 Gone, what the apiserver
// answers for a resource version it no longer holds, after a long partition or a compaction),
// so the informer lists again. Lists pass through untouched.
type blinder struct {
	toolscache.ListerWatcher

	mu     sync.Mutex
	light  chan struct{} // closed while watches may open
	cut    chan struct{} // closed to end the watches open now
	expire bool          // the next watch is refused as too old
	asked  chan struct{} // receives when a watch is held
}

func newBlinder(lw toolscache.ListerWatcher) *blinder {
	light := make(chan struct{})
	close(light)
	return &blinder{ListerWatcher: lw, light: light, cut: make(chan struct{}), asked: make(chan struct{}, 1)}
}

func (b *blinder) blind() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.light = make(chan struct{})
	close(b.cut)
	b.cut = make(chan struct{})
}

func (b *blinder) see() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire = true
	close(b.light)
}

func (b *blinder) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	b.mu.Lock()
	light, cut := b.light, b.cut
	b.mu.Unlock()
	select {
	case <-light:
	default:
		select {
		case b.asked <- struct{}{}:
		default:
		}
		<-light
	}
	b.mu.Lock()
	expire := b.expire
	b.expire = false
	b.mu.Unlock()
	if expire {
		return nil, apierrors.NewResourceExpired("too old resource version: " + opts.ResourceVersion)
	}
	w, err := b.ListerWatcher.Watch(opts)
	if err != nil {
		return nil, err
	}
	return cutWatch(w, cut), nil
}

// cutWatch forwards w's events until cut is closed or the reader stops it.
func cutWatch(w watch.Interface, cut <-chan struct{}) watch.Interface {
	out := make(chan watch.Event)
	stop := make(chan struct{})
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case e, ok := <-w.ResultChan():
				if !ok {
					return
				}
				select {
				case out <- e:
				case <-cut:
					return
				case <-stop:
					return
				}
			case <-cut:
				return
			case <-stop:
				return
			}
		}
	}()
	c := &cutting{out: out}
	c.stop = func() { c.once.Do(func() { close(stop) }) }
	return c
}

type cutting struct {
	out  chan watch.Event
	once sync.Once
	stop func()
}

func (c *cutting) ResultChan() <-chan watch.Event { return c.out }
func (c *cutting) Stop()                          { c.stop() }

// TestAKeyDeletedAndMadeAgainWhileTheVerifierWasBlindIsRefusedOnceItListsAgain: a verifier
// replica's APIKey watch is cut (a partition) while the key is deleted and applied again under
// the same name with a new key; when it may watch again the apiserver no longer holds its
// resource version, so its informer lists again and hands the new object over as an update of
// the old one. The deleted key is refused from then on: the informer, the list and the
// apiserver are real, only the partition is the test's.
func TestAKeyDeletedAndMadeAgainWhileTheVerifierWasBlindIsRefusedOnceItListsAgain(t *testing.T) {
	lk := newLiveKey(t)
	ctx := context.Background()

	var keys *blinder
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{NewInformer: func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, ix toolscache.Indexers) toolscache.SharedIndexInformer {
			if _, ok := obj.(*v1.APIKey); ok {
				keys = newBlinder(lw)
				lw = keys
			}
			return watches.NewInformerFunc(clock.RealClock{})(lw, obj, resync, ix)
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	replica, err := New(Options{Addr: "127.0.0.1:0", Clock: liveClock, Format: live.rules.format, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the replica did not stop within a minute")
		}
	}()
	ask := func(token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+replica.Addr()+PathAuthorize+"?org="+lk.grant, nil)
		req.Header.Set("X-API-Key", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Clearance-Reason")
	}
	waitFor := func(what, token string, status int) {
		t.Helper()
		deadline := time.Now().Add(revocationCeiling)
		for replica.Addr() == "" || func() bool { code, _ := ask(token); return code != status }() {
			if time.Now().After(deadline) {
				code, reason := ask(token)
				t.Fatalf("waited %s for %s: still %d %q", revocationCeiling, what, code, reason)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the replica to accept the key", lk.token.Token, http.StatusOK)

	keys.blind()
	select {
	case <-keys.asked:
	case <-time.After(revocationCeiling):
		t.Fatal("the replica's APIKey informer did not come back to watch after its watch was cut")
	}
	released := false
	defer func() {
		if !released {
			keys.see()
		}
	}()

	if err := env.Client.Delete(ctx, lk.key); err != nil {
		t.Fatal(err)
	}
	fresh, err := live.rules.format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	again := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: lk.key.Namespace, Name: lk.key.Name}, Spec: v1.APIKeySpec{ApplicationName: lk.key.Spec.ApplicationName}}
	mustCreate(t, again)
	again.Status = v1.APIKeyStatus{KeyID: fresh.KeyID, Hash: keyformat.Hash(fresh.Token), Masked: keyformat.Mask(fresh.Token),
		State: v1.KeyActive, ApplicationID: lk.key.Status.ApplicationID}
	mustUpdateStatus(t, again)
	if again.UID == lk.key.UID {
		t.Fatal("the APIKey made again kept its UID")
	}

	keys.see()
	released = true
	waitFor("the replica to list again and accept the new key", fresh.Token, http.StatusOK)
	if code, reason := ask(lk.token.Token); code != http.StatusUnauthorized || reason != ReasonKeyUnknown {
		t.Fatalf("the deleted APIKey's key after the relist: %d %q, want 401 %q", code, reason, ReasonKeyUnknown)
	}
}
