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

package plugin

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// TestUsageShowsEachOrgWhatApplicationsDidAndOnlyToThoseWhoMayReadIt: two verifier replicas
// (fed the objects as their informers would) answer a known mix (allowed, a role too low, an org not
// connected, rate limited, an unknown key), Debian's prometheus scrapes it, and
// `usage` prints exactly those counts: per connected application in the granting org, per org
// for the owning org's application; someone who may not list the org's connections is refused
// before Prometheus is asked.
func TestUsageShowsEachOrgWhatApplicationsDidAndOnlyToThoseWhoMayReadIt(t *testing.T) {
	owner, grant := env.Namespace(t, "usage-owner"), env.Namespace(t, "usage-grant")
	app := application(t, owner, "bi", "Partner BI", 1)
	id := app.Status.ApplicationID

	format, err := keyformat.New(keyformat.DefaultPrefix)
	must(t, err)
	k, err := format.Generate()
	must(t, err)
	// Two replicas, each fed the objects as its informers would, each with its own metrics.
	limited := app.DeepCopy() // as the informer would see it once someone set a limit
	limited.Spec.RateLimits = []v1.RateLimit{{Name: "search", Limit: 1, Period: metav1.Duration{Duration: time.Hour}}}
	var replicas, targets []string
	for range 2 {
		reg := prometheus.NewRegistry()
		vf, err := verifier.New(verifier.Options{Clock: clock.RealClock{}, Format: format, Registerer: reg})
		must(t, err)
		vf.Apply(limited)
		vf.Apply(&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: owner, Name: "k", UID: "uid-usage-key"}, Spec: v1.APIKeySpec{ApplicationName: "bi"},
			Status: v1.APIKeyStatus{KeyID: k.KeyID, Hash: keyformat.Hash(k.Token), State: v1.KeyActive, ApplicationID: id, ApplicationUID: app.UID}})
		vf.Apply(&v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: grant, Name: "bi", UID: "uid-usage-conn"},
			Spec:   v1.OrgConnectionSpec{ApplicationID: id, Role: v1.RoleObserver},
			Status: v1.OrgConnectionStatus{ApplicationNamespace: owner, Conditions: readyTrue(v1.ReasonConnected)}})
		answers := httptest.NewServer(vf.Handler())
		t.Cleanup(answers.Close)
		metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		t.Cleanup(metrics.Close)
		replicas, targets = append(replicas, answers.URL), append(targets, strings.TrimPrefix(metrics.URL, "http://"))
	}
	prom := testenv.StartPrometheus(t, targets...)
	sent := 0 // requests alternate between the replicas

	unknown, err := format.Generate()
	must(t, err)
	askWith := func(token string, n int, org, query string, status int) {
		t.Helper()
		for range n {
			req, _ := http.NewRequest(http.MethodGet, replicas[sent%2]+verifier.PathAuthorize+"?org="+org+query, nil)
			sent++
			req.Header.Set("X-API-Key", token)
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			_ = resp.Body.Close()
			if resp.StatusCode != status {
				t.Fatalf("org %s%s: HTTP %d, want %d", org, query, resp.StatusCode, status)
			}
		}
	}
	ask := func(n int, org, query string, status int) { t.Helper(); askWith(k.Token, n, org, query, status) }
	ask(3, grant, "", http.StatusOK)
	ask(1, grant, "&minRole=Analyst", http.StatusForbidden)
	ask(2, "usage-elsewhere", "", http.StatusForbidden)
	sent = 0 // both to the first replica: without a shared store each replica limits alone
	ask(1, grant, "&bucket=search", http.StatusOK)
	sent = 0
	ask(1, grant, "&bucket=search", http.StatusTooManyRequests)
	askWith(unknown.Token, 2, grant, "", http.StatusUnauthorized) // no application: in no row

	usage := func(ns string, args ...string) [][]string {
		t.Helper()
		want := map[string][][]string{
			grant: {{"APPLICATION-ID", "ALLOWED", "REFUSED", "REFUSALS"}, {id, "4", "2", "rate_limited=1,role_insufficient=1"}},
			owner: {{"ORG", "ALLOWED", "REFUSED", "REFUSALS"}, {"(none)", "0", "2", "org_not_connected=2"}, {grant, "4", "2", "rate_limited=1,role_insufficient=1"}},
		}[ns]
		var rows [][]string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			o, _, _ := newOptions()
			o.Clock = clock.RealClock{} // Prometheus holds what it scraped at the real time
			rows = table(runWith(t, o, ns, append([]string{"usage", "--prometheus-url", prom.URL}, args...)...).ok(t).stdout)
			if reflect.DeepEqual(rows, want) {
				return rows
			}
			if time.Now().After(deadline) {
				t.Fatalf("usage in %s %v after 30 s of scrapes:\n got %v\nwant %v", ns, args, rows, want)
			}
		}
	}
	usage(grant)
	usage(owner, "bi")

	msg := run(t, grant, "--as", "mallory", "usage", "--prometheus-url", prom.URL).failed(t)
	if !strings.Contains(msg, "you may not see the activity of "+grant) {
		t.Errorf("someone who may not list the org's connections: %q", msg)
	}
	if msg := run(t, grant, "usage").failed(t); !strings.Contains(msg, "--prometheus-url") {
		t.Errorf("without a Prometheus: %q", msg)
	}
}
