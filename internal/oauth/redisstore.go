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
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is a Store in Redis (or Valkey), shared by every verifier replica. Records are
// JSON under <prefix>req:<id> (with <prefix>reqs and <prefix>reqs:n bounding how many),
// <prefix>code:<hash>, <prefix>redeemed:<hash> and <prefix>fam:<id>; TTLs are the server's (PX), so they follow its clock, not the Handler's.
type RedisStore struct {
	client *redis.Client
	prefix string
	// maxPending bounds the authorization requests kept awaiting consent (MaxPendingRequests).
	maxPending int
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore keeps records in client's database under keys starting with prefix.
func NewRedisStore(client *redis.Client, prefix string) *RedisStore {
	return &RedisStore{client: client, prefix: prefix, maxPending: MaxPendingRequests}
}

// revoked is a family's value once revoked: it keeps CreateFamily from reusing the ID.
const revoked = "revoked"

// redeemScript moves a code to its tombstone: {1, record} the first time, {2, record} after.
var redeemScript = redis.NewScript(`
local v = redis.call('GETDEL', KEYS[1])
if v then
  redis.call('SET', KEYS[2], v, 'PX', ARGV[1])
  return {1, v}
end
local t = redis.call('GET', KEYS[2])
if t then return {2, t} end
return {0, ''}
`)

func (s *RedisStore) set(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.client.Set(ctx, s.prefix+key, b, ttl).Err()
}

// read decodes the reply of a GET-like command into v.
func read(cmd *redis.StringCmd, v any) error {
	b, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// SaveRequest implements Store.
// Anyone may start an authorization request, so as in a MemoryStore at most maxPending are
// kept: the IDs in order of arrival are a sorted set beside them (<prefix>reqs, scored by the
// counter <prefix>reqs:n), and past the bound the oldest go, expired or not (an expired
// request is older than every live one: they all live RequestTTL).
func (s *RedisStore) SaveRequest(ctx context.Context, r AuthRequest, ttl time.Duration) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return saveRequestScript.Run(ctx, s.client, []string{s.prefix + "req:" + r.ID, s.prefix + "reqs", s.prefix + "reqs:n"},
		r.ID, b, ttl.Milliseconds(), s.maxPending, s.prefix+"req:").Err()
}

// saveRequestScript keeps a request and forgets the oldest past the bound (KEYS: the request,
// the set of IDs, its counter; ARGV: ID, record, TTL in ms, bound, the requests' key prefix).
// The keys it forgets are built from the prefix: a single Redis, as RedisStore's client is.
var saveRequestScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
while redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[4]) do
  local oldest = redis.call('ZPOPMIN', KEYS[2])
  redis.call('DEL', ARGV[5] .. oldest[1])
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
`)

// Request implements Store.
func (s *RedisStore) Request(ctx context.Context, id string) (r AuthRequest, err error) {
	return r, read(s.client.Get(ctx, s.prefix+"req:"+id), &r)
}

// TakeRequest implements Store.
func (s *RedisStore) TakeRequest(ctx context.Context, id string) (r AuthRequest, err error) {
	return r, read(s.client.GetDel(ctx, s.prefix+"req:"+id), &r)
}

// SaveCode implements Store.
func (s *RedisStore) SaveCode(ctx context.Context, codeHash string, rec CodeRecord, ttl time.Duration) error {
	return s.set(ctx, "code:"+codeHash, rec, ttl)
}

// RedeemCode implements Store.
func (s *RedisStore) RedeemCode(ctx context.Context, codeHash string, tombstoneTTL time.Duration) (CodeRecord, error) {
	keys := []string{s.prefix + "code:" + codeHash, s.prefix + "redeemed:" + codeHash}
	res, err := redeemScript.Run(ctx, s.client, keys, tombstoneTTL.Milliseconds()).Slice()
	if err != nil {
		return CodeRecord{}, err
	}
	state, _ := res[0].(int64)
	v, _ := res[1].(string)
	var rec CodeRecord
	if state == 0 {
		return rec, ErrNotFound
	}
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		return CodeRecord{}, err
	}
	if state == 2 {
		return CodeRecord{FamilyID: rec.FamilyID, Grant: rec.Grant}, ErrRedeemed
	}
	return rec, nil
}

// CreateFamily implements Store.
func (s *RedisStore) CreateFamily(ctx context.Context, f Family, ttl time.Duration) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ok, err := s.client.SetNX(ctx, s.prefix+"fam:"+f.ID, b, ttl).Result()
	if err == nil && !ok {
		return ErrExists
	}
	return err
}

// Family implements Store.
func (s *RedisStore) Family(ctx context.Context, id string) (Family, error) {
	return s.family(ctx, s.client, id)
}

func (s *RedisStore) family(ctx context.Context, c redis.Cmdable, id string) (Family, error) {
	cmd := c.Get(ctx, s.prefix+"fam:"+id)
	if cmd.Val() == revoked {
		return Family{}, ErrNotFound
	}
	var f Family
	return f, read(cmd, &f)
}

// RotateFamily implements Store: WATCH, check the generation, then MULTI/EXEC.
func (s *RedisStore) RotateFamily(ctx context.Context, id string, from uint64, now time.Time, ttl time.Duration) (Family, error) {
	key := s.prefix + "fam:" + id
	var out Family
	err := s.client.Watch(ctx, func(tx *redis.Tx) error {
		f, err := s.family(ctx, tx, id)
		if err != nil {
			return err
		}
		if f.Generation != from {
			return ErrConflict
		}
		f.Generation, f.RotatedAt = from+1, now
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			return p.Set(ctx, key, b, ttl).Err()
		})
		out = f
		return err
	}, key)
	if errors.Is(err, redis.TxFailedErr) {
		return Family{}, ErrConflict
	}
	return out, err
}

// RevokeFamily implements Store.
func (s *RedisStore) RevokeFamily(ctx context.Context, id string, ttl time.Duration) error {
	return s.client.Set(ctx, s.prefix+"fam:"+id, revoked, ttl).Err()
}
