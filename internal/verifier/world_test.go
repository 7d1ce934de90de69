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

package verifier

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// The unit tests' world: org acme owns application acme-bi and its key "prod"; org globex
// connected acme-bi as Analyst. Tests change it with the same Apply/Remove the informers call.
const (
	ownerOrg   = "acme"
	grantOrg   = "globex"
	appName    = "acme-bi"
	appID      = "app_0123456789abcdefghijklmnop"
	keyName    = "prod"
	origin     = "https://bi.acme.example"
	otherAppID = "app_zzzzzzzzzzzzzzzzzzzzzzzzzz"
)

var epoch = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type world struct {
	t        testing.TB
	v        *Verifier
	clk      *clocktesting.FakeClock
	reg      *prometheus.Registry
	format   keyformat.Format
	app      *v1.Application
	key      *v1.APIKey
	conn     *v1.OrgConnection
	token    keyformat.Key
	minted   []keyformat.Key // every key minted, for the leak check
	keyUID   types.UID
	mu       sync.Mutex
	recorded []*httptest.ResponseRecorder // every response, for the leak check
	targets  []string                     // the path of each response
	issued   []string                     // access tokens issued: only token endpoint answers may hold them
	private  []string                     // private parts of token signing keys: no answer may hold them
}

func newWorld(t testing.TB, options ...func(*Options)) *world {
	t.Helper()
	w := &world{t: t, clk: clocktesting.NewFakeClock(epoch), reg: prometheus.NewRegistry()}
	var err error
	if w.format, err = keyformat.New(keyformat.DefaultPrefix); err != nil {
		t.Fatal(err)
	}
	opts := Options{Clock: w.clk, Format: w.format, Registerer: w.reg}
	for _, o := range options {
		o(&opts)
	}
	if w.v, err = New(opts); err != nil {
		t.Fatal(err)
	}
	w.token = w.mint()
	w.app = &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: ownerOrg, Name: appName, UID: "uid-app"},
		Spec: v1.ApplicationSpec{Description: "Acme BI export", AllowedOrigins: []string{origin},
			RateLimits: []v1.RateLimit{{Name: "general", Limit: 1000, Period: metav1.Duration{Duration: time.Hour}}}},
		Status: v1.ApplicationStatus{ApplicationID: appID},
	}
	w.keyUID = "uid-key"
	w.key = &v1.APIKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: ownerOrg, Name: keyName, UID: w.keyUID},
		Spec:       v1.APIKeySpec{ApplicationName: appName},
		Status: v1.APIKeyStatus{KeyID: w.token.KeyID, Hash: keyformat.Hash(w.token.Token), State: v1.KeyActive,
			ApplicationID: appID, ApplicationUID: w.app.UID, Masked: keyformat.Mask(w.token.Token)},
	}
	w.conn = connection(grantOrg, "acme-bi", appID, v1.RoleAnalyst, ownerOrg, true)
	w.v.Apply(w.app)
	w.v.Apply(w.key)
	w.v.Apply(w.conn)
	w.v.Apply(metricSet(grantOrg, "default", map[string]bool{"occupancy.current": true, "dwell.p95": false}))
	w.v.Apply(metricSet(grantOrg, "premium", map[string]bool{"dwell.p99": true}))
	t.Cleanup(w.checkNoLeaks)
	return w
}

func (w *world) mint() keyformat.Key {
	w.t.Helper()
	k, err := w.format.Generate()
	if err != nil {
		w.t.Fatal(err)
	}
	w.minted = append(w.minted, k)
	return k
}

func connection(org, name, id string, role v1.Role, appNamespace string, ready bool) *v1.OrgConnection {
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	return &v1.OrgConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name, UID: types.UID("uid-conn-" + org + "-" + name)},
		Spec:       v1.OrgConnectionSpec{ApplicationID: id, Role: role},
		Status: v1.OrgConnectionStatus{ApplicationNamespace: appNamespace, Conditions: []metav1.Condition{{
			Type: v1.ConditionReady, Status: status, Reason: v1.ReasonConnected, LastTransitionTime: metav1.NewTime(epoch)}}},
	}
}

func metricSet(org, name string, metrics map[string]bool) *v1.MetricSet {
	ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name, UID: types.UID("uid-ms-" + org + "-" + name)}}
	for m, on := range metrics {
		ms.Spec.Metrics = append(ms.Spec.Metrics, v1.Metric{Name: m, Enabled: &on})
	}
	return ms
}

// setTime and step move the clock while the verifier keeps hearing from the apiserver.
func (w *world) setTime(t time.Time) {
	w.clk.SetTime(t)
	w.v.recordContact()
}

func (w *world) step(d time.Duration) { w.setTime(w.clk.Now().Add(d)) }

// update changes the APIKey and feeds the new version to the index, as an informer would.
func (w *world) updateKey(mutate func(*v1.APIKey)) {
	k := w.key.DeepCopy()
	mutate(k)
	w.key = k
	w.v.Apply(k)
}

func (w *world) updateApp(mutate func(*v1.Application)) {
	a := w.app.DeepCopy()
	mutate(a)
	w.app = a
	w.v.Apply(a)
}

// authorize sends a forward-auth request for org with the key in X-API-Key; query is extra
// parameters ("minRole=Analyst&scope=...").
func (w *world) authorize(token, query string, headers ...string) *httptest.ResponseRecorder {
	w.t.Helper()
	target := PathAuthorize + "?org=" + grantOrg
	if query != "" {
		target += "&" + query
	}
	hs := headers
	if token != "" {
		hs = append([]string{"X-API-Key", token}, headers...)
	}
	return w.do(http.MethodGet, target, "", hs...)
}

// do sends any request to the handler; headers are name, value pairs.
func (w *world) do(method, target, body string, headers ...string) *httptest.ResponseRecorder {
	w.t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	w.v.Handler().ServeHTTP(rec, r)
	w.mu.Lock()
	w.recorded = append(w.recorded, rec)
	w.targets = append(w.targets, r.URL.Path)
	w.mu.Unlock()
	return rec
}

// expect checks a response's status and reason.
func expect(t testing.TB, rec *httptest.ResponseRecorder, status int, reason string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d (body %s)", rec.Code, status, rec.Body.String())
	}
	if reason == "" {
		return
	}
	want := `{"valid":false,"reason":"` + reason + `"}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Fatalf("body %s, want %s", got, want)
	}
	if got := rec.Header().Get("X-Clearance-Reason"); got != reason {
		t.Fatalf("X-Clearance-Reason %q, want %q", got, reason)
	}
}

// checkNoLeaks fails the test if any response body or header holds the key or either of its
// secret parts, whatever the test did.
func (w *world) checkNoLeaks() {
	var secrets []string
	for _, k := range w.minted {
		secrets = append(secrets, k.Token, k.Secret, keyformat.SecretKey(k))
	}
	for i, rec := range w.recorded {
		var all bytes.Buffer
		all.Write(rec.Body.Bytes())
		_ = rec.Header().Write(&all)
		for _, s := range secrets {
			if bytes.Contains(all.Bytes(), []byte(s)) {
				w.t.Errorf("a response holds key material: status %d, headers %v", rec.Code, rec.Header())
			}
		}
		for _, s := range w.private {
			if bytes.Contains(all.Bytes(), []byte(s)) {
				w.t.Errorf("a response to %s holds a private signing key: status %d", w.targets[i], rec.Code)
			}
		}
		if w.targets[i] == PathToken {
			continue
		}
		for _, s := range w.issued {
			if bytes.Contains(all.Bytes(), []byte(s)) {
				w.t.Errorf("a response to %s holds an access token: status %d", w.targets[i], rec.Code)
			}
		}
	}
}
