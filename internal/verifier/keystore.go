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
	"encoding/hex"
	"slices"
	"sort"
	"strconv"
	"strings"
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

// identity is the UID, namespace and name of the APIKey ref names, false when it is gone.
func (ix *index) identity(ref ownerRef) (types.UID, string, string, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if _, ok := ix.keyStore.owner(ref); !ok {
		return "", "", "", false
	}
	uid, ns, name := ix.keyStore.identityOf(ref.slot)
	return uid, ns, name, true
}

// identityOf is the identity of the APIKey in slot (writers only, under index.mu): its UID and
// name from the arena, its namespace from its row (interned, so not kept twice).
func (s *keyStore) identityOf(slot uint32) (uid types.UID, namespace, name string) {
	x := s.extras.at(slot)
	uid, name, ok := unpackIdentity(s.arena[x.identOff : x.identOff+x.identLen])
	if !ok {
		return "", "", ""
	}
	return uid, s.strs.get(s.owners.at(slot).namespace), name
}

// putIdentity stores the UID and name of the APIKey in slot, compacting the arena first when
// deleted APIKeys left more of it unused than used.
func (s *keyStore) putIdentity(slot uint32, uid types.UID, name string) {
	if s.garbage > 64<<10 && s.garbage > len(s.arena)/2 {
		arena := make([]byte, 0, len(s.arena)-s.garbage+len(uid)+len(name)+1)
		for _, live := range s.slots {
			x := s.extras.at(live)
			off := uint32(len(arena))
			arena = append(arena, s.arena[x.identOff:x.identOff+x.identLen]...)
			x.identOff = off
		}
		s.arena, s.garbage = arena, 0
	}
	x := s.extras.at(slot)
	x.identOff = uint32(len(s.arena))
	s.arena = packIdentity(s.arena, uid, name)
	x.identLen = uint32(len(s.arena)) - x.identOff
}

// An identity in the arena is a UID and a name. The apiserver's UIDs are UUIDs, kept as their
// 16 bytes (after a 1) rather than 36 characters; any other UID (hand-built objects) is kept as
// it is (after a 0), with a NUL before the name.
const (
	identText byte = iota
	identUUID
)

func packIdentity(arena []byte, uid types.UID, name string) []byte {
	if raw, ok := uuidBytes(string(uid)); ok {
		return append(append(append(arena, identUUID), raw[:]...), name...)
	}
	return append(append(append(append(arena, identText), uid...), 0), name...)
}

func unpackIdentity(b []byte) (types.UID, string, bool) {
	switch {
	case len(b) >= 17 && b[0] == identUUID:
		return types.UID(uuidString(b[1:17])), string(b[17:]), true
	case len(b) >= 1 && b[0] == identText:
		uid, name, ok := strings.Cut(string(b[1:]), "\x00")
		return types.UID(uid), name, ok
	}
	return "", "", false
}

// uuidBytes parses a UUID in its canonical form (lowercase hex, dashes after the 8th, 12th,
// 16th and 20th digit), the only form it packs, so unpacking gives back the very same string.
func uuidBytes(s string) ([16]byte, bool) {
	var out [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return out, false
	}
	hexDigits := strings.ReplaceAll(s, "-", "")
	if len(hexDigits) != 32 || strings.ToLower(hexDigits) != hexDigits {
		return out, false
	}
	if _, err := hex.Decode(out[:], []byte(hexDigits)); err != nil {
		return out, false
	}
	return out, true
}

func uuidString(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
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

// APIKeys.

func (ix *index) applyAPIKey(k *v1.APIKey) {
	uid := uidOf(k.UID, k.Namespace, k.Name)
	s := ix.keyStore
	ix.mu.Lock()
	defer ix.mu.Unlock()
	uk := uidKeyOf(uid)
	slot, ok := s.slots[uk]
	if !ok {
		slot = s.allocSlot()
		s.slots[uk] = slot
		gen := s.owners.at(slot).gen
		if gen == 0 {
			gen = 1 // generation 0 means an empty slot
		}
		s.setOwner(slot, ownerRow{gen: gen})
		*s.extras.at(slot) = ownerExtra{}
		s.putIdentity(slot, uid, k.Name)
		if s.shared != nil {
			s.storeIDs.grow(slot)
			*s.storeIDs.at(slot) = uk
		}
	}
	ref := ownerRef{slot: slot, gen: s.owners.at(slot).gen}
	row := ownerRow{
		gen:       ref.gen,
		namespace: s.strs.intern(k.Namespace, func() string { return strings.Clone(k.Namespace) }),
		app:       s.internApp(k.Spec.ApplicationName, k.Status.ApplicationUID),
		scopes:    s.internScopes(k.Spec.Scopes),
		limits:    s.internLimits(rateLimitsOf(k.Spec.RateLimits)),
		state:     keyStateOf(k.Status.State),
		enabled:   k.IsEnabled(),
		deleting:  k.DeletionTimestamp != nil,
	}
	// The earlier of spec and status: a shortened spec.expiresAt takes effect before the
	// controller copies it to status.
	if t := k.EffectiveExpiry(); t != nil {
		row.expiresAt = instantOf(t.Time)
	}
	s.setOwner(slot, row)

	type published struct {
		id    keyIDBytes
		row   keyRow
		other string
	}
	var entries []published
	add := func(keyID, hash string, previous bool, validUntil time.Time) {
		id, ok := keyIDOf(keyID)
		if !ok {
			return // no request can present it
		}
		e := published{id: id, row: keyRow{owner: ref, previous: previous}}
		if previous {
			e.row.validUntil = instantOf(validUntil)
		}
		digest, ok := keyformat.ParseDigest(hash)
		e.row.digest = digest
		if !ok {
			e.row.otherHash, e.other = true, hash // another scheme or garbage: keyformat.Verify
		}
		entries = append(entries, e)
	}
	if k.Status.KeyID != "" && k.Status.Hash != "" {
		add(k.Status.KeyID, k.Status.Hash, false, time.Time{})
	}
	for _, p := range k.Status.PreviousKeys {
		if p.KeyID == "" || p.Hash == "" || p.KeyID == k.Status.KeyID {
			continue
		}
		add(p.KeyID, p.Hash, true, p.ValidUntil.Time)
	}
	ids := make([]keyIDBytes, 0, len(entries))
	for _, e := range entries {
		ids = append(ids, e.id)
	}
	for _, old := range s.publishedIDs(slot) {
		if !slices.Contains(ids, old) {
			ix.unclaim(old, slot)
		}
	}
	for _, e := range entries {
		s.setOtherHash(otherHashKey{e.id, slot}, e.other)
		ix.claim(e.id, e.row)
	}
	s.setPublishedIDs(slot, ids)
}

func (ix *index) removeAPIKey(k *v1.APIKey) {
	uid := uidOf(k.UID, k.Namespace, k.Name)
	s := ix.keyStore
	ix.mu.Lock()
	defer ix.mu.Unlock()
	uk := uidKeyOf(uid)
	slot, ok := s.slots[uk]
	if !ok {
		return
	}
	for _, id := range s.publishedIDs(slot) {
		ix.unclaim(id, slot)
	}
	delete(s.slots, uk)
	s.freeSlot(slot)
}

func (s *keyStore) setOtherHash(k otherHashKey, hash string) {
	s.otherMu.Lock()
	defer s.otherMu.Unlock()
	if hash == "" {
		delete(s.otherHashes, k)
		return
	}
	s.otherHashes[k] = strings.Clone(hash)
}

func (s *keyStore) otherHash(id keyIDBytes, slot uint32) string {
	s.otherMu.RLock()
	defer s.otherMu.RUnlock()
	return s.otherHashes[otherHashKey{id, slot}]
}

// appRef is the Application an APIKey belongs to: its name, and the UID of the object the key
// was minted for (zero when its status records none: a key minted before the field existed).
// Keys of one Application share it, so it costs no byte per key.
type appRef struct {
	name string
	uid  uidKey
}

func (s *keyStore) internApp(name string, uid types.UID) uint32 {
	var ref appRef
	if uid != "" {
		ref.uid = uidKeyOf(uid)
	}
	return s.appRefs.intern(name+"\x00"+string(ref.uid[:]), func() appRef {
		ref.name = strings.Clone(name)
		return ref
	})
}

func (s *keyStore) internScopes(scopes []string) uint32 {
	if len(scopes) == 0 {
		return 0
	}
	return s.scopeSets.intern(strings.Join(scopes, "\x00"), func() []string {
		out := make([]string, len(scopes))
		for i, sc := range scopes {
			out[i] = strings.Clone(sc)
		}
		return out
	})
}

func (s *keyStore) internLimits(limits map[string]rateLimit) uint32 {
	if len(limits) == 0 {
		return 0
	}
	names := make([]string, 0, len(limits))
	for n := range limits {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		rl := limits[n]
		b.WriteString(n)
		b.WriteByte(0)
		b.WriteString(strconv.FormatInt(rl.limit, 10))
		b.WriteByte('/')
		b.WriteString(strconv.FormatInt(int64(rl.period), 10))
		b.WriteByte(0)
	}
	return s.limitSets.intern(b.String(), func() map[string]rateLimit {
		out := make(map[string]rateLimit, len(limits))
		for n, rl := range limits {
			rl.name = strings.Clone(n)
			out[rl.name] = rl
		}
		return out
	})
}

// claim publishes row for its key id, or a conflict marker when another APIKey claims it too.
func (ix *index) claim(id keyIDBytes, row keyRow) {
	s := ix.keyStore
	if c, ok := s.conflicts[id]; ok {
		i := slices.IndexFunc(c, func(r keyRow) bool { return r.owner.slot == row.owner.slot })
		if i >= 0 {
			c[i] = row
			return
		}
		s.conflicts[id] = append(c, row)
		ix.logConflict(id)
		return
	}
	cur, ok := s.keys.get(id)
	if !ok || cur.owner.slot == row.owner.slot {
		s.keys.set(id, row)
		return
	}
	s.conflicts[id] = []keyRow{cur, row}
	s.keys.set(id, keyRow{conflict: true})
	ix.logConflict(id)
}

func (ix *index) unclaim(id keyIDBytes, slot uint32) {
	s := ix.keyStore
	s.setOtherHash(otherHashKey{id, slot}, "")
	if c, ok := s.conflicts[id]; ok {
		c = slices.DeleteFunc(c, func(r keyRow) bool { return r.owner.slot == slot })
		switch len(c) {
		case 0:
			delete(s.conflicts, id)
			s.keys.delete(id)
		case 1:
			delete(s.conflicts, id)
			s.keys.set(id, c[0])
		default:
			s.conflicts[id] = c
		}
		return
	}
	if cur, ok := s.keys.get(id); ok && cur.owner.slot == slot {
		s.keys.delete(id)
	}
}

func (ix *index) logConflict(id keyIDBytes) {
	var names []string
	for _, r := range ix.keyStore.conflicts[id] {
		_, ns, name := ix.keyStore.identityOf(r.owner.slot)
		names = append(names, ns+"/"+name)
	}
	slices.Sort(names)
	ix.log.Info("key id claimed by more than one APIKey; refusing it until only one does", "keyID", string(id[:]), "apiKeys", names)
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
