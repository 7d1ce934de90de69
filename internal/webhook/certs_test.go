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
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// certRotator is the operator's rotator with the defaults rotator.AddRotator fills in, keeping
// its Secret in namespace.
func certRotator(namespace, dnsName string) *rotator.CertRotator {
	return &rotator.CertRotator{
		SecretKey: types.NamespacedName{Namespace: namespace, Name: "clearance-webhook-cert"},
		CAName:    "clearance-webhook-ca", CAOrganization: "clearance", DNSName: dnsName,
		CertName: "tls.crt", KeyName: "tls.key",
		CaCertDuration: 10 * 365 * 24 * time.Hour, ServerCertDuration: 365 * 24 * time.Hour, LookaheadInterval: 90 * 24 * time.Hour,
		ExtKeyUsages: &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		Webhooks: []rotator.WebhookInfo{
			{Name: ValidatingConfigurationName, Type: rotator.Validating},
			{Name: MutatingConfigurationName, Type: rotator.Mutating},
		},
	}
}

// configurationsAt are the two configurations calling url, with caBundle injected. Their
// webhooks have no rules, so the apiserver holding them never calls them.
func configurationsAt(url string, caBundle []byte) []client.Object {
	return configurationsCalling(admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle})
}

// configurationsCalling are the two configurations with every webhook calling cfg.
func configurationsCalling(cfg admissionregistrationv1.WebhookClientConfig) []client.Object {
	none := admissionregistrationv1.SideEffectClassNone
	versions := []string{"v1"}
	return []client.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: ValidatingConfigurationName},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{
				{Name: "a.example.com", ClientConfig: cfg, SideEffects: &none, AdmissionReviewVersions: versions},
				{Name: "b.example.com", ClientConfig: cfg, SideEffects: &none, AdmissionReviewVersions: versions},
			},
		},
		&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: MutatingConfigurationName},
			Webhooks: []admissionregistrationv1.MutatingWebhook{
				{Name: "m.example.com", ClientConfig: cfg, SideEffects: &none, AdmissionReviewVersions: versions},
			},
		},
	}
}

// installConfigurations creates objs (webhook configurations, cluster-wide under the names the
// operator uses) on the apiserver for one test, and deletes them after it so the next test
// finds those names free.
func installConfigurations(t *testing.T, objs ...client.Object) {
	t.Helper()
	ctx := context.Background()
	for _, obj := range objs {
		obj := obj.DeepCopyObject().(client.Object)
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
		t.Cleanup(func() {
			if err := env.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %T %s: %v", obj, obj.GetName(), err)
			}
		})
	}
}

// withFaults is a client of the package's apiserver whose calls go through funcs first, to
// inject what the apiserver would not do on demand (an outage, a conflict).
func withFaults(t *testing.T, funcs interceptor.Funcs) client.WithWatch {
	t.Helper()
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return interceptor.NewClient(c, funcs)
}

// TestPrepareCertificatesIssuesWhatTheRotatorKeeps: the Secret gets a CA and a serving
// certificate the rotator's own validity rules accept (so its first pass writes nothing), both
// configurations get the CA, and a second start keeps them all as they are.
func TestPrepareCertificatesIssuesWhatTheRotatorKeeps(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "certs")
	cr := certRotator(ns, "localhost")
	installConfigurations(t, configurationsAt("https://localhost:9443/x", nil)...)
	c := env.Client
	if err := PrepareCertificates(ctx, c, cr); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, cr.SecretKey, s); err != nil {
		t.Fatal(err)
	}
	lookahead := time.Now().Add(cr.LookaheadInterval)
	if ok, err := rotator.ValidCert(s.Data["ca.crt"], s.Data["ca.crt"], s.Data["ca.key"], cr.CAName, nil, lookahead); !ok {
		t.Fatalf("the rotator would replace the CA: %v", err)
	}
	if ok, err := rotator.ValidCert(s.Data["ca.crt"], s.Data["tls.crt"], s.Data["tls.key"], cr.DNSName, cr.ExtKeyUsages, lookahead); !ok {
		t.Fatalf("the rotator would replace the serving certificate: %v", err)
	}
	checkInjected := func(want []byte) {
		t.Helper()
		for _, obj := range OwnConfigurations() {
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				t.Fatal(err)
			}
			for i, cfg := range clientConfigs(obj) {
				if !bytes.Equal(cfg.CABundle, want) {
					t.Errorf("%s webhook %d: the CA bundle is not the Secret's CA", obj.GetName(), i)
				}
			}
		}
	}
	checkInjected(s.Data["ca.crt"])

	if err := PrepareCertificates(ctx, c, cr); err != nil {
		t.Fatal(err)
	}
	again := &corev1.Secret{}
	if err := c.Get(ctx, cr.SecretKey, again); err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != s.ResourceVersion {
		t.Error("a second start rewrote a valid certificate Secret")
	}

	// A serving certificate for another name is renewed under the same CA, as the rotator does.
	if err := PrepareCertificates(ctx, c, certRotator(ns, "clearance-webhook.clearance-system.svc")); err != nil {
		t.Fatal(err)
	}
	renewed := &corev1.Secret{}
	if err := c.Get(ctx, cr.SecretKey, renewed); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(renewed.Data["ca.crt"], s.Data["ca.crt"]) || bytes.Equal(renewed.Data["tls.crt"], s.Data["tls.crt"]) {
		t.Error("want the serving certificate renewed and the CA kept")
	}
	checkInjected(s.Data["ca.crt"])
}

// TestCertificatesThatExpireWithinTheLookaheadAreRenewedAtStart: a CA, or a serving certificate,
// that the rotator would renew on its first pass (it ends within LookaheadInterval) is renewed
// before the webhook serves, as the rotator renews it: a new CA with a new serving certificate,
// or the serving certificate alone under the CA kept. Kept, it would be replaced by the
// rotator's first pass moments later, racing the start.
func TestCertificatesThatExpireWithinTheLookaheadAreRenewedAtStart(t *testing.T) {
	cr := certRotator("certs", "localhost")
	now := time.Now()
	soon, later := now.Add(cr.LookaheadInterval/3), now.Add(cr.CaCertDuration)
	for _, c := range []struct {
		name               string
		caEnds, servedEnds time.Time
		caKept             bool
	}{
		{"the CA", soon, soon, false},
		{"the serving certificate", later, soon, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ca, err := cr.CreateCACert(now.Add(-time.Hour), c.caEnds)
			if err != nil {
				t.Fatal(err)
			}
			cert, key, err := cr.CreateCertPEM(ca, now.Add(-time.Hour), c.servedEnds)
			if err != nil {
				t.Fatal(err)
			}
			old := map[string][]byte{"ca.crt": ca.CertPEM, "ca.key": ca.KeyPEM, "tls.crt": cert, "tls.key": key}
			data, changed, err := certificateData(cr, old, now)
			if err != nil {
				t.Fatal(err)
			}
			if !changed || bytes.Equal(data["tls.crt"], cert) {
				t.Fatal("an expiring certificate was kept")
			}
			if kept := bytes.Equal(data["ca.crt"], ca.CertPEM); kept != c.caKept {
				t.Errorf("CA kept: %v, want %v", kept, c.caKept)
			}
			lookahead := now.Add(cr.LookaheadInterval)
			if ok, err := rotator.ValidCert(data["ca.crt"], data["ca.crt"], data["ca.key"], cr.CAName, nil, lookahead); !ok {
				t.Errorf("the rotator would replace the CA: %v", err)
			}
			if ok, err := rotator.ValidCert(data["ca.crt"], data["tls.crt"], data["tls.key"], cr.DNSName, cr.ExtKeyUsages, lookahead); !ok {
				t.Errorf("the rotator would replace the serving certificate: %v", err)
			}
		})
	}
}

// TestCertificatesArePreparedBeforeTheWebhookConfigurationsExist: with no configuration
// registered yet (the chart's come after the operator, say), the certificate Secret is written
// and the injection is left to the rotator, rather than the start failing.
func TestCertificatesArePreparedBeforeTheWebhookConfigurationsExist(t *testing.T) {
	ctx := context.Background()
	cr := certRotator(env.Namespace(t, "certs-first"), "localhost")
	if err := PrepareCertificates(ctx, env.Client, cr); err != nil {
		t.Fatalf("preparing certificates with no webhook configuration yet: %v", err)
	}
	if err := env.Client.Get(ctx, cr.SecretKey, &corev1.Secret{}); err != nil {
		t.Errorf("no certificate Secret: %v", err)
	}
}

// TestServedCertificateCheck: ready only when the certificate the server presents verifies
// against the CA bundle of every webhook of both configurations, for the URL's host.
func TestServedCertificateCheck(t *testing.T) {
	ctx := context.Background()
	issue := func(dnsName string) (caPEM []byte, cert tls.Certificate) {
		t.Helper()
		cr := certRotator("clearance-system", dnsName)
		data, _, err := certificateData(cr, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert, err = tls.X509KeyPair(data["tls.crt"], data["tls.key"])
		if err != nil {
			t.Fatal(err)
		}
		return data["ca.crt"], cert
	}
	served, servedCert := issue("localhost")
	other, _ := issue("localhost")
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{servedCert}}
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	for _, tc := range []struct {
		name    string
		objects []client.Object
		want    string // "" for ready, else part of the error
	}{
		{"served certificate's CA injected", configurationsAt("https://localhost:9443/x", served), ""},
		{"another CA injected", configurationsAt("https://localhost:9443/x", other), "does not accept"},
		{"nothing injected yet", configurationsAt("https://localhost:9443/x", nil), "no CA bundle"},
		{"called at another host", configurationsAt("https://webhook.example.com/x", served), "does not accept"},
		{"one configuration missing", configurationsAt("https://localhost:9443/x", served)[:1], "not found"},
		{"the mutating one with another CA", append(configurationsAt("https://localhost:9443/x", served)[:1], configurationsAt("https://localhost:9443/x", other)[1]), "does not accept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			installConfigurations(t, tc.objects...)
			check := &ServedCertificateCheck{Reader: env.Client, Addr: addr}
			wantReady(t, check.Check(httptest.NewRequestWithContext(ctx, http.MethodGet, "/readyz", nil)), tc.want)
		})
	}

	t.Run("the apiserver unreachable after a good read", func(t *testing.T) {
		installConfigurations(t, configurationsAt("https://localhost:9443/x", served)...)
		var down atomic.Bool
		reader := withFaults(t, interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if down.Load() {
					return errors.New("connection refused")
				}
				return c.Get(ctx, key, obj, opts...)
			},
		})
		check := &ServedCertificateCheck{Reader: reader, Addr: addr}
		if err := check.Check(nil); err != nil {
			t.Fatal(err)
		}
		down.Store(true)
		if err := check.Check(nil); err != nil {
			t.Fatalf("an apiserver outage made the webhook unready: %v", err)
		}
		if err := (&ServedCertificateCheck{Reader: reader, Addr: addr}).Check(nil); err == nil {
			t.Fatal("ready without ever reading the configurations")
		}
	})

	t.Run("a configuration deleted after a good read", func(t *testing.T) {
		objs := configurationsAt("https://localhost:9443/x", served)
		installConfigurations(t, objs...)
		check := &ServedCertificateCheck{Reader: env.Client, Addr: addr}
		if err := check.Check(nil); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(ctx, objs[1]); err != nil {
			t.Fatal(err)
		}
		// Only an apiserver that does not answer falls back on the last read; one that answers
		// that the configuration is gone makes the webhook unready.
		if err := check.Check(nil); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("got %v, want an error saying the configuration is not found", err)
		}
	})

	t.Run("a configuration without webhooks", func(t *testing.T) {
		objs := configurationsAt("https://localhost:9443/x", served)
		objs[0].(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks = nil
		installConfigurations(t, objs...)
		check := &ServedCertificateCheck{Reader: env.Client, Addr: addr}
		if err := check.Check(nil); err == nil || !strings.Contains(err.Error(), "has no webhooks") {
			t.Fatalf("got %v, want an error saying it has no webhooks", err)
		}
	})

	// Called through a Service, the apiserver checks the certificate for SERVICE.NAMESPACE.svc.
	t.Run("called through a Service", func(t *testing.T) {
		svcCA, svcCert := issue("clearance-webhook.clearance-system.svc")
		svcAddr := serveTLS(t, tls.Certificate{Certificate: svcCert.Certificate, PrivateKey: svcCert.PrivateKey})
		for _, tc := range []struct{ service, want string }{
			{"clearance-webhook", ""},
			{"another-webhook", "does not accept"},
		} {
			t.Run(tc.service, func(t *testing.T) {
				installConfigurations(t, configurationsCalling(admissionregistrationv1.WebhookClientConfig{
					Service:  &admissionregistrationv1.ServiceReference{Namespace: "clearance-system", Name: tc.service},
					CABundle: svcCA,
				})...)
				wantReady(t, (&ServedCertificateCheck{Reader: env.Client, Addr: svcAddr}).Check(nil), tc.want)
			})
		}
	})

	// The apiserver accepts only a certificate for serving: one issued for client
	// authentication alone, by the injected CA and for the right host, is not enough.
	t.Run("a certificate not for serving", func(t *testing.T) {
		cr := certRotator("clearance-system", "localhost")
		cr.ExtKeyUsages = &[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		data, _, err := certificateData(cr, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(data["tls.crt"], data["tls.key"])
		if err != nil {
			t.Fatal(err)
		}
		installConfigurations(t, configurationsAt("https://localhost:9443/x", data["ca.crt"])...)
		err = (&ServedCertificateCheck{Reader: env.Client, Addr: serveTLS(t, cert)}).Check(nil)
		if err == nil || !strings.Contains(err.Error(), "does not accept") {
			t.Fatalf("got %v, want an error saying the CA bundle does not accept it", err)
		}
	})

	// A certificate from an intermediate CA (cert-manager's, say) is served with that
	// intermediate, and verifies against the root injected as the CA bundle.
	t.Run("a certificate from an intermediate CA", func(t *testing.T) {
		rootPEM, chain := intermediateChain(t, "localhost")
		installConfigurations(t, configurationsAt("https://localhost:9443/x", rootPEM)...)
		if err := (&ServedCertificateCheck{Reader: env.Client, Addr: serveTLS(t, chain)}).Check(nil); err != nil {
			t.Fatalf("not ready: %v", err)
		}
	})

	t.Run("nothing listening", func(t *testing.T) {
		installConfigurations(t, configurationsAt("https://localhost:9443/x", served)...)
		check := &ServedCertificateCheck{Reader: env.Client, Addr: "127.0.0.1:1"}
		if err := check.Check(nil); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
			t.Fatalf("got %v, want the handshake's error", err)
		}
	})
}

// twoCertificates issues two certificate Secrets' data for localhost, each with its own CA.
func twoCertificates(t *testing.T, namespace string) []map[string][]byte {
	t.Helper()
	var versions []map[string][]byte
	for range 2 {
		data, _, err := certificateData(certRotator(namespace, "localhost"), nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, data)
	}
	return versions
}

// wantReady fails t unless the readiness check's err is nil (want "") or says want.
func wantReady(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("not ready: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("got %v, want an error saying %q", err, want)
	}
}

// TestLocalCertWriterReplacesBothFilesAtOnce: what an earlier run left is replaced, each
// version is switched to as a whole through ..data, and the version before is removed.
func TestLocalCertWriterReplacesBothFilesAtOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("left by an earlier run"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key := types.NamespacedName{Namespace: env.Namespace(t, "certs"), Name: "clearance-webhook-cert"}
	c := env.Client
	w := &LocalCertWriter{Reader: c, Secret: key, Dir: dir, Clock: clock.RealClock{}}
	if ok, err := w.Sync(ctx); ok || err != nil {
		t.Fatalf("no Secret yet: got %v, %v", ok, err)
	}
	versions := twoCertificates(t, key.Namespace)
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Data: versions[0]}
	if err := c.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	for i, data := range versions {
		if i > 0 {
			s.Data = data
			if err := c.Update(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := w.Sync(ctx); !ok || err != nil {
			t.Fatalf("version %d: got %v, %v", i, ok, err)
		}
		for _, name := range []string{"tls.crt", "tls.key"} {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, data[name]) {
				t.Fatalf("version %d: %s is not the Secret's (%v)", i, name, err)
			}
			if link, _ := os.Readlink(filepath.Join(dir, name)); link != filepath.Join("..data", name) {
				t.Fatalf("version %d: %s is not a link through ..data but %q", i, name, link)
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) != 4 {
			t.Fatalf("version %d: want ..data, one version directory, tls.crt and tls.key; got %v", i, names)
		}
	}
}

// serveTLS serves cert over TLS until the test ends, and returns its address.
func serveTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// intermediateChain issues a root CA, an intermediate CA under it and a serving certificate
// for dnsName under that, and returns the root (PEM) and the served chain, leaf first.
func intermediateChain(t *testing.T, dnsName string) ([]byte, tls.Certificate) {
	t.Helper()
	now := time.Now()
	issue := func(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	ca := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	root, rootKey := issue(ca(1, "root"), nil, nil)
	inter, interKey := issue(ca(2, "intermediate"), root, rootKey)
	leaf, leafKey := issue(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, inter, interKey)
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
	return rootPEM, tls.Certificate{Certificate: [][]byte{leaf.Raw, inter.Raw}, PrivateKey: leafKey}
}

// TestCertificatesIssuedAtStartAreValidFromAnHourBefore: as the rotator issues them, the CA and
// the serving certificate are valid from an hour before the start, so an apiserver whose clock
// is behind the operator's by less than that accepts them at once, for the configured durations.
func TestCertificatesIssuedAtStartAreValidFromAnHourBefore(t *testing.T) {
	cr := certRotator("certs", "localhost")
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	data, changed, err := certificateData(cr, nil, now)
	if err != nil || !changed {
		t.Fatalf("issuing: changed %v, %v", changed, err)
	}
	for _, tc := range []struct {
		name     string
		duration time.Duration
	}{{"ca.crt", cr.CaCertDuration}, {"tls.crt", cr.ServerCertDuration}} {
		block, _ := pem.Decode(data[tc.name])
		if block == nil {
			t.Fatalf("%s: no PEM", tc.name)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if want := now.Add(-time.Hour); !cert.NotBefore.Equal(want) {
			t.Errorf("%s: valid from %s, want %s", tc.name, cert.NotBefore, want)
		}
		if want := now.Add(tc.duration); !cert.NotAfter.Equal(want) {
			t.Errorf("%s: valid until %s, want %s", tc.name, cert.NotAfter, want)
		}
	}
}

// TestLocalCertWriterCopiesACompleteCertificateOnceAndKeepsTheKeyPrivate: a Secret without
// both the certificate and the key (made ahead of the rotator, say) is not copied, so the
// writer keeps checking every second; the key is readable by the operator's user alone; a
// Secret that has not changed is not written again.
func TestLocalCertWriterCopiesACompleteCertificateOnceAndKeepsTheKeyPrivate(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	dir := filepath.Join(parent, "certs")
	key := types.NamespacedName{Namespace: env.Namespace(t, "certs"), Name: "clearance-webhook-cert"}
	data, _, err := certificateData(certRotator(key.Namespace, "localhost"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Data: map[string][]byte{"ca.crt": data["ca.crt"], "tls.crt": data["tls.crt"]}}
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(parent, "fresh")
	w := &LocalCertWriter{Reader: env.Client, Secret: key, Dir: fresh, Clock: clock.RealClock{}}
	if ok, err := w.Sync(ctx); ok || err != nil {
		t.Fatalf("a Secret without its key: got %v, %v, want nothing copied", ok, err)
	}
	if _, err := os.Stat(filepath.Join(fresh, "tls.crt")); !os.IsNotExist(err) {
		t.Fatalf("a Secret without its key: tls.crt was written (%v)", err)
	}
	s.Data = data
	if err := env.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.Sync(ctx); !ok || err != nil {
		t.Fatalf("got %v, %v", ok, err)
	}
	for path, want := range map[string]os.FileMode{fresh: 0o700, filepath.Join(fresh, "tls.key"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", filepath.Base(path), got, want)
		}
	}
	w.Dir = dir
	if ok, err := w.Sync(ctx); !ok || err != nil {
		t.Fatalf("got %v, %v", ok, err)
	}
	version, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := w.Sync(ctx); !ok || err != nil {
		t.Fatalf("again: got %v, %v", ok, err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again != version {
		t.Errorf("an unchanged Secret was written again: ..data moved from %s to %s", version, again)
	}
}

// TestLocalCertWriterRemovesNoDirectoryButAVersionOfItsOwn: the version ..data pointed to
// before is removed only when it is one of the writer's own version directories in Dir; a
// ..data left pointing at Dir itself, at its parent, outside it (even through a name like a
// version's) or at another directory in it has its target kept.
func TestLocalCertWriterRemovesNoDirectoryButAVersionOfItsOwn(t *testing.T) {
	ctx := context.Background()
	key := types.NamespacedName{Namespace: env.Namespace(t, "certs"), Name: "clearance-webhook-cert"}
	data, _, err := certificateData(certRotator(key.Namespace, "localhost"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Data: data}
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{".", "..", filepath.Join("..", "outside"), "outside", "..cert-gone/../../outside"} {
		t.Run(target, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "certs")
			for _, d := range []string{dir, filepath.Join(parent, "outside"), filepath.Join(dir, "outside")} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(parent, "keep"), []byte("not the writer's"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			w := &LocalCertWriter{Reader: env.Client, Secret: key, Dir: dir, Clock: clock.RealClock{}}
			if ok, err := w.Sync(ctx); !ok || err != nil {
				t.Fatalf("got %v, %v", ok, err)
			}
			for _, path := range []string{filepath.Join(parent, "keep"), filepath.Join(parent, "outside"), filepath.Join(dir, "outside")} {
				if _, err := os.Stat(path); err != nil {
					t.Errorf("..data -> %s: %s was removed: %v", target, path, err)
				}
			}
			for _, name := range []string{"tls.crt", "tls.key"} {
				if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, data[name]) {
					t.Errorf("..data -> %s: %s is not the Secret's (%v)", target, name, err)
				}
			}
		})
	}
}

// TestAReplicaThatLosesTheRaceToCreateTheSecretKeepsTheWinnersCertificate: two replicas
// starting at once both find no Secret; the one whose create comes second is refused
// (AlreadyExists), reads again, finds the other's certificate valid and keeps it, and both
// configurations carry that one CA.
func TestAReplicaThatLosesTheRaceToCreateTheSecretKeepsTheWinnersCertificate(t *testing.T) {
	ctx := context.Background()
	cr := certRotator(env.Namespace(t, "certs-race"), "localhost")
	installConfigurations(t, configurationsAt("https://localhost:9443/x", nil)...)
	var raced atomic.Bool
	winner := &corev1.Secret{}
	loser := withFaults(t, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.Secret); ok && !raced.Swap(true) {
				if err := PrepareCertificates(ctx, env.Client, cr); err != nil { // the other replica
					return err
				}
				if err := env.Client.Get(ctx, cr.SecretKey, winner); err != nil {
					return err
				}
			}
			return c.Create(ctx, obj, opts...)
		},
	})
	if err := PrepareCertificates(ctx, loser, cr); err != nil {
		t.Fatalf("the replica that lost the race: %v", err)
	}
	if !raced.Load() {
		t.Fatal("the race was not run")
	}
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx, cr.SecretKey, s); err != nil {
		t.Fatal(err)
	}
	if s.ResourceVersion != winner.ResourceVersion {
		t.Errorf("the winner's Secret was rewritten")
	}
	for _, obj := range OwnConfigurations() {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
		for i, cfg := range clientConfigs(obj) {
			if !bytes.Equal(cfg.CABundle, s.Data["ca.crt"]) {
				t.Errorf("%s webhook %d: the CA bundle is not the Secret's CA", obj.GetName(), i)
			}
		}
	}
}

// TestASecretWithACACertificateButNoCAKeyGetsANewCA: a Secret that holds ca.crt without
// ca.key (as cert-manager writes its Secrets) cannot sign a serving certificate: a new CA is
// issued, rather than the start failing.
func TestASecretWithACACertificateButNoCAKeyGetsANewCA(t *testing.T) {
	cr := certRotator("certs", "localhost")
	now := time.Now()
	old, _, err := certificateData(cr, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, caKey := range [][]byte{nil, []byte("not PEM")} {
		current := map[string][]byte{"ca.crt": old["ca.crt"], "ca.key": caKey, "tls.crt": old["tls.crt"], "tls.key": old["tls.key"]}
		data, changed, err := certificateData(cr, current, now)
		if err != nil {
			t.Fatal(err)
		}
		if !changed || bytes.Equal(data["ca.crt"], old["ca.crt"]) {
			t.Fatalf("ca.key %q: the CA without its key was kept", caKey)
		}
		if ok, err := rotator.ValidCert(data["ca.crt"], data["tls.crt"], data["tls.key"], cr.DNSName, cr.ExtKeyUsages, now.Add(cr.LookaheadInterval)); !ok {
			t.Errorf("ca.key %q: the rotator would replace the serving certificate: %v", caKey, err)
		}
	}
}

// TestLocalCertWriterChecksEverySecondUntilTheCertificateAppearsThenEveryThirtySeconds: by the
// writer's clock, a Secret that appears is copied within a second, and a change after that is
// copied at the next 30-second check, not before.
func TestLocalCertWriterChecksEverySecondUntilTheCertificateAppearsThenEveryThirtySeconds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	key := types.NamespacedName{Namespace: env.Namespace(t, "certs-interval"), Name: "clearance-webhook-cert"}
	dir := t.TempDir()
	clk := clocktesting.NewFakeClock(time.Now())
	w := &LocalCertWriter{Reader: env.Client, Secret: key, Dir: dir, Clock: clk}
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	copied := func(data map[string][]byte) bool {
		got, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
		return err == nil && bytes.Equal(got, data["tls.crt"])
	}
	versions := twoCertificates(t, key.Namespace)

	eventually(t, clk.HasWaiters) // the first check found no Secret
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Data: versions[0]}
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	eventually(t, func() bool { return copied(versions[0]) })
	eventually(t, clk.HasWaiters) // waiting for the next check

	s.Data = versions[1]
	if err := env.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	clk.Step(29 * time.Second)
	// A check that fired would copy, then wait again: once it waits, the copy is decided.
	eventually(t, clk.HasWaiters)
	if !copied(versions[0]) {
		t.Fatal("copied again within 30 seconds of the last check")
	}
	clk.Step(time.Second)
	eventually(t, func() bool { return copied(versions[1]) })
}
