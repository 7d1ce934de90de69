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
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearance-dev/clearance/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// TestAnOperatorProcessSurvivesAnAPIServerRestart checks the harness the reliability tests and
// make bench stand on: an operator process with webhooks, and an apiserver that comes back
// with the same address and certificates, so clients made before still work.
func TestAnOperatorProcessSurvivesAnAPIServerRestart(t *testing.T) {
	op, err := env.StartOperator(testenv.OperatorOptions{WithWebhooks: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Cleanup)
	if rss, err := op.RSSBytes(); err != nil || rss == 0 {
		t.Fatalf("RSS %d, %v", rss, err)
	}
	// The webhooks speak HTTP/1.1 only unless --enable-http2 (HTTP/2 stream-reset attacks).
	conn, err := tls.Dial("tcp", strings.TrimPrefix(op.WebhookURL, "https://"), &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // only the negotiated protocol is checked
		NextProtos:         []string{"h2", "http/1.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.ConnectionState().NegotiatedProtocol; got != "http/1.1" {
		t.Errorf("the webhook server negotiated %q, want http/1.1", got)
	}
	_ = conn.Close()
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "after-restart-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatalf("the admin client made before the restart: %v", err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	if op.Exited() {
		t.Fatalf("the operator exited during the apiserver's restart:\n%s", op.Log())
	}
}

// TestFreePortsAreNeverOnesTheKernelHandsOut checks that the ports a test process is started on
// cannot be taken meanwhile by a listener on port 0 or an outgoing connection (a flake seen
// once: an operator could not bind its console port): each differs, lies below the kernel's
// ephemeral range and can be bound on loopback.
func TestFreePortsAreNeverOnesTheKernelHandsOut(t *testing.T) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skip("no ip_local_port_range on this system:", err)
	}
	var first, last int
	if _, err := fmt.Sscan(string(data), &first, &last); err != nil {
		t.Fatal(err)
	}
	ports, err := testenv.FreePorts(64)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d returned twice", p)
		}
		seen[p] = true
		if p >= first && p <= last || p < 1024 {
			t.Errorf("port %d is not between 1024 and the ephemeral range %d-%d", p, first, last)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("port %d cannot be bound: %v", p, err)
			continue
		}
		_ = l.Close()
	}
}
