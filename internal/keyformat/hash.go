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

package keyformat

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// hashScheme names the algorithm in stored hashes, so it can change later
// without guessing what an old hash is.
const hashScheme = "sha256:"

// Hash returns "sha256:" and the hex SHA-256 of the whole token; store this,
// never the key.
//
// Plain SHA-256 is the right tool here, unlike for passwords: the key carries
// 256 random bits, so brute force is hopeless however fast the hash is. A slow
// KDF (bcrypt, argon2) would add no protection but would cost the verifier on
// every request, and a salt is unneeded for the same reason (no two keys
// collide, and precomputed tables cannot cover 2^256 inputs).
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hashScheme + hex.EncodeToString(sum[:])
}

// Verify reports whether token hashes to hash, in constant time so response
// timing does not reveal how much of a guessed hash matched.
func Verify(token, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(Hash(token)), []byte(hash)) == 1
}

// ParseDigest is the SHA-256 digest a hash written by Hash holds; false for anything else
// (another scheme, a truncated or garbled value, hex in capitals, which Hash never writes and
// Verify refuses too).
func ParseDigest(hash string) ([sha256.Size]byte, bool) {
	var digest [sha256.Size]byte
	hexDigest, ok := strings.CutPrefix(hash, hashScheme)
	if !ok || len(hexDigest) != hex.EncodedLen(sha256.Size) {
		return digest, false
	}
	if _, err := hex.Decode(digest[:], []byte(hexDigest)); err != nil || hex.EncodeToString(digest[:]) != hexDigest {
		return digest, false
	}
	return digest, true
}
