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

// Package keyformat mints, parses, hashes and masks Clearance API keys and
// Application IDs. It is pure and dependency-free so the operator and the
// verifier agree on one definition of a key.
//
// # Key format
//
//	<prefix><keyID>_<secret><checksum>
//	clr_   12 chars _ 43 chars  6 chars      (base62: [0-9A-Za-z])
//
// The parts, and why each is there:
//
//   - prefix: configurable, must match ^[a-z][a-z0-9]{1,15}_$ (default "clr_").
//     A fixed, distinctive prefix is what lets secret scanners (GitHub push
//     protection, gitleaks, trufflehog) find leaked keys with few false positives.
//   - keyID: 12 base62 characters holding 71 random bits. It is public: the
//     O(1) lookup key and what UIs display. It needs no secrecy, only rare
//     collisions (tens of billions of keys before a 50% chance); the minter
//     should still refuse a duplicate.
//   - "_": not a base62 character, so the split is unambiguous; and being a
//     word character, double-clicking still selects the whole key.
//   - secret: 43 base62 characters holding exactly 256 random bits
//     (62^43 ≈ 2^256.03, so they fit without loss).
//   - checksum: CRC-32 (IEEE) of everything before it, prefix included, as 6
//     base62 characters (62^6 > 2^32). A mistyped or truncated key is refused
//     without a lookup, and scanners can confirm a match offline.
//
// A key is len(prefix)+62 characters long (66 with "clr_"); all of it is
// ASCII. Scanners can match it with
//
//	\bclr_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}\b
//
// # Refinements over the proposed design
//
//   - Randomness is drawn as whole bits (71 + 256 = 41 bytes per key) and
//     written as a fixed-width base62 number instead of character by
//     character. That has no modulo bias, and it reads a fixed number of
//     bytes, so a bad reader can never make generation loop.
//     A cosmetic side effect: the first character of the keyID (≤ 'j') and of
//     the secret (≤ 'y') does not span the whole alphabet. No entropy is lost.
//   - Mask shows the last 4 characters of the key. They are checksum, not
//     secret, characters, but a CRC is a function of the secret, so a mask
//     discloses ≈24 bits about it and leaves ≥232 unknown. That is harmless,
//     and it is why a mask never shows more.
//   - Key prints as its mask with fmt, slog and logr, so a Key that slips into
//     a log line does not leak.
//   - Join accepts only parts of the right lengths, so each key has exactly
//     one two-part form.
//
// # Storage
//
// Store only Hash(token) and compare presented keys with Verify. Parse first:
// it refuses malformed and mistyped keys before any lookup.
//
// # Application IDs
//
// ApplicationID returns "app_" followed by 26 base36 characters ([0-9a-z])
// holding 134 random bits, lowercase so it survives systems that fold case.
package keyformat
