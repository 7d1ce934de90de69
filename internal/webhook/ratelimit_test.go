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

package webhook

import (
	"context"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// The narrowing check compares rates exactly, a fraction of a second included: against the
// rational numbers over 20,000 generated pairs within the CRD's bounds (1 to 10⁹ requests, 1 s
// to a year), half of them sharing a rate written two ways.
func TestAKeysRateIsComparedExactlyWithItsApplications(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 7))
	period := func() time.Duration {
		switch rng.IntN(3) {
		case 0: // whole seconds
			return time.Duration(1+rng.Int64N(8760*3600)) * time.Second
		case 1: // a second and a fraction
			return time.Second + time.Duration(rng.Int64N(int64(time.Second)))
		default: // anything up to a year
			return time.Second + time.Duration(rng.Int64N(int64(8760*time.Hour-time.Second)))
		}
	}
	limit := func() int64 {
		if rng.IntN(2) == 0 {
			return 1 + rng.Int64N(10)
		}
		return 1 + rng.Int64N(1_000_000_000)
	}
	rate := func(l v1.RateLimit) *big.Rat { return big.NewRat(l.Limit, int64(l.Period.Duration)) }
	for i := range 20_000 {
		a := v1.RateLimit{Limit: limit(), Period: metav1.Duration{Duration: period()}}
		b := v1.RateLimit{Limit: limit(), Period: metav1.Duration{Duration: period()}}
		if i%2 == 1 { // the same rate with another period: k·limit per k·period
			k := 1 + rng.Int64N(3)
			a = v1.RateLimit{Limit: 1 + rng.Int64N(10), Period: metav1.Duration{Duration: time.Second + time.Duration(rng.Int64N(int64(time.Second)))}}
			b = v1.RateLimit{Limit: a.Limit * k, Period: metav1.Duration{Duration: a.Period.Duration * time.Duration(k)}}
		}
		want := rate(a).Cmp(rate(b)) > 0
		if got := fasterThan(a, b); got != want {
			t.Fatalf("%d per %s faster than %d per %s: got %v, want %v", a.Limit, a.Period.Duration, b.Limit, b.Period.Duration, got, want)
		}
	}
}

// A key's limit whose period has a fraction of a second is judged by its exact rate, at apply:
// the same rate written with a smaller limit is admitted, a faster one refused (the check used to
// truncate both periods to whole seconds, refusing the first and admitting the second).
func TestAKeyLimitWithAFractionOfASecondIsJudgedByItsExactRate(t *testing.T) {
	ctx := context.Background()
	peopleRoles(t)
	org := env.Namespace(t, "fraction")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	seconds := func(s float64) metav1.Duration {
		return metav1.Duration{Duration: time.Duration(s * float64(time.Second))}
	}
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.ApplicationSpec{
		Description: "BI",
		RateLimits: []v1.RateLimit{
			{Name: "general", Limit: 2, Period: seconds(3)},
			{Name: "generation", Limit: 3, Period: seconds(1.9)},
		},
	}}
	if err := ada.c.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := func(name string, l v1.RateLimit) *v1.APIKey {
		return &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name}, Spec: v1.APIKeySpec{
			ApplicationName: "bi", TTL: &metav1.Duration{Duration: time.Hour}, Scopes: []string{"reports:read"}, RateLimits: []v1.RateLimit{l},
		}}
	}
	// The webhook reads the Application from its cache: wait until a plainly wider key is refused.
	eventually(t, func() bool {
		return ada.c.Create(ctx, key("probe", v1.RateLimit{Name: "general", Limit: 2, Period: seconds(1)}), client.DryRunAll) != nil
	})
	// One per 1.5 s is the Application's two per 3 s: it narrows nothing, and widens nothing.
	if err := ada.c.Create(ctx, key("same-rate", v1.RateLimit{Name: "general", Limit: 1, Period: seconds(1.5)})); err != nil {
		t.Errorf("1 per 1.5s against the Application's 2 per 3s is the same rate and must be admitted: %v", err)
	}
	// Three per 1.5 s is faster than the Application's three per 1.9 s.
	err := ada.c.Create(ctx, key("faster", v1.RateLimit{Name: "generation", Limit: 3, Period: seconds(1.5)}))
	want := `rate limit "generation" (3 per 1.5s) allows more than Application bi's (3 per 1.9s): a key may only narrow it`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("3 per 1.5s against the Application's 3 per 1.9s: got %v, want a refusal saying %q", err, want)
	}
}

// A key's limit is its burst as much as its rate: one that holds more requests at once than its
// Application's is refused at apply even when it refills more slowly (the verifier applies the
// lower limit and the lower rate of the two), and one that repeats its Application's limit
// exactly narrows nothing and is admitted.
func TestAKeyMayRepeatItsApplicationsLimitButNeverHoldABiggerBurst(t *testing.T) {
	ctx := context.Background()
	peopleRoles(t)
	org := env.Namespace(t, "burst")
	ada := newPerson(t, org, "ada", "clearance-org-admin")
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "bi"}, Spec: v1.ApplicationSpec{
		Description: "BI",
		RateLimits:  []v1.RateLimit{{Name: "general", Limit: 2, Period: metav1.Duration{Duration: 3 * time.Second}}},
	}}
	if err := ada.c.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := func(l v1.RateLimit) *v1.APIKey {
		return &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "exporter"}, Spec: v1.APIKeySpec{
			ApplicationName: "bi", TTL: &metav1.Duration{Duration: time.Hour}, Scopes: []string{"reports:read"}, RateLimits: []v1.RateLimit{l},
		}}
	}
	eventually(t, func() bool { // the webhook's cache has the Application: a plainly wider key is refused
		return ada.c.Create(ctx, key(v1.RateLimit{Name: "general", Limit: 2, Period: metav1.Duration{Duration: time.Second}}), client.DryRunAll) != nil
	})
	same := v1.RateLimit{Name: "general", Limit: 2, Period: metav1.Duration{Duration: 3 * time.Second}}
	if err := ada.c.Create(ctx, key(same), client.DryRunAll); err != nil {
		t.Errorf("a key repeating its Application's 2 per 3s must be admitted: %v", err)
	}
	// Three per 10 s refills more slowly than two per 3 s, but three at once is more than two.
	err := ada.c.Create(ctx, key(v1.RateLimit{Name: "general", Limit: 3, Period: metav1.Duration{Duration: 10 * time.Second}}), client.DryRunAll)
	want := `rate limit "general" (3 per 10s) allows more than Application bi's (2 per 3s): a key may only narrow it`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("3 per 10s against the Application's 2 per 3s: got %v, want a refusal saying %q", err, want)
	}
}

// A period that is not positive (the CRD refuses it, so only an object from before that rule
// has one) is faster than any rate: a key with one never passes for narrowing its Application's.
func TestAPeriodThatIsNotPositiveIsFasterThanAnyRate(t *testing.T) {
	per := func(limit int64, d time.Duration) v1.RateLimit {
		return v1.RateLimit{Limit: limit, Period: metav1.Duration{Duration: d}}
	}
	for _, tc := range []struct {
		a, b v1.RateLimit
		want bool
	}{
		{per(1, 0), per(1_000_000_000, time.Second), true},
		{per(1, -time.Second), per(1_000_000_000, time.Second), true},
		{per(1_000_000_000, time.Second), per(1, 0), false},
		{per(1, 0), per(1, 0), false},
	} {
		if got := fasterThan(tc.a, tc.b); got != tc.want {
			t.Errorf("%d per %s faster than %d per %s: got %v, want %v", tc.a.Limit, tc.a.Period.Duration, tc.b.Limit, tc.b.Period.Duration, got, tc.want)
		}
	}
}
