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
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the certificate Secret, as the rotator writes them.
const (
	secretCACert = "ca.crt"
	secretCAKey  = "ca.key"
)

// PrepareCertificates does, once and before the manager starts, what the rotator's first pass
// would do: the Secret cr.SecretKey holds a CA and a serving certificate the rotator finds
// valid (issued with cr's own settings, so the rotator keeps them), and both webhook
// configurations carry that CA. cr must have been given to rotator.AddRotator first, which
// fills in its defaults.
//
// Left to the rotator, a first start has two writers: the rotator's start-up refresh and its
// reconciler, woken by the Secret and each webhook configuration as its cache fills, both
// write the Secret and the configurations from that cache; the one that read it a moment too
// early is refused with a conflict, logged as an error with a stack trace and retried. Done
// here, the rotator starts to find nothing to write.
//
// Another replica doing the same at the same time is a conflict here, retried on a fresh read
// that then finds its certificate valid and keeps it.
func PrepareCertificates(ctx context.Context, c client.Client, cr *rotator.CertRotator) error {
	var caPEM []byte
	isRace := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	err := retry.OnError(retry.DefaultRetry, isRace, func() error {
		s := &corev1.Secret{}
		err := c.Get(ctx, cr.SecretKey, s)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		data, changed, err := certificateData(cr, s.Data, time.Now())
		if err != nil {
			return err
		}
		caPEM = data[secretCACert]
		switch {
		case !exists:
			s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cr.SecretKey.Namespace, Name: cr.SecretKey.Name}, Data: data}
			return c.Create(ctx, s)
		case changed:
			s.Data = data
			return c.Update(ctx, s)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("preparing the webhook certificate Secret %s: %w", cr.SecretKey, err)
	}
	for _, w := range cr.Webhooks {
		if err := injectCABundle(ctx, c, w, caPEM); err != nil {
			return err
		}
	}
	return nil
}

// certificateData is the Secret data with a CA and serving certificate valid by the rotator's
// rules: what is there when it is valid, else renewed as the rotator renews (the serving
// certificate alone while the CA is valid).
func certificateData(cr *rotator.CertRotator, current map[string][]byte, now time.Time) (map[string][]byte, bool, error) {
	data := map[string][]byte{}
	for k, v := range current {
		data[k] = v
	}
	lookahead := now.Add(cr.LookaheadInterval)
	ca, caErr := parseCA(data[secretCACert], data[secretCAKey])
	if caErr == nil {
		if ok, err := rotator.ValidCert(data[secretCACert], data[secretCACert], data[secretCAKey], cr.CAName, nil, lookahead); !ok {
			caErr = err
		}
	}
	if caErr == nil {
		if ok, _ := rotator.ValidCert(data[secretCACert], data[cr.CertName], data[cr.KeyName], cr.DNSName, cr.ExtKeyUsages, lookahead); ok {
			return data, false, nil
		}
	}
	// As the rotator's refreshCerts: valid from an hour ago, for the configured durations.
	begin := now.Add(-time.Hour)
	if caErr != nil {
		var err error
		if ca, err = cr.CreateCACert(begin, now.Add(cr.CaCertDuration)); err != nil {
			return nil, false, err
		}
	}
	cert, key, err := cr.CreateCertPEM(ca, begin, now.Add(cr.ServerCertDuration))
	if err != nil {
		return nil, false, err
	}
	data[secretCACert], data[secretCAKey] = ca.CertPEM, ca.KeyPEM
	data[cr.CertName], data[cr.KeyName] = cert, key
	return data, true, nil
}

// parseCA reads the CA as the rotator does (a PEM certificate and a PKCS#1 RSA key).
func parseCA(certPEM, keyPEM []byte) (*rotator.KeyPairArtifacts, error) {
	certBlock, _ := pem.Decode(certPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if certBlock == nil || keyBlock == nil {
		return nil, errors.New("no CA in the Secret")
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS1PrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, err
	}
	return &rotator.KeyPairArtifacts{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// injectCABundle sets caPEM as the CA bundle of every webhook of one configuration, as the
// rotator does; a configuration that does not exist (yet) is left to the rotator.
func injectCABundle(ctx context.Context, c client.Client, w rotator.WebhookInfo, caPEM []byte) error {
	var obj client.Object
	switch w.Type {
	case rotator.Validating:
		obj = &admissionregistrationv1.ValidatingWebhookConfiguration{}
	case rotator.Mutating:
		obj = &admissionregistrationv1.MutatingWebhookConfiguration{}
	default:
		return nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKey{Name: w.Name}, obj); err != nil {
			return client.IgnoreNotFound(err)
		}
		changed := false
		for _, cfg := range clientConfigs(obj) {
			if !bytes.Equal(cfg.CABundle, caPEM) {
				cfg.CABundle, changed = caPEM, true
			}
		}
		if !changed {
			return nil
		}
		return c.Update(ctx, obj)
	})
	if err != nil {
		return fmt.Errorf("injecting the webhook CA into %s: %w", w.Name, err)
	}
	return nil
}

// clientConfigs are pointers to the client configurations of every webhook of obj.
func clientConfigs(obj client.Object) []*admissionregistrationv1.WebhookClientConfig {
	var out []*admissionregistrationv1.WebhookClientConfig
	switch o := obj.(type) {
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		for i := range o.Webhooks {
			out = append(out, &o.Webhooks[i].ClientConfig)
		}
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		for i := range o.Webhooks {
			out = append(out, &o.Webhooks[i].ClientConfig)
		}
	}
	return out
}

// ServedCertificateCheck is the webhook's readiness check: it passes only when the certificate
// the webhook server serves right now, read by a TLS handshake, verifies for every webhook of
// both configurations against the CA bundle injected there and for the host name the
// apiserver calls (the URL's host, or SERVICE.NAMESPACE.svc), as the apiserver verifies it.
// The handshake completing proves the server holds the certificate's private key.
//
// It does not matter where the certificate comes from (the rotator's Secret copied by
// LocalCertWriter, the same Secret mounted late by the kubelet, or cert-manager's): until the
// server serves one that the injected CA vouches for, the operator is not ready.
//
// The configurations are read from the apiserver at each check; when that fails, the last
// ones read are used, so an apiserver outage does not take the pod (and the verifier it also
// serves) out of its Services.
type ServedCertificateCheck struct {
	// Reader reads the webhook configurations (an uncached reader).
	Reader client.Reader
	// Addr is where the webhook server listens, e.g. 127.0.0.1:9443.
	Addr string
	// Timeout bounds the handshake and each read; default 2s.
	Timeout time.Duration

	mu   sync.Mutex
	last []webhookTarget
}

// webhookTarget is what the apiserver checks a webhook's serving certificate against.
type webhookTarget struct {
	name     string
	caBundle []byte
	host     string
}

// Check implements healthz.Checker.
func (c *ServedCertificateCheck) Check(req *http.Request) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	ctx := context.Background()
	if req != nil {
		ctx = req.Context()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	targets, err := c.targets(ctx)
	if err != nil {
		return err
	}
	chain, err := c.servedChain(ctx)
	if err != nil {
		return err
	}
	return verifyServed(chain, targets)
}

// targets reads both configurations, or falls back on the last read when the apiserver does
// not answer.
func (c *ServedCertificateCheck) targets(ctx context.Context) ([]webhookTarget, error) {
	var targets []webhookTarget
	var readErr error
	for _, obj := range OwnConfigurations() {
		name := obj.GetName()
		if err := c.Reader.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("webhook configuration %s not found", name)
			}
			readErr = fmt.Errorf("reading webhook configuration %s: %w", name, err)
			break
		}
		cfgs := clientConfigs(obj)
		if len(cfgs) == 0 {
			return nil, fmt.Errorf("webhook configuration %s has no webhooks", name)
		}
		for i, cfg := range cfgs {
			t := webhookTarget{name: fmt.Sprintf("%s webhook %d", name, i), caBundle: cfg.CABundle}
			switch {
			case cfg.URL != nil:
				u, err := url.Parse(*cfg.URL)
				if err != nil {
					return nil, fmt.Errorf("%s: URL %q: %w", t.name, *cfg.URL, err)
				}
				t.host = u.Hostname()
			case cfg.Service != nil:
				t.host = cfg.Service.Name + "." + cfg.Service.Namespace + ".svc"
			}
			if len(t.caBundle) == 0 {
				return nil, fmt.Errorf("no CA bundle injected into %s yet", t.name)
			}
			targets = append(targets, t)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if readErr != nil {
		if c.last == nil {
			return nil, readErr
		}
		return c.last, nil
	}
	c.last = targets
	return targets, nil
}

// servedChain is the certificate chain the webhook server presents in a TLS handshake.
func (c *ServedCertificateCheck) servedChain(ctx context.Context) ([]*x509.Certificate, error) {
	d := tls.Dialer{
		NetDialer: &net.Dialer{},
		// Nothing is sent after the handshake: the chain is verified below, per webhook.
		Config: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}, //nolint:gosec // verified below
	}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("the webhook server at %s does not complete a TLS handshake: %w", c.Addr, err)
	}
	defer func() { _ = conn.Close() }()
	chain := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(chain) == 0 {
		return nil, fmt.Errorf("the webhook server at %s presents no certificate", c.Addr)
	}
	return chain, nil
}

// verifyServed verifies chain (leaf first) for every target.
func verifyServed(chain []*x509.Certificate, targets []webhookTarget) error {
	leaf := chain[0]
	intermediates := x509.NewCertPool()
	for _, cert := range chain[1:] {
		intermediates.AddCert(cert)
	}
	for _, t := range targets {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(t.caBundle) {
			return fmt.Errorf("the CA bundle of %s holds no certificate", t.name)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName:       t.host,
			Roots:         roots,
			Intermediates: intermediates,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			return fmt.Errorf("the webhook server serves a certificate (issuer %q, not after %s) that the CA bundle of %s does not accept for %q: %w",
				leaf.Issuer.CommonName, leaf.NotAfter.Format(time.RFC3339), t.name, t.host, err)
		}
	}
	return nil
}
