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
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// AuthRequest is an authorization request awaiting the org admin's consent.
type AuthRequest struct {
	ID            string
	ClientID      string
	RedirectURI   string
	State         string
	Nonce         string
	CodeChallenge string // S256, the only method accepted
	Scopes        []string
	CreatedAt     time.Time
}

// CodeRecord is what an authorization code redeems: the request it answers, the grant
// consented, and the refresh family its redemption creates.
type CodeRecord struct {
	Request  AuthRequest
	Grant    Grant
	FamilyID string
	IssuedAt time.Time
}

// Family is a refresh token family: one record per grant, never one per token. Its tokens
// are derived (HMAC of the family ID and a generation), so the record holds no secret.
type Family struct {
	ID         string
	ClientID   string
	Grant      Grant
	Scopes     []string
	Generation uint64    // the current token's generation
	RotatedAt  time.Time // when the current generation was issued
	CreatedAt  time.Time // when the consent's code was exchanged: the family ends RefreshMaxLifetime later
}

// Store errors.
var (
	// ErrNotFound: no such record, or it expired, or (for families) it was revoked.
	ErrNotFound = errors.New("oauth: not found")
	// ErrExists: CreateFamily found the ID taken or revoked.
	ErrExists = errors.New("oauth: already exists")
	// ErrConflict: RotateFamily found the family at another generation.
	ErrConflict = errors.New("oauth: generation changed")
	// ErrRedeemed: RedeemCode found only the tombstone of an earlier redemption.
	ErrRedeemed = errors.New("oauth: code already redeemed")
)

// Store keeps authorization requests, codes and refresh families, shared by every replica.
// Each method is one atomic step, written so a Redis store maps it to one command or script
// (keys req:<id>, code:<hash>, redeemed:<hash>, fam:<id>; TTLs as EX).
type Store interface {
	// SaveRequest stores r until ttl passes (SET req:<id> EX).
	SaveRequest(ctx context.Context, r AuthRequest, ttl time.Duration) error
	// Request reads a request (GET).
	Request(ctx context.Context, id string) (AuthRequest, error)
	// TakeRequest reads and deletes a request: of concurrent callers one gets it (GETDEL).
	TakeRequest(ctx context.Context, id string) (AuthRequest, error)
	// SaveCode stores rec under the code's hash until ttl passes (SET code:<hash> EX).
	SaveCode(ctx context.Context, codeHash string, rec CodeRecord, ttl time.Duration) error
	// RedeemCode reads and deletes a code and leaves a tombstone naming its family and grant for
	// tombstoneTTL (GETDEL and SET redeemed:<hash>, one script). A code already redeemed yields
	// ErrRedeemed with the record's FamilyID and Grant set, so its family can be revoked and the
	// org that granted told.
	RedeemCode(ctx context.Context, codeHash string, tombstoneTTL time.Duration) (CodeRecord, error)
	// CreateFamily stores f unless its ID is taken or revoked (SET NX EX).
	CreateFamily(ctx context.Context, f Family, ttl time.Duration) error
	// Family reads a family; ErrNotFound when absent, expired or revoked.
	Family(ctx context.Context, id string) (Family, error)
	// RotateFamily moves the family from generation from to from+1 issued at now, only if it
	// is still at from (compare-and-set), and extends its life to ttl; ErrConflict otherwise.
	RotateFamily(ctx context.Context, id string, from uint64, now time.Time, ttl time.Duration) (Family, error)
	// RevokeFamily deletes the family and keeps its ID revoked for ttl.
	RevokeFamily(ctx context.Context, id string, ttl time.Duration) error
}

type expiring[T any] struct {
	v   T
	exp time.Time
}

type famEntry struct {
	f       Family
	revoked bool
}

// MemoryStore is a Store in one process's memory, for one replica and for tests.
type MemoryStore struct {
	clock     clock.PassiveClock
	mu        sync.Mutex
	reqs      map[string]expiring[AuthRequest]
	codes     map[string]expiring[CodeRecord]
	redeemed  map[string]expiring[CodeRecord] // FamilyID and Grant only
	families  map[string]expiring[famEntry]
	lastSweep time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore whose TTLs follow c.
func NewMemoryStore(c clock.PassiveClock) *MemoryStore {
	return &MemoryStore{clock: c, reqs: map[string]expiring[AuthRequest]{}, codes: map[string]expiring[CodeRecord]{},
		redeemed: map[string]expiring[CodeRecord]{}, families: map[string]expiring[famEntry]{}}
}

// get returns m[k] unless it expired (then deletes it).
func get[T any](m map[string]expiring[T], k string, now time.Time) (T, bool) {
	e, ok := m[k]
	if ok && !now.Before(e.exp) {
		delete(m, k)
		ok = false
	}
	return e.v, ok
}

func sweep[T any](m map[string]expiring[T], now time.Time) {
	for k, e := range m {
		if !now.Before(e.exp) {
			delete(m, k)
		}
	}
}

// lock takes the mutex and, at most once a minute, drops expired records.
func (s *MemoryStore) lock() time.Time {
	s.mu.Lock()
	now := s.clock.Now()
	if now.Sub(s.lastSweep) >= time.Minute {
		sweep(s.reqs, now)
		sweep(s.codes, now)
		sweep(s.redeemed, now)
		sweep(s.families, now)
		s.lastSweep = now
	}
	return now
}

// MaxPendingRequests bounds the authorization requests a MemoryStore keeps awaiting consent:
// anyone may start one. Past it the oldest is forgotten (its browser must start again), so a
// flood of /oauth2/authorize holds at most this many requests of at most MaxAuthorizeRequest
// each (about 80 MiB), never more.
const MaxPendingRequests = 10_000

// SaveRequest implements Store. When MaxPendingRequests are kept, it first forgets the expired
// and, if none is, the oldest.
func (s *MemoryStore) SaveRequest(_ context.Context, r AuthRequest, ttl time.Duration) error {
	now := s.lock()
	defer s.mu.Unlock()
	if _, ok := s.reqs[r.ID]; !ok && len(s.reqs) >= MaxPendingRequests {
		oldest, first := "", true
		for k, e := range s.reqs {
			if !now.Before(e.exp) {
				delete(s.reqs, k)
			} else if first || e.exp.Before(s.reqs[oldest].exp) {
				oldest, first = k, false
			}
		}
		if len(s.reqs) >= MaxPendingRequests {
			delete(s.reqs, oldest)
		}
	}
	s.reqs[r.ID] = expiring[AuthRequest]{r, now.Add(ttl)}
	return nil
}

// Request implements Store.
func (s *MemoryStore) Request(_ context.Context, id string) (AuthRequest, error) {
	now := s.lock()
	defer s.mu.Unlock()
	r, ok := get(s.reqs, id, now)
	if !ok {
		return AuthRequest{}, ErrNotFound
	}
	return r, nil
}

// TakeRequest implements Store.
func (s *MemoryStore) TakeRequest(_ context.Context, id string) (AuthRequest, error) {
	now := s.lock()
	defer s.mu.Unlock()
	r, ok := get(s.reqs, id, now)
	if !ok {
		return AuthRequest{}, ErrNotFound
	}
	delete(s.reqs, id)
	return r, nil
}

// SaveCode implements Store.
func (s *MemoryStore) SaveCode(_ context.Context, codeHash string, rec CodeRecord, ttl time.Duration) error {
	now := s.lock()
	defer s.mu.Unlock()
	s.codes[codeHash] = expiring[CodeRecord]{rec, now.Add(ttl)}
	return nil
}

// RedeemCode implements Store.
func (s *MemoryStore) RedeemCode(_ context.Context, codeHash string, tombstoneTTL time.Duration) (CodeRecord, error) {
	now := s.lock()
	defer s.mu.Unlock()
	if rec, ok := get(s.codes, codeHash, now); ok {
		delete(s.codes, codeHash)
		s.redeemed[codeHash] = expiring[CodeRecord]{CodeRecord{FamilyID: rec.FamilyID, Grant: rec.Grant}, now.Add(tombstoneTTL)}
		return rec, nil
	}
	if t, ok := get(s.redeemed, codeHash, now); ok {
		return t, ErrRedeemed
	}
	return CodeRecord{}, ErrNotFound
}

// CreateFamily implements Store.
func (s *MemoryStore) CreateFamily(_ context.Context, f Family, ttl time.Duration) error {
	now := s.lock()
	defer s.mu.Unlock()
	if _, ok := get(s.families, f.ID, now); ok {
		return ErrExists
	}
	s.families[f.ID] = expiring[famEntry]{famEntry{f: f}, now.Add(ttl)}
	return nil
}

// Family implements Store.
func (s *MemoryStore) Family(_ context.Context, id string) (Family, error) {
	now := s.lock()
	defer s.mu.Unlock()
	e, ok := get(s.families, id, now)
	if !ok || e.revoked {
		return Family{}, ErrNotFound
	}
	return e.f, nil
}

// RotateFamily implements Store.
func (s *MemoryStore) RotateFamily(_ context.Context, id string, from uint64, at time.Time, ttl time.Duration) (Family, error) {
	now := s.lock()
	defer s.mu.Unlock()
	e, ok := get(s.families, id, now)
	if !ok || e.revoked {
		return Family{}, ErrNotFound
	}
	if e.f.Generation != from {
		return Family{}, ErrConflict
	}
	e.f.Generation, e.f.RotatedAt = from+1, at
	s.families[id] = expiring[famEntry]{e, now.Add(ttl)}
	return e.f, nil
}

// RevokeFamily implements Store.
func (s *MemoryStore) RevokeFamily(_ context.Context, id string, ttl time.Duration) error {
	now := s.lock()
	defer s.mu.Unlock()
	s.families[id] = expiring[famEntry]{famEntry{f: Family{ID: id}, revoked: true}, now.Add(ttl)}
	return nil
}
