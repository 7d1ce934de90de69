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
	"crypto/sha256"
	"crypto/subtle"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// The index's APIKeys are kept in a form the garbage collector need not walk. With 100,000
// keys, one small object per field (as plain structs and strings would be) made about 14
// objects per key, and every collection spent hundreds of milliseconds marking them while
// requests waited (docs/performance.md). Here:
//
//   - key ids map to keyRow values (no pointer) in maps keyed by fixed-size arrays, which the
//     collector skips;
//   - each APIKey has a numbered slot: its ownerRow (no pointer) in one slab, its usage and
//     rate-limit bucket in another, and what only writers need in a third;
//   - the strings keys share (namespaces, Application names, scope sets, rate limits) are
//     interned once and referred to by number.
//
// Writers are serialized by index.mu. A slot's ownerRow is read by requests under one of
// ownerLocks; a slot freed by a deleted APIKey gets a new generation, so a request that found
// a key just before its APIKey went away reads nothing of the next APIKey given the slot.

// keyIDBytes is a key id as the index holds it. Every key id the format parses has this
// length; an id of another length in an APIKey's status could never match a request.
type keyIDBytes [keyformat.KeyIDLen]byte

func keyIDOf(s string) (keyIDBytes, bool) {
	var k keyIDBytes
	if len(s) != len(k) {
		return k, false
	}
	copy(k[:], s)
	return k, true
}

// ownerRef names the APIKey in a slot: the slot and its generation. Slot 0 is never used.
type ownerRef struct{ slot, gen uint32 }

// keyRow is one key id the verifier accepts: the current key of an APIKey, or one of its
// rotated-out keys during the overlap.
type keyRow struct {
	digest     [sha256.Size]byte // SHA-256 of the token, decoded from status.hash
	validUntil instant           // rotated-out keys only
	owner      ownerRef
	previous   bool
	// otherHash: status.hash is not a sha256: digest; it is in index.otherHashes.
	otherHash bool
	// conflict: more than one APIKey claims this key id; it is refused until only one does.
	conflict bool
}

// ownerRow is what an APIKey says about all its keys, as requests read it.
type ownerRow struct {
	gen       uint32
	namespace uint32 // index.strs
	app       uint32 // index.appRefs: its Application's name and the UID it was minted for
	scopes    uint32 // index.scopeSets
	limits    uint32 // index.limitSets: the key's narrowing of its Application's buckets
	state     keyState
	enabled   bool
	deleting  bool
	expiresAt instant // unset: never
}

// ownerExtra is what writers and the usage flush need of an APIKey. It holds no pointer: its
// identity is in the keyStore's arena, its first two key ids inline, any more (an APIKey with
// several rotated-out keys) in keyStore.moreKeyIDs.
type ownerExtra struct {
	identOff uint32 // the APIKey's UID and name in keyStore.arena (packIdentity)
	identLen uint32
	nKeyIDs  uint8
	keyIDs   [2]keyIDBytes // the first key ids it published
}

// publishedIDs are the key ids the APIKey in slot published.
func (s *keyStore) publishedIDs(slot uint32) []keyIDBytes {
	x := s.extras.at(slot)
	return append(slices.Clone(x.keyIDs[:x.nKeyIDs]), s.moreKeyIDs[slot]...)
}

func (s *keyStore) setPublishedIDs(slot uint32, ids []keyIDBytes) {
	x := s.extras.at(slot)
	x.nKeyIDs = uint8(copy(x.keyIDs[:], ids))
	delete(s.moreKeyIDs, slot)
	if len(ids) > len(x.keyIDs) {
		s.moreKeyIDs[slot] = slices.Clone(ids[len(x.keyIDs):])
	}
}

// keyState is an APIKey's status.state as the verifier tells states apart.
type keyState uint8

const (
	stateOther keyState = iota // Pending, or anything else: keys do not work
	stateActive
	stateRotating
	stateDisabled
	stateExpired
	stateFailed // a minted key fails only when its Application was deleted: revoked
)

func keyStateOf(s v1.KeyState) keyState {
	switch s {
	case v1.KeyActive:
		return stateActive
	case v1.KeyRotating:
		return stateRotating
	case v1.KeyDisabled:
		return stateDisabled
	case v1.KeyExpired:
		return stateExpired
	case v1.KeyFailed:
		return stateFailed
	}
	return stateOther
}

// instant is a point in time without time.Time's location pointer.
type instant struct {
	sec  int64
	nsec int32
	set  bool
}

func instantOf(t time.Time) instant {
	return instant{sec: t.Unix(), nsec: int32(t.Nanosecond()), set: true}
}

func (i instant) time() time.Time { return time.Unix(i.sec, int64(i.nsec)).UTC() }

// reached says whether now is at or after i (never, when i is unset).
func (i instant) reached(now time.Time) bool {
	return i.set && (now.Unix() > i.sec || now.Unix() == i.sec && int32(now.Nanosecond()) >= i.nsec)
}

// before says whether i is earlier than j; an unset instant is never earlier.
func (i instant) before(j instant) bool {
	if !i.set || !j.set {
		return i.set
	}
	return i.sec < j.sec || i.sec == j.sec && i.nsec < j.nsec
}

// uidKey is an APIKey's UID as a fixed-size map key.
type uidKey [16]byte

func uidKeyOf(uid types.UID) uidKey {
	sum := sha256.Sum256([]byte(uid))
	return uidKey(sum[:16])
}

// slab is an array of T that grows in chunks and never moves what it holds, so a pointer to an
// element stays good. Writers grow it under index.mu; readers index it without a lock.
type slab[T any] struct {
	chunks atomic.Pointer[[]*[slabChunk]T]
}

const slabChunk = 1024

func (s *slab[T]) at(i uint32) *T {
	chunks := s.chunks.Load()
	if chunks == nil || int(i/slabChunk) >= len(*chunks) {
		return nil
	}
	return &(*chunks)[i/slabChunk][i%slabChunk]
}

// grow makes room for element i.
func (s *slab[T]) grow(i uint32) {
	var chunks []*[slabChunk]T
	if p := s.chunks.Load(); p != nil {
		chunks = *p
	}
	if int(i/slabChunk) < len(chunks) {
		return
	}
	next := append(slices.Clip(chunks), new([slabChunk]T))
	s.chunks.Store(&next)
}

// numbers hands out the numbers of slab elements (rows, slots), a freed one before a new one.
// Writers only, under index.mu.
type numbers struct {
	free []uint32
	next uint32
}

// take is a freed number, or a new one (fresh: the slabs must grow to hold it).
func (n *numbers) take() (num uint32, fresh bool) {
	if k := len(n.free); k > 0 {
		num = n.free[k-1]
		n.free = n.free[:k-1]
		return num, false
	}
	num = n.next
	n.next++
	return num, true
}

// give frees num for a later take.
func (n *numbers) give(num uint32) { n.free = append(n.free, num) }

// interner numbers values by a string key, for values many keys share. Number 0 is the zero
// value. Numbers are never reused: the values are few (namespaces, Application names, scope
// sets, rate limits) and live as long as the process.
type interner[T any] struct {
	ids  map[string]uint32 // writers only, under index.mu
	vals atomic.Pointer[[]T]
}

func newInterner[T any]() *interner[T] {
	t := &interner[T]{ids: map[string]uint32{}}
	vals := make([]T, 1)
	t.vals.Store(&vals)
	return t
}

// intern returns the number of key, storing value() under it the first time.
func (t *interner[T]) intern(key string, value func() T) uint32 {
	if id, ok := t.ids[key]; ok {
		return id
	}
	vals := *t.vals.Load()
	next := append(slices.Clip(vals), value())
	t.vals.Store(&next)
	id := uint32(len(vals))
	t.ids[key] = id
	return id
}

func (t *interner[T]) get(id uint32) T {
	vals := *t.vals.Load()
	if int(id) >= len(vals) {
		var zero T
		return zero
	}
	return vals[id]
}

// keyStore is the APIKey part of the index.
type keyStore struct {
	keys *keyTable // keyID (current and previous) → row

	ownerLocks [shardCount]struct {
		sync.RWMutex
		_ [40]byte // keeps neighbouring locks off one cache line
	}
	owners slab[ownerRow]
	usages slab[keyUsage]
	extras slab[ownerExtra]
	// storeIDs name the slots' APIKeys in the shared rate-limit store (sharedlimits.go); kept
	// only when there is one, so the default costs no byte per key.
	storeIDs slab[uidKey]

	bucketStripes [bucketStripeCount]bucketStripe // the keyUsage buckets' locks (ratelimit.go)
	confs         *bucketConfs

	strs      *interner[string]
	appRefs   *interner[appRef]
	scopeSets *interner[[]string]
	limitSets *interner[map[string]rateLimit]

	// Writers only, under index.mu.
	arena       []byte                  // identities of the APIKeys in the slots (ownerExtra.identOff)
	garbage     int                     // bytes of arena no slot refers to any more
	moreKeyIDs  map[uint32][]keyIDBytes // slot → its published key ids past the first two
	slots       map[uidKey]uint32
	slotNums    numbers
	conflicts   map[keyIDBytes][]keyRow // key ids claimed by more than one APIKey, each claim
	otherHashes map[otherHashKey]string // status.hash of keys that are not sha256: digests
	otherMu     sync.RWMutex            // otherHashes, which requests read

	// shared keeps rate-limit buckets for every replica (--rate-limit-store); nil: usages do.
	shared *sharedLimits
	// grantBuckets are the budgets of access tokens no key obtained, per connection
	// (grantlimits.go).
	grantBuckets grantBuckets
}

type otherHashKey struct {
	id   keyIDBytes
	slot uint32
}

func newKeyStore() *keyStore {
	return &keyStore{
		keys:        newKeyTable(),
		confs:       newBucketConfs(),
		moreKeyIDs:  map[uint32][]keyIDBytes{},
		strs:        newInterner[string](),
		appRefs:     newInterner[appRef](),
		scopeSets:   newInterner[[]string](),
		limitSets:   newInterner[map[string]rateLimit](),
		slots:       map[uidKey]uint32{},
		slotNums:    numbers{next: 1},
		conflicts:   map[keyIDBytes][]keyRow{},
		otherHashes: map[otherHashKey]string{},
	}
}

// owner returns the row of the APIKey ref names, false when the slot holds another now.
func (s *keyStore) owner(ref ownerRef) (ownerRow, bool) {
	p := s.owners.at(ref.slot)
	if p == nil {
		return ownerRow{}, false
	}
	l := &s.ownerLocks[ref.slot%shardCount]
	l.RLock()
	row := *p
	l.RUnlock()
	return row, row.gen == ref.gen
}

func (s *keyStore) setOwner(slot uint32, row ownerRow) {
	l := &s.ownerLocks[slot%shardCount]
	l.Lock()
	*s.owners.at(slot) = row
	l.Unlock()
}

// usage is the usage of the slot ref names (its generation is checked by owner, before).
func (s *keyStore) usage(ref ownerRef) *keyUsage { return s.usages.at(ref.slot) }

// usageOf is the usage of the APIKey ref names, nil when it is gone.
func (s *keyStore) usageOf(ref ownerRef) *keyUsage {
	if _, ok := s.owner(ref); !ok {
		return nil
	}
	return s.usages.at(ref.slot)
}

// allocSlot gives the APIKey a slot: a freed one (its generation already moved on) or a new one.
func (s *keyStore) allocSlot() uint32 {
	slot, fresh := s.slotNums.take()
	if fresh {
		s.owners.grow(slot)
		s.usages.grow(slot)
		s.extras.grow(slot)
	}
	return slot
}

// freeSlot empties a slot and moves its generation on, so references to its APIKey fail. A
// request that passed the generation check just before may still count one use into the slot
// after its reset, which the next APIKey given the slot then reports: a race of one request
// with a delete, left as it is rather than locking every request's count.
func (s *keyStore) freeSlot(slot uint32) {
	gen := s.owners.at(slot).gen
	s.setOwner(slot, ownerRow{gen: gen + 1})
	s.resetUsage(slot)
	s.garbage += int(s.extras.at(slot).identLen)
	*s.extras.at(slot) = ownerExtra{}
	delete(s.moreKeyIDs, slot)
	s.slotNums.give(slot)
}

// Lookups on the request path.

// keyView is a key as one request sees it: a copy of its row and of its APIKey's row (values,
// no pointer into the store), and the interned values those refer to, which are never changed
// once published. Nothing a request does through it changes the index; its usage and
// rate-limit budget are reached by row.owner, after the decision (admit.go).
type keyView struct {
	keyID     string // from the request's token
	row       keyRow
	owner     ownerRow
	namespace string
	appName   string
	appUID    uidKey // zero: not recorded
	scopes    []string
	limits    map[string]rateLimit
}

// lookupKey finds the key with keyID whose secret token matches its stored hash, refusing a key
// id that more than one APIKey claims. A key whose secret does not match is not found: nothing
// about it is in the view.
func (ix *index) lookupKey(keyID, token string) (keyView, bool) {
	id, ok := keyIDOf(keyID)
	if !ok {
		return keyView{}, false
	}
	s := ix.keyStore
	row, ok := s.keys.get(id)
	if !ok || row.conflict {
		return keyView{}, false
	}
	if row.otherHash {
		if !keyformat.Verify(token, s.otherHash(id, row.owner.slot)) {
			return keyView{}, false
		}
	} else if !digestMatches(&row.digest, token) {
		return keyView{}, false
	}
	return s.view(keyID, row)
}

// view is the key of row as a request sees it; false when its APIKey went away meanwhile.
func (s *keyStore) view(keyID string, row keyRow) (keyView, bool) {
	owner, ok := s.owner(row.owner)
	if !ok {
		return keyView{}, false
	}
	app := s.appRefs.get(owner.app)
	return keyView{
		keyID:     keyID,
		row:       row,
		owner:     owner,
		namespace: s.strs.get(owner.namespace),
		appName:   app.name,
		appUID:    app.uid,
		scopes:    s.scopeSets.get(owner.scopes),
		limits:    s.limitSets.get(owner.limits),
	}, true
}

// expiresAt is when the key stops working by itself: its APIKey's expiry, or the end of a
// rotated-out key's overlap if that is earlier. Unset: never.
func (e keyView) expiresAt() instant {
	exp := e.owner.expiresAt
	if e.row.previous && e.row.validUntil.before(exp) { // before an unset instant: always
		exp = e.row.validUntil
	}
	return exp
}

// digestMatches compares the presented token with the stored SHA-256 in constant time.
func digestMatches(digest *[sha256.Size]byte, token string) bool {
	var sum [sha256.Size]byte
	if len(token) <= maxStackToken {
		var buf [maxStackToken]byte // keeps the copy of the token off the heap
		sum = sha256.Sum256(buf[:copy(buf[:], token)])
	} else {
		sum = sha256.Sum256([]byte(token))
	}
	return subtle.ConstantTimeCompare(sum[:], digest[:]) == 1
}

// maxStackToken covers every valid key (the longest prefix is 17 characters, the rest 62).
const maxStackToken = 96
