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

// Package gc checks what a cluster's kube-controller-manager does to Clearance's objects, with
// the operator running as a process of its own (controllers, webhooks, verifier): deleting an
// APIKey deletes its Secret through the owner reference and the verifier refuses the key;
// deleting an org's namespace, protected objects and all, completes.
package gc

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
)

var (
	env *testenv.Env
	op  *testenv.Operator
)

// TestMain starts the control plane (kube-controller-manager included, as in every package)
// and one operator with its webhooks registered, so the protected-object guard is in the way
// of the namespace controller as in a cluster.
func TestMain(m *testing.M) {
	testenv.Main(m, &env, func(e *testenv.Env) (func() error, error) {
		var err error
		op, err = e.StartOperator(testenv.OperatorOptions{Name: "gc", WithWebhooks: true})
		if err != nil {
			return nil, err
		}
		return func() error { op.Cleanup(); return nil }, nil
	})
}

// TestDeletingAnAPIKeyDeletesItsSecretAndTheVerifierRefusesIt: the key Secret is owned by its
// APIKey, so the garbage collector deletes it after the APIKey, and the key stops working.
func TestDeletingAnAPIKeyDeletesItsSecretAndTheVerifierRefusesIt(t *testing.T) {
	logOnFailure(t)
	ctx := context.Background()
	ns := env.Namespace(t, "gc-key")
	connectedApplication(t, ns, "bi")
	key := activeKey(t, ns, "bi-prod", "bi")
	secret, token := keySecret(t, key)
	waitVerifier(t, ns, token, "the new key to be accepted", http.StatusOK)

	start := time.Now()
	if err := env.Client.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	testenv.Within(t, time.Minute, "the garbage collector to delete Secret "+secret.Name, func() error {
		return gone(env.Client.Get(ctx, client.ObjectKeyFromObject(secret), &corev1.Secret{}))
	})
	collected := time.Since(start)
	refused := waitVerifier(t, ns, token, "the deleted key to be refused", http.StatusUnauthorized, verifier.ReasonKeyUnknown, verifier.ReasonKeyRevoked)
	t.Logf("FIGURES test=apikey-gc secret_collected_after=%s refused_after=%s", collected.Round(time.Millisecond), refused.Round(time.Millisecond))
}

// TestDeletingAnOrgNamespaceCompletes deletes a namespace holding an Application, APIKeys and
// their Secrets, an OrgConnection and protected objects: the operator's webhook lets the
// namespace controller delete the protected objects, the operator releases its keys, and the
// namespace goes away; its keys are refused.
func TestDeletingAnOrgNamespaceCompletes(t *testing.T) {
	logOnFailure(t)
	ctx := context.Background()
	ns := env.Namespace(t, "gc-org")
	connectedApplication(t, ns, "bi")
	protected := map[string]string{v1.LabelProtected: "true"}
	defaults := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "system-default", Labels: protected},
		Spec: v1.ApplicationSpec{Description: "system default"}}
	if err := env.Client.Create(ctx, defaults); err != nil {
		t.Fatal(err)
	}
	metrics := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default", Labels: protected}}
	if err := env.Client.Create(ctx, metrics); err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for _, name := range []string{"bi-prod", "bi-backfill"} {
		_, token := keySecret(t, activeKey(t, ns, name, "bi"))
		tokens = append(tokens, token)
	}
	protectedKey := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "system-default", Labels: protected},
		Spec: v1.APIKeySpec{ApplicationName: "system-default", TTL: &metav1.Duration{Duration: 720 * time.Hour}}}
	if err := env.Client.Create(ctx, protectedKey); err != nil {
		t.Fatal(err)
	}
	waitActive(t, protectedKey)
	waitVerifier(t, ns, tokens[0], "a key of the org to be accepted", http.StatusOK)
	if err := env.Client.Delete(ctx, defaults); err == nil || !strings.Contains(err.Error(), "protected system default") {
		t.Fatalf("deleting the protected Application outside a namespace deletion: %v, want the guard's refusal", err)
	}

	start := time.Now()
	if err := env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	testenv.Within(t, 2*time.Minute, "namespace "+ns+" to go away", func() error {
		nsObj := &corev1.Namespace{}
		if err := gone(env.Client.Get(ctx, client.ObjectKey{Name: ns}, nsObj)); err != nil {
			for _, c := range nsObj.Status.Conditions {
				if c.Status == corev1.ConditionTrue {
					err = fmt.Errorf("%w; %s: %s", err, c.Type, c.Message)
				}
			}
			return err
		}
		return nil
	})
	took := time.Since(start)
	for _, token := range tokens {
		waitVerifier(t, ns, token, "a key of the deleted org to be refused", http.StatusUnauthorized)
	}
	t.Logf("FIGURES test=namespace-deletion namespace_gone_after=%s", took.Round(time.Millisecond))
}

// connectedApplication creates an Application, waits for its ID and connects it to its own
// org, so the verifier accepts its keys there.
func connectedApplication(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ApplicationSpec{Description: "gc test " + name}}
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	testenv.Within(t, time.Minute, "the ID of Application "+name, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
			return err
		}
		if app.Status.ApplicationID == "" {
			return fmt.Errorf("no ID yet")
		}
		return nil
	})
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.OrgConnectionSpec{ApplicationID: app.Status.ApplicationID, Role: v1.RoleObserver}}
	if err := env.Client.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
}

// activeKey creates an APIKey of application app and waits until it is Active.
func activeKey(t *testing.T, ns, name, app string) *v1.APIKey {
	t.Helper()
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.APIKeySpec{ApplicationName: app, TTL: &metav1.Duration{Duration: 720 * time.Hour}}}
	if err := env.Client.Create(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	waitActive(t, key)
	return key
}

func waitActive(t *testing.T, key *v1.APIKey) {
	t.Helper()
	testenv.Within(t, time.Minute, "APIKey "+key.Name+" to be Active", func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(key), key); err != nil {
			return err
		}
		if key.Status.State != v1.KeyActive || key.Status.SecretName == "" {
			return fmt.Errorf("state %q, Secret %q", key.Status.State, key.Status.SecretName)
		}
		return nil
	})
}

// keySecret returns the key's Secret, which the APIKey owns, and the token in it.
func keySecret(t *testing.T, key *v1.APIKey) (*corev1.Secret, string) {
	t.Helper()
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: key.Namespace, Name: key.Status.SecretName}, s); err != nil {
		t.Fatal(err)
	}
	owned := false
	for _, ref := range s.OwnerReferences {
		owned = owned || (ref.UID == key.UID && ref.Kind == "APIKey")
	}
	if !owned {
		t.Fatalf("Secret %s is not owned by APIKey %s: %+v", s.Name, key.Name, s.OwnerReferences)
	}
	token := string(s.Data[v1.SecretKeyToken])
	if token == "" {
		t.Fatalf("Secret %s holds no token", s.Name)
	}
	return s, token
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// waitVerifier asks the operator's verifier about token for org until it answers code, with
// one of reasons when given, and returns how long that took.
func waitVerifier(t *testing.T, org, token, what string, code int, reasons ...string) time.Duration {
	t.Helper()
	start := time.Now()
	testenv.Within(t, time.Minute, what, func() error {
		req, err := http.NewRequest(http.MethodGet, op.VerifierURL+verifier.PathAuthorize+"?org="+org, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "api-key "+token)
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		reason := resp.Header.Get("X-Clearance-Reason")
		if resp.StatusCode != code {
			return fmt.Errorf("answered %d (%s)", resp.StatusCode, reason)
		}
		for _, r := range reasons {
			if r == reason {
				return nil
			}
		}
		if len(reasons) > 0 {
			return fmt.Errorf("answered %d with reason %q, want one of %v", resp.StatusCode, reason, reasons)
		}
		return nil
	})
	return time.Since(start)
}

// gone turns a Get's NotFound into success, and its success into an error to retry.
func gone(err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err == nil:
		return fmt.Errorf("still there")
	default:
		return err
	}
}

// logOnFailure prints the ends of the operator's and kube-controller-manager's logs when the
// test fails. The operator's log may hold key material only in the leak check's sense: keys are
// never logged, which hack/leakcheck verifies.
func logOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of the operator's log:\n%s", lastLines(op.Log(), 40))
			t.Logf("end of kube-controller-manager's log:\n%s", lastLines(env.ControllerManagerLog(), 40))
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
