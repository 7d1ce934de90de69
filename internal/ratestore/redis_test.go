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

package ratestore

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/clearance-dev/clearance/internal/testenv"
)

var epoch = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// memBucket is a bucket in memory as the verifier keeps one without a store (internal/verifier,
// keyUsage.take): a Limiter full at the first request, adjusted in place when its limit changes.
// The store forgets a bucket once it is full, and a full bucket is as good as a new one, but
// for one thing: a raised limit applies at once to a bucket the store forgot
// (TestAChangedLimitKeepsWhatWasSpent). forgetFull makes the bucket in memory do the same.
type memBucket struct {
	lim        *rate.Limiter
	burst      int64
	rate       float64
	forgetFull bool
}

func (b *memBucket) take(now time.Time, burst int64, perSecond float64) (bool, float64) {
	if b.forgetFull && b.lim != nil && b.lim.TokensAt(now) == float64(b.burst) {
		b.lim = nil
	}
	switch {
	case b.lim == nil:
		b.lim = rate.NewLimiter(rate.Limit(perSecond), int(burst))
	case b.burst != burst || b.rate != perSecond:
		b.lim.SetLimitAt(now, rate.Limit(perSecond))
		b.lim.SetBurstAt(now, int(burst))
	}
	b.burst, b.rate = burst, perSecond
	ok := b.lim.AllowN(now, 1)
	return ok, b.lim.TokensAt(now)
}

// miniStore is a store in miniredis, whose clock the test sets (TIME follows it, and so do TTLs).
func miniStore(t *testing.T) (*Redis, *miniredis.Miniredis) {
	t.Helper()
	m := miniredis.RunT(t)
	m.SetTime(epoch)
	m.ClockTTL(true)
	s, err := Open("redis://"+m.Addr()+"/0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, m
}

func take(t *testing.T, s *Redis, key string, burst int64, perSecond float64) (bool, float64) {
	t.Helper()
	ok, tokens, err := s.Take(context.Background(), key, burst, perSecond)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	return ok, tokens
}

// TestTheStoreAnswersAsTheVerifiersBucketInMemory: for the same requests at the same instants,
// with limits changing now and then, the script's answers (allowed, tokens left) are exactly
// the in-memory Limiter's, so every header derived from them is the same with the store.
func TestTheStoreAnswersAsTheVerifiersBucketInMemory(t *testing.T) {
	s, m := miniStore(t)
	limits := []struct {
		limit  int64
		period time.Duration
	}{{1, time.Second}, {2, time.Minute}, {5, 10 * time.Second}, {50, time.Hour}, {7, 3 * time.Second}, {1000, time.Hour}}
	rng := rand.New(rand.NewPCG(17, 4))
	changes := 0 // limits changed on a bucket partly spent
	for key := range 8 {
		name := "clearance:ratelimit:test:" + string(rune('a'+key))
		mem := memBucket{forgetFull: true}
		now := epoch.Add(time.Duration(key) * time.Hour)
		cur := limits[rng.IntN(len(limits))]
		allowed, refused := 0, 0
		for i := range 400 {
			// Mostly bursts (a few microseconds apart), sometimes a pause of up to a period.
			step := time.Duration(rng.IntN(50)) * time.Microsecond
			if rng.IntN(10) == 0 {
				step = time.Duration(rng.Int64N(int64(cur.period)/time.Microsecond.Nanoseconds())) * time.Microsecond
			}
			now = now.Add(step)
			if rng.IntN(40) == 0 {
				next := limits[rng.IntN(len(limits))]
				if next != cur && mem.lim != nil && mem.lim.TokensAt(now) < float64(mem.burst) {
					changes++
				}
				cur = next
			}
			m.SetTime(now)
			perSecond := float64(cur.limit) / cur.period.Seconds()
			wantOK, wantTokens := mem.take(now, cur.limit, perSecond)
			gotOK, gotTokens := take(t, s, name, cur.limit, perSecond)
			if gotOK != wantOK || gotTokens != wantTokens {
				t.Fatalf("key %d request %d at +%s (%d per %s): store allowed %v with %v tokens left, memory %v with %v",
					key, i, now.Sub(epoch), cur.limit, cur.period, gotOK, gotTokens, wantOK, wantTokens)
			}
			if gotOK {
				allowed++
			} else {
				refused++
			}
		}
		if allowed == 0 || refused == 0 {
			t.Fatalf("key %d: %d allowed, %d refused: the sequence tells nothing", key, allowed, refused)
		}
	}
	if changes < 10 {
		t.Fatalf("only %d limit changes on a partly spent bucket: the sequence tells too little", changes)
	}
	t.Logf("%d limit changes on a partly spent bucket", changes)
}

// TestABucketExpiresWhenItWouldBeFull: the hash lives as long as the bucket takes to fill up
// again (at most one period), so idle keys vanish; an absent bucket is a full one.
func TestABucketExpiresWhenItWouldBeFull(t *testing.T) {
	s, m := miniStore(t)
	const key = "clearance:ratelimit:ttl:general"
	perSecond := 50 / time.Hour.Seconds() // 50 per hour: a token every 72 s
	for range 3 {
		take(t, s, key, 50, perSecond)
	}
	if ttl := m.TTL(key); ttl != 3*72*time.Second {
		t.Fatalf("TTL %s after 3 of 50 per hour, want 3 × 72s", ttl)
	}
	m.SetTime(epoch.Add(3*72*time.Second - time.Millisecond))
	if !m.Exists(key) {
		t.Fatal("the bucket vanished before it was full again")
	}
	m.SetTime(epoch.Add(3 * 72 * time.Second))
	if m.Exists(key) {
		t.Fatalf("the bucket is still there once full (TTL %s)", m.TTL(key))
	}
	if ok, tokens := take(t, s, key, 50, perSecond); !ok || tokens != 49 {
		t.Fatalf("after it vanished: allowed %v with %v tokens left, want a full bucket's 49", ok, tokens)
	}

	// A bucket spent to nothing lives one period, and no longer.
	const spent = "clearance:ratelimit:ttl:generation"
	for range 3 {
		take(t, s, spent, 3, 3/time.Hour.Seconds())
	}
	if ttl := m.TTL(spent); ttl != time.Hour {
		t.Fatalf("TTL %s of a spent bucket of 3 per hour, want 1h", ttl)
	}
}

// TestAChangedLimitKeepsWhatWasSpent: an edit of the limit hands out no fresh budget. The tokens
// left are kept (capped at a lower limit) and refill at the new rate, as in memory. The one
// difference: a bucket already full (so gone from the store) starts full at the new limit,
// as a bucket in memory does on a replica that had not seen the key.
func TestAChangedLimitKeepsWhatWasSpent(t *testing.T) {
	s, m := miniStore(t)
	const key = "clearance:ratelimit:change:general"
	hourly := func(n int64) float64 { return float64(n) / time.Hour.Seconds() }
	for range 40 {
		take(t, s, key, 50, hourly(50))
	}
	// Raised to 100: the 10 left stay 10, not 60 nor 100.
	if ok, tokens := take(t, s, key, 100, hourly(100)); !ok || tokens != 9 {
		t.Fatalf("raised to 100 with 10 left: allowed %v, %v left; want 9", ok, tokens)
	}
	// Lowered to 5: the 9 left become 5.
	if ok, tokens := take(t, s, key, 5, hourly(5)); !ok || tokens != 4 {
		t.Fatalf("lowered to 5 with 9 left: allowed %v, %v left; want 4", ok, tokens)
	}
	// A refused request under a changed limit records the change: the bucket refills at the
	// new rate from then on, as Limiter.SetLimitAt does.
	for range 4 {
		take(t, s, key, 5, hourly(5))
	}
	if ok, _ := take(t, s, key, 5, hourly(5)); ok {
		t.Fatal("a sixth request of 5 per hour was allowed")
	}
	if ok, tokens := take(t, s, key, 1, hourly(1)); ok || tokens != 0 {
		t.Fatalf("lowered to 1 with none left: allowed %v, %v left", ok, tokens)
	}
	m.SetTime(epoch.Add(30 * time.Minute)) // half a token of 1 per hour
	if ok, tokens := take(t, s, key, 1, hourly(1)); ok || tokens != 0.5 {
		t.Fatalf("30 minutes later at 1 per hour: allowed %v, %v left; want 0.5", ok, tokens)
	}

	// Full, so absent: a raised limit starts full.
	const full = "clearance:ratelimit:change:idle"
	take(t, s, full, 2, hourly(2))
	m.SetTime(epoch.Add(time.Hour))
	if ok, tokens := take(t, s, full, 10, hourly(10)); !ok || tokens != 9 {
		t.Fatalf("an idle full bucket raised to 10: allowed %v, %v left; want 9", ok, tokens)
	}
}

// TestOneRoundTripPerRequest: a request is one EVALSHA; only the first after the server lost
// its scripts (a restart) sends the script itself too.
func TestOneRoundTripPerRequest(t *testing.T) {
	s, m := miniStore(t)
	var cmds []string
	s.client.AddHook(recorder{&cmds})
	take(t, s, "k", 10, 1)
	take(t, s, "k", 10, 1)
	take(t, s, "k", 10, 1)
	if got := strings.Join(cmds, " "); got != "evalsha eval evalsha evalsha" {
		t.Fatalf("commands %q, want evalsha eval (loading the script) then one evalsha a request", got)
	}
	cmds = cmds[:0]
	m.FlushAll() // the server forgets scripts and buckets as a restart would
	if err := s.client.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	cmds = cmds[:0]
	take(t, s, "k", 10, 1)
	take(t, s, "k", 10, 1)
	if got := strings.Join(cmds, " "); got != "evalsha eval evalsha" {
		t.Fatalf("after a restart: commands %q", got)
	}
}

// recorder is a go-redis hook that records the names of the commands sent.
type recorder struct{ cmds *[]string }

func (recorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (r recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); strings.HasPrefix(n, "eval") { // not the connection's handshake
			*r.cmds = append(*r.cmds, n)
		}
		return next(ctx, cmd)
	}
}

// TestABadStoreURLIsRefusedWithoutItsPassword: each bad URL gets one sentence saying what is
// wrong and what is wanted, and never repeats the password.
func TestABadStoreURLIsRefusedWithoutItsPassword(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://:hunter2@redis:6379/0", `scheme "http" is not supported`},
		{"redis://:hunter2@redis:port/0", "not a URL"},
		{"redis://:hunter2@/0", "no host"},
		{"redis://:hunter2@redis:6379/db", "invalid database number"},
		{"redis://:hunter2@redis:6379/0?colour=blue", "unexpected option: colour"},
		{"redis:hunter2@redis", "no host"},
		{"", `scheme "" is not supported`},
	} {
		_, err := Open(tc.url, "")
		if err == nil {
			t.Errorf("%s: accepted", Redact(tc.url))
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "want redis://") || strings.Contains(msg, "hunter2") {
			t.Errorf("%s: %q; want %q, what is wanted, and no password", Redact(tc.url), msg, tc.want)
		}
	}
	for _, ok := range []string{"redis://127.0.0.1:6379/0", "rediss://user:pw@redis.example:6380/2", "redis://redis"} {
		if _, err := ParseURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if got := Redact("redis://clearance:hunter2@redis:6379/0"); strings.Contains(got, "hunter2") || got != "redis://clearance:xxxxx@redis:6379/0" {
		t.Errorf("Redact: %q", got)
	}
}

// TestThePasswordFromTheEnvironmentWins: Open's password replaces the URL's, so the URL in the
// chart's values carries none.
func TestThePasswordFromTheEnvironmentWins(t *testing.T) {
	m := miniredis.RunT(t)
	m.RequireAuth("s3cret")
	s, err := Open("redis://"+m.Addr()+"/0", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, _ := take(t, s, "k", 1, 1); !ok {
		t.Fatal("refused")
	}
	wrong, err := Open("redis://:nope@"+m.Addr()+"/0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if _, _, err := wrong.Take(context.Background(), "k", 1, 1); err == nil || strings.Contains(err.Error(), "nope") {
		t.Fatalf("a wrong password: %v", err)
	}
}

// TestTheScriptOnRealRedis runs the script in Debian's redis-server (Lua 5.1, not miniredis's
// gopher-lua): many clients at once spend exactly the limit, and the bucket expires.
func TestTheScriptOnRealRedis(t *testing.T) {
	if testenv.RedisServer() == "" {
		t.Skip("redis-server is not installed (apt-get install redis-server); miniredis covers the script's semantics")
	}
	r, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	s, err := Open(r.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const limit, clients, each = 50, 8, 25
	perSecond := float64(limit) / time.Hour.Seconds()
	var allowed atomic.Int64
	errs := make(chan error, clients)
	for range clients {
		go func() {
			for range each {
				ok, _, err := s.Take(context.Background(), "clearance:ratelimit:real:general", limit, perSecond)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					allowed.Add(1)
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := allowed.Load(); n != limit {
		t.Fatalf("%d of %d requests allowed, want exactly %d", n, clients*each, limit)
	}
	ok, tokens, err := s.Take(context.Background(), "clearance:ratelimit:real:general", limit, perSecond)
	if err != nil || ok || tokens < 0 || tokens >= 1 {
		t.Fatalf("after the burst: allowed %v, %v tokens, %v", ok, tokens, err)
	}
	ttl, err := s.client.PTTL(context.Background(), "clearance:ratelimit:real:general").Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("PTTL %s (%v), want just under an hour", ttl, err)
	}
}

// TestNoKeyGetsMoreThanItsBurstInOneInstant: however fast a limit refills (up to a million a
// second), requests at one instant are allowed exactly burst times, never more. A bucket a
// request left just short of full (its TTL one millisecond) is still the store's to count.
func TestNoKeyGetsMoreThanItsBurstInOneInstant(t *testing.T) {
	s, m := miniStore(t)
	rng := rand.New(rand.NewPCG(23, 9))
	fast := 0
	for i := range 300 {
		burst := 1 + rng.Int64N(20)
		perSecond := math.Pow(10, -3+9*rng.Float64()) // 0.001 to 1,000,000 a second
		if perSecond >= 1000 {
			fast++
		}
		m.SetTime(epoch.Add(time.Duration(i) * time.Hour))
		key := fmt.Sprintf("clearance:ratelimit:instant:%d", i)
		allowed := int64(0)
		for range burst + 5 {
			if ok, _ := take(t, s, key, burst, perSecond); ok {
				allowed++
			}
		}
		if allowed != burst {
			t.Fatalf("key %d (burst %d, %g a second): %d requests allowed in one instant, want %d", i, burst, perSecond, allowed, burst)
		}
	}
	if fast < 50 {
		t.Fatalf("only %d limits of 1,000 a second or more: the sequence tells too little", fast)
	}
}

// TestARaisedLimitNeverAddsToWhatTheBucketHeld: while a bucket is in the store, raising its
// burst keeps the tokens it held (refilled at most to the old burst), so the request under the
// new limit, if allowed, leaves at most old burst - 1. Generated: fast limits, partly spent, raised at a
// random instant of the bucket's life, often after it would have been full but before its
// TTL (rounded up to a millisecond) ran out.
func TestARaisedLimitNeverAddsToWhatTheBucketHeld(t *testing.T) {
	s, m := miniStore(t)
	rng := rand.New(rand.NewPCG(31, 5))
	overdue := 0 // raised after the bucket would have been full again, while still stored
	for i := range 300 {
		burst := 1 + rng.Int64N(20)
		perSecond := math.Pow(10, 2+4*rng.Float64()) // 100 to 1,000,000 a second
		start := epoch.Add(time.Duration(i) * time.Hour)
		m.SetTime(start)
		key := fmt.Sprintf("clearance:ratelimit:raise:%d", i)
		spent := 1 + rng.Int64N(burst)
		for range spent {
			take(t, s, key, burst, perSecond)
		}
		ttl := m.TTL(key)
		if ttl <= 0 {
			t.Fatalf("key %d: no TTL after %d of %d spent", i, spent, burst)
		}
		later := time.Duration(rng.Int64N(int64(ttl/time.Microsecond))) * time.Microsecond
		m.SetTime(start.Add(later))
		if !m.Exists(key) {
			continue
		}
		if later.Seconds()*perSecond > float64(spent) {
			overdue++
		}
		raised := burst + 1 + rng.Int64N(20)
		ok, tokens := take(t, s, key, raised, perSecond*(1+rng.Float64()))
		if ok && tokens > float64(burst-1) {
			t.Fatalf("key %d (burst %d raised to %d, %g a second, %d spent, raised after %s): allowed %v with %v left, want at most %d",
				i, burst, raised, perSecond, spent, later, ok, tokens, burst-1)
		}
	}
	if overdue < 30 {
		t.Fatalf("only %d raises after the bucket would have been full: the sequence tells too little", overdue)
	}
}

// TestAnEmptyPasswordKeepsTheURLs: Open replaces the URL's password only with a password that
// is not empty, so a store whose URL carries its password works with no environment variable.
func TestAnEmptyPasswordKeepsTheURLs(t *testing.T) {
	m := miniredis.RunT(t)
	m.RequireAuth("s3cret")
	s, err := Open("redis://:s3cret@"+m.Addr()+"/0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Take(context.Background(), "k", 1, 1); err != nil {
		t.Fatalf("the URL's password was not used: %v", err)
	}
}

// TestAnEditOfTheRateOrTheBurstAloneIsKeptByARefusedRequest: a limit whose period alone changed
// (5 a minute to 5 an hour), or whose count and period changed at the same rate (1 per 30
// minutes to 2 an hour), is recorded by the request it refuses, as Limiter.SetLimitAt and
// SetBurstAt do: the bucket refills at the new rate from then on, and lives until it would be
// full at the new burst. Left at the old rate, the first would allow a request 12 seconds
// later; the second would forget the bucket after 30 minutes and start it full. Either is more
// than the limit, and other answers than the verifier's in memory.
func TestAnEditOfTheRateOrTheBurstAloneIsKeptByARefusedRequest(t *testing.T) {
	s, m := miniStore(t)
	type limit struct {
		n      int64
		period time.Duration
	}
	for i, tc := range []struct {
		before, after limit
		spend         int           // requests at the old limit, all allowed
		later         time.Duration // when two more come at the new limit
	}{
		{before: limit{5, time.Minute}, after: limit{5, time.Hour}, spend: 5, later: 12 * time.Second},
		{before: limit{1, 30 * time.Minute}, after: limit{2, time.Hour}, spend: 1, later: 30 * time.Minute},
	} {
		key := fmt.Sprintf("clearance:ratelimit:edit:%d", i)
		start := epoch.Add(time.Duration(i) * 24 * time.Hour)
		mem := memBucket{forgetFull: true}
		ask := func(now time.Time, l limit) {
			t.Helper()
			m.SetTime(now)
			perSecond := float64(l.n) / l.period.Seconds()
			wantOK, wantTokens := mem.take(now, l.n, perSecond)
			gotOK, gotTokens := take(t, s, key, l.n, perSecond)
			if gotOK != wantOK || gotTokens != wantTokens {
				t.Fatalf("%d per %s, then %d per %s: at +%s store allowed %v with %v tokens left, memory %v with %v",
					tc.before.n, tc.before.period, l.n, l.period, now.Sub(start), gotOK, gotTokens, wantOK, wantTokens)
			}
		}
		for range tc.spend {
			ask(start, tc.before)
		}
		ask(start, tc.after) // refused, and the edit recorded
		ask(start.Add(tc.later), tc.after)
		ask(start.Add(tc.later), tc.after)
	}
}

// TestARequestLessThanANanosecondsRefillShortOfATokenIsAllowed: at 999,500 a second, a
// microsecond after the only token was spent the bucket holds 0.9995 of one, half a
// nanosecond's refill short: Limiter.AllowN allows it (the wait rounds down to no wait), and so
// does the store, so the headers are the same with the store as without it.
func TestARequestLessThanANanosecondsRefillShortOfATokenIsAllowed(t *testing.T) {
	s, m := miniStore(t)
	const key = "clearance:ratelimit:nanosecond"
	const perSecond = 999_500
	mem := memBucket{forgetFull: true}
	for _, now := range []time.Time{epoch, epoch.Add(time.Microsecond)} {
		m.SetTime(now)
		wantOK, wantTokens := mem.take(now, 1, perSecond)
		gotOK, gotTokens := take(t, s, key, 1, perSecond)
		if !wantOK || gotOK != wantOK || gotTokens != wantTokens {
			t.Fatalf("at +%s: store allowed %v with %v tokens left, memory %v with %v", now.Sub(epoch), gotOK, gotTokens, wantOK, wantTokens)
		}
	}
}

// TestAStoreThatNeverAnswersCostsTheCallersDeadline: a server that takes the connection and
// never answers (a hung Redis, a dropped network path) holds Take for its context's deadline,
// the verifier's --rate-limit-store-timeout, not for the Redis client's own read timeout of
// seconds: the request is then limited in memory at once.
func TestAStoreThatNeverAnswersCostsTheCallersDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn // taken and never answered
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, conn := range held {
			_ = conn.Close()
		}
	})
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
		}
	}()
	s, err := Open("redis://"+l.Addr().String()+"/0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = s.Take(ctx, "k", 10, 1)
	took := time.Since(start)
	if err == nil {
		t.Fatal("a store that never answered allowed the request")
	}
	// Without the context's deadline on the connection, the client waits out its own timeouts
	// (5 s here); half of that is fifty times the 50 ms asked, room for a loaded machine. No
	// error tells the two apart: both are context.DeadlineExceeded.
	if took >= 2500*time.Millisecond {
		t.Fatalf("Take waited %s for a store that never answers, given 50ms: %v", took, err)
	}
}

// TestTheStoreIsNamedWithoutItsPassword: the store's name in the verifier's log, and the
// redaction of a URL that does not even parse, never repeat the password.
func TestTheStoreIsNamedWithoutItsPassword(t *testing.T) {
	s, err := Open("redis://clearance:hunter2@redis:6379/0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.String(); strings.Contains(got, "hunter2") || got != "redis://clearance:xxxxx@redis:6379/0" {
		t.Errorf("the store is named %q", got)
	}
	if got := Redact("redis://:hunter2@redis:port/0"); strings.Contains(got, "hunter2") {
		t.Errorf("Redact of a URL that does not parse: %q", got)
	}
}
