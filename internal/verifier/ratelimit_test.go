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
	"math/rand/v2"
	"net/http"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestTokenBucketDoesWhatRateLimiterDoes holds the keys' token bucket to golang.org/x/time/rate's
// Limiter, which it replaces in the index to save 56 bytes and a pointer per key: the same
// answers and the same tokens, to the last bit, over random requests (bursts, pauses, a clock
// that steps back) and limit edits, set up full as the verifier sets a bucket up.
func TestTokenBucketDoesWhatRateLimiterDoes(t *testing.T) {
	confs := newBucketConfs()
	limits := []rateLimit{
		{name: "general", limit: 5, period: time.Second},
		{name: "general", limit: 100, period: time.Hour},
		{name: "general", limit: 3, period: 7 * time.Second},
		{name: "general", limit: 1, period: time.Minute},
		{name: "general", limit: 1_000_000_000, period: time.Second},
		{name: "general", limit: 10_000_000_000, period: 24 * time.Hour}, // past MaxInt32: burst capped
	}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 42))
		now := time.Unix(1_800_000_000, 0)
		conf := confs.of(limits[rng.IntN(len(limits))])
		var b tokenBucket
		b.fill(conf, now.UnixNano())
		lim := &rate.Limiter{}
		lim.SetBurstAt(time.Time{}, burstOf(conf.cfg))
		lim.SetLimitAt(time.Time{}, rate.Limit(conf.perSecond))
		lim.SetLimitAt(now, rate.Limit(conf.perSecond))
		for step := range 400 {
			switch r := rng.IntN(100); {
			case r < 3: // the limit is edited
				next := confs.of(limits[rng.IntN(len(limits))])
				b.adjust(conf, next, now.UnixNano())
				lim.SetLimitAt(now, rate.Limit(next.perSecond))
				lim.SetBurstAt(now, burstOf(next.cfg))
				conf = next
			case r < 5: // the clock steps back a little
				now = now.Add(-time.Duration(rng.Int64N(int64(time.Second))))
			case r < 60: // a burst: no time passes
			default:
				now = now.Add(time.Duration(rng.Int64N(int64(3 * conf.cfg.period / time.Duration(max(1, min(conf.cfg.limit, 1000)))))))
			}
			got, want := b.allow(conf, now.UnixNano()), lim.AllowN(now, 1)
			gotTokens, wantTokens := b.advance(conf, now.UnixNano()), lim.TokensAt(now)
			if got != want || gotTokens != wantTokens {
				t.Fatalf("seed %d step %d (%+v): allowed %v with %v tokens left, rate.Limiter %v with %v", seed, step, conf.cfg, got, gotTokens, want, wantTokens)
			}
		}
	}
}

// TestTheIndexSlabsHoldNoPointer: the slabs of the index's keys (rows, owners, usage, what
// writers need) are ones the collector need not walk, and their slots stay small.
func TestTheIndexSlabsHoldNoPointer(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[storedRow](), reflect.TypeFor[ownerRow](), reflect.TypeFor[keyUsage](), reflect.TypeFor[ownerExtra]()} {
		if path := pointerIn(typ, typ.Name()); path != "" {
			t.Errorf("%s holds a pointer: %s", typ.Name(), path)
		}
	}
	if size := unsafe.Sizeof(keyUsage{}); size > 40 {
		t.Errorf("keyUsage is %d bytes, want at most 40", size)
	}
	if size := unsafe.Sizeof(storedRow{}); size > 44 {
		t.Errorf("a stored key row is %d bytes, want at most 44", size)
	}
	if size := unsafe.Sizeof(ownerExtra{}); size > 36 {
		t.Errorf("ownerExtra is %d bytes, want at most 36", size)
	}
}

// pointerIn names a field of typ that is or holds a pointer, "" if none.
func pointerIn(typ reflect.Type, path string) string {
	switch typ.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Slice, reflect.String, reflect.Chan, reflect.Func, reflect.Interface:
		return path
	case reflect.Array:
		return pointerIn(typ.Elem(), path+"[]")
	case reflect.Struct:
		for i := range typ.NumField() {
			if p := pointerIn(typ.Field(i).Type, path+"."+typ.Field(i).Name); p != "" {
				return p
			}
		}
	}
	return ""
}

// TestAKeysOwnLimitNeverWidensItsApplicationsRate: whatever limit and period a key and its
// Application give a bucket, the limit that applies allows no more requests at once than either
// (its burst) and refills no faster than either: a key with a shorter period (100 a minute
// under 1000 an hour) is held to the slower rate, and over an hour gets no more than its
// Application alone would give it.
func TestAKeysOwnLimitNeverWidensItsApplicationsRate(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 11))
	periods := []time.Duration{time.Second, 10 * time.Second, time.Minute, 7 * time.Minute, time.Hour, 24 * time.Hour}
	for range 5000 {
		app := rateLimit{name: "general", limit: 1 + rnd.Int64N(5000), period: periods[rnd.IntN(len(periods))]}
		key := rateLimit{name: "general", limit: 1 + rnd.Int64N(5000), period: periods[rnd.IntN(len(periods))]}
		got, ok := effectiveLimit(map[string]rateLimit{"general": app}, map[string]rateLimit{"general": key}, "general")
		if !ok {
			t.Fatalf("app %v, key %v: no limit applies", app, key)
		}
		if got.limit > app.limit || got.limit > key.limit ||
			got.perSecond() > app.perSecond()*(1+1e-9) || got.perSecond() > key.perSecond()*(1+1e-9) {
			t.Fatalf("app %d per %s, key %d per %s: applies %d per %s, wider than one of them",
				app.limit, app.period, key.limit, key.period, got.limit, got.period)
		}
	}

	// Through the verifier: an Application of 10 an hour, a key of 5 a minute.
	allowedInAnHour := func(keyLimits []v1.RateLimit) int {
		w := newWorld(t)
		w.updateApp(func(a *v1.Application) {
			a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 10, Period: metav1.Duration{Duration: time.Hour}}}
		})
		w.updateKey(func(k *v1.APIKey) { k.Spec.RateLimits = keyLimits })
		n := 0
		for range 60 {
			for w.authorize(w.token.Token, "").Code == http.StatusOK {
				n++
			}
			w.step(time.Minute)
		}
		return n
	}
	appAlone := allowedInAnHour(nil)
	withKey := allowedInAnHour([]v1.RateLimit{{Name: "general", Limit: 5, Period: metav1.Duration{Duration: time.Minute}}})
	if withKey > appAlone {
		t.Errorf("in one hour the key got %d requests with its own limit of 5 a minute, more than the %d its Application alone allows", withKey, appAlone)
	}
}
