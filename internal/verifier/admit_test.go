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
	"testing"
	"time"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestAdmitSpendsAndCountsOnlyForAnAllowedRequest: a refusal spends no token and counts no use;
// an allowed request spends one and counts one; with the budget spent the answer becomes
// rate_limited, with Retry-After, and counts no use.
func TestAdmitSpendsAndCountsOnlyForAnAllowedRequest(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) { a.Spec.RateLimits[0].Limit = 2 }) // 2 per hour
	now := w.clk.Now()
	admitNow := func(req request) answer { return admit(w.decide(req), w.v.index.keyStore, &w.v.usage, now) }
	ref := w.decide(w.asking(params{})).key.row.owner
	uses := func() int64 { return w.v.index.usage(ref).pending.Load() }

	// Refusals, before and after the key was found: nothing spent, nothing counted.
	for _, p := range []params{{minRole: "Owner"}, {org: "initech"}, {minRole: string(v1.RoleOrgAdmin)}, {metric: "nope"}} {
		if a := admitNow(w.asking(p)); a.reason == rOK || a.rate.limited {
			t.Fatalf("%+v: %s, rate %+v; want a refusal with no bucket state", p, a.reason, a.rate)
		}
	}
	if uses() != 0 || w.v.usage.take() != nil {
		t.Fatalf("refusals counted %d uses", uses())
	}

	// Two allowed requests spend the two tokens and count two uses.
	for i := range 2 {
		a := admitNow(w.asking(params{}))
		if a.reason != rOK || !a.rate.limited || !a.rate.allowed || a.rate.remaining != int64(1-i) {
			t.Fatalf("request %d: %s, rate %+v", i+1, a.reason, a.rate)
		}
	}
	if uses() != 2 {
		t.Fatalf("%d uses counted, want 2", uses())
	}
	if dirty := w.v.usage.take(); len(dirty) != 1 || dirty[0] != ref {
		t.Fatalf("marked for the flush: %v, want the key's APIKey once", dirty)
	}
	if last := w.v.index.usage(ref).lastUsed.Load(); last != now.Unix() {
		t.Fatalf("last used %d, want %d", last, now.Unix())
	}

	// The third: rate_limited, one request fits again in 30 minutes (2 per hour).
	a := admitNow(w.asking(params{}))
	if a.reason != rRateLimited || a.reason.status() != 429 || a.rate.allowed || a.rate.remaining != 0 {
		t.Fatalf("over the budget: %s, rate %+v", a.reason, a.rate)
	}
	if want := int64((30 * time.Minute).Seconds()); a.rate.retryAfter != want {
		t.Fatalf("retry after %d s, want %d", a.rate.retryAfter, want)
	}
	if uses() != 2 || w.v.usage.take() != nil {
		t.Fatalf("a rate-limited request was counted: %d uses", uses())
	}

	// A refusal of the rate-limited key still spends nothing: after 30 minutes one request fits.
	if a := admitNow(w.asking(params{org: "initech"})); a.reason != rOrgNotConnected || a.rate.limited {
		t.Fatalf("refused while over the budget: %s, rate %+v", a.reason, a.rate)
	}
	now = now.Add(30 * time.Minute)
	if a := admitNow(w.asking(params{})); a.reason != rOK || a.rate.remaining != 0 {
		t.Fatalf("after 30 minutes: %s, rate %+v", a.reason, a.rate)
	}
}

// TestAdmitWithoutALimitCountsTheUse: a bucket the Application does not define spends nothing,
// has no bucket state, and the request still counts as a use.
func TestAdmitWithoutALimitCountsTheUse(t *testing.T) {
	w := newWorld(t)
	d := w.decide(w.asking(params{bucket: "undefined"}))
	if d.reason != rOK || d.limited {
		t.Fatalf("fixture: %s, limited %v", d.reason, d.limited)
	}
	a := admit(d, w.v.index.keyStore, &w.v.usage, w.clk.Now())
	if a.reason != rOK || a.rate.limited {
		t.Fatalf("%s, rate %+v", a.reason, a.rate)
	}
	if n := w.v.index.usage(d.key.row.owner).pending.Load(); n != 1 {
		t.Fatalf("%d uses counted, want 1", n)
	}
}

// TestDecidingAndAdmittingAllocateNothingOfTheirOwn: the decision and its side effects cost no
// heap allocation per request beyond what parsing the key does (keyformat.Parse: 4 when this was
// written); the HTTP edge's are net/http's and the response headers'.
func TestDecidingAndAdmittingAllocateNothingOfTheirOwn(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) { a.Spec.RateLimits[0].Limit = 1_000_000_000 })
	req := w.asking(params{minRole: string(v1.RoleObserver), metric: "occupancy.current"})
	req.origin = origin
	now := w.clk.Now()
	parsing := testing.AllocsPerRun(1000, func() { _, _ = w.format.Parse(req.token) })
	allocs := testing.AllocsPerRun(1000, func() {
		if a := admit(decide(&req, &w.v.rules, w.v.index, now), w.v.index.keyStore, &w.v.usage, now); a.reason != rOK {
			t.Fatalf("fixture: %s", a.reason)
		}
	})
	if allocs > parsing {
		t.Fatalf("%.1f allocations per request, %.1f of them parsing the key", allocs, parsing)
	}
}
