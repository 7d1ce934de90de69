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
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// DefaultPrefix is the prefix of keys when the operator is not configured otherwise.
const DefaultPrefix = "clr_"

// KeyIDLen is the length of every key id: base62 characters.
const KeyIDLen = 12

const (
	keyIDLen    = KeyIDLen
	secretLen   = 43 // base62 characters
	checksumLen = 6  // base62 characters
	separator   = '_'

	// bodyLen is everything after the prefix: keyID, separator, secret, checksum.
	bodyLen = keyIDLen + 1 + secretLen + checksumLen
	// secretKeyLen is the secret half of the two-part form: secret and checksum.
	secretKeyLen = secretLen + checksumLen

	keyIDBits  = 71  // the most whole bits that fit in 12 base62 characters
	secretBits = 256 // the design floor; fits in 43 base62 characters

	maxPrefixLen = 17 // a letter, up to 15 letters or digits, and "_"
)

// ValidKeyID reports whether s has the shape of a key id: KeyIDLen base62 characters. A value
// that does not (a whole token pasted where a key id belongs, say) is never repeated.
func ValidKeyID(s string) bool {
	return len(s) == keyIDLen && isBase62(s)
}

// Sentinel errors. Parse wraps them with a reason that never quotes the key,
// so errors can be logged and returned to clients as they are.
var (
	// ErrInvalidPrefix means a configured prefix is not allowed.
	ErrInvalidPrefix = errors.New("keyformat: invalid prefix")
	// ErrPrefix means a key does not start with the configured prefix.
	ErrPrefix = errors.New("keyformat: key has the wrong prefix")
	// ErrMalformed means a key has the wrong length, layout or characters.
	ErrMalformed = errors.New("keyformat: malformed key")
	// ErrChecksum means a well-formed key fails its checksum: mistyped or corrupted.
	ErrChecksum = errors.New("keyformat: key checksum mismatch")
)

// Format mints and parses keys with one prefix. It is a value, not package
// state, so an operator and its tests can use different prefixes side by side.
// The zero value is not valid; use New.
type Format struct {
	Prefix string
}

// Key is a minted or parsed key. Token is the whole key; KeyID and Secret are
// its public and secret parts (Secret excludes the checksum).
//
// A Key prints and logs as its mask (see Key.Format), so one that slips into
// a log line does not leak.
type Key struct {
	Token  string
	KeyID  string
	Secret string
}

// New returns a Format for prefix after checking it with ValidatePrefix.
func New(prefix string) (Format, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return Format{}, err
	}
	return Format{Prefix: prefix}, nil
}

// ValidatePrefix reports whether prefix matches ^[a-z][a-z0-9]{1,15}_$.
// The shape keeps prefixes scanner-friendly and guarantees the first "_" of a
// key ends its prefix, which lets Mask and AccessKey work without a Format.
func ValidatePrefix(prefix string) error {
	if len(prefix) < 3 || len(prefix) > maxPrefixLen {
		return prefixError(prefix)
	}
	last := len(prefix) - 1
	if !isLower(prefix[0]) || prefix[last] != separator {
		return prefixError(prefix)
	}
	for i := 1; i < last; i++ {
		if !isLower(prefix[i]) && !isDigit(prefix[i]) {
			return prefixError(prefix)
		}
	}
	return nil
}

func prefixError(prefix string) error {
	return fmt.Errorf("%w %q: want a lowercase letter, 1-15 lowercase letters or digits, then %q (like %q)",
		ErrInvalidPrefix, prefix, string(separator), DefaultPrefix)
}

// Generate mints a key from crypto/rand.
func (f Format) Generate() (Key, error) {
	return f.GenerateFrom(rand.Reader)
}

// GenerateFrom mints a key from r, which must be a CSPRNG outside tests.
// It reads exactly 41 bytes, so a fixed reader gives a fixed key.
func (f Format) GenerateFrom(r io.Reader) (Key, error) {
	if err := ValidatePrefix(f.Prefix); err != nil {
		return Key{}, err
	}
	keyID, err := randomString(r, keyIDBits, base62, keyIDLen)
	if err != nil {
		return Key{}, err
	}
	secret, err := randomString(r, secretBits, base62, secretLen)
	if err != nil {
		return Key{}, err
	}
	return Key{Token: f.assemble(keyID, secret), KeyID: keyID, Secret: secret}, nil
}

// assemble builds the token for keyID and secret, appending the checksum.
func (f Format) assemble(keyID, secret string) string {
	payload := f.Prefix + keyID + string(separator) + secret
	return payload + checksum(payload)
}

// checksum is the fixed-width base62 CRC-32 (IEEE) of payload.
func checksum(payload string) string {
	return encodeUint(uint64(crc32.ChecksumIEEE([]byte(payload))), base62, checksumLen)
}

// Parse checks that token is a well-formed key of this Format and splits it.
// It is cheap and offline, so the verifier can refuse garbage and typos before
// any lookup. Errors wrap ErrInvalidPrefix, ErrPrefix, ErrMalformed or
// ErrChecksum and never include any part of token.
func (f Format) Parse(token string) (Key, error) {
	if err := ValidatePrefix(f.Prefix); err != nil {
		return Key{}, err
	}
	if token == "" {
		return Key{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if !strings.HasPrefix(token, f.Prefix) {
		return Key{}, fmt.Errorf("%w: want %q", ErrPrefix, f.Prefix)
	}
	if len(token) != len(f.Prefix)+bodyLen {
		return Key{}, fmt.Errorf("%w: want %d characters", ErrMalformed, len(f.Prefix)+bodyLen)
	}
	keyID, secret, ok := splitBody(token[len(f.Prefix):])
	if !ok {
		return Key{}, fmt.Errorf("%w: want %q, %d base62 characters, %q, %d base62 characters",
			ErrMalformed, f.Prefix, keyIDLen, string(separator), secretKeyLen)
	}
	if f.assemble(keyID, secret) != token {
		return Key{}, ErrChecksum
	}
	return Key{Token: token, KeyID: keyID, Secret: secret}, nil
}

// cutPrefix splits token after its first "_" if what precedes it is a valid
// prefix. Valid prefixes contain no other "_", so no configuration is needed.
func cutPrefix(token string) (prefix, body string, ok bool) {
	end := strings.IndexByte(token, separator)
	if end < 0 || ValidatePrefix(token[:end+1]) != nil {
		return "", "", false
	}
	return token[:end+1], token[end+1:], true
}

// splitBody splits the part of a key after its prefix into keyID and secret,
// checking layout and alphabet but not the checksum.
func splitBody(body string) (keyID, secret string, ok bool) {
	if len(body) != bodyLen || body[keyIDLen] != separator {
		return "", "", false
	}
	keyID, rest := body[:keyIDLen], body[keyIDLen+1:]
	if !isBase62(keyID) || !isBase62(rest) {
		return "", "", false
	}
	return keyID, rest[:secretLen], true
}
