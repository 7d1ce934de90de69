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

package metricsauth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/clearance-dev/clearance/internal/metricsauth"
	"github.com/clearance-dev/clearance/internal/testenv"
)

var env *testenv.Env

// staticTokens are the apiserver's --token-auth-file users: no UID and no extra, so two of them
// differ by name and groups alone (staticReaders is a group of frank's first token).
var staticTokens = map[string]string{}

const staticReaders = "metricsauth-test:static-readers"

// TestMain starts the control plane with users of a token file and a real OIDC provider.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "metricsauth-tokens-")
	if err != nil {
		panic(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	var lines []string
	for _, u := range []struct{ name, user, groups string }{
		{"dave", "metricsauth-test:dave", ""}, {"erin", "metricsauth-test:erin", ""},
		{"frank in the group", "metricsauth-test:frank", staticReaders}, {"frank", "metricsauth-test:frank", ""},
	} {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		staticTokens[u.name] = hex.EncodeToString(b)
		lines = append(lines, fmt.Sprintf("%s,%s,,%q", staticTokens[u.name], u.user, u.groups))
	}
	testenv.CollectSecretsForLeakCheck(func() []testenv.LeakSecret {
		var out []testenv.LeakSecret
		for name, token := range staticTokens {
			out = append(out, testenv.LeakSecret{Label: "the token-file token of " + name, Value: token})
		}
		return out
	})
	file := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		panic(err)
	}
	testenv.MainWith(m, &env, testenv.Options{OIDC: true, APIServerArgs: map[string]string{"token-auth-file": file}})
}

// scraper is a ServiceAccount of ns with a token from the TokenRequest API, bound to
// clearance-metrics-reader (config/rbac/metrics_reader_role.yaml) when reader; it returns the
// token and the binding (nil if none).
func scraper(t *testing.T, ns, name string, reader bool) (string, *rbacv1.ClusterRoleBinding) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := env.OperatorIdentity(); err != nil { // installs config/rbac, the reader's ClusterRole among it
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
		t.Fatal(err)
	}
	var binding *rbacv1.ClusterRoleBinding
	if reader {
		binding = &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "clearance-metrics-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
		}
		if err := env.Client.Create(ctx, binding); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), binding) })
		// The apiserver's authorizer learns of the binding from its own informers: wait until
		// it allows, so the filter's first answer (remembered a minute) is not taken too early.
		testenv.Within(t, 30*time.Second, "the binding of "+ns+"/"+name+" to be in force", func() error {
			if !env.Review(t, authorizationv1.SubjectAccessReviewSpec{
				User:                  "system:serviceaccount:" + ns + ":" + name,
				Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
			}).Allowed {
				return errors.New("not allowed yet")
			}
			return nil
		})
	}
	return env.ServiceAccountToken(t, ns, name), binding
}

// get sends method to url with authorization (if any) and returns the status and the body.
func get(t *testing.T, c *http.Client, method, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestOnlyAnIdentityRBACAllowsReadsTheMetrics: with the operator's own identity and RBAC
// (config/rbac), the filter lets through a bearer token allowed get on /metrics and nothing
// else: no token, another scheme, a token the apiserver does not know, an identity without the
// binding, another path or another verb. A binding removed stops the scrapes once the answer
// remembered expires, and no token reaches the log.
func TestOnlyAnIdentityRBACAllowsReadsTheMetrics(t *testing.T) {
	ns := env.Namespace(t, "metrics-auth")
	reader, binding := scraper(t, ns, "prometheus", true)
	stranger, _ := scraper(t, ns, "stranger", false)

	operator, _, err := env.OperatorIdentity()
	if err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(operator)
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	filter, err := metricsauth.Filter(clock)(operator, hc)
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logged bytes.Buffer
	log := funcr.New(func(prefix, args string) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintln(&logged, prefix, args)
	}, funcr.Options{})
	h, err := filter(log, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "clearance_metric 1\n") }))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := srv.Client()

	for _, tc := range []struct {
		name, method, path, authorization string
		want                              int
	}{
		{"no token", http.MethodGet, "/metrics", "", http.StatusUnauthorized},
		{"an empty bearer token", http.MethodGet, "/metrics", "Bearer ", http.StatusUnauthorized},
		{"another scheme", http.MethodGet, "/metrics", "Basic " + reader, http.StatusUnauthorized},
		{"a token the apiserver does not know", http.MethodGet, "/metrics", "Bearer " + reader[:len(reader)-4] + "AAAA", http.StatusUnauthorized},
		{"an identity without the binding", http.MethodGet, "/metrics", "Bearer " + stranger, http.StatusForbidden},
		{"another path", http.MethodGet, "/debug/pprof/", "Bearer " + reader, http.StatusForbidden},
		{"another verb", http.MethodPost, "/metrics", "Bearer " + reader, http.StatusForbidden},
		{"the reader", http.MethodGet, "/metrics", "Bearer " + reader, http.StatusOK},
		{"the reader, the scheme in lower case", http.MethodGet, "/metrics", "bearer " + reader, http.StatusOK},
	} {
		code, body := get(t, c, tc.method, srv.URL+tc.path, tc.authorization)
		if code != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, code, body, tc.want)
		}
		if code == http.StatusOK && body != "clearance_metric 1\n" {
			t.Errorf("%s: body %q", tc.name, body)
		}
		if strings.Contains(body, reader) || strings.Contains(body, stranger) {
			t.Errorf("%s: the answer holds a token", tc.name)
		}
	}

	// The binding removed: still let through while the answer is remembered, refused after.
	if err := env.Client.Delete(context.Background(), binding); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, c, http.MethodGet, srv.URL+"/metrics", "Bearer "+reader); code != http.StatusOK {
		t.Errorf("within the minute remembered: %d, want 200", code)
	}
	// Once the apiserver's authorizer has learnt of the delete, the answer remembered lasts TTL
	// and no longer.
	testenv.Within(t, 30*time.Second, "the apiserver to refuse the reader once its binding is gone", func() error {
		if env.Review(t, authorizationv1.SubjectAccessReviewSpec{
			User:                  "system:serviceaccount:" + ns + ":prometheus",
			Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
		}).Allowed {
			return errors.New("still allowed")
		}
		return nil
	})
	clock.Step(metricsauth.TTL + time.Second)
	if code, _ := get(t, c, http.MethodGet, srv.URL+"/metrics", "Bearer "+reader); code != http.StatusForbidden {
		t.Errorf("a minute after its binding was removed: %d, want 403", code)
	}

	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logged.String(), "refused") {
		t.Error("no refusal was logged")
	}
	for _, token := range []string{reader, stranger} {
		if strings.Contains(logged.String(), token) || strings.Contains(logged.String(), token[len(token)-20:]) {
			t.Error("a token reached the log")
		}
	}
}

// TestAnOperatorRunWithMetricsSecureServesItsMetricsOnlyToAReader runs the operator as its
// ServiceAccount, with only the RBAC config/rbac ships, and --metrics-secure: its metrics are
// served over HTTPS (a self-signed certificate), to the reader alone.
func TestAnOperatorRunWithMetricsSecureServesItsMetricsOnlyToAReader(t *testing.T) {
	ns := env.Namespace(t, "metrics-secure")
	reader, _ := scraper(t, ns, "prometheus", true)
	stranger, _ := scraper(t, ns, "stranger", false)
	op, err := env.StartOperator(testenv.OperatorOptions{ServiceAccount: true, Args: []string{"--metrics-secure"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Cleanup)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(op.Log())
		}
	})
	url := strings.Replace(op.MetricsURL, "http://", "https://", 1) + "/metrics"
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the operator's certificate is self-signed
	}}
	// The self-signed certificate is made as the server starts, which may come after /readyz.
	testenv.Within(t, 30*time.Second, "the metrics endpoint to answer", func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("no token: %d, want 401", resp.StatusCode)
		}
		return nil
	})
	if code, _ := get(t, c, http.MethodGet, url, "Bearer "+stranger); code != http.StatusForbidden {
		t.Errorf("a token without the binding: %d, want 403", code)
	}
	code, body := get(t, c, http.MethodGet, url, "Bearer "+reader)
	if code != http.StatusOK || !strings.Contains(body, "clearance_") {
		t.Errorf("the reader: %d, %d bytes, want 200 and Clearance's metrics", code, len(body))
	}
	plain := &http.Client{Timeout: 30 * time.Second}
	if resp, err := plain.Get(op.MetricsURL + "/metrics"); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the metrics are served over plain HTTP too")
		}
	}
	if log := op.Log(); strings.Contains(log, reader) || strings.Contains(log, stranger) {
		t.Error("a token reached the operator's log")
	}
}

// TestTheMetricsCertDirIsServedAndOneWithoutItsFilesIsRefused: --metrics-cert-dir's certificate
// is the one served; a directory without tls.crt and tls.key stops the start with an error that
// names the flag, rather than controller-runtime's silent fallback to a self-signed one.
func TestTheMetricsCertDirIsServedAndOneWithoutItsFilesIsRefused(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("clearance-metrics.example", []net.IP{{127, 0, 0, 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	op, err := env.StartOperator(testenv.OperatorOptions{Name: "metrics-cert-dir", Args: []string{"--metrics-secure", "--metrics-cert-dir=" + dir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Cleanup)
	addr := strings.TrimPrefix(op.MetricsURL, "http://")
	testenv.Within(t, 30*time.Second, "the metrics endpoint to serve the certificate of --metrics-cert-dir", func() error {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only the certificate served is compared
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(want[0]) {
			return fmt.Errorf("served a certificate for %q", got.Subject.CommonName)
		}
		return nil
	})

	_, err = env.StartOperator(testenv.OperatorOptions{Name: "metrics-cert-dir-empty", Args: []string{"--metrics-secure", "--metrics-cert-dir=" + t.TempDir()}})
	if err == nil || !strings.Contains(err.Error(), "--metrics-cert-dir") || !strings.Contains(err.Error(), "tls.crt") {
		t.Errorf("an empty --metrics-cert-dir: %v, want the start refused naming the flag and its files", err)
	}
}

// serve puts the filter, with the credentials cfg and the clock clk, in front of a handler
// that answers "clearance_metric 1", and returns a client and the server's URL.
func serve(t *testing.T, cfg *rest.Config, clk clock.PassiveClock) (*http.Client, string) {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := metricsauth.Filter(clk)(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	h, err := filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "clearance_metric 1\n") }))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Client(), srv.URL
}

// bindReader binds subject to clearance-metrics-reader and waits until the apiserver's
// authorizer allows user, in groups, get on /metrics.
func bindReader(t *testing.T, name string, subject rbacv1.Subject, user string, groups ...string) {
	t.Helper()
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "clearance-metrics-reader"},
		Subjects:   []rbacv1.Subject{subject},
	}
	if err := env.Client.Create(context.Background(), binding); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), binding) })
	testenv.Within(t, 30*time.Second, "the binding "+name+" to be in force", func() error {
		if !env.Review(t, authorizationv1.SubjectAccessReviewSpec{User: user, Groups: append(groups, "system:authenticated"),
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}}).Allowed {
			return errors.New("not allowed yet")
		}
		return nil
	})
}

// oidcToken signs name in at the test OIDC provider, in groups, and returns the ID token: the
// apiserver authenticates it as env.OIDC.Username(name), with no UID, in those groups (each
// prefixed with testenv.OIDCPrefix).
func oidcToken(t *testing.T, name string, groups ...string) string {
	t.Helper()
	p := env.OIDC
	p.QueueUser(name, groups...)
	c := p.HTTPClient()
	callback := "https://127.0.0.1/callback"
	q := url.Values{"client_id": {p.ClientID}, "redirect_uri": {callback}, "response_type": {"code"},
		"scope": {"openid email groups"}, "state": {"state"}, "nonce": {"nonce"}}
	resp, err := c.Get(p.Mock.AuthorizationEndpoint() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("the provider's authorization answer (%d) sends nowhere: %v", resp.StatusCode, err)
	}
	resp, err = c.PostForm(p.Mock.TokenEndpoint(), url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"client_id": {p.ClientID}, "client_secret": {p.ClientSecret}, "redirect_uri": {callback}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var tokens struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tokens); err != nil || tokens.IDToken == "" {
		t.Fatalf("the provider's token answer (%d) holds no ID token (%v)", resp.StatusCode, err)
	}
	return tokens.IDToken
}

// TestEveryAnswerIsTheAPIServersForThatIdentityWhateverWasAskedBefore: the filter remembers
// the apiserver's answers, and an answer remembered for one identity, verb or path is never
// given to another. ServiceAccounts, OIDC users (no UID) and users of the apiserver's token
// file (no UID, no extra: two of them in the same groups differ by their names alone), each a
// reader and one who is not (another user, or the same person without the group bound), ask
// for the metrics, to write, and for another path, in one order and then in the other, through
// one filter whose memory never expires: each answer is what the apiserver answers about that
// identity, verb and path when asked on its own.
func TestEveryAnswerIsTheAPIServersForThatIdentityWhateverWasAskedBefore(t *testing.T) {
	ns := env.Namespace(t, "metrics-identities")
	reader, _ := scraper(t, ns, "prometheus", true)
	stranger, _ := scraper(t, ns, "stranger", false)
	readers := testenv.OIDCPrefix + ns + "-readers"
	bindReader(t, ns+"-alice", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: env.OIDC.Username("alice")}, env.OIDC.Username("alice"))
	bindReader(t, ns+"-readers", rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: readers}, env.OIDC.Username("nobody"), readers)
	bindReader(t, ns+"-dave", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "metricsauth-test:dave"}, "metricsauth-test:dave")
	bindReader(t, ns+"-static-readers", rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: staticReaders}, "metricsauth-test:nobody", staticReaders)
	identities := []struct{ name, token string }{
		{"a ServiceAccount bound to the reader role", reader},
		{"a ServiceAccount without a binding", stranger},
		{"an OIDC user bound to the reader role", oidcToken(t, "alice")},
		{"another OIDC user, in the same groups", oidcToken(t, "mallory")},
		{"an OIDC user in a group bound to the reader role", oidcToken(t, "carol", ns+"-readers")},
		{"the same OIDC user without that group", oidcToken(t, "carol")},
		{"a token-file user bound to the reader role", staticTokens["dave"]},
		{"another token-file user, in the same groups", staticTokens["erin"]},
		{"a token-file user in a group bound to the reader role", staticTokens["frank in the group"]},
		{"the same token-file user without that group", staticTokens["frank"]},
	}
	requests := []struct{ method, path string }{{http.MethodGet, "/metrics"}, {http.MethodPost, "/metrics"}, {http.MethodGet, "/debug/pprof/"}}

	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]int]int{}
	for i, id := range identities {
		review, err := cs.AuthenticationV1().TokenReviews().Create(context.Background(),
			&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: id.token}}, metav1.CreateOptions{})
		if err != nil || !review.Status.Authenticated {
			t.Fatalf("%s: the apiserver does not authenticate its token (%v)", id.name, err)
		}
		u := review.Status.User
		extra := map[string]authorizationv1.ExtraValue{}
		for k, v := range u.Extra {
			extra[k] = authorizationv1.ExtraValue(v)
		}
		for j, rq := range requests {
			want[[2]int{i, j}] = http.StatusForbidden
			if env.Review(t, authorizationv1.SubjectAccessReviewSpec{User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
				NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: rq.path, Verb: strings.ToLower(rq.method)}}).Allowed {
				want[[2]int{i, j}] = http.StatusOK
			}
		}
	}
	for i := 2; i < len(identities); i += 2 { // a reader, then one who is not
		if want[[2]int{i, 0}] != http.StatusOK || want[[2]int{i + 1, 0}] != http.StatusForbidden {
			t.Fatalf("the apiserver's own answers are not the ones this test is about: %v", want)
		}
	}

	c, base := serve(t, env.Config, clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)))
	var order [][2]int
	for i := range identities {
		for j := range requests {
			order = append(order, [2]int{i, j})
		}
	}
	for _, pass := range []string{"in order", "in reverse"} {
		for _, k := range order {
			id, rq := identities[k[0]], requests[k[1]]
			if code, _ := get(t, c, rq.method, base+rq.path, "Bearer "+id.token); code != want[k] {
				t.Errorf("%s, %s: %s %s answered %d, the apiserver says %d", pass, id.name, rq.method, rq.path, code, want[k])
			}
		}
		slices.Reverse(order)
	}
}

// TestWhenTheAPIServerCannotBeAskedTheMetricsAreRefusedAsUnavailable: a TokenReview or a
// SubjectAccessReview that fails (here the filter's own identity may not ask for it) refuses
// the request with 503 and says so, rather than 401 or 403, which would tell the reader that
// its token or its binding is wrong.
func TestWhenTheAPIServerCannotBeAskedTheMetricsAreRefusedAsUnavailable(t *testing.T) {
	ns := env.Namespace(t, "metrics-unavailable")
	reader, _ := scraper(t, ns, "prometheus", true)
	tokenReviewer := "metricsauth-test:" + ns + "-token-reviewer"
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-token-reviewer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-token-reviewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: tokenReviewer}}}
	for _, obj := range []client.Object{role, binding} {
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
	}
	testenv.Within(t, 30*time.Second, "the token reviewer's binding to be in force", func() error {
		if !env.Review(t, authorizationv1.SubjectAccessReviewSpec{User: tokenReviewer, ResourceAttributes: &authorizationv1.ResourceAttributes{
			Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create"}}).Allowed {
			return errors.New("not allowed yet")
		}
		return nil
	})
	for _, tc := range []struct{ identity, says string }{
		{"metricsauth-test:" + ns + "-nobody", "the token could not be reviewed"},
		{tokenReviewer, "the access could not be reviewed"},
	} {
		c, base := serve(t, env.As(tc.identity, nil, nil), clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)))
		code, body := get(t, c, http.MethodGet, base+"/metrics", "Bearer "+reader)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, tc.says) {
			t.Errorf("a filter running as %s: %d %q, want 503 saying %q", tc.identity, code, body, tc.says)
		}
		if strings.Contains(body, reader) {
			t.Error("the answer holds the token")
		}
	}
}

// TestAReadersTokenThatStopsBeingValidStopsTheScrapesWithinAMinute: the apiserver's answer
// about a token is remembered for TTL, not asked again at each scrape; once the token stops
// being valid (its ServiceAccount deleted), the scrapes are refused as soon as TTL has passed.
func TestAReadersTokenThatStopsBeingValidStopsTheScrapesWithinAMinute(t *testing.T) {
	ns := env.Namespace(t, "metrics-revoked")
	reader, _ := scraper(t, ns, "prometheus", true)
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	c, base := serve(t, env.Config, clk)
	if code, _ := get(t, c, http.MethodGet, base+"/metrics", "Bearer "+reader); code != http.StatusOK {
		t.Fatalf("the reader: %d, want 200", code)
	}
	if err := env.Client.Delete(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prometheus"}}); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Within(t, 30*time.Second, "the apiserver to stop authenticating the token", func() error {
		review, err := cs.AuthenticationV1().TokenReviews().Create(context.Background(),
			&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: reader}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if review.Status.Authenticated {
			return errors.New("still authenticated")
		}
		return nil
	})
	if code, _ := get(t, c, http.MethodGet, base+"/metrics", "Bearer "+reader); code != http.StatusOK {
		t.Errorf("within the minute remembered: %d, want 200 (the token is not reviewed at each scrape)", code)
	}
	clk.Step(metricsauth.TTL + time.Second)
	if code, _ := get(t, c, http.MethodGet, base+"/metrics", "Bearer "+reader); code != http.StatusUnauthorized {
		t.Errorf("a minute after its token stopped being valid: %d, want 401", code)
	}
}
