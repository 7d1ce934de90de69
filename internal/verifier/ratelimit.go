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
)

// keyUsage is the verifier's in-memory state for one APIKey (by UID): requests accepted since
// the last flush, when it was last used, and its rate-limit buckets. The current and the
// rotated-out keys of one APIKey share it: rotation does not reset a budget. It lives in a slot
// of the index's slab (keystore.go), not as objects of its own: with 100,000 keys in use the
// collector's work is what the verifier's tail latency is made of (docs/performance.md).
type keyUsage struct {
	pending  atomic.Int64 // accepted requests not yet flushed
	lastUsed atomic.Int64 // unix seconds of the last accepted request

	mu sync.Mutex
	// first is the key's first bucket, the only one of most keys; more go into others.
	first  bucketLimiter
	others map[string]*bucketLimiter
	// id names the APIKey's buckets in the shared store (sharedlimits.go).
	id uidKey
}

// reset empties the usage of a slot given to another APIKey.
func (u *keyUsage) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.pending.Store(0)
	u.lastUsed.Store(0)
	u.first = bucketLimiter{}
	u.others = nil
	u.id = uidKey{}
}

// assign gives the slot's usage to the APIKey whose UID is id.
func (u *keyUsage) assign(id uidKey) {
	u.mu.Lock()
	u.id = id
	u.mu.Unlock()
}

// storeID is the id of the APIKey the usage belongs to.
func (u *keyUsage) storeID() uidKey {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.id
}

// bucketLimiter is a token bucket for one key and bucket: burst = limit, refilled at
// limit/period, so a key may spend its whole budget at once and then earns it back evenly.
// A changed limit adjusts the bucket in place, so an edit does not hand out a fresh budget.
type bucketLimiter struct {
	lim rate.Limiter
	bucketConf
}

// bucketConf is what a bucket is: its limit (with its name) and the response headers that
// depend only on that.
type bucketConf struct {
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

// sharedHeaders holds a bucketHeaders per bucket name and limit in use: as many as there are
// distinct rate limits in the cluster's Applications and APIKeys, not one per key.
var sharedHeaders sync.Map // rateLimit → *bucketHeaders

func headersFor(cfg rateLimit) *bucketHeaders {
	if h, ok := sharedHeaders.Load(cfg); ok {
		return h.(*bucketHeaders)
	}
	h, _ := sharedHeaders.LoadOrStore(cfg, &bucketHeaders{
		limitHeader:  header(strconv.FormatInt(cfg.limit, 10)),
		policyHeader: header(`"` + cfg.name + `";q=` + strconv.FormatInt(cfg.limit, 10) + ";w=" + strconv.FormatInt(int64(math.Ceil(cfg.period.Seconds())), 10)),
	})
	return h.(*bucketHeaders)
}

// rateResult is the outcome of spending one request from a bucket.
type rateResult struct {
	limited    bool // false: no limit applies
	conf       bucketConf
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
		return rateLimit{name: bucket, limit: min(k.limit, rl.limit), period: rl.period}, true
	}
	limit := min(k.limit, rl.limit)
	perSecond := min(k.perSecond(), rl.perSecond())
	return rateLimit{name: bucket, limit: limit, period: time.Duration(float64(limit) / perSecond * float64(time.Second))}, true
}

func (rl rateLimit) perSecond() float64 { return float64(rl.limit) / rl.period.Seconds() }

// take spends one request at now from the key's bucket, creating the bucket or adjusting it
// to cfg first.
func (u *keyUsage) take(cfg rateLimit, now time.Time) rateResult {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := &u.first
	switch {
	case b.bucketHeaders == nil:
		b.init(cfg, now)
	case b.cfg.name != cfg.name:
		b = u.others[cfg.name]
		if b == nil {
			b = &bucketLimiter{}
			b.init(cfg, now)
			if u.others == nil {
				u.others = map[string]*bucketLimiter{}
			}
			u.others[cfg.name] = b
		}
	}
	if b.cfg != cfg {
		b.bucketConf = confOf(cfg)
		b.lim.SetLimitAt(now, rate.Limit(b.perSecond))
		b.lim.SetBurstAt(now, burstOf(cfg))
	}
	allowed := b.lim.AllowN(now, 1)
	return rateResultOf(b.bucketConf, allowed, b.lim.TokensAt(now))
}

// rateResultOf is the answer of a bucket conf that allowed a request or not, with tokens left:
// the same whether the bucket is in memory or in the shared store.
func rateResultOf(conf bucketConf, allowed bool, tokens float64) rateResult {
	limit := float64(conf.cfg.limit)
	res := rateResult{limited: true, conf: conf, allowed: allowed}
	res.remaining = int64(math.Floor(max(0, min(tokens, limit))))
	res.reset = ceilSeconds((limit - tokens) / conf.perSecond)
	if !allowed {
		res.retryAfter = max(1, ceilSeconds((1-tokens)/conf.perSecond))
	}
	return res
}

// init makes b, a zero bucket, a full one for cfg at now, in place (rate.NewLimiter would
// allocate one): a bucket given its burst and rate at the zero time has long refilled to its
// burst by now, which the last call accounts for.
func (b *bucketLimiter) init(cfg rateLimit, now time.Time) {
	b.bucketConf = confOf(cfg)
	b.lim.SetBurstAt(time.Time{}, burstOf(cfg))
	b.lim.SetLimitAt(time.Time{}, rate.Limit(b.perSecond))
	b.lim.SetLimitAt(now, rate.Limit(b.perSecond))
}

func confOf(cfg rateLimit) bucketConf {
	return bucketConf{cfg: cfg, perSecond: cfg.perSecond(), bucketHeaders: headersFor(cfg)}
}

func burstOf(cfg rateLimit) int { return int(min(cfg.limit, math.MaxInt32)) }

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
	dirty []ownerRef
}

// record counts one accepted request of the APIKey in ref's slot, whose usage is u: two atomic
// operations, and a lock only on the first request after a flush.
func (t *usageTracker) record(ref ownerRef, u *keyUsage, now time.Time) {
	sec := now.Unix()
	for {
		last := u.lastUsed.Load()
		if last >= sec || u.lastUsed.CompareAndSwap(last, sec) {
			break
		}
	}
	if u.pending.Add(1) == 1 {
		t.markDirty(ref)
	}
}

// giveBack returns an unflushed delta after a failed write, so it goes out with the next flush.
func (t *usageTracker) giveBack(ref ownerRef, u *keyUsage, delta int64) {
	if u.pending.Add(delta) == delta {
		t.markDirty(ref)
	}
}

func (t *usageTracker) markDirty(ref ownerRef) {
	t.mu.Lock()
	t.dirty = append(t.dirty, ref)
	t.mu.Unlock()
}

func (t *usageTracker) take() []ownerRef {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.dirty
	t.dirty = nil
	return d
}
