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
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Prometheus is Debian's prometheus scraping loopback targets every ScrapeInterval, its data in
// a test's temporary directory.
type Prometheus struct {
	// URL is its HTTP API's base (http://127.0.0.1:port).
	URL string

	logPath string
	stop    func()
}

// ScrapeInterval is how often the test Prometheus scrapes.
const ScrapeInterval = time.Second

// ErrNoPrometheus says prometheus is not installed.
var ErrNoPrometheus = errors.New("prometheus is not installed (apt-get install -y prometheus; .ci/run installs it)")

// StartPrometheus starts prometheus scraping targets (host:port, path /metrics), skips the test
// when it is not installed, and stops it when the test ends (its log shown if the test failed).
func StartPrometheus(t *testing.T, targets ...string) *Prometheus {
	t.Helper()
	p, err := RunPrometheus(t.TempDir(), targets...)
	if errors.Is(err, ErrNoPrometheus) {
		t.Skip(err.Error() + ": skipping the test")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.Log())
		}
	})
	return p
}

// RunPrometheus starts prometheus scraping targets, its configuration and data in dir, and
// waits until it is ready; Stop ends it. For a TestMain, which has no test to skip or clean up
// after (ErrNoPrometheus when it is not installed).
func RunPrometheus(dir string, targets ...string) (*Prometheus, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, ErrNoPrometheus
	}
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	config := fmt.Sprintf(`global: {scrape_interval: %s, evaluation_interval: %s}
scrape_configs:
  - job_name: verifier
    static_configs: [{targets: [%s]}]
`, ScrapeInterval, ScrapeInterval, strings.Join(quoted, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		return nil, err
	}
	listen, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "prometheus.log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn", "--storage.tsdb.retention.time=1h")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, err
	}
	_ = out.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p := &Prometheus{URL: "http://" + listen, logPath: logPath}
	p.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("prometheus exited: %s", p.Log())
		default:
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("prometheus not ready on %s within 30 s", listen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends prometheus: SIGTERM, then SIGKILL after 10 s.
func (p *Prometheus) Stop() { p.stop() }

// Log is what prometheus logged.
func (p *Prometheus) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}
