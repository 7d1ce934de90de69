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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// nginxConfig fills testdata/nginx.conf.tmpl.
type nginxConfig struct {
	Dir, Listen, Verifier, Upstream, Org string
	AsRoot                               bool
}

func renderNginx(t testing.TB, cfg nginxConfig) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "nginx.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, cfg); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestNginxAuthRequestPassesTheVerifiersAnswersToClients runs Debian's nginx with auth_request
// in front of a small upstream, the verifier as the auth service, and sends requests through
// nginx on loopback: allowed, 401, 403 and 429, with the verifier's headers at the client.
func TestNginxAuthRequestPassesTheVerifiersAnswersToClients(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed (apt-get install -y nginx; .ci/run installs it): skipping the real-client test")
	}
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 3, Period: metav1.Duration{Duration: time.Hour}}}
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// The verifier, as the operator serves it.
	vln := listen(t)
	served := make(chan error, 1)
	go func() { served <- w.v.Serve(ctx, vln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(15 * time.Second):
			t.Error("the verifier did not shut down")
		}
	})

	// The upstream echoes the identity nginx passed it.
	uln := listen(t)
	upstream := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "upstream: org=%s role=%s app=%s key=%s\n", r.Header.Get("X-Clearance-Org"),
			r.Header.Get("X-Clearance-Role"), r.Header.Get("X-Clearance-Application-Id"), r.Header.Get("X-Clearance-Key-Id"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = upstream.Serve(uln) }()
	t.Cleanup(func() { _ = upstream.Close() })

	addr := startNginx(t, nginx, vln.Addr().String(), uln.Addr().String())
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(headers ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/reports?year=2026", nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	wantHeaders := func(resp *http.Response, want map[string]string) {
		t.Helper()
		for name, v := range want {
			if got := resp.Header.Get(name); got != v {
				t.Errorf("%d: %s = %q, want %q (all: %v)", resp.StatusCode, name, got, v, resp.Header)
			}
		}
	}

	// Allowed: the upstream is reached with the verified identity, not the one the client forged.
	resp, body := send("X-API-Key", w.token.Token, "X-Clearance-Role", "OrgAdmin")
	if resp.StatusCode != http.StatusOK || body != "upstream: org=globex role=Analyst app="+appID+" key="+w.token.KeyID+"\n" {
		t.Fatalf("allowed request: %d %q", resp.StatusCode, body)
	}
	wantHeaders(resp, map[string]string{
		"X-Clearance-Application-Id": appID, "X-Clearance-Org": grantOrg, "X-Clearance-Role": "Analyst",
		"X-Clearance-Key-Id": w.token.KeyID, "X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2",
		"X-RateLimit-Reset": strconv.FormatInt(epoch.Unix()+1200, 10), "RateLimit": `"general";r=2;t=1200`, "RateLimit-Policy": `"general";q=3;w=3600`,
	})

	// 401: no key; the challenge and the reason reach the client.
	resp, body = send()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"reason":"key_missing"`) {
		t.Fatalf("no key: %d %q", resp.StatusCode, body)
	}
	wantHeaders(resp, map[string]string{"WWW-Authenticate": `api-key realm="clearance"`, "X-Clearance-Reason": ReasonKeyMissing})
	if n := len(resp.Header.Values("WWW-Authenticate")); n != 1 {
		t.Errorf("%d WWW-Authenticate headers, want 1", n)
	}

	// 403: a browser on an origin the application does not allow.
	resp, body = send("X-API-Key", w.token.Token, "Origin", "https://evil.example")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"reason":"origin_not_allowed"`) {
		t.Fatalf("foreign origin: %d %q", resp.StatusCode, body)
	}

	// 429: the budget of 3 per hour is spent (the refusals above cost nothing).
	for i := range 2 {
		if resp, body := send("Authorization", "api-key "+w.token.Token); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the budget: %d %q", i+2, resp.StatusCode, body)
		}
	}
	resp, body = send("Authorization", "api-key "+w.token.Token)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, `"reason":"rate_limited"`) {
		t.Fatalf("over the budget: %d %q", resp.StatusCode, body)
	}
	wantHeaders(resp, map[string]string{"Retry-After": "1200", "X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0",
		"X-Clearance-Reason": ReasonRateLimited})

	// An unknown key through nginx: 401 as well, and nothing echoes it.
	resp, body = send("X-API-Key", w.mint().Token)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, ReasonKeyUnknown) {
		t.Fatalf("unknown key: %d %q", resp.StatusCode, body)
	}
	for _, k := range w.minted {
		if strings.Contains(body+headerText(resp.Header), k.Secret) {
			t.Error("nginx's answer holds key material")
		}
	}
}

// startNginx runs nginx in the foreground on a free loopback port and returns its address;
// it is stopped when the test ends.
func startNginx(t *testing.T, nginx, verifier, upstream string) string {
	t.Helper()
	for attempt := 0; ; attempt++ {
		dir := t.TempDir()
		port := freePort(t)
		conf := renderNginx(t, nginxConfig{Dir: dir, Listen: port, Verifier: verifier, Upstream: upstream, Org: grantOrg,
			AsRoot: os.Geteuid() == 0})
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		output, err := os.Create(filepath.Join(dir, "output.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(nginx, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
		cmd.Stdout, cmd.Stderr = output, output
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so the workers can be killed with it
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_ = output.Close()
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM) // fast shutdown of master and workers
			select {
			case <-exited:
				return
			case <-time.After(5 * time.Second):
			}
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				t.Error("nginx did not stop")
			}
		}
		logs := func() string {
			out, _ := os.ReadFile(filepath.Join(dir, "output.log"))
			errs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return string(out) + "\nerror.log:\n" + string(errs)
		}
		err = waitListening(port, exited, 10*time.Second)
		if err == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("nginx output:\n%s", logs())
				}
			})
			return port
		}
		stop()
		if attempt == 2 || !strings.Contains(logs(), "Address already in use") {
			t.Fatalf("nginx did not start: %v\n%s", err, logs())
		}
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// freePort finds a loopback port for nginx, which cannot be told to pick one.
func freePort(t *testing.T) string {
	t.Helper()
	ln := listen(t)
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func waitListening(addr string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("nginx exited")
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
