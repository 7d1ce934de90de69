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
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// shardCount spreads readers over independent locks; a power of two so the shard is a mask.
const shardCount = 64

// shardedMap is the index's concurrency scheme: a map split into shards, each behind its own
// RWMutex held only for the map access itself (never while building an entry). Values are
// immutable once published: writers build a new value and swap the pointer in, so a reader
// that got a value keeps using it without a lock. Unlike a copy-on-write snapshot of the whole
// index, a write costs O(1) rather than O(keys), which matters at 100,000 keys when informers
// replay the initial list.
type shardedMap[K comparable, V any] struct {
	hash   func(maphash.Seed, K) uint64
	seed   maphash.Seed
	size   atomic.Int64
	shards [shardCount]mapShard[K, V]
}

type mapShard[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
	// keeps neighbouring shards' locks off one cache line.
	_ [32]byte
}

func newShardedMap[K comparable, V any](hash func(maphash.Seed, K) uint64) *shardedMap[K, V] {
	s := &shardedMap[K, V]{hash: hash, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = map[K]V{}
	}
	return s
}

func (s *shardedMap[K, V]) shard(k K) *mapShard[K, V] {
	return &s.shards[s.hash(s.seed, k)&(shardCount-1)]
}

func (s *shardedMap[K, V]) get(k K) (V, bool) {
	sh := s.shard(k)
	sh.mu.RLock()
	v, ok := sh.m[k]
	sh.mu.RUnlock()
	return v, ok
}

func (s *shardedMap[K, V]) set(k K, v V) {
	sh := s.shard(k)
	sh.mu.Lock()
	if _, had := sh.m[k]; !had {
		s.size.Add(1)
	}
	sh.m[k] = v
	sh.mu.Unlock()
}

func (s *shardedMap[K, V]) delete(k K) {
	sh := s.shard(k)
	sh.mu.Lock()
	if _, had := sh.m[k]; had {
		s.size.Add(-1)
		delete(sh.m, k)
	}
	sh.mu.Unlock()
}

func (s *shardedMap[K, V]) len() int { return int(s.size.Load()) }

// Hash functions for the index's key types.

func hashString(seed maphash.Seed, s string) uint64 { return maphash.String(seed, s) }

func hashKeyID(seed maphash.Seed, k keyIDBytes) uint64 { return maphash.Bytes(seed, k[:]) }

// nsName names a namespaced object without allocating a joined string.
type nsName struct{ namespace, name string }

func hashNsName(seed maphash.Seed, k nsName) uint64 {
	return maphash.String(seed, k.namespace)*31 + maphash.String(seed, k.name)
}

// connKey finds the connections an org granted to one Application ID.
type connKey struct{ org, applicationID string }

func hashConnKey(seed maphash.Seed, k connKey) uint64 {
	return maphash.String(seed, k.org)*31 + maphash.String(seed, k.applicationID)
}
