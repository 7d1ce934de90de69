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

// Package rbac proves the operator's shipped RBAC is enough and no more: the operator runs
// with its own ServiceAccount's token and only the RBAC in config/rbac (which the chart copies),
// completes the sample story, and the apiserver must never have answered 403. The verifier runs
// with the chart's clearance-verifier ServiceAccount, which cannot read key Secrets and never needs to: it reads one
// Secret, the OAuth token signing keys, by name (verifier_test.go); the chart's default topology keeps them apart
// (chart_test.go).
package rbac

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/controllers"
	"github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/metrics"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
	"github.com/clearance-dev/clearance/internal/wiring"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// forbiddenRecorder wraps the operator's transport and records every 403 it receives.
type forbiddenRecorder struct {
	mu    sync.Mutex
	seen  []string
	total int
	next  http.RoundTripper
}

func (f *forbiddenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total++
	if err == nil && resp.StatusCode == http.StatusForbidden {
		f.seen = append(f.seen, req.Method+" "+req.URL.Path)
	}
	return resp, err
}

func (f *forbiddenRecorder) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

func TestTheOperatorCompletesTheSampleStoryWithOnlyItsShippedRBAC(t *testing.T) {
	ctx := context.Background()
	// Another test of the package may have created it (applyChartRBAC does).
	if out, err := env.Kubectl(t, "create", "namespace", "clearance-system"); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := env.Kubectl(t, "apply", "-k", "config/rbac"); err != nil {
		t.Fatalf("applying the shipped RBAC: %v\n%s", err, out)
	}
	cfg := &rest.Config{Host: env.Config.Host, BearerToken: env.ServiceAccountToken(t, "clearance-system", "clearance"), TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData}}
	recorder := &forbiddenRecorder{}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { recorder.next = rt; return recorder }

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: wiring.CacheOptions(clock.RealClock{}),
		// go test -count runs it again in this process, with the same controller names.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := index.Register(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	format, _ := keyformat.New(keyformat.DefaultPrefix)
	m, err := metrics.NewControllers(prometheus.NewRegistry(), controllers.KeyStateCounter(mgr.GetCache()))
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{Clock: clock.RealClock{}, KeyFormat: format, Metrics: m, OrgDefaults: true}); err != nil {
		t.Fatal(err)
	}
	vf, err := verifier.New(verifier.Options{Addr: "0", Format: format, Registerer: prometheus.NewRegistry(), FlushInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := vf.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	if out, err := env.Kubectl(t, "apply", "-k", "config/samples"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var keys v1.APIKeyList
		var conn v1.OrgConnection
		var ms, globexDefault v1.MetricSet
		errK := env.Client.List(ctx, &keys, client.InNamespace("acme"))
		errC := env.Client.Get(ctx, client.ObjectKey{Namespace: "globex", Name: "acme-bi"}, &conn)
		errM := env.Client.Get(ctx, client.ObjectKey{Namespace: "acme", Name: "dashboards"}, &ms)
		// The org's default, created by the operator with its shipped RBAC (metricsets create).
		errD := env.Client.Get(ctx, client.ObjectKey{Namespace: "globex", Name: controllers.DefaultMetricSetName}, &globexDefault)
		active := 0
		for _, k := range keys.Items {
			if k.Status.State == v1.KeyActive {
				active++
			}
		}
		if errK == nil && errC == nil && errM == nil && errD == nil && active == 2 && conn.Status.CreatedBy == "acme" && ms.Status.ConfigMapName != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sample story did not complete in 60s: %d keys active, connection %+v, metric set %+v; 403s: %v",
				active, conn.Status, ms.Status, recorder.list())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Issue 25: delete acme-bi and apply the samples again. The keys of the deleted Application
	// are revoked and deleted by the operator (delete on apikeys); the samples' keys applied
	// again are minted anew, for the Application applied again.
	var before v1.Application
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "acme", Name: "acme-bi"}, &before); err != nil {
		t.Fatal(err)
	}
	if out, err := env.Kubectl(t, "delete", "applications.access.clearance.dev", "acme-bi", "-n", "acme"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var keys v1.APIKeyList
		if err := env.Client.List(ctx, &keys, client.InNamespace("acme")); err == nil && len(keys.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the keys of the deleted Application were not deleted in 60s; 403s: %v", recorder.list())
		}
	}
	if out, err := env.Kubectl(t, "apply", "-k", "config/samples"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var keys v1.APIKeyList
		var app v1.Application
		errK := env.Client.List(ctx, &keys, client.InNamespace("acme"))
		errA := env.Client.Get(ctx, client.ObjectKey{Namespace: "acme", Name: "acme-bi"}, &app)
		minted := 0
		for _, k := range keys.Items {
			if k.Status.State == v1.KeyActive && k.Status.ApplicationUID == app.UID && app.UID != before.UID {
				minted++
			}
		}
		if errK == nil && errA == nil && minted == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the samples applied again did not get 2 new keys in 60s; 403s: %v", recorder.list())
		}
	}
	if got := recorder.list(); len(got) > 0 {
		t.Errorf("the operator was refused by its own RBAC: %v", got)
	}
	recorder.mu.Lock()
	t.Logf("the operator made %d requests with its ServiceAccount's token, none refused", recorder.total)
	if recorder.total == 0 {
		t.Error("no request went through the recorder, so nothing was proved")
	}
	recorder.mu.Unlock()
}

// TestTheOperatorsClusterRoleHasNoWildcardAndNoSecretAccessBeyondItsUse reads the generated
// ClusterRole the chart ships.
func TestTheOperatorsClusterRoleHasNoWildcardAndNoSecretAccessBeyondItsUse(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(env.Root, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	secretVerbs := map[string]bool{}
	for _, r := range role.Rules {
		for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
			if slices.Contains(list, "*") {
				t.Errorf("wildcard in rule %+v", r)
			}
		}
		if slices.Contains(r.APIGroups, "") && slices.Contains(r.Resources, "secrets") {
			for _, v := range r.Verbs {
				secretVerbs[v] = true
			}
		}
	}
	// get/list/watch for the label-selected cache and confirmations, create for minting, patch
	// for rotation, repair and expiry: never update, delete or deletecollection.
	for v := range secretVerbs {
		if !slices.Contains([]string{"get", "list", "watch", "create", "patch"}, v) {
			t.Errorf("the operator may %s Secrets, which no controller does", v)
		}
	}
}

// TestTheChartsManifestsPassAServerSideDryRun renders the chart and has the apiserver validate
// every object (schemas, webhook configurations, RBAC) without persisting them.
func TestTheChartsManifestsPassAServerSideDryRun(t *testing.T) {
	out := env.HelmTemplate(t, "--include-crds", "--set", "verifier.separate=true", "--set", "verifier.hpa.enabled=true")
	rendered := filepath.Join(t.TempDir(), "chart.yaml")
	if err := os.WriteFile(rendered, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kubectl(t, "create", "namespace", "clearance-system"); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	res, err := env.Kubectl(t, "apply", "--server-side", "--dry-run=server", "--force-conflicts", "-f", rendered)
	if err != nil {
		t.Fatalf("the rendered chart does not pass a server-side dry run: %v\n%s", err, res)
	}
	if n := strings.Count(res, "serverside-applied (server dry run)"); n < 20 {
		t.Errorf("only %d objects were dry-run applied:\n%s", n, res)
	}
}
