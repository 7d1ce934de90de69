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

package testenv_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestTheControllerManagerRuns: every package gets kube-controller-manager, so a namespace
// gets its default ServiceAccount, an owned object is collected after its owner, and a deleted
// namespace goes away, as in a cluster.
func TestTheControllerManagerRuns(t *testing.T) {
	t.Logf("kube-controller-manager worked %s after it started", env.ControllerManagerStartup().Round(time.Millisecond))
	ns := env.Namespace(t, "kcm")
	within(t, 30*time.Second, "the default ServiceAccount of "+ns, func() error {
		return env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "default"}, &corev1.ServiceAccount{})
	})
	t.Logf("an owned object was collected %s after its owner was deleted", collectOwned(t, ns).Round(time.Millisecond))

	start := time.Now()
	if err := env.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Minute, "namespace "+ns+" to go away", func() error {
		return gone(env.Client.Get(context.Background(), client.ObjectKey{Name: ns}, &corev1.Namespace{}))
	})
	t.Logf("the namespace was gone %s after its deletion", time.Since(start).Round(time.Millisecond))
	env.WaitNamespacesDeleted(t, time.Minute)
}

// TestTheControllerManagerFollowsAnAPIServerRestart: after an apiserver outage the
// controller-manager reconnects by itself and collects again.
func TestTheControllerManagerFollowsAnAPIServerRestart(t *testing.T) {
	ns := env.Namespace(t, "kcm-restart")
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("after the restart, an owned object was collected %s after its owner was deleted", collectOwned(t, ns).Round(time.Millisecond))
	if strings.Contains(env.ControllerManagerLog(), "panic") {
		t.Errorf("kube-controller-manager panicked:\n%s", env.ControllerManagerLog())
	}
}

// collectOwned creates a ConfigMap owned by another, deletes the owner and returns how long
// the garbage collector took to delete the dependent.
func collectOwned(t *testing.T, ns string) time.Duration {
	t.Helper()
	ctx := context.Background()
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owner"}}
	if err := env.Client.Create(ctx, owner); err != nil {
		t.Fatal(err)
	}
	dependent := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dependent", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID,
	}}}}
	if err := env.Client.Create(ctx, dependent); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := env.Client.Delete(ctx, owner); err != nil {
		t.Fatal(err)
	}
	within(t, time.Minute, "the garbage collector to delete the dependent ConfigMap", func() error {
		return gone(env.Client.Get(ctx, client.ObjectKeyFromObject(dependent), &corev1.ConfigMap{}))
	})
	return time.Since(start)
}

// gone turns a Get's NotFound into success, and its success into an error to retry.
func gone(err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err == nil:
		return errStillThere
	default:
		return err
	}
}

var errStillThere = errors.New("still there")

// within polls cond every 50 ms until it returns nil, and fails the test after timeout with the
// end of kube-controller-manager's log.
func within(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log := strings.Split(strings.TrimRight(env.ControllerManagerLog(), "\n"), "\n")
			if len(log) > 30 {
				log = log[len(log)-30:]
			}
			t.Fatalf("timed out after %s waiting for %s (last: %v); end of kube-controller-manager's log:\n%s", timeout, what, err, strings.Join(log, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
