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
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestAKeyDeletedAndMadeAgainWhileTheVerifierWasBlindIsRefusedOnceItListsAgain: a verifier
// replica's APIKey watch is cut (a partition) while the key is deleted and applied again under
// the same name with a new key; when it may watch again the apiserver no longer holds its
// resource version, so its informer lists again and hands the new object over as an update of
// the old one. The deleted key is refused from then on: the informer, the list and the
// apiserver are real, only the partition is the test's.
func TestAKeyDeletedAndMadeAgainWhileTheVerifierWasBlindIsRefusedOnceItListsAgain(t *testing.T) {
	lk := newLiveKey(t)
	ctx := context.Background()

	blinders := &testenv.Blinders{Clock: clock.RealClock{}}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{NewInformer: blinders.NewInformer},
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

	keys := blinders.For(&v1.APIKey{})
	keys.Blind()
	select {
	case <-keys.Held():
	case <-time.After(revocationCeiling):
		t.Fatal("the replica's APIKey informer did not come back to watch after its watch was cut")
	}
	released := false
	defer func() {
		if !released {
			keys.See()
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

	keys.See()
	released = true
	waitFor("the replica to list again and accept the new key", fresh.Token, http.StatusOK)
	if code, reason := ask(lk.token.Token); code != http.StatusUnauthorized || reason != ReasonKeyUnknown {
		t.Fatalf("the deleted APIKey's key after the relist: %d %q, want 401 %q", code, reason, ReasonKeyUnknown)
	}
}
