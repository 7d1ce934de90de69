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
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// PolicyFiles returns the files of config/policies that its kustomization lists: the admission
// policies the chart ships (make manifests copies them into it), make run applies and every
// test environment installs.
func PolicyFiles(root string) ([]string, error) {
	return kustomizationFiles(filepath.Join(root, "config", "policies"))
}

// kustomizationFiles returns the files the kustomization of dir lists as its resources.
func kustomizationFiles(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "kustomization.yaml"), err)
	}
	files := make([]string, 0, len(k.Resources))
	for _, r := range k.Resources {
		files = append(files, filepath.Join(dir, r))
	}
	return files, nil
}

// PermissionCatalogFiles are the files of config/catalog that make the permission catalog: the
// ConfigMap the policy clearance-permissions reads and the RBAC that lets everyone signed in read
// it. Every test environment installs them with the policies, as the chart does.
func PermissionCatalogFiles(root string) []string {
	dir := filepath.Join(root, "config", "catalog")
	return []string{filepath.Join(dir, "permission-catalog.yaml"), filepath.Join(dir, "permission-catalog-reader.yaml")}
}

// installPolicies creates every object of config/policies and the permission catalog (in
// clearance-system, created here). The apiserver enforces a new policy about a second later (it
// loads policies from its own informer); a test that relies on a refusal waits for it.
func installPolicies(ctx context.Context, c client.Client, root string) error {
	files, err := PolicyFiles(root)
	if err != nil {
		return fmt.Errorf("reading config/policies: %w", err)
	}
	if err := ensureOperatorNamespace(ctx, c); err != nil {
		return err
	}
	if err := createFromFiles(ctx, c, append(files, PermissionCatalogFiles(root)...), false); err != nil {
		return err
	}
	return waitForAdmission(ctx, c)
}

// createFromFiles creates every object of the YAML files; with keepExisting, an object that
// already exists is left as it is.
func createFromFiles(ctx context.Context, c client.Client, files []string, keepExisting bool) error {
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := docs.Read()
			if err == io.EOF {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if err := c.Create(ctx, obj); err != nil && !(keepExisting && apierrors.IsAlreadyExists(err)) {
				return fmt.Errorf("installing %s %s from %s: %w", obj.GetKind(), obj.GetName(), file, err)
			}
		}
	}
	return nil
}

// waitForAdmission waits until the apiserver admits the Clearance kinds through the policies
// just installed: right after the CRDs are established it answers 503 ("Resource kind … not
// found") for a while, until its admission plugins know the new types, and it loads the
// policies from its own informer about a second after they are created. A server-side dry run
// of each kind in namespace default that comes back with the created-by record says both are
// done.
func waitForAdmission(ctx context.Context, c client.Client) error {
	probes := []client.Object{
		&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "admission-probe"}, Spec: v1.ApplicationSpec{Description: "probe"}},
		&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "admission-probe"},
			Spec: v1.APIKeySpec{ApplicationName: "probe", TTL: &metav1.Duration{Duration: time.Hour}}},
		&v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "admission-probe"},
			Spec: v1.OrgConnectionSpec{ApplicationID: "app_00000000000000000000000000", Role: v1.RoleObserver}},
	}
	deadline := time.Now().Add(time.Minute)
	for _, probe := range probes {
		for {
			obj := probe.DeepCopyObject().(client.Object)
			err := c.Create(ctx, obj, client.DryRunAll)
			if err == nil && obj.GetAnnotations()[v1.AnnotationCreatedBy] != "" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the apiserver did not admit %T through the admission policies within a minute (last error: %v)", probe, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// ApplyPeopleRoles creates the people ClusterRoles of config/rbac/people_roles.yaml
// (clearance-observer, -analyst, -technician and -org-admin), keeping any already there: the
// test control plane aggregates no roles, so tests bind these directly.
func (e *Env) ApplyPeopleRoles(ctx context.Context) error {
	return createFromFiles(ctx, e.Client, []string{filepath.Join(e.Root, "config", "rbac", "people_roles.yaml")}, true)
}
