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

// Package partner runs a partner's OAuth 2.0 authorization code flow with PKCE end to end,
// against real parts: a kube-apiserver, etcd and kube-controller-manager with the admission
// policies (testenv), the operator's controllers (the signing-key controller included), the
// verifier and the console in-process on loopback ports, Debian's nginx in front of the verifier
// as the data path, and Debian's Chromium, driven with chromedp, as the org admin's browser.
// The partner's app is golang.org/x/oauth2 with a loopback redirect. Everything runs on the
// real clock: the flow crosses processes.
package partner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/clearance-dev/clearance/controllers"
	"github.com/clearance-dev/clearance/internal/console"
	"github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/signingkey"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
	"github.com/clearance-dev/clearance/internal/wiring"
)

var (
	env *testenv.Env
	// vf is the verifier; issuer is the URL it serves at, which is its OAuth issuer.
	vf     *verifier.Verifier
	issuer string
	// consoleURL serves the console, whose consent page the verifier sends browsers to.
	consoleURL string
	// logs is what the operator's controllers, the verifier and the console logged.
	logs testenv.LogText
	// secrets are what the tests got that nobody else may see (ServiceAccount tokens, codes,
	// PKCE verifiers, access, refresh and ID tokens): no log may hold them, and the suite's leak
	// check searches every text for them.
	secrets testenv.SecretLog
)

// signingSecret is where the signing-key controller keeps the token keys and the verifier
// reads them, as the chart has it.
var signingSecret = types.NamespacedName{Namespace: "clearance-system", Name: signingkey.DefaultSecretName}

func TestMain(m *testing.M) { testenv.Main(m, &env, start) }

// start runs the operator's controllers, the verifier and the console in one manager, as the
// combined binary does, on loopback ports, and installs the people's ClusterRoles the chart
// ships.
func start(e *testenv.Env) (func() error, error) {
	log := funcr.New(logs.Write, funcr.Options{Verbosity: 10})
	ctrl.SetLogger(log)
	testenv.CollectForLeakCheck("partner: operator, verifier and console log", logs.String)
	testenv.CollectSecretsForLeakCheck(secrets.All)

	ctx := context.Background()
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: signingSecret.Namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	if err := e.ApplyPeopleRoles(ctx); err != nil {
		return nil, err
	}
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  wiring.CacheOptions(clock.RealClock{}),
	})
	if err != nil {
		return nil, err
	}
	if err := index.Register(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	if err := controllers.Setup(mgr, controllers.Options{Clock: clock.RealClock{}, KeyFormat: format,
		SigningKeys: controllers.SigningKeyOptions{Secret: signingSecret}}); err != nil {
		return nil, err
	}

	// The issuer is the URL the verifier is reached at (discovery, iss): listen first.
	vln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = vln.Close()
		return nil, err
	}
	closeListeners := func() { _ = vln.Close(); _ = cln.Close() }
	issuer, consoleURL = "http://"+vln.Addr().String(), "http://"+cln.Addr().String()

	vf, err = verifier.New(verifier.Options{Clock: clock.RealClock{}, Format: format, Registerer: prometheus.NewRegistry(),
		Logger: log.WithName("verifier"),
		OAuth:  verifier.OAuthOptions{Issuer: issuer, SigningSecret: signingSecret, ConsentURL: consoleURL + console.PathConsent}})
	if err != nil {
		closeListeners()
		return nil, err
	}
	if err := vf.SetupWithManager(mgr); err != nil {
		closeListeners()
		return nil, err
	}
	con, err := console.New(console.Options{Addr: cln.Addr().String(), Base: console.BaseConfig(e.Config), Scheme: e.Scheme,
		Clock: clock.RealClock{}, VerifierURL: issuer, Log: log.WithName("console")})
	if err != nil {
		closeListeners()
		return nil, err
	}
	consoleServer := &http.Server{Handler: con.Handler(), ReadHeaderTimeout: 10 * time.Second}

	runCtx, cancel := context.WithCancel(ctx)
	managed := make(chan error, 1)
	go func() { managed <- mgr.Start(runCtx) }()
	served := make(chan error, 1)
	go func() { served <- vf.Serve(runCtx, vln) }()
	go func() { _ = consoleServer.Serve(cln) }()
	stop := func() error {
		cancel()
		_ = consoleServer.Close()
		var errs []error
		for what, done := range map[string]chan error{"the manager": managed, "the verifier": served} {
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, http.ErrServerClosed) {
					errs = append(errs, fmt.Errorf("%s: %w", what, err))
				}
			case <-time.After(time.Minute):
				errs = append(errs, fmt.Errorf("%s did not stop within a minute", what))
			}
		}
		return errors.Join(errs...)
	}
	if err := waitReady(runCtx); err != nil {
		_ = stop()
		return nil, err
	}
	return stop, nil
}

// waitReady waits until the verifier's index is loaded and it publishes the token keys the
// signing-key controller made, and the console answers.
func waitReady(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		last = ready(ctx)
		if last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("the verifier and the console were not ready within a minute: %w", last)
}

func ready(ctx context.Context) error {
	if err := vf.ReadyzCheck(nil); err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	keys, err := jwks(ctx)
	if err != nil {
		return err
	}
	if len(keys.Keys) == 0 {
		return errors.New("the verifier publishes no token keys yet")
	}
	resp, err := http.Get(consoleURL + "/healthz")
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("console: %s", resp.Status)
	}
	return nil
}

// noSecretLogged fails the test when a log line holds a secret the tests got.
func noSecretLogged(t *testing.T) {
	t.Helper()
	text := logs.String()
	for _, s := range secrets.All() {
		if strings.Contains(text, s.Value) {
			t.Errorf("the log holds %s", s.Label)
		}
	}
}
