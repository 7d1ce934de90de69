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

// APIKeys into the store: their slots, key ids (claims, and conflicts between them) and the
// interned values their rows refer to. Writers only, under index.mu.

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"k8s.io/apimachinery/pkg/types"
)

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
