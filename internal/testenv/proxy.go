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
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The plumbing the real-proxy tests share (internal/verifier's documented proxy configurations,
// test/partner's end-to-end flow): start a proxy from Debian's packages (nginx, Caddy, HAProxy)
// on a free loopback port, wait until it listens, stop it when the test ends, show its logs when
// the test failed, and check that no secret reached them.

// Proxy is how to run one proxy for a test.
type Proxy struct {
	// Name tells the proxy apart in messages and in the leak check's sources.
	Name string
	// Binary is looked up in PATH; the test is skipped when it is not installed (CI installs
	// nginx, caddy and haproxy: .ci/run).
	Binary string
	// Configure writes the proxy's configuration into dir for a proxy listening on listen (a
	// loopback host:port) and returns the binary's arguments. Every log file the configuration
	// names must be a *.log file in dir, where the proxy's own stdout and stderr go too
	// (output.log), so that StartProxy finds them all.
	Configure func(t testing.TB, dir, listen string) []string
}

// StartProxy runs the proxy in the foreground on a free loopback port and returns its address
// (host:port). Everything it writes goes to *.log files in its directory. When the test ends it
// is stopped, its logs are shown if the test failed (with every secret redacted), and the test
// fails if any of secrets() appears in them. The logs are registered for the suite's leak check
// (CollectFileForLeakCheck), and the secrets as keys to search for (CollectTokensForLeakCheck:
// secrets that are no key, such as OAuth tokens, must be registered with
// CollectSecretsForLeakCheck to be searched in the other texts as well).
func StartProxy(t *testing.T, p Proxy, secrets func() []string) string {
	t.Helper()
	bin, err := exec.LookPath(p.Binary)
	if err != nil {
		t.Skipf("%s is not installed (apt-get install -y %s; .ci/run installs it): skipping the real-proxy test", p.Binary, p.Binary)
	}
	for attempt := 0; ; attempt++ {
		dir := t.TempDir()
		listen, err := freeLoopbackAddr()
		if err != nil {
			t.Fatal(err)
		}
		args := p.Configure(t, dir, listen)
		output, err := os.Create(filepath.Join(dir, "output.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		// Caddy keeps its state under HOME and the XDG directories: keep them in dir.
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
		cmd.Stdout, cmd.Stderr = output, output
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so its workers are stopped with it
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_ = output.Close()
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM) // nginx: fast shutdown; HAProxy: hard stop; Caddy: graceful
			select {
			case <-exited:
				return
			case <-time.After(10 * time.Second):
			}
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not stop", p.Name)
			}
		}
		logs := func() string { return proxyLogs(dir) }
		err = waitListening(listen, exited, 20*time.Second)
		if err == nil {
			for _, f := range proxyLogFiles(dir) {
				CollectFileForLeakCheck(p.Name+" log", f)
			}
			CollectTokensForLeakCheck(secrets)
			t.Cleanup(func() {
				stop()
				all := logs()
				for _, s := range secrets() {
					if s != "" && strings.Contains(all, s) {
						t.Errorf("%s's logs hold key material", p.Name)
						break
					}
				}
				if t.Failed() {
					t.Logf("%s logs:\n%s", p.Name, Redact(all, secrets()))
				}
			})
			return listen
		}
		stop()
		all := logs()
		if attempt == 2 || !strings.Contains(strings.ToLower(all), "address already in use") {
			t.Fatalf("%s did not start: %v\n%s", p.Name, err, Redact(all, secrets()))
		}
	}
}

// Redact replaces every secret in s, so a failing test can show what it saw without leaking.
func Redact(s string, secrets []string) string {
	for _, k := range secrets {
		if k != "" {
			s = strings.ReplaceAll(s, k, "<redacted>")
		}
	}
	return s
}

// proxyLogFiles lists the *.log files in dir, where StartProxy and the configurations put them.
func proxyLogFiles(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	sort.Strings(files)
	return files
}

func proxyLogs(dir string) string {
	var all strings.Builder
	for _, f := range proxyLogFiles(dir) {
		b, _ := os.ReadFile(f)
		fmt.Fprintf(&all, "--- %s:\n%s\n", filepath.Base(f), b)
	}
	return all.String()
}

// freeLoopbackAddr finds a loopback port for a proxy, which cannot be told to pick one itself;
// the port may be taken again before the proxy binds it, so StartProxy retries.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}

func waitListening(addr string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("the proxy exited")
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, limit)
}
