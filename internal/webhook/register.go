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
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/yaml"
)

// Names of the webhook configurations; the certificate rotator injects its CA into them.
const (
	ValidatingConfigurationName = "clearance-validating-webhook-configuration"
	MutatingConfigurationName   = "clearance-mutating-webhook-configuration"
)

// OwnConfigurations are the two webhook configurations, empty but for their names: to read
// into, or delete. (internal/testenv, which this package's tests import, names them itself.)
func OwnConfigurations() []client.Object {
	return []client.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: ValidatingConfigurationName}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: MutatingConfigurationName}},
	}
}

// Configurations turns the generated manifests (config/webhook/manifests.yaml) into the
// configurations to register: named as above, each webhook calling base+path, never called for
// kube-system or the operator's own namespace. The object selectors and match conditions come
// from the markers (the protected-object guard sees only labelled objects, so revoking an
// ordinary key never waits on a webhook).
func Configurations(manifests []byte, base, operatorNamespace string) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration, error) {
	var validating *admissionregistrationv1.ValidatingWebhookConfiguration
	var mutating *admissionregistrationv1.MutatingWebhookConfiguration
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifests)))
	for {
		doc, err := docs.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("reading the webhook manifests: %w", err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, nil, fmt.Errorf("reading the webhook manifests: %w", err)
		}
		var target any
		switch meta.Kind {
		case "ValidatingWebhookConfiguration":
			validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			target = validating
		case "MutatingWebhookConfiguration":
			mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
			target = mutating
		default:
			continue
		}
		if err := yaml.Unmarshal(doc, target); err != nil {
			return nil, nil, fmt.Errorf("reading the webhook manifests: %w", err)
		}
	}
	if validating == nil || mutating == nil {
		return nil, nil, fmt.Errorf("the webhook manifests lack a validating or a mutating configuration")
	}
	validating.Name, mutating.Name = ValidatingConfigurationName, MutatingConfigurationName
	notSystem := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", operatorNamespace},
	}}}
	for i := range validating.Webhooks {
		w := &validating.Webhooks[i]
		w.ClientConfig = clientConfig(base, w.ClientConfig)
		w.NamespaceSelector = notSystem
	}
	for i := range mutating.Webhooks {
		w := &mutating.Webhooks[i]
		w.ClientConfig = clientConfig(base, w.ClientConfig)
		w.NamespaceSelector = notSystem
	}
	return validating, mutating, nil
}

func clientConfig(base string, generated admissionregistrationv1.WebhookClientConfig) admissionregistrationv1.WebhookClientConfig {
	path := ""
	if generated.Service != nil && generated.Service.Path != nil {
		path = *generated.Service.Path
	}
	url := strings.TrimSuffix(base, "/") + path
	return admissionregistrationv1.WebhookClientConfig{URL: &url}
}

// Register creates or updates the configurations, keeping the CA bundle already injected.
// Creating them takes more than the operator's ClusterRole grants (update of these two only).
func Register(ctx context.Context, c client.Client, validating *admissionregistrationv1.ValidatingWebhookConfiguration, mutating *admissionregistrationv1.MutatingWebhookConfiguration) error {
	for _, obj := range []client.Object{validating, mutating} {
		current := obj.DeepCopyObject().(client.Object)
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), current)
		switch {
		case apierrors.IsNotFound(err):
			if err := c.Create(ctx, obj); apierrors.IsForbidden(err) {
				return fmt.Errorf("creating webhook configuration %s: %w; the operator's ClusterRole may only update its two configurations, which the chart ships: run --webhook-local-url with a kubeconfig that may create them (make run uses yours), or create them first", obj.GetName(), err)
			} else if err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		}
		keepCABundles(current, obj)
		obj.SetResourceVersion(current.GetResourceVersion())
		if err := c.Update(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}

func keepCABundles(current, desired client.Object) {
	switch d := desired.(type) {
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		cur := current.(*admissionregistrationv1.ValidatingWebhookConfiguration)
		for i := range d.Webhooks {
			if i < len(cur.Webhooks) {
				d.Webhooks[i].ClientConfig.CABundle = cur.Webhooks[i].ClientConfig.CABundle
			}
		}
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		cur := current.(*admissionregistrationv1.MutatingWebhookConfiguration)
		for i := range d.Webhooks {
			if i < len(cur.Webhooks) {
				d.Webhooks[i].ClientConfig.CABundle = cur.Webhooks[i].ClientConfig.CABundle
			}
		}
	}
}

// GatedServer is a webhook server that starts serving only once ready is closed: the
// certificate rotator writes the serving certificate first.
type GatedServer struct {
	webhook.Server
	Ready <-chan struct{}
}

// Start waits for the certificates, then serves.
func (g GatedServer) Start(ctx context.Context) error {
	select {
	case <-g.Ready:
	case <-ctx.Done():
		return nil
	}
	return g.Server.Start(ctx)
}

// LocalCertWriter does for an operator running outside the cluster what the kubelet does for
// a pod that mounts the certificate Secret: it keeps tls.crt and tls.key in Dir in step with
// the Secret the rotator writes. As the kubelet does, it writes each version into a directory
// of its own and switches to it with one rename (tls.crt -> ..data/tls.crt, ..data -> that
// directory), so the webhook server's certificate watcher never reads the certificate of one
// version with the key of another ("private key does not match public key").
type LocalCertWriter struct {
	Reader client.Reader
	Secret types.NamespacedName
	Dir    string
	Clock  clock.Clock
	// Interval between copies once the certificate exists; default 30s.
	Interval time.Duration
}

// NeedLeaderElection is false: every replica serves webhooks.
func (w *LocalCertWriter) NeedLeaderElection() bool { return false }

// Start copies the certificate every second until it first appears, then every 30 seconds.
func (w *LocalCertWriter) Start(ctx context.Context) error {
	interval := time.Second
	for {
		written, err := w.Sync(ctx)
		if err != nil && ctx.Err() == nil {
			log.FromContext(ctx).Error(err, "copying the webhook certificate", "dir", w.Dir)
		}
		if written {
			interval = w.Interval
			if interval == 0 {
				interval = 30 * time.Second
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.Clock.After(interval):
		}
	}
}

// Sync copies the Secret's certificate and key into Dir when they differ from what is there,
// and reports whether Dir now holds them. Called before the manager starts, it replaces
// whatever an earlier run left in Dir before anything serves from it.
func (w *LocalCertWriter) Sync(ctx context.Context) (bool, error) {
	s := &corev1.Secret{}
	if err := w.Reader.Get(ctx, w.Secret, s); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if len(s.Data[corev1.TLSCertKey]) == 0 || len(s.Data[corev1.TLSPrivateKeyKey]) == 0 {
		return false, nil
	}
	return true, w.write(s.Data)
}

// dataLink is the symlink to the directory of the current version, as the kubelet names it.
const dataLink = "..data"

// versionPrefix begins the name of each version directory the writer makes in Dir.
const versionPrefix = "..cert-"

var certFiles = []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey}

func (w *LocalCertWriter) write(data map[string][]byte) error {
	if err := os.MkdirAll(w.Dir, 0o700); err != nil {
		return err
	}
	current := true
	for _, name := range certFiles {
		link, _ := os.Readlink(filepath.Join(w.Dir, name))
		got, err := os.ReadFile(filepath.Join(w.Dir, name))
		current = current && err == nil && link == filepath.Join(dataLink, name) && bytes.Equal(got, data[name])
	}
	if current {
		return nil
	}
	version, err := os.MkdirTemp(w.Dir, versionPrefix)
	if err != nil {
		return err
	}
	for _, name := range certFiles {
		if err := os.WriteFile(filepath.Join(version, name), data[name], 0o600); err != nil {
			_ = os.RemoveAll(version)
			return err
		}
	}
	previous, _ := os.Readlink(filepath.Join(w.Dir, dataLink))
	if err := replaceWithSymlink(filepath.Base(version), filepath.Join(w.Dir, dataLink)); err != nil {
		_ = os.RemoveAll(version)
		return err
	}
	// Once: tls.crt and tls.key become links through ..data (replacing what an earlier run or
	// another tool left); from then on the swap of ..data changes both at once.
	for _, name := range certFiles {
		target := filepath.Join(dataLink, name)
		if link, _ := os.Readlink(filepath.Join(w.Dir, name)); link == target {
			continue
		}
		if err := replaceWithSymlink(target, filepath.Join(w.Dir, name)); err != nil {
			return err
		}
	}
	// Only a version directory of its own in Dir: ..data pointing at "." or ".." (which pass as
	// a base name) or at anything else is left alone.
	if previous != filepath.Base(version) && filepath.Base(previous) == previous && strings.HasPrefix(previous, versionPrefix) {
		_ = os.RemoveAll(filepath.Join(w.Dir, previous))
	}
	return nil
}

// replaceWithSymlink points path at target in one rename.
func replaceWithSymlink(target, path string) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
