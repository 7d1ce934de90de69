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
	"context"
	"fmt"
	"path/filepath"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// operatorNamespace is the operator's namespace, as the chart, config/rbac and config/policies
// name it.
const operatorNamespace = "clearance-system"

// OperatorUser is the username of the operator's ServiceAccount (clearance in
// clearance-system), as the chart and config/rbac install it.
const OperatorUser = "system:serviceaccount:" + operatorNamespace + ":clearance"

// ensureOperatorNamespace creates the operator's namespace unless it exists.
func ensureOperatorNamespace(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// ensureWebhookConfigurations creates the operator's two webhook configurations, without
// webhooks, unless they exist: what the chart's would be before the operator injects its CA, for
// an operator as its ServiceAccount, which may update them but not create them. The names are
// internal/webhook's (ValidatingConfigurationName, MutatingConfigurationName).
func ensureWebhookConfigurations(ctx context.Context, c client.Client) error {
	for _, o := range []client.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "clearance-validating-webhook-configuration"}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "clearance-mutating-webhook-configuration"}},
	} {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// operatorIdentity is a user the apiserver knows as the operator's ServiceAccount.
type operatorIdentity struct {
	config     *rest.Config
	kubeconfig string
}

// OperatorIdentity installs config/rbac (objects already there are kept) and returns a config
// and the path of a kubeconfig for the operator's ServiceAccount: the username and groups the
// apiserver gives its token, authenticated by a client certificate like the admin's, so a
// process using it is authorized by the shipped RBAC alone and admission sees the operator's
// name, as in a cluster, and authentication costs what the admin's does.
func (e *Env) OperatorIdentity() (*rest.Config, string, error) {
	if e.operator != nil {
		return e.operator.config, e.operator.kubeconfig, nil
	}
	ctx := context.Background()
	if err := ensureOperatorNamespace(ctx, e.Client); err != nil {
		return nil, "", err
	}
	files, err := kustomizationFiles(filepath.Join(e.Root, "config", "rbac"))
	if err != nil {
		return nil, "", fmt.Errorf("reading config/rbac: %w", err)
	}
	if err := createFromFiles(ctx, e.Client, files, true); err != nil {
		return nil, "", err
	}
	cfg, path, err := e.addUser("", envtest.User{Name: OperatorUser, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNamespace}})
	if err != nil {
		return nil, "", fmt.Errorf("adding the operator's user: %w", err)
	}
	e.operator = &operatorIdentity{config: cfg, kubeconfig: path}
	return cfg, path, nil
}

// ServiceAccountToken returns a token of an hour for ServiceAccount ns/name from the
// TokenRequest API, as kubectl create token does; the ServiceAccount must exist.
func (e *Env) ServiceAccountToken(t testing.TB, ns, name string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for ServiceAccount %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// Review asks the apiserver's authorizer about spec (a SubjectAccessReview) and returns its
// answer.
func (e *Env) Review(t testing.TB, spec authorizationv1.SubjectAccessReviewSpec) authorizationv1.SubjectAccessReviewStatus {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: spec}
	if err := e.Client.Create(context.Background(), sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status
}
