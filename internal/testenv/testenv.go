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

// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest) with the
// Clearance CRDs and admission policies installed, once per test package, and kube-controller-manager beside them (the
// garbage collector, namespace and ServiceAccount controllers, as in a real cluster), and gives
// tests a client, a kubeconfig for kubectl and throwaway namespaces.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/clearance-dev/clearance/internal/wiring"
)

// Env is a running control plane with the Clearance CRDs and admission policies
// (config/policies) installed.
type Env struct {
	// Config reaches the apiserver as an admin (system:masters), who may impersonate anyone.
	Config *rest.Config
	// Client is an uncached admin client.
	Client client.Client
	// Scheme knows the built-in kinds and Clearance's.
	Scheme *runtime.Scheme
	// Root is the repository root, for reading config/ and hack/.
	Root string
	// Assets is the directory holding kube-apiserver, kube-controller-manager, etcd and kubectl.
	Assets string
	// Webhook says where the apiserver expects the webhook server (host, port, certificates).
	Webhook *envtest.WebhookInstallOptions
	// OIDC is the OpenID Connect provider the apiserver trusts; nil without Options.OIDC.
	OIDC *OIDCProvider

	env               *envtest.Environment
	certDir           string
	apiserverLog      *os.File // kube-apiserver's stdout and stderr, in certDir
	kubeconfig        string
	operator          *operatorIdentity  // OperatorIdentity's, once asked for
	controllerManager *controllerManager // nil with Options.WithoutControllerManager
}

// controllerManagerTimeout bounds how long a package waits for kube-controller-manager to work.
const controllerManagerTimeout = 90 * time.Second

// Scheme returns a scheme with the built-in kinds and Clearance's: the operator's own,
// wiring.Scheme, which Env.Scheme is too.
var Scheme = wiring.Scheme

// Main starts the control plane, runs the package's tests and stops it; use it from TestMain:
//
//	var env *testenv.Env
//	func TestMain(m *testing.M) { testenv.Main(m, &env) }
//
// Each hook runs after the control plane is up (to start an operator, say); the function it
// returns runs after the tests and may fail the run by returning an error.
func Main(m *testing.M, out **Env, hooks ...func(*Env) (after func() error, err error)) {
	run(m, out, Options{}, hooks)
}

// MainWithWebhooks is Main with Clearance's webhook configurations installed, pointing at
// Webhook.LocalServingHost/Port; a hook must start a webhook server there.
func MainWithWebhooks(m *testing.M, out **Env, hooks ...func(*Env) (after func() error, err error)) {
	run(m, out, Options{Webhooks: true}, hooks)
}

func run(m *testing.M, out **Env, opts Options, hooks []func(*Env) (func() error, error)) {
	e, err := start(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		os.Exit(1)
	}
	*out = e
	var afters []func() error
	for _, hook := range hooks {
		after, err := hook(e)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			_ = e.Stop()
			os.Exit(1)
		}
		afters = append(afters, after)
	}
	// kube-controller-manager started with the control plane and got ready while the hooks ran.
	if err := e.waitControllerManager(controllerManagerTimeout); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		_ = e.Stop()
		os.Exit(1)
	}
	code := m.Run()
	for i := len(afters) - 1; i >= 0; i-- {
		if err := afters[i](); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			code = 1
		}
	}
	if err := e.writeLeakEvidence(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: writing what the leak check searches: %v\n", err)
		code = 1
	}
	if cm := e.controllerManager; cm != nil {
		if err := cm.exited(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			code = 1
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "testenv: the end of kube-controller-manager's log (%s):\n%s\n", cm.logPath, cm.tail(40))
		}
	}
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stopping: %v\n", err)
	}
	os.Exit(code)
}

// Start brings up etcd and kube-apiserver on loopback, installs the CRDs and policies and starts
// kube-controller-manager, waiting until it works.
func Start() (*Env, error) {
	e, err := start(Options{})
	if err != nil {
		return nil, err
	}
	if err := e.waitControllerManager(controllerManagerTimeout); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

func start(opts Options) (*Env, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := assetsDir(root)
	if err != nil {
		return nil, err
	}
	scheme := Scheme()
	// A certificate directory of our own keeps the apiserver's serving and client CAs across
	// a restart (RestartAPIServer), so clients made before it still connect after.
	certDir, err := os.MkdirTemp("", "clearance-apiserver-")
	if err != nil {
		return nil, err
	}
	// kube-apiserver's own words, kept beside its certificates: a start that fails (the first, or
	// one after StopAPIServer) says why with the end of them.
	apiserverLog, err := os.Create(filepath.Join(certDir, apiserverLogName))
	if err != nil {
		_ = os.RemoveAll(certDir)
		return nil, err
	}
	// Open for the Env's lifetime: StartAPIServer gives it to the next kube-apiserver too. A
	// failed New leaves it to the process's exit.
	env := &envtest.Environment{
		ControlPlane:             envtest.ControlPlane{APIServer: &envtest.APIServer{CertDir: certDir, Out: apiserverLog, Err: apiserverLog}},
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	if opts.Webhooks {
		env.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "config", "webhook", "manifests.yaml")}}
	}
	opts.apply(env)
	var provider *OIDCProvider
	if opts.OIDC {
		if provider, err = StartOIDCProvider(); err != nil {
			_ = os.RemoveAll(certDir)
			return nil, fmt.Errorf("starting the OIDC provider: %w", err)
		}
		env.ControlPlane.APIServer.Configure().Set("authentication-config", provider.AuthenticationConfig)
	}
	stopProvider := func() {
		if provider != nil {
			_ = provider.Stop()
		}
	}
	cfg, err := env.Start()
	if err != nil {
		stopProvider()
		err = fmt.Errorf("starting kube-apiserver and etcd from %s: %w; the end of kube-apiserver's log:\n%s", assets, err, lastLines(apiserverLog.Name(), 30))
		_ = os.RemoveAll(certDir)
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		stopProvider()
		_ = os.RemoveAll(certDir)
		return nil, err
	}
	if !opts.WithoutCRDs {
		if err := installPolicies(context.Background(), c, root); err != nil {
			_ = env.Stop()
			stopProvider()
			_ = os.RemoveAll(certDir)
			return nil, err
		}
	}
	e := &Env{Config: cfg, Client: c, Scheme: scheme, Root: root, Assets: assets, env: env, certDir: certDir, apiserverLog: apiserverLog, Webhook: &env.WebhookInstallOptions, OIDC: provider}
	if !opts.WithoutControllerManager && os.Getenv(ControllerManagerEnv) != "off" {
		if err := e.startControllerManager(); err != nil {
			_ = env.Stop()
			stopProvider()
			_ = os.RemoveAll(certDir)
			return nil, err
		}
	}
	return e, nil
}

// Stop ends kube-controller-manager and the control plane and removes the files they wrote.
func (e *Env) Stop() error {
	var cmErr error
	if e.controllerManager != nil {
		cmErr = e.controllerManager.shutdown()
	}
	if e.kubeconfig != "" {
		_ = os.RemoveAll(filepath.Dir(e.kubeconfig))
	}
	if e.operator != nil {
		_ = os.RemoveAll(filepath.Dir(e.operator.kubeconfig))
	}
	err := e.env.Stop()
	_ = e.apiserverLog.Close()
	_ = os.RemoveAll(e.certDir)
	var oidcErr error
	if e.OIDC != nil {
		oidcErr = e.OIDC.Stop()
	}
	return errors.Join(cmErr, err, oidcErr)
}

// StopAPIServer kills kube-apiserver (etcd keeps running), as a crashed or unreachable
// control plane, for outage tests; StartAPIServer brings it back on the same address with
// the same certificates. (A graceful stop waits a minute and more for open watches.)
// kube-controller-manager keeps running meanwhile and reconnects by itself, as in a cluster.
func (e *Env) StopAPIServer() error {
	pid, err := e.apiserverPid()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	for range 200 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil {
			return nil
		}
		if data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); strings.Contains(string(data), ") Z ") {
			return nil // a zombie until envtest reaps it: no longer serving
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver (pid %d) did not exit after SIGKILL", pid)
}

// apiserverPid finds this environment's kube-apiserver by its certificate directory.
func (e *Env) apiserverPid() (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if filepath.Base(args[0]) == "kube-apiserver" && strings.Contains(string(cmdline), e.certDir) {
			return pid, nil
		}
	}
	return 0, errors.New("kube-apiserver is not running")
}

// apiserverLogName is the file in the certificate directory kube-apiserver writes its log to.
const apiserverLogName = "kube-apiserver.log"

// StartAPIServer starts kube-apiserver again after StopAPIServer and waits until it is healthy.
// When it does not come up, the error ends with the end of its log.
func (e *Env) StartAPIServer() error {
	if err := e.env.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("%w; the end of kube-apiserver's log:\n%s", err, lastLines(filepath.Join(e.certDir, apiserverLogName), 30))
	}
	return nil
}

// Kubeconfig returns the path of a kubeconfig for an admin user, for running kubectl.
func (e *Env) Kubeconfig(t testing.TB) string {
	t.Helper()
	path, err := e.WriteKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteKubeconfig writes (once) a kubeconfig for an admin user and returns its path.
func (e *Env) WriteKubeconfig() (string, error) {
	if e.kubeconfig != "" {
		return e.kubeconfig, nil
	}
	_, path, err := e.addUser("", envtest.User{Name: "clearance-test-admin", Groups: []string{"system:masters"}})
	if err != nil {
		return "", fmt.Errorf("adding an admin user: %w", err)
	}
	e.kubeconfig = path
	return path, nil
}

// addUser gives user a client certificate the apiserver trusts and writes a kubeconfig for it
// into dir (empty: a directory of its own); it returns a config for the user and the
// kubeconfig's path.
func (e *Env) addUser(dir string, user envtest.User) (*rest.Config, string, error) {
	added, err := e.env.AddUser(user, nil)
	if err != nil {
		return nil, "", err
	}
	data, err := added.KubeConfig()
	if err != nil {
		return nil, "", fmt.Errorf("writing a kubeconfig: %w", err)
	}
	own := dir == ""
	if own {
		if dir, err = os.MkdirTemp("", "clearance-kubeconfig-"); err != nil {
			return nil, "", err
		}
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		if own {
			_ = os.RemoveAll(dir)
		}
		return nil, "", err
	}
	return added.Config(), path, nil
}

// Kubectl runs the kubectl built with the apiserver as an admin, from the repository root,
// and returns its stdout; stderr is included in the error.
func (e *Env) Kubectl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.Assets, "kubectl"), args...)
	cmd.Dir = e.Root
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.Kubeconfig(t))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// As returns a config that acts as another user through impersonation, with groups and extra
// as an OIDC login would carry them.
func (e *Env) As(user string, groups []string, extra map[string][]string) *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups, Extra: extra}
	return cfg
}

// HelmOffline are the arguments helm template needs without a cluster to ask: the chart
// requires Kubernetes 1.36 and the admission policy APIs (templates/requirements.yaml), and
// helm's built-in answer is an older version without them.
var HelmOffline = []string{"--kube-version", "1.37.0",
	"--api-versions", "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy",
	"--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"}

// HelmTemplate renders charts/clearance into clearance-system with extra helm arguments, as a
// cluster of the version the tests run would (HelmOffline). It
// uses $HELM (make test sets it to the pinned helm) or the one make installs into ./bin, and
// skips the test when neither is there.
func (e *Env) HelmTemplate(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := e.HelmTemplateFor(t, HelmOffline, args...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return out
}

// HelmTemplateFor renders the chart as HelmTemplate does, but as a cluster that answers what
// cluster says (--kube-version, --api-versions) would, and returns helm's refusal (its stderr)
// as the error rather than failing the test.
func (e *Env) HelmTemplateFor(t testing.TB, cluster []string, args ...string) ([]byte, error) {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		matches, _ := filepath.Glob(filepath.Join(e.Root, "bin", "helm-v*"))
		if len(matches) > 0 {
			helm = matches[len(matches)-1]
		}
	}
	if _, err := os.Stat(helm); helm == "" || err != nil {
		t.Skip("helm is not installed (make helm installs it; make test does)")
	}
	base := append([]string{"template", "clearance", filepath.Join(e.Root, "charts", "clearance"), "-n", "clearance-system"}, cluster...)
	cmd := exec.Command(helm, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Namespace creates a namespace with a unique name for one test and deletes it afterwards.
func (e *Env) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + hex.EncodeToString(suffix)}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(context.Background(), ns) })
	return ns.Name
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (no go.mod above the working directory)")
		}
		dir = parent
	}
}

// assetsDir is KUBEBUILDER_ASSETS when set, or what hack/kube-assets.sh builds and caches.
func assetsDir(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	cmd := exec.Command(filepath.Join(root, "hack", "kube-assets.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/kube-assets.sh could not provide kube-apiserver, kube-controller-manager, etcd and kubectl: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Within polls cond every 20 ms until it returns nil, and fails the test after timeout with
// what it waited for and cond's last error.
func Within(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last: %v)", timeout, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
