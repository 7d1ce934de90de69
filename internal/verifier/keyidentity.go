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

// The identities (UID, namespace, name) of the APIKeys in the store's slots, packed in one arena
// (keyStore.arena) rather than as strings the collector would walk.

import (
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// An identity in the arena is a UID and a name. The apiserver's UIDs are UUIDs, kept as their
// 16 bytes (after a 1) rather than 36 characters; any other UID (hand-built objects) is kept as
// it is (after a 0), with a NUL before the name.
const (
	identText byte = iota
	identUUID
)

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
