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

package console_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/console"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
	vf "github.com/clearance-dev/clearance/internal/verifier"
)

// replica is a verifier in this process, fed the test's objects as its informers would be,
// serving its answers and its own /metrics.
type replica struct {
	v       *vf.Verifier
	answers *httptest.Server
	metrics *httptest.Server
}

var (
	// prom scrapes replicas; nil when prometheus is not installed.
	prom     *testenv.Prometheus
	replicas []*replica
)

// startActivity starts two verifier replicas and a Prometheus scraping them, for the console
// to read activity from; without prometheus installed, nothing (the Activity tests skip).
func startActivity() (stop func(), err error) {
	format, err := keyformat.New(keyformat.DefaultPrefix) // the operator's default --key-prefix
	if err != nil {
		return nil, err
	}
	var targets []string
	stop = func() {
		for _, r := range replicas {
			r.answers.Close()
			r.metrics.Close()
		}
	}
	for range 2 {
		reg := prometheus.NewRegistry()
		v, err := vf.New(vf.Options{Clock: clock.RealClock{}, Format: format, Registerer: reg})
		if err != nil {
			stop()
			return nil, err
		}
		r := &replica{v: v, answers: httptest.NewServer(v.Handler()), metrics: httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))}
		replicas = append(replicas, r)
		targets = append(targets, strings.TrimPrefix(r.metrics.URL, "http://"))
	}
	dir, err := os.MkdirTemp("", "console-prometheus-")
	if err != nil {
		stop()
		return nil, err
	}
	prom, err = testenv.RunPrometheus(dir, targets...)
	if errors.Is(err, testenv.ErrNoPrometheus) {
		_ = os.RemoveAll(dir)
		return stop, nil
	}
	if err != nil {
		stop()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	stopReplicas := stop
	return func() { prom.Stop(); stopReplicas(); _ = os.RemoveAll(dir) }, nil
}

// needPrometheus skips a test when no Prometheus runs.
func needPrometheus(t *testing.T) {
	t.Helper()
	if prom == nil {
		t.Skip("prometheus is not installed (apt-get install -y prometheus; .ci/run installs it): skipping the Activity test")
	}
}

// applyAll gives every replica the objects as they are in the apiserver now.
func applyAll(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		for _, r := range replicas {
			r.v.Apply(o)
		}
	}
}

// ask sends n forward-auth requests with key for org (query: more parameters) to the replica
// and checks the status.
func (r *replica) ask(t *testing.T, n int, key, org, query string, status int) {
	t.Helper()
	for range n {
		req, _ := http.NewRequest(http.MethodGet, r.answers.URL+vf.PathAuthorize+"?org="+org+query, nil)
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

// connectedFigures reads the Activity page's connected applications as "ID allowed refused
// reason=n …", one line each.
const connectedFigures = `Array.from(document.querySelectorAll("article.card.activity")).map(a =>
  [a.dataset.app, a.querySelector(".allowed").textContent, a.querySelector(".refused").textContent]
  .concat(Array.from(a.querySelectorAll(".reasons li")).map(li => li.querySelector(".reason").textContent + "=" + li.querySelector(".count").textContent))
  .join(" ")).join("\n")`

// ownFigures reads the Activity page's own applications as "ID org allowed refused refusals",
// one line per org.
const ownFigures = `Array.from(document.querySelectorAll("article.own")).flatMap(a =>
  Array.from(a.querySelectorAll("tbody tr")).map(tr => a.dataset.app + " " + Array.from(tr.cells).map(c => c.textContent).join(" "))).join("\n")`

// figures opens path until the figures script reads want there (30 s of scrapes at most).
func (p *page) figures(path, script, want string) {
	p.T.Helper()
	var got string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if status := p.Open(path); status != http.StatusOK {
			p.T.Fatalf("%s: status %d: %s", path, status, p.Text("main"))
		}
		var err error
		if got, err = chromedp.Run(p.Ctx, chromedp.Evaluate[string](script)); err != nil {
			p.T.Fatal(err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			p.T.Fatalf("%s after 30 s of scrapes:\n got %q\nwant %q", path, got, want)
		}
	}
}

// TestAnOrgAdminSeesExactlyWhatEachApplicationDidAndNobodyElsesOrgDoes: two verifier replicas
// answer a known mix (allowed, unknown key, an org not connected, role insufficient, rate
// limited) across two connected orgs; Prometheus scrapes both. The granting org's admin sees
// exactly those counts per application and reason, with a chart once answers came between
// scrapes; the owning org's admin sees the application's use per org, "(none)" for the
// unconnected org, and its keys' last use; an admin of the other org who opens the first org's
// activity by URL is refused before any figure is read.
func TestAnOrgAdminSeesExactlyWhatEachApplicationDidAndNobodyElsesOrgDoes(t *testing.T) {
	needPrometheus(t)
	ctx := context.Background()
	owner, globex, initech := env.Namespace(t, "acme"), env.Namespace(t, "globex"), env.Namespace(t, "initech")
	app := application(t, owner, "bi", "Acme BI export", v1.RateLimit{Name: "export", Limit: 1, Period: metav1.Duration{Duration: time.Hour}})
	id := app.Status.ApplicationID
	key, token := activeKey(t, owner, "exporter", "bi")
	var conns []client.Object
	for _, org := range []string{globex, initech} {
		conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.OrgConnectionSpec{ApplicationID: id}}
		if err := env.Client.Create(ctx, conn); err != nil {
			t.Fatal(err)
		}
		within(t, "the connection to be ready", func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn); err != nil {
				return err
			}
			if conn.Status.ApplicationNamespace == "" || conn.Status.Description == "" {
				return fmt.Errorf("not resolved yet: %+v", conn.Status)
			}
			return nil
		})
		conns = append(conns, conn)
	}
	applyAll(t, append([]client.Object{app, key}, conns...)...)
	used := metav1.NewTime(time.Date(2026, 12, 6, 4, 5, 0, 0, time.UTC))
	patch := client.MergeFrom(key.DeepCopy())
	key.Status.LastUsedAt = &used
	if err := env.Client.Status().Patch(ctx, key, patch); err != nil {
		t.Fatal(err)
	}

	format, _ := keyformat.New(keyformat.DefaultPrefix)
	unknown, _ := format.Generate()
	a, b := replicas[0], replicas[1]
	a.ask(t, 3, token, globex, "", http.StatusOK)
	b.ask(t, 2, token, globex, "", http.StatusOK)
	a.ask(t, 1, token, globex, "&minRole=Analyst", http.StatusForbidden)
	a.ask(t, 1, token, globex, "&bucket=export", http.StatusOK)
	a.ask(t, 1, token, globex, "&bucket=export", http.StatusTooManyRequests)
	b.ask(t, 2, token, initech, "", http.StatusOK)
	b.ask(t, 1, token, initech, "&minRole=Technician", http.StatusForbidden)
	b.ask(t, 2, token, "nowhere", "", http.StatusForbidden)         // not connected: org "" for the application
	a.ask(t, 3, unknown.Token, globex, "", http.StatusUnauthorized) // no application: counted nowhere

	gina := newPerson(t, globex, "gina", orgAdmin...)
	p := newPage(t, 1280, 900)
	p.signIn(gina)
	p.Submit("nav a[href='/activity']")
	p.figures("/activity", connectedFigures, id+" 6 2 rate_limited=1 role_insufficient=1")

	// Answers after the first scrapes show in the chart too: Prometheus's increase between
	// scrapes of a series it has seen (replica a's allowed and role_insufficient ones).
	a.ask(t, 2, token, globex, "", http.StatusOK)
	a.ask(t, 1, token, globex, "&minRole=Technician", http.StatusForbidden)
	p.figures("/activity", connectedFigures, id+" 8 3 role_insufficient=2 rate_limited=1")
	within(t, "the chart", func() error {
		p.Open("/activity")
		drawn, err := chromedp.Run(p.Ctx, chromedp.Evaluate[bool](`["ok", "refused"].every(k =>
  Array.from(document.querySelectorAll("article.card.activity svg rect.bar-" + k)).some(r => parseFloat(r.getAttribute("height")) > 0))`))
		if err != nil {
			return err
		}
		if !drawn {
			return fmt.Errorf("no bar of allowed and refused answers yet")
		}
		return nil
	})
	if !strings.Contains(p.Text("article.card.activity h3"), "Acme BI export") {
		t.Errorf("the card is titled %q, want the application's description", p.Text("article.card.activity h3"))
	}
	p.Shot("activity")
	for _, w := range []string{"24h", "168h"} {
		p.figures("/activity?window="+w, connectedFigures, id+" 8 3 role_insufficient=2 rate_limited=1")
	}
	if status := p.Open("/activity?window=2h"); status != http.StatusBadRequest {
		t.Errorf("a window the page does not offer: status %d, want 400", status)
	}
	phone := newPage(t, 390, 844)
	phone.signIn(gina)
	phone.figures("/activity", connectedFigures, id+" 8 3 role_insufficient=2 rate_limited=1")
	phone.Shot("activity-phone")

	// The owning org: its application in each org, and its keys' last use.
	alice := newPerson(t, owner, "alice", orgAdmin...)
	o := newPage(t, 1280, 900)
	o.signIn(alice)
	o.figures("/activity", ownFigures, strings.Join([]string{
		id + " (none) 0 2 org_not_connected=2",
		id + " " + globex + " 8 3 role_insufficient=2, rate_limited=1",
		id + " " + initech + " 2 1 role_insufficient=1",
	}, "\n"))
	if got := o.Text("article.own .last-used"); !strings.Contains(got, "2026-12-06 04:05 UTC") {
		t.Errorf("the keys' last use: %q", got)
	}

	// An admin of initech sees initech's figures, and none of globex's, even by URL.
	ivan := newPerson(t, initech, "ivan", orgAdmin...)
	i := newPage(t, 1280, 900)
	i.signIn(ivan)
	i.figures("/activity", connectedFigures, id+" 2 1 role_insufficient=1")
	if status := i.Open("/activity?" + url.Values{"org": {globex}}.Encode()); status != http.StatusForbidden {
		t.Errorf("ivan opening globex's activity: status %d, want 403", status)
	}
	if got := i.Text("#error"); !strings.Contains(got, "You may not see the activity of "+globex) || !strings.Contains(got, "OrgConnections") {
		t.Errorf("the refusal says %q", got)
	}
	if html := i.HTML(); strings.Contains(html, "rate_limited") || strings.Contains(html, ">8<") {
		t.Error("the refusal shows globex's figures")
	}
	// Choosing globex as the current org is refused the same way.
	if status := i.Open("/org"); status != http.StatusOK {
		t.Fatal(status)
	}
	i.Fill("#org", globex)
	i.Submit("form[action='/org'].stack button[type=submit]")
	if status := i.Open("/activity"); status != http.StatusForbidden {
		t.Errorf("ivan with globex as the current org: status %d, want 403", status)
	}
	if status := i.Open("/activity?org=Not_An_Org"); status != http.StatusBadRequest {
		t.Errorf("a name that is no org: status %d, want 400", status)
	}
}

// TestWithoutAPrometheusTheActivityPageSaysHowToSetOne: a console started without
// --console-prometheus-url checks who may see the activity, then says it needs a Prometheus.
func TestWithoutAPrometheusTheActivityPageSaysHowToSetOne(t *testing.T) {
	base := startConsole(t, console.Options{})
	org := env.Namespace(t, "acme")
	who := newPerson(t, org, "alice", orgAdmin...)
	c := signIn(t, base, who.token)
	chooseOrg(t, c, base, org)
	req, _ := http.NewRequest(http.MethodGet, base+"/activity", nil)
	resp, body := fetch(t, c, req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Activity needs a Prometheus") || !strings.Contains(body, "--console-prometheus-url") {
		t.Errorf("without a Prometheus: status %d: %s", resp.StatusCode, body)
	}
	other := newPerson(t, env.Namespace(t, "globex"), "gina", orgAdmin...)
	c = signIn(t, base, other.token)
	req, _ = http.NewRequest(http.MethodGet, base+"/activity", nil)
	if resp, _ := fetch(t, c, req); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("without a chosen org: status %d, want a redirect to /org", resp.StatusCode)
	}
}
