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

// keyTable is the index's map of key ids to keyRows, sharded as shardedMap is, but its map
// holds only a row number and the rows live in a slab: a Go map's slot is as large as its key
// and value together and at best 7/8 of slots are used (after a table splits, half), so a map
// of rows cost 115–185 bytes a key and a map of row numbers costs 24–38, beside 44 in the slab.
// A row is written under its key id's shard lock and read under it, so a reader sees a row
// whole and never one reused for another key id. The end of a rotated-out key's overlap, which
// few keys have, is kept beside the map.
type keyTable struct {
	seed   maphash.Seed
	size   atomic.Int64
	shards [shardCount]keyShard
	rows   slab[storedRow]

	rowNums numbers
}

type keyShard struct {
	mu    sync.RWMutex
	rows  map[keyIDBytes]uint32  // key id → its row in keyTable.rows
	until map[keyIDBytes]instant // rotated-out keys: the end of their overlap
	// keeps neighbouring shards' locks off one cache line.
	_ [24]byte
}

// storedRow is a keyRow as the table keeps it, without its validUntil.
type storedRow struct {
	digest   [32]byte
	owner    ownerRef
	previous bool
	// otherHash and conflict: as in keyRow.
	otherHash bool
	conflict  bool
}

func newKeyTable() *keyTable {
	t := &keyTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].rows = map[keyIDBytes]uint32{}
		t.shards[i].until = map[keyIDBytes]instant{}
	}
	return t
}

func (t *keyTable) shard(k keyIDBytes) *keyShard {
	return &t.shards[hashKeyID(t.seed, k)&(shardCount-1)]
}

func (t *keyTable) get(k keyIDBytes) (keyRow, bool) {
	sh := t.shard(k)
	sh.mu.RLock()
	n, ok := sh.rows[k]
	var row keyRow
	if ok {
		r := t.rows.at(n)
		row = keyRow{digest: r.digest, owner: r.owner, previous: r.previous, otherHash: r.otherHash, conflict: r.conflict}
		if r.previous {
			row.validUntil = sh.until[k]
		}
	}
	sh.mu.RUnlock()
	return row, ok
}

// set publishes row for k (writers only).
func (t *keyTable) set(k keyIDBytes, row keyRow) {
	sh := t.shard(k)
	sh.mu.Lock()
	n, had := sh.rows[k]
	if !had {
		n = t.alloc()
		sh.rows[k] = n
		t.size.Add(1)
	}
	*t.rows.at(n) = storedRow{digest: row.digest, owner: row.owner, previous: row.previous, otherHash: row.otherHash, conflict: row.conflict}
	if row.previous {
		sh.until[k] = row.validUntil
	} else {
		delete(sh.until, k)
	}
	sh.mu.Unlock()
}

// delete removes k (writers only).
func (t *keyTable) delete(k keyIDBytes) {
	sh := t.shard(k)
	sh.mu.Lock()
	if n, had := sh.rows[k]; had {
		delete(sh.rows, k)
		delete(sh.until, k)
		*t.rows.at(n) = storedRow{}
		t.rowNums.give(n)
		t.size.Add(-1)
	}
	sh.mu.Unlock()
}

// alloc numbers a row: a freed one, or a new one.
func (t *keyTable) alloc() uint32 {
	row, fresh := t.rowNums.take()
	if fresh {
		t.rows.grow(row)
	}
	return row
}

func (t *keyTable) len() int { return int(t.size.Load()) }

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
