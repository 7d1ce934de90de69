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

package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// ControllerManagerControllers are the kube-controller-manager controllers every test package
// gets, those a cluster without nodes can use: the garbage collector (deleting an APIKey
// deletes its Secret through the owner reference), the namespace controller (a deleted
// namespace is emptied and goes away) and the ServiceAccount and token controllers (every
// namespace gets its `default` ServiceAccount), as in a real cluster.
const ControllerManagerControllers = "garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller"

// controllerManagerUser is the user kube-controller-manager acts as, an admin, named as in a
// cluster so the apiserver's audit and the webhooks see who deleted what.
const controllerManagerUser = "system:kube-controller-manager"

// envtest's kube-apiserver signs ServiceAccount tokens with this key in its certificate
// directory (controller-runtime's pkg/internal/testing/controlplane, saKeyFile).
const apiserverSAKeyFile = "sa-signer.key"

// controllerManager is a kube-controller-manager process beside envtest's kube-apiserver.
type controllerManager struct {
	dir, logPath string
	started      time.Time
	readyAfter   time.Duration // how long it took to become ready; 0 until it is

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has ended
	err  error         // what Wait returned, once done is closed
	stop bool          // Stop ended it, so its exit is expected
}

// startControllerManager starts kube-controller-manager against the running apiserver as an
// admin, with its log, kubeconfig and root CA in a directory of its own. It does not wait for
// it: waitControllerManager does.
func (e *Env) startControllerManager() error {
	bin := filepath.Join(e.Assets, "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no kube-controller-manager in %s (KUBEBUILDER_ASSETS?): unset KUBEBUILDER_ASSETS to have "+
			"hack/kube-assets.sh build it beside kube-apiserver, or put one of the same version there: %w", e.Assets, err)
	}
	dir, err := os.MkdirTemp("", "clearance-kube-controller-manager-")
	if err != nil {
		return err
	}
	cm := &controllerManager{dir: dir, logPath: filepath.Join(dir, "kube-controller-manager.log"), done: make(chan struct{})}
	fail := func(err error) error { _ = os.RemoveAll(dir); return err }

	_, kubeconfigPath, err := e.addUser(dir, envtest.User{Name: controllerManagerUser, Groups: []string{"system:masters"}})
	if err != nil {
		return fail(fmt.Errorf("adding kube-controller-manager's user: %w", err))
	}
	caPath := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caPath, e.Config.CAData, 0o600); err != nil {
		return fail(err)
	}
	args := []string{
		"--kubeconfig=" + kubeconfigPath,
		"--authentication-kubeconfig=" + kubeconfigPath,
		"--authorization-kubeconfig=" + kubeconfigPath,
		"--controllers=" + ControllerManagerControllers,
		"--service-account-private-key-file=" + filepath.Join(e.certDir, apiserverSAKeyFile),
		"--root-ca-file=" + caPath,
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--secure-port=0",
	}
	logFile, err := os.OpenFile(cm.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fail(err)
	}
	CollectFileForLeakCheck("kube-controller-manager log", cm.logPath)

	startErr := make(chan error, 1)
	go func() {
		// Pdeathsig kills the process when the thread that started it ends, so it cannot outlive
		// a test binary that a timeout or a signal ended without Stop. The thread stays locked to
		// this goroutine, which lives as long as the process.
		runtime.LockOSThread()
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			_ = logFile.Close()
			startErr <- err
			return
		}
		cm.cmd = cmd
		cm.started = time.Now()
		startErr <- nil
		cm.err = cmd.Wait()
		_ = logFile.Close()
		close(cm.done)
	}()
	if err := <-startErr; err != nil {
		return fail(fmt.Errorf("starting kube-controller-manager: %w", err))
	}
	e.controllerManager = cm
	return nil
}

// waitControllerManager waits until kube-controller-manager works: its ServiceAccount
// controller has created the `default` ServiceAccount of the `default` namespace (it serves no
// health endpoint with --secure-port=0). A namespace's ServiceAccount, a collected Secret or a
// deleted namespace may still take a moment after this.
func (e *Env) waitControllerManager(timeout time.Duration) error {
	cm := e.controllerManager
	if cm == nil || cm.readyAfter != 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	key := types.NamespacedName{Namespace: "default", Name: "default"}
	var lastErr error
	for {
		select {
		case <-cm.done:
			return fmt.Errorf("kube-controller-manager exited while starting (%v); the end of its log:\n%s", cm.err, cm.tail(30))
		default:
		}
		if lastErr = e.Client.Get(ctx, key, &corev1.ServiceAccount{}); lastErr == nil {
			cm.readyAfter = time.Since(cm.started)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-controller-manager created no default ServiceAccount within %s (%v); the end of its log:\n%s", timeout, lastErr, cm.tail(30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exited reports why kube-controller-manager ended on its own (nil while it runs or after Stop).
func (cm *controllerManager) exited() error {
	select {
	case <-cm.done:
		if cm.stop {
			return nil
		}
		return fmt.Errorf("kube-controller-manager exited during the tests: %v", cm.err)
	default:
		return nil
	}
}

// shutdown ends the process (SIGTERM, then SIGKILL after 5 s) and removes its directory.
func (cm *controllerManager) shutdown() error {
	defer func() { _ = os.RemoveAll(cm.dir) }()
	select {
	case <-cm.done:
		return nil
	default:
	}
	cm.stop = true
	_ = cm.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-cm.done:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = cm.cmd.Process.Kill()
	select {
	case <-cm.done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("kube-controller-manager did not exit after SIGKILL")
	}
}

// tail is the last n lines of the log.
func (cm *controllerManager) tail(n int) string { return lastLines(cm.logPath, n) }

// lastLines is the end of a log file: its last n lines.
func lastLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ControllerManagerLog returns what kube-controller-manager has logged so far, or "" when the
// package runs without it (Options.WithoutControllerManager).
func (e *Env) ControllerManagerLog() string {
	if e.controllerManager == nil {
		return ""
	}
	data, _ := os.ReadFile(e.controllerManager.logPath)
	return string(data)
}

// ControllerManagerStartup is how long kube-controller-manager took from its start until it
// worked (the default ServiceAccount appeared), or 0 without it.
func (e *Env) ControllerManagerStartup() time.Duration {
	if e.controllerManager == nil {
		return 0
	}
	return e.controllerManager.readyAfter
}

// WaitNamespacesDeleted waits until no namespace is Terminating: the namespace controller has
// emptied and removed those earlier tests deleted (Namespace deletes its namespace after the
// test). A test that counts the apiserver's writes calls it first, so the operator's work on
// objects going with their namespace is not counted as its own.
func (e *Env) WaitNamespacesDeleted(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var list corev1.NamespaceList
		if err := e.Client.List(context.Background(), &list); err != nil {
			t.Fatal(err)
		}
		var terminating []string
		for _, ns := range list.Items {
			if ns.DeletionTimestamp != nil {
				terminating = append(terminating, ns.Name)
			}
		}
		if len(terminating) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespaces still Terminating after %s: %v", timeout, terminating)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// GCSawSecrets returns once kube-controller-manager's garbage collector has taken in every Secret
// of ns created so far. It orphans only the dependents in its graph: a Secret it has not seen yet
// when its owner is deleted with --cascade=orphan keeps its owner reference to the deleted
// object, and is deleted as soon as the collector sees it. That is Kubernetes' race, not what a
// test of an orphaning delete is about (CI saw it under load, right after the collector
// started). The barrier: a Secret owned by an APIKey that does not exist, which the collector
// deletes once its graph, fed by one queue in order, has taken it in, and so every Secret
// created before it.
func (e *Env) GCSawSecrets(t testing.TB, ns string) {
	t.Helper()
	ctx := context.Background()
	probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "gc-barrier-",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: v1.GroupVersion.String(), Kind: "APIKey",
			Name: "gc-barrier-owner-that-does-not-exist", UID: "00000000-0000-0000-0000-000000000000"}}}}
	if err := e.Client.Create(ctx, probe); err != nil {
		t.Fatalf("the garbage collector's barrier: %v", err)
	}
	Within(t, 30*time.Second, "the garbage collector to take in the Secrets of "+ns+" (and delete its barrier)", func() error {
		switch err := e.Client.Get(ctx, client.ObjectKeyFromObject(probe), &corev1.Secret{}); {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return errors.New("the barrier is still there")
	})
}
