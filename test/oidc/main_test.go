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

// Package oidc signs org admins in to the console with an OpenID Connect provider, end to end:
// a real provider on loopback over TLS (testenv's, mockoidc), a kube-apiserver that trusts it
// through a structured AuthenticationConfiguration (JWT authenticator, usernames and groups
// prefixed oidc:), the operator as a process of its own serving the console with the
// --console-oidc-* flags, and Debian's Chromium following the real redirects. A second console
// runs in-process on a fake clock, so a test can bring an ID token near its expiry without
// waiting.
package oidc

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/clearance-dev/clearance/internal/console"
	"github.com/clearance-dev/clearance/internal/testenv"
)

var (
	env      *testenv.Env
	operator *testenv.Operator
	// consoleURL is the operator's console (real clock, configured by flags); clockedURL the
	// in-process one on clock.
	consoleURL, clockedURL string
	clock                  *clocktesting.FakeClock
	// logs is what the in-process console logged.
	logs testenv.LogText
	// minted are the keys the tests generated in the console: the leak check looks for them too
	// (their Secrets go with the tests' namespaces).
	minted testenv.SecretLog
)

// providerName is what the sign-in button calls the provider.
const providerName = "Acme SSO"

func TestMain(m *testing.M) {
	testenv.MainWith(m, &env, testenv.Options{OIDC: true}, start)
}

// start installs the people's ClusterRoles, starts the operator with its webhooks and the
// console, and the in-process console.
func start(e *testenv.Env) (func() error, error) {
	ctx := context.Background()
	if err := applyPeopleRoles(ctx, e); err != nil {
		return nil, err
	}
	ports, err := testenv.FreePorts(1)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	consoleURL = "http://" + addr
	p := e.OIDC
	operator, err = e.StartOperator(testenv.OperatorOptions{Name: "oidc-console", WithWebhooks: true, Args: []string{
		"--console-bind-address=" + addr,
		"--console-oidc-issuer-url=" + p.Issuer,
		"--console-oidc-client-id=" + p.ClientID,
		"--console-oidc-client-secret-file=" + p.ClientSecretFile,
		"--console-oidc-ca-file=" + p.CAFile,
		"--console-oidc-redirect-url=" + consoleURL + console.PathOIDCCallback,
		"--console-oidc-extra-scopes=email,profile,groups", // the test provider knows no offline_access, and refreshes anyway
		"--console-oidc-provider-name=" + providerName,
	}})
	if err != nil {
		return nil, err
	}
	testenv.CollectTokensForLeakCheck(minted.Values)
	stopClocked, err := startClockedConsole(e)
	if err != nil {
		operator.Cleanup()
		return nil, err
	}
	return func() error { stopClocked(); operator.Cleanup(); return nil }, nil
}

// startClockedConsole serves a console in this process on a fake clock, which also dates the
// expiry of the provider's ID tokens (testenv.OIDCProvider.SetExpiryClock).
func startClockedConsole(e *testenv.Env) (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	clockedURL = "http://" + ln.Addr().String()
	clock = clocktesting.NewFakeClock(time.Now())
	e.OIDC.SetExpiryClock(clock)
	testenv.CollectForLeakCheck("oidc: the in-process console's log", logs.String)
	c, err := console.New(console.Options{Addr: ln.Addr().String(), Base: console.BaseConfig(e.Config), Scheme: e.Scheme, Clock: clock,
		Log: funcr.New(logs.Write, funcr.Options{Verbosity: 10}),
		OIDC: &console.OIDCOptions{IssuerURL: e.OIDC.Issuer, ClientID: e.OIDC.ClientID, ClientSecret: e.OIDC.ClientSecret,
			RootCAs: e.OIDC.HTTPClient().Transport.(*http.Transport).TLSClientConfig.RootCAs, RedirectURL: clockedURL + console.PathOIDCCallback,
			ExtraScopes: []string{"email", "groups"}, ProviderName: providerName}})
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// applyPeopleRoles creates the ClusterRoles of config/rbac/people_roles.yaml and a stand-in
// for the built-in admin role's Secret reading (the test's control plane aggregates no roles).
func applyPeopleRoles(ctx context.Context, e *testenv.Env) error {
	if err := e.ApplyPeopleRoles(ctx); err != nil {
		return err
	}
	return e.Client.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: secretReader},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}}}})
}

const secretReader = "oidc-test-secret-reader"

// bind binds the ClusterRoles to a user or a group (kind rbacv1.UserKind or GroupKind) in org.
func bind(t *testing.T, org, kind, name string, clusterRoles ...string) {
	t.Helper()
	for _, role := range clusterRoles {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: org, GenerateName: "oidc-" + role + "-"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}},
		}
		if err := env.Client.Create(context.Background(), rb); err != nil {
			t.Fatal(err)
		}
	}
}
