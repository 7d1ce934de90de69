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

package startup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/webhook"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrllog.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	testenv.Main(m, &env)
}

const (
	// operatorNamespace is where the operator keeps its certificate Secret (its default).
	operatorNamespace = "clearance-system"
	certSecret        = "clearance-webhook-cert"
	// starts is how many times the operator starts on a control plane new to it.
	starts = 20
)

// TestTheFirstObjectAppliedWhenReadyIsAdmitted starts the operator again and again on a
// control plane that has never seen it (no certificate Secret, no webhook configurations) and
// on the certificate directory the run before left, whose certificate is of a CA no longer
// injected anywhere (the first run's holds one of a CA of its own). The instant /readyz
// answers OK, it creates an Application pinning a new ID, which the apiserver sends to the
// Application webhook: none may be refused, and none may be admitted because the call failed
// (the webhooks fail open, so the apiserver's apiserver_admission_webhook_fail_open_count
// must not move). No start may log an error (up to ready, the admission and the Application's
// first reconcile; errors of work cut short by the stop are only counted).
func TestTheFirstObjectAppliedWhenReadyIsAdmitted(t *testing.T) {
	org := env.Namespace(t, "startup")
	certDir := t.TempDir()
	writeForeignCertificate(t, certDir)
	t.Cleanup(func() { forgetOperator(t) })

	// Built before the first start, so its readiness is measured without the build.
	if _, err := env.BuildOperator(); err != nil {
		t.Fatal(err)
	}
	refusals, stopErrors := 0, 0
	var readies []time.Duration
	for i := range starts {
		forgetOperator(t)
		start := time.Now()
		op, err := env.StartOperator(testenv.OperatorOptions{Name: fmt.Sprintf("start-%02d", i), WithWebhooks: true, CertDir: certDir})
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		// StartOperator returns the moment /readyz answered 200.
		ready := time.Since(start)
		readies = append(readies, ready)
		app := &v1.Application{
			ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: fmt.Sprintf("app-%02d", i)},
			Spec:       v1.ApplicationSpec{Description: "created the instant the operator was ready", ApplicationID: fmt.Sprintf("app_%026d", 9000+i)},
		}
		calledBefore, failedOpenBefore := webhookCounts(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = env.Client.Create(ctx, app)
		cancel()
		switch {
		case err != nil:
			refusals++
			t.Errorf("start %d: the Application created the instant /readyz answered OK (after %s) was refused: %v", i, ready.Round(time.Millisecond), err)
		case webhookAnswered(t, calledBefore, failedOpenBefore) != nil:
			t.Errorf("start %d: the Application created the instant /readyz answered OK (after %s): %v", i, ready.Round(time.Millisecond), webhookAnswered(t, calledBefore, failedOpenBefore))
		case app.Annotations[v1.AnnotationCreatedBy] == "":
			t.Errorf("start %d: the Application was not stamped by the policy clearance-created-by (no %s annotation)", i, v1.AnnotationCreatedBy)
		default:
			waitApplicationID(t, app)
		}
		// The log of the start: up to ready, the admission and the controller's first work.
		// What SIGTERM cuts short afterwards (a status patch, an Event) is counted apart.
		startLog := op.Log()
		op.Stop()
		if lines := errorLines(startLog); len(lines) > 0 {
			t.Errorf("start %d: the operator logged %d errors while starting:\n%s", i, len(lines), strings.Join(lines, "\n"))
			t.Logf("end of the log of %s:\n%s", op.Name, lastLines(startLog, 40))
		}
		stopErrors += len(errorLines(op.Log()[len(startLog):]))
		op.Cleanup()
	}
	slices.Sort(readies)
	t.Logf("FIGURES test=first-admission starts=%d refusals=%d ready_median=%s ready_max=%s errors_logged_while_stopping=%d",
		starts, refusals, readies[len(readies)/2].Round(time.Millisecond), readies[len(readies)-1].Round(time.Millisecond), stopErrors)
}

// webhookCounts reads from the apiserver's metrics how many calls it made to the Application
// webhook and how many admission webhook calls it let through because they failed.
func webhookCounts(t *testing.T) (called, failedOpen float64) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("reading the apiserver's metrics: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		name, rest, _ := strings.Cut(line, "{")
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		value, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case name == "apiserver_admission_webhook_request_total" && strings.Contains(rest, `name="vapplication.access.clearance.dev"`):
			called += value
		case name == "apiserver_admission_webhook_fail_open_count":
			failedOpen += value
		}
	}
	return called, failedOpen
}

// webhookAnswered says whether the apiserver called the Application webhook and got its answer
// since the counts given.
func webhookAnswered(t *testing.T, calledBefore, failedOpenBefore float64) error {
	t.Helper()
	called, failedOpen := webhookCounts(t)
	switch {
	case called == calledBefore:
		return fmt.Errorf("the apiserver did not call the Application webhook")
	case failedOpen != failedOpenBefore:
		return fmt.Errorf("the call to the webhook failed, and the apiserver admitted the object without its answer (%g calls failed open)", failedOpen-failedOpenBefore)
	}
	return nil
}

// waitApplicationID waits until the operator gave app its Application ID.
func waitApplicationID(t *testing.T, app *v1.Application) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(app), app)
		if err == nil && app.Status.ApplicationID != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Application %s has no ID after 30s (last error: %v)", app.Name, err)
		}
	}
}

// TestTheDefaultCertificateDirectoryIsTheProcesss starts the operator without
// --webhook-cert-dir: it writes its certificate into a new directory of its own, which it
// removes when it stops, so the next run cannot start on it.
func TestTheDefaultCertificateDirectoryIsTheProcesss(t *testing.T) {
	forgetOperator(t)
	t.Cleanup(func() { forgetOperator(t) })
	var dirs []string
	for i := range 2 {
		op, err := env.StartOperator(testenv.OperatorOptions{Name: fmt.Sprintf("default-dir-%d", i), WithWebhooks: true, DefaultCertDir: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(op.Cleanup)
		m := regexp.MustCompile(`"msg":"webhook serving certificate","dir":"([^"]+)"`).FindStringSubmatch(op.Log())
		if m == nil {
			t.Fatalf("the operator does not log its certificate directory:\n%s", lastLines(op.Log(), 40))
		}
		dir := m[1]
		if _, err := os.Stat(filepath.Join(dir, "tls.crt")); err != nil {
			t.Errorf("the certificate is not in the operator's directory: %v", err)
		}
		if len(dirs) > 0 && dirs[0] == dir {
			t.Errorf("two runs used the same certificate directory %s", dir)
		}
		dirs = append(dirs, dir)
		startLog := op.Log()
		op.Stop()
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the operator left its certificate directory %s behind (%v)", dir, err)
			_ = os.RemoveAll(dir)
		}
		if lines := errorLines(startLog); len(lines) > 0 {
			t.Errorf("the operator logged %d errors while starting:\n%s", len(lines), strings.Join(lines, "\n"))
		}
	}
}

// forgetOperator removes what a running operator leaves in the cluster (its certificate
// Secret and webhook configurations), so the next start is the first this control plane sees.
func forgetOperator(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, obj := range append([]client.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: certSecret}}}, webhook.OwnConfigurations()...) {
		if err := env.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("deleting %s: %v", obj.GetName(), err)
		}
	}
}

// writeForeignCertificate leaves in dir a certificate for localhost, and its key, of a CA the
// cluster does not know, as a run of another control plane would.
func writeForeignCertificate(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clearance-webhook-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"tls.crt": {Type: "CERTIFICATE", Bytes: der},
		"tls.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// errorLines are the lines of an operator's JSON log at level error.
func errorLines(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"level":"error"`) {
			if len(line) > 600 {
				line = line[:600] + "…"
			}
			out = append(out, line)
		}
	}
	return out
}

func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
