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
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// applicationDecisions reads the per-application decisions counter: "org/application/reason"
// → count.
func (w *world) applicationDecisions() map[string]float64 {
	w.t.Helper()
	families, err := w.reg.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != ApplicationDecisionsMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out[l["org"]+"/"+l["application"]+"/"+l["reason"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestDecisionsAreCountedPerOrgApplicationAndReasonExactly: a known mix of requests — allowed,
// an unknown key, an org that has not connected the application, a role too low, a disabled
// key, rate limited — gives exactly those counts, labelled by the connection's org and the
// Application ID; an org named by the client but connected to nothing never becomes a label;
// a connection that is updated keeps counting, one that is deleted takes its series with it.
func TestDecisionsAreCountedPerOrgApplicationAndReasonExactly(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 5, Period: metav1.Duration{Duration: time.Hour}}}
	})
	for range 3 {
		expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	}
	expect(t, w.authorize(w.token.Token, "minRole=Technician"), http.StatusForbidden, ReasonRoleInsufficient)
	expect(t, w.authorize(w.mint().Token, ""), http.StatusUnauthorized, ReasonKeyUnknown)
	for i := range 4 {
		rec := w.do(http.MethodGet, PathAuthorize+fmt.Sprintf("?org=attacker-%d", i), "", "X-API-Key", w.token.Token)
		expect(t, rec, http.StatusForbidden, ReasonOrgNotConnected)
	}
	w.conn.Spec.Role = v1.RoleTechnician // an update: the same series
	w.v.Apply(w.conn)
	expect(t, w.authorize(w.token.Token, "minRole=Technician"), http.StatusOK, "")
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	expect(t, w.authorize(w.token.Token, ""), http.StatusTooManyRequests, ReasonRateLimited)
	w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = ptr(false) })
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyDisabled)

	want := map[string]float64{
		grantOrg + "/" + appID + "/" + ReasonOK:               5,
		grantOrg + "/" + appID + "/" + ReasonRoleInsufficient: 1,
		grantOrg + "/" + appID + "/" + ReasonRateLimited:      1,
		"/" + appID + "/" + ReasonOrgNotConnected:             4,
		"/" + appID + "/" + ReasonKeyDisabled:                 1,
	}
	if got := w.applicationDecisions(); !maps.Equal(got, want) {
		t.Errorf("per-application decisions:\n got %v\nwant %v", got, want)
	}
	if n := w.v.index.tallies.series(); n != len(want) {
		t.Errorf("%d series, want %d", n, len(want))
	}

	// Disconnected: the org's series go; the application's stay.
	w.v.Remove(w.conn)
	for k := range want {
		if k[:len(grantOrg)] == grantOrg {
			delete(want, k)
		}
	}
	if got := w.applicationDecisions(); !maps.Equal(got, want) {
		t.Errorf("after the connection was deleted:\n got %v\nwant %v", got, want)
	}
}

// TestCountingPerApplicationCanBeTurnedOff: off, the metric is not registered and nothing is
// counted; the decisions are the same.
func TestCountingPerApplicationCanBeTurnedOff(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.NoApplicationDecisions = true })
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	if got := w.applicationDecisions(); len(got) != 0 {
		t.Errorf("counting off, yet %v", got)
	}
}
