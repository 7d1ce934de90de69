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

package oauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	clocktesting "k8s.io/utils/clock/testing"
)

// redisStore is a RedisStore on a miniredis whose TTLs follow clk.
func redisStore(t *testing.T, clk *clocktesting.FakeClock) (*RedisStore, *miniredis.Miniredis) {
	t.Helper()
	m := miniredis.RunT(t)
	m.SetTime(clk.Now())
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return NewRedisStore(c, "oauth:"), m
}

// storeCase is one store under the contract, with a way to let time pass for its TTLs.
type storeCase struct {
	name  string
	store Store
	step  func(time.Duration)
}

func stores(t *testing.T) []storeCase {
	mclk := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC))
	rclk := clocktesting.NewFakeClock(mclk.Now())
	rs, m := redisStore(t, rclk)
	return []storeCase{
		{"memory", NewMemoryStore(mclk), mclk.Step},
		{"redis", rs, m.FastForward},
	}
}

func TestStoresAnswerARequestOnce(t *testing.T) {
	ctx := context.Background()
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			r := AuthRequest{ID: "r1", ClientID: confID, Scopes: []string{"openid"}}
			if err := s.store.SaveRequest(ctx, r, time.Minute); err != nil {
				t.Fatal(err)
			}
			if got, err := s.store.Request(ctx, "r1"); err != nil || got.ClientID != confID {
				t.Fatalf("Request: %+v %v", got, err)
			}
			if _, err := s.store.TakeRequest(ctx, "r1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.store.TakeRequest(ctx, "r1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second TakeRequest: %v, want ErrNotFound", err)
			}
			_ = s.store.SaveRequest(ctx, AuthRequest{ID: "r2"}, time.Minute)
			s.step(time.Minute + time.Second)
			if _, err := s.store.Request(ctx, "r2"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("expired Request: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestStoresRedeemACodeOnceAndRememberItsFamily(t *testing.T) {
	ctx := context.Background()
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			if err := s.store.SaveCode(ctx, "h", CodeRecord{FamilyID: "f1", Grant: Grant{Org: "o"}}, time.Minute); err != nil {
				t.Fatal(err)
			}
			if rec, err := s.store.RedeemCode(ctx, "h", time.Minute); err != nil || rec.Grant.Org != "o" {
				t.Fatalf("RedeemCode: %+v %v", rec, err)
			}
			if rec, err := s.store.RedeemCode(ctx, "h", time.Minute); !errors.Is(err, ErrRedeemed) || rec.FamilyID != "f1" || rec.Grant.Org != "o" {
				t.Fatalf("second RedeemCode: %+v %v, want ErrRedeemed naming f1 and its grant", rec, err)
			}
			if _, err := s.store.RedeemCode(ctx, "nope", time.Minute); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown code: %v", err)
			}
		})
	}
}

func TestStoresRotateFamiliesByCompareAndSetAndKeepRevokedIDs(t *testing.T) {
	ctx := context.Background()
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			now := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
			f := Family{ID: "f1", ClientID: confID, Scopes: []string{"openid"}}
			if err := s.store.CreateFamily(ctx, f, time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := s.store.CreateFamily(ctx, f, time.Hour); !errors.Is(err, ErrExists) {
				t.Fatalf("second CreateFamily: %v", err)
			}
			got, err := s.store.RotateFamily(ctx, "f1", 0, now, time.Hour)
			if err != nil || got.Generation != 1 || !got.RotatedAt.Equal(now) {
				t.Fatalf("RotateFamily: %+v %v", got, err)
			}
			if _, err := s.store.RotateFamily(ctx, "f1", 0, now, time.Hour); !errors.Is(err, ErrConflict) {
				t.Fatalf("stale RotateFamily: %v, want ErrConflict", err)
			}
			if err := s.store.RevokeFamily(ctx, "f1", time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, err := s.store.Family(ctx, "f1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("revoked Family: %v", err)
			}
			if _, err := s.store.RotateFamily(ctx, "f1", 1, now, time.Hour); !errors.Is(err, ErrNotFound) {
				t.Fatalf("RotateFamily of a revoked family: %v", err)
			}
			if err := s.store.CreateFamily(ctx, f, time.Hour); !errors.Is(err, ErrExists) {
				t.Fatalf("CreateFamily over a revocation: %v", err)
			}
		})
	}
}

func TestOnRedisConcurrentRefreshesGetOneNextTokenAndAReusedCodeRevokes(t *testing.T) {
	var rs *RedisStore
	e := newEnv(t, func(c *Config) {
		rs, _ = redisStore(t, c.Clock.(*clocktesting.FakeClock))
		c.Store = rs
	})
	e.wantOneNextToken(e.firstRefreshToken())
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	tok, err := e.exchange(c, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.exchange(c, code, verifier)
	wantOAuthError(t, err, "invalid_grant")
	e.wantRefreshRefused(tok.RefreshToken, "after code reuse")
}

// TestMemoryStoreKeepsAtMostMaxPendingRequests: anyone may start an authorization request, so
// the requests awaiting consent are bounded; past the bound the oldest is forgotten (its admin
// starts again), and the newest are kept.
func TestMemoryStoreKeepsAtMostMaxPendingRequests(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC))
	s := NewMemoryStore(clk)
	for i := range MaxPendingRequests + 100 {
		if err := s.SaveRequest(ctx, AuthRequest{ID: fmt.Sprint("r", i)}, DefaultRequestTTL); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			clk.Step(time.Millisecond)
		}
	}
	s.mu.Lock()
	n := len(s.reqs)
	s.mu.Unlock()
	if n > MaxPendingRequests {
		t.Fatalf("%d requests kept, want at most %d", n, MaxPendingRequests)
	}
	if _, err := s.Request(ctx, "r0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the oldest request: %v, want it forgotten", err)
	}
	if _, err := s.Request(ctx, fmt.Sprint("r", MaxPendingRequests+99)); err != nil {
		t.Fatalf("the newest request: %v", err)
	}
}

// TestRedisStoreKeepsAtMostMaxPendingRequests: the shared store bounds the requests awaiting
// consent as the memory store does, whatever the replicas: past the bound the oldest go, the
// newest are kept, and the bookkeeping itself stays bounded.
func TestRedisStoreKeepsAtMostMaxPendingRequests(t *testing.T) {
	ctx := context.Background()
	rs, m := redisStore(t, clocktesting.NewFakeClock(time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)))
	rs.maxPending = 50
	if NewRedisStore(nil, "x").maxPending != MaxPendingRequests {
		t.Fatalf("a RedisStore keeps %d requests, want MaxPendingRequests", NewRedisStore(nil, "x").maxPending)
	}
	for i := range 130 {
		if err := rs.SaveRequest(ctx, AuthRequest{ID: fmt.Sprint("r", i)}, DefaultRequestTTL); err != nil {
			t.Fatal(err)
		}
	}
	kept := 0
	for _, k := range m.Keys() {
		if strings.HasPrefix(k, "oauth:req:") {
			kept++
		}
	}
	if kept != 50 {
		t.Errorf("%d requests kept, want 50", kept)
	}
	if _, err := rs.Request(ctx, "r79"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the 80th newest request: %v, want it forgotten", err)
	}
	if _, err := rs.Request(ctx, "r80"); err != nil {
		t.Errorf("the 50th newest request: %v", err)
	}
	if n, _ := m.ZMembers("oauth:reqs"); len(n) != 50 {
		t.Errorf("the set of request IDs holds %d, want 50", len(n))
	}
	// Expired requests are forgotten by their TTL, and their IDs go first once the bound is met.
	m.FastForward(DefaultRequestTTL + time.Second)
	for i := range 3 {
		if err := rs.SaveRequest(ctx, AuthRequest{ID: fmt.Sprint("later", i)}, DefaultRequestTTL); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rs.Request(ctx, "later0"); err != nil {
		t.Errorf("a request after the others expired: %v", err)
	}
}

// TestStoresForgetARecordTheInstantItsTTLPasses: a request, a code and a refresh family are
// gone once their TTL has passed, not at some later sweep: a request past RequestTTL is never
// answered, a family idle past RefreshTTL never rotates.
func TestStoresForgetARecordTheInstantItsTTLPasses(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			for i, ttl := range []time.Duration{time.Second, 20 * time.Second, 59 * time.Second} {
				id := fmt.Sprint("r", i)
				if err := s.store.SaveRequest(ctx, AuthRequest{ID: id}, ttl); err != nil {
					t.Fatal(err)
				}
				if err := s.store.SaveCode(ctx, id, CodeRecord{FamilyID: id}, ttl); err != nil {
					t.Fatal(err)
				}
				if err := s.store.CreateFamily(ctx, Family{ID: id}, ttl); err != nil {
					t.Fatal(err)
				}
				s.step(ttl - time.Millisecond)
				if _, err := s.store.Request(ctx, id); err != nil {
					t.Fatalf("a request just before its TTL %v: %v", ttl, err)
				}
				s.step(time.Millisecond)
				if _, err := s.store.Request(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("a request at its TTL %v: %v, want ErrNotFound", ttl, err)
				}
				if _, err := s.store.TakeRequest(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("taking a request at its TTL %v: %v, want ErrNotFound", ttl, err)
				}
				if _, err := s.store.RedeemCode(ctx, id, time.Hour); !errors.Is(err, ErrNotFound) {
					t.Errorf("a code at its TTL %v: %v, want ErrNotFound", ttl, err)
				}
				if _, err := s.store.Family(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("a family at its TTL %v: %v, want ErrNotFound", ttl, err)
				}
				if _, err := s.store.RotateFamily(ctx, id, 0, now, time.Hour); !errors.Is(err, ErrNotFound) {
					t.Errorf("rotating a family at its TTL %v: %v, want ErrNotFound", ttl, err)
				}
			}
		})
	}
}

// afterGet is a go-redis hook that runs do, once, right after a GET of key has answered.
type afterGet struct {
	key  string
	do   func()
	once sync.Once
}

func (h *afterGet) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *afterGet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *afterGet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if a := cmd.Args(); cmd.Name() == "get" && len(a) == 2 && a[1] == h.key {
			h.once.Do(h.do)
		}
		return err
	}
}

// TestOnRedisARevocationDuringARotationIsNeverUndone: another replica revokes a family (a
// reused token) between this replica's read of it and its write of the next generation; the
// rotation fails and the family stays revoked, never revived by the late write.
func TestOnRedisARevocationDuringARotationIsNeverUndone(t *testing.T) {
	ctx := context.Background()
	rs, m := redisStore(t, clocktesting.NewFakeClock(time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)))
	other := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = other.Close() })
	replica2 := NewRedisStore(other, "oauth:")
	if err := rs.CreateFamily(ctx, Family{ID: "f1", ClientID: confID}, time.Hour); err != nil {
		t.Fatal(err)
	}
	var revokeErr error
	rs.client.AddHook(&afterGet{key: "oauth:fam:f1", do: func() { revokeErr = replica2.RevokeFamily(ctx, "f1", time.Hour) }})
	if f, err := rs.RotateFamily(ctx, "f1", 0, time.Now(), time.Hour); err == nil {
		t.Errorf("a rotation across a revocation succeeded at generation %d", f.Generation)
	}
	if revokeErr != nil {
		t.Fatal(revokeErr)
	}
	if _, err := rs.Family(ctx, "f1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the revoked family after the rotation: %v, want ErrNotFound (revoked)", err)
	}
}

// TestStoresKeepAFamilyAliveForItsTTLFromItsLastRotation: a rotation renews a family's life
// (RefreshTTL is how long it may go unused), in memory and in Redis alike.
func TestStoresKeepAFamilyAliveForItsTTLFromItsLastRotation(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	for _, s := range stores(t) {
		t.Run(s.name, func(t *testing.T) {
			if err := s.store.CreateFamily(ctx, Family{ID: "f1"}, time.Hour); err != nil {
				t.Fatal(err)
			}
			s.step(50 * time.Minute)
			if _, err := s.store.RotateFamily(ctx, "f1", 0, now, time.Hour); err != nil {
				t.Fatal(err)
			}
			s.step(time.Hour - time.Millisecond)
			if f, err := s.store.Family(ctx, "f1"); err != nil || f.Generation != 1 {
				t.Fatalf("a family just under its TTL after its rotation: %+v %v", f, err)
			}
			s.step(time.Millisecond)
			if _, err := s.store.Family(ctx, "f1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a family its TTL after its rotation: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestTheSharedStoreNeverHoldsACodeOrAToken: whoever reads the shared store (a dump, a
// replica's credentials) finds nothing to redeem: codes are kept by their hash, refresh tokens
// not at all (one record per family), access tokens and PKCE verifiers never reach it.
func TestTheSharedStoreNeverHoldsACodeOrAToken(t *testing.T) {
	var m *miniredis.Miniredis
	e := newEnv(t, func(c *Config) {
		var rs *RedisStore
		rs, m = redisStore(t, c.Clock.(*clocktesting.FakeClock))
		c.Store = rs
	})
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	var secrets []string
	dump := func() string {
		var b strings.Builder
		for _, k := range m.Keys() {
			b.WriteString(k + "\n")
			if m.Exists(k) && m.Type(k) == "string" {
				v, _ := m.Get(k)
				b.WriteString(v + "\n")
			}
		}
		return b.String()
	}
	secrets = append(secrets, code, verifier)
	before := dump()
	tok, err := e.exchange(c, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	next := e.mustRefresh(tok.RefreshToken)
	secrets = append(secrets, tok.AccessToken, tok.RefreshToken, next)
	for _, rt := range []string{tok.RefreshToken, next} {
		secrets = append(secrets, rt[strings.LastIndexByte(rt, '.')+1:]) // the mac alone
	}
	for i, s := range secrets {
		for when, d := range map[string]string{"before the exchange": before, "after the refresh": dump()} {
			if strings.Contains(d, s) {
				t.Errorf("the store holds secret #%d %s", i, when)
			}
		}
	}
}
