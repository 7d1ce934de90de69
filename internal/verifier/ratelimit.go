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
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
)

// keyUsage is the verifier's in-memory state for one APIKey (by UID): requests accepted since
// the last flush, when it was last used, and its rate-limit buckets. The current and the
// rotated-out keys of one APIKey share it: rotation does not reset a budget.
type keyUsage struct {
	uid             types.UID
	namespace, name string

	pending  atomic.Int64 // accepted requests not yet flushed
	lastUsed atomic.Int64 // unix seconds of the last accepted request

	mu sync.Mutex
	// first is the key's first bucket, the only one of most keys; more go into others. Kept
	// apart so a key in use costs two small objects, not a map as well: with 100,000 keys the
	// collector's work is what the verifier's tail latency is made of (docs/performance.md).
	first  *bucketLimiter
	others map[string]*bucketLimiter
}

// bucketLimiter is a token bucket for one key and bucket: burst = limit, refilled at
// limit/period, so a key may spend its whole budget at once and then earns it back evenly.
// The limiter is shared when the limit changes, so an edit does not hand out a fresh budget.
type bucketLimiter struct {
	lim       *rate.Limiter
	bucket    string
	cfg       rateLimit
	perSecond float64
	*bucketHeaders
}

// bucketHeaders are the response headers that depend only on the bucket's name and limit,
// shared by every key with the same ones.
type bucketHeaders struct {
	limitHeader  []string // X-RateLimit-Limit
	policyHeader []string // RateLimit-Policy
}

type bucketHeadersKey struct {
	bucket string
	cfg    rateLimit
}

// sharedHeaders holds a bucketHeaders per bucket name and limit in use: as many as there are
// distinct rate limits in the cluster's Applications and APIKeys, not one per key.
var sharedHeaders sync.Map // bucketHeadersKey → *bucketHeaders

func headersFor(bucket string, cfg rateLimit) *bucketHeaders {
	k := bucketHeadersKey{bucket: bucket, cfg: cfg}
	if h, ok := sharedHeaders.Load(k); ok {
		return h.(*bucketHeaders)
	}
	h, _ := sharedHeaders.LoadOrStore(k, &bucketHeaders{
		limitHeader:  header(strconv.FormatInt(cfg.limit, 10)),
		policyHeader: header(`"` + bucket + `";q=` + strconv.FormatInt(cfg.limit, 10) + ";w=" + strconv.FormatInt(int64(math.Ceil(cfg.period.Seconds())), 10)),
	})
	return h.(*bucketHeaders)
}

// rateResult is the outcome of spending one request from a bucket.
type rateResult struct {
	b          *bucketLimiter // nil: no limit applies
	allowed    bool
	remaining  int64
	reset      int64 // seconds until the bucket is full again
	retryAfter int64 // seconds until one request is allowed again (refusals only)
}

// effectiveLimit is the Application's bucket, narrowed by the key's: the lower limit (burst)
// and the lower rate of the two. With the same period, as is usual, that is simply the lower
// limit. A bucket the Application does not define has no limit, whatever the key says: keys may
// only narrow their Application's budgets, never add one.
func effectiveLimit(app, key map[string]rateLimit, bucket string) (rateLimit, bool) {
	rl, ok := app[bucket]
	if !ok {
		return rateLimit{}, false
	}
	k, ok := key[bucket]
	if !ok || k == rl {
		return rl, true
	}
	if k.period == rl.period {
		return rateLimit{limit: min(k.limit, rl.limit), period: rl.period}, true
	}
	limit := min(k.limit, rl.limit)
	perSecond := min(k.perSecond(), rl.perSecond())
	return rateLimit{limit: limit, period: time.Duration(float64(limit) / perSecond * float64(time.Second))}, true
}

func (rl rateLimit) perSecond() float64 { return float64(rl.limit) / rl.period.Seconds() }

// limiter returns the key's bucket, creating it or adjusting it to cfg.
func (u *keyUsage) limiter(bucket string, cfg rateLimit, now time.Time) *bucketLimiter {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.first
	if b == nil || b.bucket != bucket {
		b = u.others[bucket]
	}
	if b != nil && b.cfg == cfg {
		return b
	}
	burst := int(min(cfg.limit, math.MaxInt32))
	perSecond := cfg.perSecond()
	var lim *rate.Limiter
	if b == nil {
		lim = rate.NewLimiter(rate.Limit(perSecond), burst) // starts full
	} else {
		lim = b.lim
		lim.SetLimitAt(now, rate.Limit(perSecond))
		lim.SetBurstAt(now, burst)
	}
	nb := &bucketLimiter{lim: lim, bucket: bucket, cfg: cfg, perSecond: perSecond, bucketHeaders: headersFor(bucket, cfg)}
	switch {
	case u.first == nil || u.first.bucket == bucket:
		u.first = nb
	default:
		if u.others == nil {
			u.others = map[string]*bucketLimiter{}
		}
		u.others[bucket] = nb
	}
	return nb
}

// take spends one request at now.
func (b *bucketLimiter) take(now time.Time) rateResult {
	allowed := b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	limit := float64(b.cfg.limit)
	res := rateResult{b: b, allowed: allowed}
	res.remaining = int64(math.Floor(max(0, min(tokens, limit))))
	res.reset = ceilSeconds((limit - tokens) / b.perSecond)
	if !allowed {
		res.retryAfter = max(1, ceilSeconds((1-tokens)/b.perSecond))
	}
	return res
}

func ceilSeconds(s float64) int64 {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int64(math.Ceil(s - 1e-9))
}

// usageTracker remembers which keys have unflushed usage, so a flush touches only those.
type usageTracker struct {
	mu    sync.Mutex
	dirty []*keyUsage
}

// record counts one accepted request: two atomic operations, and a lock only on the first
// request after a flush.
func (t *usageTracker) record(u *keyUsage, now time.Time) {
	sec := now.Unix()
	for {
		last := u.lastUsed.Load()
		if last >= sec || u.lastUsed.CompareAndSwap(last, sec) {
			break
		}
	}
	if u.pending.Add(1) == 1 {
		t.markDirty(u)
	}
}

// giveBack returns an unflushed delta after a failed write, so it goes out with the next flush.
func (t *usageTracker) giveBack(u *keyUsage, delta int64) {
	if u.pending.Add(delta) == delta {
		t.markDirty(u)
	}
}

func (t *usageTracker) markDirty(u *keyUsage) {
	t.mu.Lock()
	t.dirty = append(t.dirty, u)
	t.mu.Unlock()
}

func (t *usageTracker) take() []*keyUsage {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.dirty
	t.dirty = nil
	return d
}
