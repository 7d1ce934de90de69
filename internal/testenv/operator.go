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
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Operator is the clearance binary running as a process of its own against the control plane,
// as it runs in a cluster: it can be killed with -9, stopped and continued, and measured.
type Operator struct {
	// Name tells operators of one test apart in logs and in their identity for leader election.
	Name string
	// MetricsURL, HealthURL and VerifierURL are the loopback base URLs of its endpoints.
	MetricsURL, HealthURL, VerifierURL string
	// WebhookURL is where it serves admission webhooks (https), registered with the apiserver
	// when WithWebhooks was given.
	WebhookURL string
	// LogPath is the file its stdout and stderr go to, kept across restarts.
	LogPath string

	bin, kubeconfig string
	args            []string
	dir             string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// BuildOperator compiles the operator (the repository's main package) once per test binary.
func (e *Env) BuildOperator() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "clearance-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "clearance")
		cmd := exec.Command("go", "build", "-o", buildPath, ".")
		cmd.Dir = e.Root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the operator: %w: %s", err, out)
		}
	})
	return buildPath, buildErr
}

// OperatorOptions shape an operator process. Args are extra flags, e.g. --leader-elect.
type OperatorOptions struct {
	Name string
	// WithWebhooks serves the admission webhooks and registers them at a loopback URL, as
	// make run does; otherwise webhooks are off.
	WithWebhooks bool
	// CertDir is its --webhook-cert-dir; default a directory of its own, removed by Cleanup.
	CertDir string
	// DefaultCertDir leaves --webhook-cert-dir out, so the operator makes its default one.
	DefaultCertDir bool
	// OrgDefaults lets it create each org's default MetricSet (--org-defaults), as a real
	// install does; off, tests own every MetricSet they name (many name theirs "default").
	OrgDefaults bool
	// ServiceAccount runs it as a cluster does: as its ServiceAccount, authorized by the RBAC
	// of config/rbac alone (OperatorIdentity); otherwise as an admin user.
	ServiceAccount bool
	Args           []string
}

// StartOperator starts an operator process as an admin user (or its ServiceAccount), with ports
// of its own on loopback, and waits until it is ready. Stop it with Stop (or Kill).
func (e *Env) StartOperator(o OperatorOptions) (*Operator, error) {
	bin, err := e.BuildOperator()
	if err != nil {
		return nil, err
	}
	kubeconfig, err := e.WriteKubeconfig()
	if o.ServiceAccount {
		_, kubeconfig, err = e.OperatorIdentity()
	}
	if err != nil {
		return nil, err
	}
	ports, err := FreePorts(4)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "clearance-operator-")
	if err != nil {
		return nil, err
	}
	name := o.Name
	if name == "" {
		name = "operator"
	}
	op := &Operator{
		Name:        name,
		MetricsURL:  "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		HealthURL:   "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		VerifierURL: "http://127.0.0.1:" + strconv.Itoa(ports[2]),
		WebhookURL:  "https://localhost:" + strconv.Itoa(ports[3]),
		LogPath:     filepath.Join(dir, "operator.log"),
		bin:         bin, kubeconfig: kubeconfig, dir: dir,
	}
	op.args = []string{
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(ports[0]),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(ports[1]),
		"--verifier-bind-address=127.0.0.1:" + strconv.Itoa(ports[2]),
		"--webhook-port=" + strconv.Itoa(ports[3]),
		"--enable-webhooks=" + strconv.FormatBool(o.WithWebhooks),
		"--graceful-shutdown-timeout=5s",
		"--org-defaults=" + strconv.FormatBool(o.OrgDefaults),
	}
	switch {
	case o.DefaultCertDir:
	case o.CertDir != "":
		op.args = append(op.args, "--webhook-cert-dir="+o.CertDir)
	default:
		op.args = append(op.args, "--webhook-cert-dir="+filepath.Join(dir, "certs"))
	}
	if o.WithWebhooks {
		op.args = append(op.args, "--webhook-local-url="+op.WebhookURL)
		if err := ensureOperatorNamespace(context.Background(), e.Client); err != nil {
			return nil, err
		}
		if o.ServiceAccount {
			// Its ClusterRole may update the two configurations but not create them: in a
			// cluster the chart does. Here they are made empty, as admin, for it to fill.
			if err := ensureWebhookConfigurations(context.Background(), e.Client); err != nil {
				return nil, err
			}
		}
	}
	op.args = append(op.args, o.Args...)
	CollectFileForLeakCheck("operator "+name+" log", op.LogPath)
	if err := op.Start(); err != nil {
		return nil, err
	}
	return op, nil
}

// Start starts the process (again, after Kill or Stop) and waits until /readyz answers.
func (op *Operator) Start() error {
	logFile, err := os.OpenFile(op.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(op.bin, op.args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+op.kubeconfig, "POD_NAME="+op.Name)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting %s: %w", op.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(done) }()
	op.mu.Lock()
	op.cmd, op.done = cmd, done
	op.mu.Unlock()
	return op.waitReady(done, 2*time.Minute)
}

// waitReady polls /readyz until it answers 200, the process ends (done closes) or timeout passes.
func (op *Operator) waitReady(done <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready; its log: %s", op.Name, op.tail())
		default:
		}
		resp, err := c.Get(op.HealthURL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s; its log: %s", op.Name, timeout, op.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Pid is the process id of the running process.
func (op *Operator) Pid() int {
	cmd, _ := op.running()
	return cmd.Process.Pid
}

// Signal sends sig (SIGSTOP, SIGCONT, ...) to the process.
func (op *Operator) Signal(sig syscall.Signal) error {
	cmd, _ := op.running()
	return cmd.Process.Signal(sig)
}

// running is the current process and the channel closed when it ends; nil before Start.
func (op *Operator) running() (*exec.Cmd, chan struct{}) {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.cmd, op.done
}

// Kill ends the process with SIGKILL, as a crash or an evicted pod would, and waits for it.
func (op *Operator) Kill() {
	cmd, done := op.running()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-done
}

// Stop ends the process with SIGTERM (a clean shutdown) and waits up to 30s, then kills it.
func (op *Operator) Stop() {
	cmd, done := op.running()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		op.Kill()
	}
}

// Exited reports whether the process has ended.
func (op *Operator) Exited() bool {
	_, done := op.running()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Cleanup stops the process and removes its directory, log included.
func (op *Operator) Cleanup() {
	op.Kill()
	_ = os.RemoveAll(op.dir)
}

// RSSBytes is the process's resident set size, from /proc.
func (op *Operator) RSSBytes() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", op.Pid()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// Log returns what the process wrote so far.
func (op *Operator) Log() string {
	data, _ := os.ReadFile(op.LogPath)
	return string(data)
}

func (op *Operator) tail() string {
	log := op.Log()
	if len(log) > 4000 {
		log = "..." + log[len(log)-4000:]
	}
	return log
}

// FreePorts finds n ports free now on every interface (and so on loopback too), held together
// so they differ, for a process started next to bind. They are drawn below the kernel's
// ephemeral range: a port the kernel hands out (to a listener on port 0, an apiserver or etcd
// of a package running beside, or to any outgoing connection) can be taken between this call
// and that bind, or while the process restarts on it; one below the range only by a bind that
// names it.
func FreePorts(n int) ([]int, error) {
	lo, hi := portsBelowEphemeral()
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			return nil, fmt.Errorf("no %d free ports among %d to %d after %d tries", n, lo, hi-1, tries)
		}
		p := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		listeners = append(listeners, l)
		ports = append(ports, p)
	}
	return ports, nil
}

// portsBelowEphemeral is the range [lo, hi) FreePorts draws from: from 10000 up to the first
// port of the kernel's ephemeral range (net.ipv4.ip_local_port_range; Linux's default 32768).
func portsBelowEphemeral() (lo, hi int) {
	lo, hi = 10000, 32768
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	if f := strings.Fields(string(data)); len(f) == 2 {
		if first, err := strconv.Atoi(f[0]); err == nil && first > lo+1000 {
			hi = first
		}
	}
	return lo, hi
}
