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

package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// TestAReappliedApplicationNeverRevivesTheKeysAndTokensOfTheDeletedOne is issue 25's report:
// delete acme-bi, apply config/samples/acme_application.yaml again (GitOps self-heal, with the
// pinned ID docs/gitops.md recommends), and the key and its unexpired OAuth access token must
// stay refused. The key records the UID of the Application it was minted for, so the verifier
// refuses it by itself from the instant of the delete, whatever is applied after and however
// slow the garbage collector is; the operator then deletes the APIKey, and the garbage
// collector its Secret.
func TestAReappliedApplicationNeverRevivesTheKeysAndTokensOfTheDeletedOne(t *testing.T) {
	logOnFailure(t)
	ctx := context.Background()
	ns := env.Namespace(t, "gc-reapply")
	app := sampleApplication(t, ns)
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	pinned := app.Spec.ApplicationID
	testenv.Within(t, time.Minute, "the sample Application to hold its pinned ID", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
			return err
		}
		if app.Status.ApplicationID != pinned {
			return fmt.Errorf("ID %q", app.Status.ApplicationID)
		}
		return nil
	})
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app.Name},
		Spec: v1.OrgConnectionSpec{ApplicationID: pinned, Role: v1.RoleObserver}}
	if err := env.Client.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	key := activeKey(t, ns, "acme-bi-prod", app.Name)
	if key.Status.ApplicationUID != app.UID {
		t.Errorf("status.applicationUID %q, want %q", key.Status.ApplicationUID, app.UID)
	}
	secret, token := keySecret(t, key)
	testenv.CollectTokensForLeakCheck(func() []string { return []string{token} })
	waitVerifier(t, ns, token, "the key to be accepted", http.StatusOK)
	access := accessToken(t, secret)
	testenv.CollectSecretsForLeakCheck(func() []testenv.LeakSecret {
		return []testenv.LeakSecret{{Label: "access token of the re-applied Application test", Value: access}}
	})
	if code, reason := authorize(t, ns, "Bearer "+access); code != http.StatusOK {
		t.Fatalf("the access token was refused before anything happened: %d %s", code, reason)
	}

	// kubectl delete, then self-heal applies the same manifest again.
	if err := env.Client.Delete(ctx, app); err != nil {
		t.Fatal(err)
	}
	again := sampleApplication(t, ns)
	testenv.Within(t, time.Minute, "the sample to be applied again", func() error { return env.Client.Create(ctx, again) })

	// From here on nothing may accept the key or its token, while the Application comes back
	// with its pinned ID, the operator reconciles and the garbage collector collects.
	refused := func() {
		for _, auth := range []string{"api-key " + token, "Bearer " + access} {
			if code, reason := authorize(t, ns, auth); code == http.StatusOK {
				t.Fatalf("after the Application was deleted and applied again, %s… answered %d %s", auth[:7], code, reason)
			}
		}
	}
	testenv.Within(t, time.Minute, "the Application applied again to hold its pinned ID, and the key and its Secret to be gone", func() error {
		refused()
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(again), again); err != nil {
			return err
		}
		if again.Status.ApplicationID != pinned {
			return fmt.Errorf("the new Application's ID is %q", again.Status.ApplicationID)
		}
		if err := gone(env.Client.Get(ctx, client.ObjectKeyFromObject(key), &v1.APIKey{})); err != nil {
			return fmt.Errorf("APIKey: %w", err)
		}
		return gone(env.Client.Get(ctx, client.ObjectKeyFromObject(secret), &corev1.Secret{}))
	})
	if again.UID == app.UID {
		t.Fatal("fixture: the Application applied again is the same object")
	}
	for range 10 {
		refused()
		time.Sleep(100 * time.Millisecond)
	}
	if code, reason := authorize(t, ns, "api-key "+token); code != http.StatusUnauthorized || reason != verifier.ReasonKeyUnknown {
		t.Errorf("the deleted key: %d %s, want 401 %s", code, reason, verifier.ReasonKeyUnknown)
	}
	if code := tokenStatus(t, secret); code != http.StatusUnauthorized {
		t.Errorf("the token endpoint answered %d to the deleted key's credentials, want 401", code)
	}
}

// sampleApplication reads config/samples/acme_application.yaml, into namespace ns.
func sampleApplication(t *testing.T, ns string) *v1.Application {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.Root, "config", "samples", "acme_application.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	app := &v1.Application{}
	if err := yaml.UnmarshalStrict(raw, app); err != nil {
		t.Fatal(err)
	}
	if app.Spec.ApplicationID == "" {
		t.Fatal("the sample Application no longer pins its ID")
	}
	app.Namespace = ns
	return app
}

// accessToken obtains an OAuth access token with the client credentials of a key Secret.
func accessToken(t *testing.T, secret *corev1.Secret) string {
	t.Helper()
	var tok string
	testenv.Within(t, time.Minute, "the verifier to issue an access token", func() error {
		resp, err := httpClient.PostForm(op.VerifierURL+verifier.PathToken, tokenForm(secret))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
			return fmt.Errorf("token endpoint: %d", resp.StatusCode)
		}
		tok = body.AccessToken
		return nil
	})
	return tok
}

func tokenForm(secret *corev1.Secret) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {string(secret.Data[v1.SecretKeyAccessKey])},
		"client_secret": {string(secret.Data[v1.SecretKeySecretKey])}}
}

// tokenStatus is the token endpoint's status for a key Secret's client credentials.
func tokenStatus(t *testing.T, secret *corev1.Secret) int {
	t.Helper()
	resp, err := httpClient.PostForm(op.VerifierURL+verifier.PathToken, tokenForm(secret))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// authorize asks the operator's verifier about an Authorization header for org and returns its
// status and reason.
func authorize(t *testing.T, org, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, op.VerifierURL+verifier.PathAuthorize+"?org="+org, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Clearance-Reason")
}
