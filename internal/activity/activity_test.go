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

package activity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
)

const testAppID = "app_0123456789abcdefghijklmn"

// otherAppID is an application that did nothing anywhere.
const otherAppID = "app_nmlkjihgfedcba9876543210"

// replica is a verifier with the world's objects, serving its answers and its metrics.
type replica struct {
	answers *httptest.Server
	metrics *httptest.Server
}

func newReplica(t *testing.T, format keyformat.Format, good, disabled keyformat.Key) *replica {
	t.Helper()
	reg := prometheus.NewRegistry()
	v, err := verifier.New(verifier.Options{Clock: clock.RealClock{}, Format: format, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	v.Apply(&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "acme", Name: "bi", UID: "uid-app"},
		Spec:   v1.ApplicationSpec{Description: "BI", RateLimits: []v1.RateLimit{{Name: "search", Limit: 1, Period: metav1.Duration{Duration: time.Hour}}}},
		Status: v1.ApplicationStatus{ApplicationID: testAppID}})
	for i, k := range []keyformat.Key{good, disabled} {
		v.Apply(&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: "acme", Name: fmt.Sprintf("k%d", i), UID: types.UID(fmt.Sprintf("uid-k%d", i))},
			Spec:   v1.APIKeySpec{ApplicationName: "bi", Enabled: ptr(i == 0)},
			Status: v1.APIKeyStatus{KeyID: k.KeyID, Hash: keyformat.Hash(k.Token), State: v1.KeyActive, ApplicationID: testAppID, ApplicationUID: "uid-app"}})
	}
	for org, role := range map[string]v1.Role{"globex": v1.RoleAnalyst, "initech": v1.RoleObserver} {
		v.Apply(&v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi", UID: types.UID("uid-conn-" + org)},
			Spec: v1.OrgConnectionSpec{ApplicationID: testAppID, Role: role},
			Status: v1.OrgConnectionStatus{ApplicationNamespace: "acme", Conditions: []metav1.Condition{{Type: v1.ConditionReady,
				Status: metav1.ConditionTrue, Reason: v1.ReasonConnected, LastTransitionTime: metav1.Now()}}}})
	}
	r := &replica{answers: httptest.NewServer(v.Handler()), metrics: httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))}
	t.Cleanup(r.answers.Close)
	t.Cleanup(r.metrics.Close)
	return r
}

func ptr[T any](v T) *T { return &v }

// ask sends n forward-auth requests with key for org (query: more parameters) and checks the
// status.
func (r *replica) ask(t *testing.T, n int, key, org, query string, status int) {
	t.Helper()
	for range n {
		req, _ := http.NewRequest(http.MethodGet, r.answers.URL+verifier.PathAuthorize+"?org="+org+query, nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("org %s%s: HTTP %d, want %d", org, query, resp.StatusCode, status)
		}
	}
}

// TestPrometheusScrapingTwoReplicasGivesExactlyTheCountsPerOrgApplicationAndReason: Debian's
// prometheus scrapes two verifier replicas; after a known mix of answers across two orgs
// (allowed, an unknown key, an org not connected, a role too low, rate limited, a disabled key), the
// granting org's view and the owning org's view are exactly those counts, summed over replicas.
func TestPrometheusScrapingTwoReplicasGivesExactlyTheCountsPerOrgApplicationAndReason(t *testing.T) {
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := format.Generate()
	disabled, _ := format.Generate()
	unknown, _ := format.Generate()
	a, b := newReplica(t, format, good, disabled), newReplica(t, format, good, disabled)
	prom := testenv.StartPrometheus(t, strings.TrimPrefix(a.metrics.URL, "http://"), strings.TrimPrefix(b.metrics.URL, "http://"))

	a.ask(t, 3, good.Token, "globex", "", http.StatusOK)
	a.ask(t, 1, good.Token, "globex", "&minRole=Technician", http.StatusForbidden)
	b.ask(t, 2, good.Token, "globex", "", http.StatusOK)
	a.ask(t, 2, good.Token, "initech", "", http.StatusOK)
	b.ask(t, 1, good.Token, "initech", "&minRole=Analyst", http.StatusForbidden)
	b.ask(t, 4, good.Token, "umbrella", "", http.StatusForbidden) // not connected: org "" for the application
	a.ask(t, 1, disabled.Token, "globex", "", http.StatusUnauthorized)
	b.ask(t, 5, unknown.Token, "globex", "", http.StatusUnauthorized) // no application: not counted here
	b.ask(t, 1, good.Token, "initech", "&bucket=search", http.StatusOK)
	b.ask(t, 2, good.Token, "initech", "&bucket=search", http.StatusTooManyRequests) // one a hour, per replica

	c, err := New(prom.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantGlobex := []Row{{Org: "globex", ApplicationID: testAppID, Reasons: map[string]int64{"ok": 5, "role_insufficient": 1}}}
	wantApp := []Row{
		{Org: "", ApplicationID: testAppID, Reasons: map[string]int64{"org_not_connected": 4, "key_disabled": 1}},
		{Org: "globex", ApplicationID: testAppID, Reasons: map[string]int64{"ok": 5, "role_insufficient": 1}},
		{Org: "initech", ApplicationID: testAppID, Reasons: map[string]int64{"ok": 3, "role_insufficient": 1, "rate_limited": 2}},
	}
	ctx := context.Background()
	var got, gotApp []Row
	// counted is when Prometheus held all of the answers above and no more.
	var counted time.Time
	deadline := time.Now().Add(30 * time.Second) // a few scrapes of both replicas
	for {
		counted = time.Now()
		if got, err = c.InOrg(ctx, "globex", time.Hour, counted); err != nil {
			t.Fatal(err)
		}
		if gotApp, err = c.OfApplication(ctx, testAppID, time.Hour, counted); err != nil {
			t.Fatal(err)
		}
		if reflect.DeepEqual(got, wantGlobex) && reflect.DeepEqual(gotApp, wantApp) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s of scrapes:\nglobex %+v\n  want %+v\napplication %+v\n       want %+v", got, wantGlobex, gotApp, wantApp)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got[0].Allowed() != 5 || got[0].Refused() != 1 {
		t.Errorf("allowed %d, refused %d", got[0].Allowed(), got[0].Refused())
	}
	rows, err := c.InOrg(ctx, "initech", time.Hour, time.Now())
	if err != nil || len(rows) != 1 || rows[0].Reasons["ok"] != 3 || rows[0].Reasons["rate_limited"] != 2 ||
		rows[0].Allowed() != 3 || rows[0].Refused() != 3 { // rate limited is refused
		t.Errorf("initech: %+v %v", rows, err)
	}
	if rows, err := c.InOrg(ctx, "umbrella", time.Hour, time.Now()); err != nil || len(rows) != 0 {
		t.Errorf("an org a client named but that connected nothing has no figures: %+v %v", rows, err)
	}
	checkDashboard(t, c, "globex")

	// The timeline shows what changed between scrapes (a series' first count is in the totals
	// only): more answers now show in its last bucket, allowed and refused apart, as counts
	// (increase, which extrapolates up, never a per-second rate), and in no other org's timeline
	// nor another application's.
	a.ask(t, 2, good.Token, "globex", "", http.StatusOK)
	a.ask(t, 1, good.Token, "globex", "&minRole=Technician", http.StatusForbidden)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		at := time.Now()
		points, err := c.Timeline(ctx, "globex", testAppID, 2*time.Minute, 4, at)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(points); n > 0 && points[n-1].Allowed > points[n-1].Refused && points[n-1].Refused >= 1 {
			if elsewhere, err := c.Timeline(ctx, "umbrella", testAppID, 2*time.Minute, 4, at); err != nil || len(elsewhere) != 0 {
				t.Errorf("the timeline of an org that connected nothing: %+v %v, want nothing", elsewhere, err)
			}
			if other, err := c.Timeline(ctx, "globex", otherAppID, 2*time.Minute, 4, at); err != nil || len(other) != 0 {
				t.Errorf("the timeline of another application in globex: %+v %v, want nothing", other, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the timeline's last bucket does not show the new answers (2 allowed, 1 refused): %+v", points)
		}
	}

	// The buckets come in order of time, the last ending at the instant asked for: a timeline of
	// the last 10 seconds in buckets of 2, once Prometheus holds that much.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		at := time.Now().Truncate(time.Second)
		points, err := c.Timeline(ctx, "globex", testAppID, 10*time.Second, 5, at)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(points); i++ {
			if !points[i-1].At.Before(points[i].At) {
				t.Fatalf("the timeline's buckets are not in order of time: %+v", points)
			}
		}
		// A bucket shows only once Prometheus holds two scrapes within it: the last one may be
		// missing for a moment, not for 30 s.
		if len(points) >= 2 && points[len(points)-1].At.Equal(at) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s a timeline of the last 10 seconds ending at %s has %d buckets, want at least two, the last ending then: %+v", at, len(points), points)
		}
	}

	// A window that begins after the first answers were counted counts only the new ones:
	// each counter now minus its value when the window began; a reason without new answers
	// is not listed.
	want := []Row{{Org: "globex", ApplicationID: testAppID, Reasons: map[string]int64{"ok": 2, "role_insufficient": 1}}}
	wantApp = []Row{{Org: "", ApplicationID: testAppID, Reasons: map[string]int64{}}, want[0],
		{Org: "initech", ApplicationID: testAppID, Reasons: map[string]int64{}}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		at := time.Now()
		window := at.Sub(counted).Truncate(time.Millisecond)
		if got, err = c.InOrg(ctx, "globex", window, at); err != nil {
			t.Fatal(err)
		}
		if gotApp, err = c.OfApplication(ctx, testAppID, window, at); err != nil {
			t.Fatal(err)
		}
		if reflect.DeepEqual(got, want) && reflect.DeepEqual(gotApp, wantApp) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the answers since the first were counted:\nglobex %+v\n  want %+v\napplication %+v\n       want %+v", got, want, gotApp, wantApp)
		}
	}
}

// checkDashboard runs every query of the chart's Grafana dashboard against the same Prometheus,
// its variables filled in as Grafana would: each is valid PromQL over the metric as the
// verifiers export it, and finds the answers just counted.
func checkDashboard(t *testing.T, c *Client, org string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "charts", "clearance", "dashboards", "clearance-activity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	fill := strings.NewReplacer("$org", org, "$application", ".*", "$__rate_interval", "5m", "$__range", "1h")
	deadline := time.Now().Add(30 * time.Second) // rate and increase need two scrapes
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for {
				v, _, err := c.api.Query(context.Background(), fill.Replace(tg.Expr), time.Now())
				if err != nil {
					t.Errorf("panel %q: %v", p.Title, err)
					break
				}
				if vec, ok := v.(model.Vector); ok && len(vec) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("panel %q finds nothing: %s", p.Title, fill.Replace(tg.Expr))
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
}

// TestNamesThatAreNoneNeverReachPrometheus: the query is built from a validated org or
// Application ID only, for the counts and the timeline alike.
func TestNamesThatAreNoneNeverReachPrometheus(t *testing.T) {
	c, asked := countingPrometheus(t)
	for _, org := range []string{`globex"} or vector(1) #`, "Globex", "", strings.Repeat("a", 64)} {
		if _, err := c.InOrg(context.Background(), org, time.Hour, time.Now()); !errors.Is(err, ErrInvalidName) {
			t.Errorf("org %q: %v", org, err)
		}
	}
	for _, id := range []string{`app_x"}`, "app_", "bi"} {
		if _, err := c.OfApplication(context.Background(), id, time.Hour, time.Now()); !errors.Is(err, ErrInvalidName) {
			t.Errorf("application %q: %v", id, err)
		}
	}
	for _, tc := range []struct{ org, id string }{
		{`globex"} or vector(1) #`, "app_abc"}, {"Globex", "app_abc"}, {"", "app_abc"},
		{"globex", `app_x"}`}, {"globex", "app_"}, {"globex", "bi"}, {"globex", ""},
	} {
		if _, err := c.Timeline(context.Background(), tc.org, tc.id, time.Hour, 24, time.Now()); !errors.Is(err, ErrInvalidName) {
			t.Errorf("timeline of org %q, application %q: %v", tc.org, tc.id, err)
		}
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("Prometheus was asked %d times", n)
	}
}

// TestATimelineOfNoBucketsOrOfMoreThan500IsRefusedWithoutAskingPrometheus: the number of bars
// bounds the points each query asks Prometheus for.
func TestATimelineOfNoBucketsOrOfMoreThan500IsRefusedWithoutAskingPrometheus(t *testing.T) {
	c, asked := countingPrometheus(t)
	for _, buckets := range []int{0, -1, 501} {
		if _, err := c.Timeline(context.Background(), "globex", testAppID, time.Hour, buckets, time.Now()); err == nil || !strings.Contains(err.Error(), "want 1 to 500") {
			t.Errorf("%d buckets: %v, want them refused", buckets, err)
		}
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("Prometheus was asked %d times", n)
	}
}

// TestAReplicaRestartedWithinTheWindowCountsWhatItAnsweredSince: a restarted verifier's counter
// starts again from zero, below its value when the window began; its answers since the restart
// are what counts, not the drop, and beside it a replica that kept running counts its own
// answers since the window began. Each replica is counted on its own: summed first, the drop
// of one would hide the other's answers, or have the window count both replicas' whole history.
func TestAReplicaRestartedWithinTheWindowCountsWhatItAnsweredSince(t *testing.T) {
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := format.Generate()
	disabled, _ := format.Generate()
	var current atomic.Pointer[replica]
	current.Store(newReplica(t, format, good, disabled))
	// One address for the replica before and after its restart, as a pod's would be to Prometheus.
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().metrics.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(metrics.Close)
	running := newReplica(t, format, good, disabled)
	prom := testenv.StartPrometheus(t, strings.TrimPrefix(metrics.URL, "http://"), strings.TrimPrefix(running.metrics.URL, "http://"))
	c, err := New(prom.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	current.Load().ask(t, 5, good.Token, "globex", "", http.StatusOK)
	running.ask(t, 3, good.Token, "globex", "", http.StatusOK)
	counted := waitForRows(t, func(at time.Time) ([]Row, error) { return c.InOrg(ctx, "globex", time.Hour, at) },
		[]Row{{Org: "globex", ApplicationID: testAppID, Reasons: map[string]int64{"ok": 8}}})

	current.Store(newReplica(t, format, good, disabled))
	current.Load().ask(t, 2, good.Token, "globex", "", http.StatusOK)
	running.ask(t, 1, good.Token, "globex", "", http.StatusOK)
	waitForRows(t, func(at time.Time) ([]Row, error) {
		return c.InOrg(ctx, "globex", at.Sub(counted).Truncate(time.Millisecond), at)
	}, []Row{{Org: "globex", ApplicationID: testAppID, Reasons: map[string]int64{"ok": 3}}})
}

// waitForRows asks query, for the time of asking, until it answers want (a few scrapes), and
// returns that time.
func waitForRows(t *testing.T, query func(at time.Time) ([]Row, error), want []Row) time.Time {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		at := time.Now()
		got, err := query(at)
		if err != nil {
			t.Fatal(err)
		}
		if reflect.DeepEqual(got, want) {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s of scrapes: %+v, want %+v", got, want)
		}
	}
}

// countingPrometheus is a client of a Prometheus that answers nothing and counts how often it
// was asked.
func countingPrometheus(t *testing.T) (*Client, *atomic.Int32) {
	t.Helper()
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { asked.Add(1) }))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, &asked
}
