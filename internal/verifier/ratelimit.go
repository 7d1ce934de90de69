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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// keyUsage is the verifier's in-memory state for one APIKey (by UID): requests accepted since
// the last flush, when it was last used, and its rate-limit bucket. The current and the
// rotated-out keys of one APIKey share it: rotation does not reset a budget. It lives in a slot
// of the index's slab (keystore.go), not as objects of its own, and holds no pointer, so the
// collector never walks the slab: with 100,000 keys in use the collector's work is what the
// verifier's tail latency is made of (docs/performance.md).
type keyUsage struct {
	pending  atomic.Int64 // accepted requests not yet flushed
	lastUsed atomic.Int64 // unix seconds of the last accepted request
	// bucket is the key's first bucket, the only one of most keys; more are in its stripe's
	// others. Guarded by the slot's bucket stripe (keyStore.bucketStripes).
	bucket tokenBucket
}

// tokenBucket is a token bucket for one key and bucket: burst = limit, refilled at
// limit/period, so a key may spend its whole budget at once and then earns it back evenly. A
// changed limit adjusts the bucket in place, so an edit does not hand out a fresh budget.
//
// It does what golang.org/x/time/rate's Limiter does for AllowN(now, 1), TokensAt, SetLimitAt
// and SetBurstAt, with the same arithmetic (TestTokenBucketDoesWhatRateLimiterDoes holds it to
// the Limiter), in 24 bytes without a pointer instead of 80 with two time.Time and a mutex:
// with a million keys that is 56 MB, and a slab the collector need not walk.
type tokenBucket struct {
	tokens float64
	last   int64  // unix nanoseconds of the last change
	conf   uint32 // its bucketConf in keyStore.confs; 0: a bucket not set up yet
}

// advance is the tokens at now: those left at the last change, plus what accrued since, up to
// the burst (Limiter.advance).
func (b *tokenBucket) advance(c *bucketConf, now int64) float64 {
	last := min(b.last, now)
	tokens := b.tokens + time.Duration(now-last).Seconds()*c.perSecond
	return min(tokens, float64(burstOf(c.cfg)))
}

// allow spends one token at now if there is one (Limiter.AllowN(now, 1): a deficit worth less
// than a nanosecond of refill counts as none).
func (b *tokenBucket) allow(c *bucketConf, now int64) bool {
	tokens := b.advance(c, now) - 1
	if tokens < 0 && time.Duration(-tokens/c.perSecond*float64(time.Second)) > 0 {
		return false
	}
	b.tokens, b.last = tokens, now
	return true
}

// fill sets b up as a full bucket of c at now.
func (b *tokenBucket) fill(c *bucketConf, now int64) {
	b.tokens, b.last, b.conf = float64(burstOf(c.cfg)), now, c.id
}

// adjust changes b from its configuration old to c at now, keeping the tokens it has
// (Limiter.SetLimitAt then SetBurstAt).
func (b *tokenBucket) adjust(old, c *bucketConf, now int64) {
	b.tokens, b.last, b.conf = b.advance(old, now), now, c.id
}

// bucketConf is what a bucket is: its limit (with its name) and the response headers that
// depend only on that, shared by every key with the same ones.
type bucketConf struct {
	id           uint32
	cfg          rateLimit
	perSecond    float64
	limitHeader  []string // X-RateLimit-Limit
	policyHeader []string // RateLimit-Policy
}

// bucketConfs numbers the bucket configurations in use: as many as there are distinct rate
// limits in the cluster's Applications and APIKeys, not one per key. Numbers are never reused.
type bucketConfs struct {
	mu   sync.Mutex
	ids  map[rateLimit]uint32
	list atomic.Pointer[[]*bucketConf] // by number; 0 is none
}

func newBucketConfs() *bucketConfs {
	c := &bucketConfs{ids: map[rateLimit]uint32{}}
	list := []*bucketConf{nil}
	c.list.Store(&list)
	return c
}

// get is the configuration numbered id, nil for 0.
func (c *bucketConfs) get(id uint32) *bucketConf { return (*c.list.Load())[id] }

// of numbers cfg, the first time it is seen.
func (c *bucketConfs) of(cfg rateLimit) *bucketConf {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.ids[cfg]; ok {
		return c.get(id)
	}
	list := *c.list.Load()
	conf := &bucketConf{
		id:          uint32(len(list)),
		cfg:         rateLimit{name: strings.Clone(cfg.name), limit: cfg.limit, period: cfg.period},
		perSecond:   cfg.perSecond(),
		limitHeader: header(strconv.FormatInt(cfg.limit, 10)),
		policyHeader: header(`"` + cfg.name + `";q=` + strconv.FormatInt(cfg.limit, 10) + ";w=" +
			strconv.FormatInt(int64(math.Ceil(cfg.period.Seconds())), 10)),
	}
	next := append(slices.Clip(list), conf)
	c.list.Store(&next)
	c.ids[conf.cfg] = conf.id
	return conf
}

// rateResult is the outcome of spending one request from a bucket.
type rateResult struct {
	limited    bool // false: no limit applies
	conf       *bucketConf
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

// take spends one request at now from the bucket cfg names of the APIKey in ref's slot,
// setting the bucket up or adjusting it to cfg first.
func (s *keyStore) take(ref ownerRef, cfg rateLimit, now time.Time) rateResult {
	stripe := &s.bucketStripes[ref.slot%bucketStripeCount]
	stripe.mu.Lock()
	defer stripe.mu.Unlock()
	at := now.UnixNano()
	b := &s.usages.at(ref.slot).bucket
	conf := s.confs.get(b.conf)
	if conf != nil && conf.cfg.name != cfg.name {
		b = stripe.other(ref.slot, cfg.name)
		conf = s.confs.get(b.conf)
	}
	switch {
	case conf == nil:
		conf = s.confs.of(cfg)
		b.fill(conf, at)
	case conf.cfg != cfg:
		next := s.confs.of(cfg)
		b.adjust(conf, next, at)
		conf = next
	}
	allowed := b.allow(conf, at)
	return rateResultOf(conf, allowed, b.advance(conf, at))
}

// rateResultOf is the answer of a bucket of conf that allowed the request or not and holds
// tokens after it, whether it is in memory or in the shared store: the same headers either way.
func rateResultOf(conf *bucketConf, allowed bool, tokens float64) rateResult {
	limit := float64(conf.cfg.limit)
	res := rateResult{limited: true, conf: conf, allowed: allowed}
	res.remaining = int64(math.Floor(max(0, min(tokens, limit))))
	res.reset = ceilSeconds((limit - tokens) / conf.perSecond)
	if !allowed {
		res.retryAfter = max(1, ceilSeconds((1-tokens)/conf.perSecond))
	}
	return res
}

// bucketStripeCount stripes the locks of the keys' buckets: a lock per key would add eight
// bytes to every slot for a critical section of a few arithmetic operations.
const bucketStripeCount = 256

// bucketStripe guards the buckets of the slots whose number is its index modulo
// bucketStripeCount, and holds their buckets past the first.
type bucketStripe struct {
	mu     sync.Mutex
	others map[uint32]map[string]*tokenBucket // slot → bucket name → bucket
	_      [48]byte                           // keeps neighbouring stripes off one cache line
}

// other is the bucket named name of the APIKey in slot, beside its first (stripe locked).
func (st *bucketStripe) other(slot uint32, name string) *tokenBucket {
	if st.others == nil {
		st.others = map[uint32]map[string]*tokenBucket{}
	}
	buckets := st.others[slot]
	if buckets == nil {
		buckets = map[string]*tokenBucket{}
		st.others[slot] = buckets
	}
	b := buckets[name]
	if b == nil {
		b = &tokenBucket{}
		buckets[strings.Clone(name)] = b
	}
	return b
}

// resetUsage empties the usage of a slot given to another APIKey.
func (s *keyStore) resetUsage(slot uint32) {
	stripe := &s.bucketStripes[slot%bucketStripeCount]
	stripe.mu.Lock()
	defer stripe.mu.Unlock()
	u := s.usages.at(slot)
	u.pending.Store(0)
	u.lastUsed.Store(0)
	u.bucket = tokenBucket{}
	delete(stripe.others, slot)
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
