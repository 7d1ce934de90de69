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

package rbac

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/signingkey"
	"github.com/clearance-dev/clearance/internal/testenv"
)

const (
	releaseNamespace = "clearance-system"
	verifierSA       = "clearance-verifier"
)

// apiRecorder is a reverse proxy in front of the apiserver that records every request passing
// through it and the status the apiserver answered. A process given a kubeconfig pointing at it
// cannot make a request the test does not see.
type apiRecorder struct {
	mu       sync.Mutex
	requests []string // "GET /api/v1/... 200"
	statuses map[int]int
}

func (a *apiRecorder) record(req *http.Request, status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	line := fmt.Sprintf("%s %s", req.Method, req.URL.Path)
	q := req.URL.Query()
	if q.Get("watch") == "true" || q.Get("watch") == "1" {
		line += "?watch"
	}
	if fs := q.Get("fieldSelector"); fs != "" {
		line += " fieldSelector=" + fs
	}
	a.requests = append(a.requests, fmt.Sprintf("%s %d", line, status))
	a.statuses[status]++
}

func (a *apiRecorder) snapshot() ([]string, map[int]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	statuses := map[int]int{}
	for k, v := range a.statuses {
		statuses[k] = v
	}
	return slices.Clone(a.requests), statuses
}

// startAPIRecorder serves the proxy on loopback over TLS (client-go sends a kubeconfig's token
// only over TLS) and forwards to the apiserver, trusting its CA and adding no credentials of
// its own: the caller's bearer token passes through untouched. It returns the proxy's URL and
// the PEM of its certificate, for a kubeconfig.
func startAPIRecorder(t *testing.T) (rec *apiRecorder, server string, caPEM []byte) {
	t.Helper()
	host := env.Config.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	target, err := url.Parse(host)
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := rest.TLSConfigFor(&rest.Config{TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData}})
	if err != nil {
		t.Fatal(err)
	}
	if tlsConfig == nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	transport := &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true}
	rec = &apiRecorder{statuses: map[int]int{}}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = target.Host },
		Transport:     transport,
		FlushInterval: -1, // watches stream
		ModifyResponse: func(resp *http.Response) error {
			rec.record(resp.Request, resp.StatusCode)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			rec.record(r, http.StatusBadGateway)
			t.Logf("the recorder could not forward %s %s: %v", r.Method, r.URL.Path, err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewTLSServer(proxy)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); transport.CloseIdleConnections() })
	return rec, srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// applyChartRBAC applies the ServiceAccounts, roles and bindings of the chart rendered with
// default values (and the helm arguments given): the identities exactly as an install creates
// them.
func applyChartRBAC(t *testing.T, helmArgs ...string) {
	t.Helper()
	if _, err := env.Kubectl(t, "create", "namespace", releaseNamespace); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	var picked [][]byte
	for _, d := range parseChart(t, env.HelmTemplate(t, helmArgs...)).docs {
		switch d.kind {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			picked = append(picked, d.data)
		}
	}
	path := filepath.Join(t.TempDir(), "rbac.yaml")
	if err := os.WriteFile(path, bytes.Join(picked, []byte("\n---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := env.Kubectl(t, "apply", "--server-side", "--force-conflicts", "-f", path); err != nil {
		t.Fatalf("applying the chart's RBAC: %v\n%s", err, out)
	}
}

func serviceAccountToken(t *testing.T, ns, name string) string {
	t.Helper()
	return env.ServiceAccountToken(t, ns, name)
}

// writeTokenKubeconfig writes a kubeconfig that reaches server with token and nothing else.
func writeTokenKubeconfig(t *testing.T, server string, caPEM []byte, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["proxy"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["verifier"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["verifier"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "verifier"}
	cfg.CurrentContext = "verifier"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTheVerifierServesWithAnIdentityThatCannotReadSecrets takes the verifier's RBAC as the chart
// renders it by default, shows its ServiceAccount is refused every read of Secrets but the OAuth
// token signing keys (by name), then runs the
// clearance binary as a verifier-only process with that ServiceAccount's token (beside an
// operator running only the controllers, the chart's default topology): it answers verify
// requests and writes usage, and of all the requests it made, none touched a Secret and none was
// refused.
func TestTheVerifierServesWithAnIdentityThatCannotReadSecrets(t *testing.T) {
	ctx := context.Background()
	applyChartRBAC(t)
	owner, grant := env.Namespace(t, "owner"), env.Namespace(t, "grant")
	token := serviceAccountToken(t, releaseNamespace, verifierSA)

	// 1. The apiserver refuses it Secrets, anywhere, for every read.
	user := "system:serviceaccount:" + releaseNamespace + ":" + verifierSA
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"}
	for _, ns := range []string{"", releaseNamespace, owner} {
		for _, verb := range []string{"get", "list", "watch"} {
			st := env.Review(t, authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Resource: "secrets"},
			})
			if st.Allowed {
				t.Errorf("the verifier's ServiceAccount may %s secrets in namespace %q (%s)", verb, ns, st.Reason)
			}
		}
	}
	asVerifier, err := kubernetes.NewForConfig(&rest.Config{Host: env.Config.Host, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData}})
	if err != nil {
		t.Fatal(err)
	}
	// Except the one Secret of the OAuth token signing keys, by name, which it may read.
	for _, tc := range []struct {
		name    string
		allowed bool
	}{{signingkey.DefaultSecretName, true}, {"clearance-webhook-cert", false}} {
		for _, verb := range []string{"get", "list", "watch"} {
			st := env.Review(t, authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: releaseNamespace, Verb: verb, Resource: "secrets", Name: tc.name},
			})
			if st.Allowed != tc.allowed {
				t.Errorf("the verifier's ServiceAccount may %s Secret %s: %v, want %v", verb, tc.name, st.Allowed, tc.allowed)
			}
		}
	}
	// The token is good: the same identity may list APIKeys.
	var keysList v1.APIKeyList
	if err := asVerifier.RESTClient().Get().AbsPath("/apis/access.clearance.dev/v1alpha1/apikeys").Do(ctx).Into(&keysList); err != nil {
		t.Fatalf("the verifier's ServiceAccount cannot list APIKeys, so its token proves nothing: %v", err)
	}
	if _, err := asVerifier.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing Secrets with the verifier's token: want 403 Forbidden, got %v", err)
	}
	if _, err := asVerifier.CoreV1().Secrets(releaseNamespace).Get(ctx, "clearance-webhook-cert", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("getting the webhook certificate Secret with the verifier's token: want 403 Forbidden, got %v", err)
	}
	if w, err := asVerifier.CoreV1().Secrets(owner).Watch(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		if w != nil {
			w.Stop()
		}
		t.Errorf("watching Secrets with the verifier's token: want 403 Forbidden, got %v", err)
	}

	// 2. The chart's topology: an operator with only the controllers (it mints keys), and a
	// verifier-only process with the verifier's token, every request of which goes through rec.
	controllersOp, err := env.StartOperator(testenv.OperatorOptions{Name: "controllers", Args: []string{"--enable-verifier=false"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(controllersOp.Cleanup)
	rec, proxyURL, proxyCA := startAPIRecorder(t)
	kubeconfig := writeTokenKubeconfig(t, proxyURL, proxyCA, token)
	verifierOp, err := env.StartOperator(testenv.OperatorOptions{Name: "verifier", Args: []string{
		"--kubeconfig=" + kubeconfig,
		"--enable-controllers=false", "--enable-webhooks=false", "--enable-verifier",
		"--usage-flush-interval=1s",
	}})
	if err != nil {
		requests, _ := rec.snapshot()
		t.Fatalf("%v\nits requests through the recorder: %v", err, requests)
	}
	t.Cleanup(verifierOp.Cleanup)

	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: owner, Name: "bi"}, Spec: v1.ApplicationSpec{Description: "BI export"}}
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: owner, Name: "bi-prod"}, Spec: v1.APIKeySpec{ApplicationName: "bi"}}
	if err := env.Client.Create(ctx, key); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the Application's ID", func() bool {
		return env.Client.Get(ctx, client.ObjectKeyFromObject(app), app) == nil && app.Status.ApplicationID != ""
	})
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: grant, Name: "bi"},
		Spec: v1.OrgConnectionSpec{ApplicationID: app.Status.ApplicationID}}
	if err := env.Client.Create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the key to be Active", func() bool {
		return env.Client.Get(ctx, client.ObjectKeyFromObject(key), key) == nil && key.Status.State == v1.KeyActive
	})
	var secret corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: owner, Name: "bi-prod-key"}, &secret); err != nil {
		t.Fatalf("the key Secret: %v", err)
	}
	plaintext := string(secret.Data[v1.SecretKeyToken])
	if plaintext == "" {
		t.Fatalf("the key Secret has no token; its keys: %v", keysOf(secret.Data))
	}

	authorize := func(org, k string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, verifierOp.VerifierURL+"/v1/authorize?org="+url.QueryEscape(org), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "api-key "+k)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	var resp *http.Response
	waitFor(t, 30*time.Second, "the verifier to accept the key for the connected org", func() bool {
		resp = authorize(grant, plaintext)
		return resp.StatusCode == http.StatusOK
	})
	if got := resp.Header.Get("X-Clearance-Application-Id"); got != app.Status.ApplicationID {
		t.Errorf("X-Clearance-Application-Id = %q, want %q", got, app.Status.ApplicationID)
	}
	if got := resp.Header.Get("X-Clearance-Org"); got != grant {
		t.Errorf("X-Clearance-Org = %q, want %q", got, grant)
	}
	if got := resp.Header.Get("X-Clearance-Role"); got != string(v1.RoleObserver) {
		t.Errorf("X-Clearance-Role = %q, want %s", got, v1.RoleObserver)
	}
	if resp := authorize("no-such-org", plaintext); resp.StatusCode == http.StatusOK {
		t.Error("the verifier accepted the key for an org that did not connect its application")
	}
	last := "A"
	if strings.HasSuffix(plaintext, "A") {
		last = "B"
	}
	tampered := plaintext[:len(plaintext)-1] + last
	if resp := authorize(grant, tampered); resp.StatusCode == http.StatusOK {
		t.Error("the verifier accepted a tampered key")
	}
	// OAuth: the verifier loaded the signing keys the controllers created, with its identity,
	// and a partner's client credentials get a token that /v1/authorize accepts.
	var accessToken string
	waitFor(t, 30*time.Second, "the verifier to issue an access token", func() bool {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {string(secret.Data[v1.SecretKeyAccessKey])},
			"client_secret": {string(secret.Data[v1.SecretKeySecretKey])}}
		resp, err := http.PostForm(verifierOp.VerifierURL+"/oauth2/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		accessToken = body.AccessToken
		return resp.StatusCode == http.StatusOK && accessToken != ""
	})
	testenv.CollectSecretsForLeakCheck(func() []testenv.LeakSecret {
		return []testenv.LeakSecret{{Label: "access token of the restricted verifier", Value: accessToken}}
	})
	if resp := authorize(grant, accessToken); resp.StatusCode != http.StatusOK {
		t.Errorf("the verifier refused its own access token: %d %s", resp.StatusCode, resp.Header.Get("X-Clearance-Reason"))
	}

	// Usage is written with the verifier's identity too (patch apikeys/status).
	waitFor(t, 30*time.Second, "the verifier to write the key's usage", func() bool {
		return env.Client.Get(ctx, client.ObjectKeyFromObject(key), key) == nil && key.Status.UsageCount >= 1
	})

	// The recorder logs a request once its answer went back, a moment after the apiserver
	// applied it: wait for the usage patch to be logged too.
	waitFor(t, 10*time.Second, "the recorder to log the usage patch", func() bool {
		requests, _ := rec.snapshot()
		for _, r := range requests {
			if strings.HasPrefix(r, "PATCH ") && strings.Contains(r, "/apikeys/bi-prod/status ") {
				return true
			}
		}
		return false
	})
	requests, statuses := rec.snapshot()
	if len(requests) == 0 {
		t.Fatal("no request of the verifier went through the recorder, so nothing was proved")
	}
	var secretsSeen, forbidden []string
	watchedKeys, patchedUsage := false, false
	for _, r := range requests {
		if strings.HasPrefix(r, "PATCH ") && strings.Contains(r, "/apikeys/bi-prod/status ") {
			patchedUsage = true
		}
		if strings.Contains(r, "/secrets") && !strings.Contains(r, "/namespaces/"+releaseNamespace+"/secrets fieldSelector=metadata.name="+signingkey.DefaultSecretName+" ") &&
			!strings.Contains(r, "/namespaces/"+releaseNamespace+"/secrets?watch fieldSelector=metadata.name="+signingkey.DefaultSecretName+" ") {
			secretsSeen = append(secretsSeen, r)
		}
		if strings.HasSuffix(r, " 403") {
			forbidden = append(forbidden, r)
		}
		if strings.Contains(r, "/apikeys?watch ") {
			watchedKeys = true
		}
	}
	if len(secretsSeen) > 0 {
		t.Errorf("the verifier-only process asked for Secrets other than the signing keys, by name: %v", secretsSeen)
	}
	if len(forbidden) > 0 {
		t.Errorf("the verifier-only process was refused by its RBAC: %v", forbidden)
	}
	if !watchedKeys || !patchedUsage {
		t.Errorf("the verifier's watch of APIKeys and its usage write did not both go through the recorder: %v", requests)
	}
	if log := strings.ToLower(verifierOp.Log()); strings.Contains(log, "forbidden") {
		t.Errorf("the verifier's log mentions a refusal:\n%s", verifierOp.Log())
	}
	t.Logf("the verifier-only process made %d requests with its ServiceAccount's token (by status: %v), none on Secrets, none refused:\n  %s",
		len(requests), statuses, strings.Join(requests, "\n  "))
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
