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

package webhook

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestWebhookKeepsAnsweringWhileItsCertificateRotates runs the webhooks the way the operator
// does (self-managed certificate, CA injected into configurations registered by URL) with the
// serving certificate forced to renew every couple of seconds, and admits requests through
// the apiserver all along: none may fail.
func TestWebhookKeepsAnsweringWhileItsCertificateRotates(t *testing.T) {
	operatorNS, org := env.Namespace(t, "operator"), env.Namespace(t, "rotating")
	ports, err := testenv.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	port := ports[0]
	dir := t.TempDir()
	ready := make(chan struct{})
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: GatedServer{
			Server: crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir}),
			Ready:  ready,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := index.Register(context.Background(), mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	if err := Setup(mgr, Options{}); err != nil {
		t.Fatal(err)
	}
	manifests, err := os.ReadFile(filepath.Join(env.Root, "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	validating, mutating, err := Configurations(manifests, "https://localhost:"+strconv.Itoa(port), operatorNS)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := Register(ctx, env.Client, validating, mutating); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), validating)
		_ = env.Client.Delete(context.Background(), mutating)
	})
	secret := types.NamespacedName{Namespace: operatorNS, Name: "clearance-webhook-cert"}
	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secret.Namespace, Name: secret.Name}}); err != nil {
		t.Fatal(err)
	}
	// The server certificate lives an hour and is renewed when it would be invalid two hours
	// from now, that is at every check; the CA is long-lived, so only the leaf rotates.
	if err := rotator.AddRotator(mgr, &rotator.CertRotator{
		// A name of this run's: controller names are unique in a process, and go test -count
		// runs this again in this one.
		ControllerName: "cert-rotator-" + operatorNS,
		SecretKey:      secret, CertDir: dir, CAName: "clearance-webhook-ca", CAOrganization: "clearance", DNSName: "localhost",
		IsReady: ready, ServerCertDuration: time.Hour, LookaheadInterval: 2 * time.Hour, RotationCheckFrequency: 2 * time.Second,
		Webhooks: []rotator.WebhookInfo{{Name: ValidatingConfigurationName, Type: rotator.Validating}, {Name: MutatingConfigurationName, Type: rotator.Mutating}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(&LocalCertWriter{Reader: mgr.GetAPIReader(), Secret: secret, Dir: dir, Clock: clock.RealClock{}, Interval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("the rotator did not get the webhook ready in 60s")
	}
	// Like the operator's /readyz: serving starts just after the certificates are ready.
	started := mgr.GetWebhookServer().StartedChecker()
	for deadline := time.Now().Add(30 * time.Second); started(nil) != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the webhook server did not start serving in 30s")
		}
	}

	certs := map[[32]byte]bool{}
	admitted := 0
	deadline := time.Now().Add(40 * time.Second)
	for (len(certs) < 3 || admitted < 30) && time.Now().Before(deadline) {
		c := conn(org, fmt.Sprintf("c%03d", admitted), newID(), v1.RoleObserver)
		if err := env.Client.Create(context.Background(), c); err != nil {
			t.Fatalf("admission failed during rotation after %d requests and %d certificates: %v", admitted, len(certs), err)
		}
		if c.Annotations[v1.AnnotationCreatedBy] == "" {
			t.Fatal("the request did not go through the mutating webhook")
		}
		admitted++
		s := &corev1.Secret{}
		if err := env.Client.Get(context.Background(), secret, s); err == nil && len(s.Data[corev1.TLSCertKey]) > 0 {
			certs[sha256.Sum256(s.Data[corev1.TLSCertKey])] = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d admissions answered across %d serving certificates", admitted, len(certs))
	if len(certs) < 3 || admitted < 30 {
		t.Fatalf("in 40s the certificate rotated %d times over %d admissions, want at least 2 rotations and 30 admissions", len(certs)-1, admitted)
	}
}
