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
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
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

// NamespacePolicy installs a ValidatingAdmissionPolicy named ns, with its binding, that checks
// creates of Clearance's resource in namespace ns with validation and answers as action says
// (Deny or Warn); both go when the test ends. The apiserver loads policies asynchronously: the
// caller waits until one is in force.
func (e *Env) NamespacePolicy(t testing.TB, ns, resource string, validation admissionregistrationv1.Validation, action admissionregistrationv1.ValidationAction) {
	t.Helper()
	ctx := context.Background()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{v1.GroupVersion.Group}, APIVersions: []string{"*"}, Resources: []string{resource}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{validation},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        ns,
			ValidationActions: []admissionregistrationv1.ValidationAction{action},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns},
			}},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := e.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = e.Client.Delete(ctx, binding)
		_ = e.Client.Delete(ctx, policy)
	})
}
