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
	"bytes"
	"errors"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

// Golden values were computed independently (Python: int.from_bytes, zlib.crc32)
// from the byte sequence 0, 1, 2, …, so they pin the format, not just this code.
const (
	goldenToken  = "clr_005McJmDgrvc_28tXK1Or6W6dxxtkBjpgyO1OMqFi6605981s6EEnt4y0GkpG2"
	goldenKeyID  = "005McJmDgrvc"
	goldenSecret = "28tXK1Or6W6dxxtkBjpgyO1OMqFi6605981s6EEnt4y"
)

// keyShape is the scanner regex from the package doc, anchored.
var keyShape = regexp.MustCompile(`^clr_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}$`)

// counting returns the bytes 0, 1, 2, … (mod 256), a recognisable fixed "randomness".
func counting(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func defaultFormat(t testing.TB) Format {
	t.Helper()
	f, err := New(DefaultPrefix)
	if err != nil {
		t.Fatalf("New(%q): %v", DefaultPrefix, err)
	}
	return f
}

func goldenKey(t testing.TB) Key {
	t.Helper()
	k, err := defaultFormat(t).GenerateFrom(bytes.NewReader(counting(41)))
	if err != nil {
		t.Fatalf("GenerateFrom: %v", err)
	}
	return k
}

// parseErrorMessages is every message Parse may return for the default
// Format. A fixed set means no message can carry any part of a key.
var parseErrorMessages = map[string]bool{
	`keyformat: malformed key: empty`:                                                        true,
	`keyformat: key has the wrong prefix: want "clr_"`:                                       true,
	`keyformat: malformed key: want 66 characters`:                                           true,
	`keyformat: malformed key: want "clr_", 12 base62 characters, "_", 49 base62 characters`: true,
	`keyformat: key checksum mismatch`:                                                       true,
}

func TestOperatorsCanOnlyConfigureScannerFriendlyPrefixes(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"clr_", true},
		{"ab_", true},
		{"acme2_", true},
		{"a123456789abcdef_", true}, // 17 characters, the longest allowed
		{"", false},
		{"_", false},
		{"c_", false},    // too short to be distinctive
		{"clr", false},   // no separator
		{"clr-", false},  // wrong separator
		{"clr__", false}, // a second "_" would make Mask ambiguous
		{"c_r_", false},  // so would one right after the first letter
		{"cRr_", false},  // uppercase after the first letter
		{"cl:_", false},  // the byte after '9'
		{"cl/_", false},  // the byte before '0'
		{"cl{_", false},  // the byte after 'z'
		{"cl`_", false},  // the byte before 'a'
		{"{lr_", false},
		{"Clr_", false},               // uppercase
		{"1clr_", false},              // starts with a digit
		{"cl r_", false},              // space
		{"clé_", false},               // non-ASCII
		{"a123456789abcdefg_", false}, // 18 characters
		{"clr_\n", false},
	}
	for _, tt := range tests {
		err := ValidatePrefix(tt.prefix)
		if (err == nil) != tt.ok {
			t.Errorf("ValidatePrefix(%q) = %v, want ok=%v", tt.prefix, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPrefix) {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrInvalidPrefix", tt.prefix, err)
		}
		if _, newErr := New(tt.prefix); (newErr == nil) != tt.ok {
			t.Errorf("New(%q) = %v, want ok=%v", tt.prefix, newErr, tt.ok)
		}
	}
}

func TestUnconfiguredFormatRefusesToMintOrParse(t *testing.T) {
	var f Format
	if _, err := f.Generate(); !errors.Is(err, ErrInvalidPrefix) {
		t.Errorf("Format{}.Generate() error = %v, want ErrInvalidPrefix", err)
	}
	if _, err := f.Parse(goldenToken); !errors.Is(err, ErrInvalidPrefix) {
		t.Errorf("Format{}.Parse() error = %v, want ErrInvalidPrefix", err)
	}
}

func TestMintedKeyHasTheDocumentedShape(t *testing.T) {
	k, err := defaultFormat(t).Generate()
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if !keyShape.MatchString(k.Token) {
		t.Fatalf("token does not match %v (length %d)", keyShape, len(k.Token))
	}
	if want := "clr_" + k.KeyID + "_" + k.Secret; !strings.HasPrefix(k.Token, want) {
		t.Errorf("token is not prefix+keyID+_+secret+checksum")
	}
	if len(k.KeyID) != 12 || len(k.Secret) != 43 {
		t.Errorf("len(KeyID), len(Secret) = %d, %d; want 12, 43", len(k.KeyID), len(k.Secret))
	}
}

func TestSameRandomnessMintsTheSameKey(t *testing.T) {
	k := goldenKey(t)
	if k.Token != goldenToken || k.KeyID != goldenKeyID || k.Secret != goldenSecret {
		t.Errorf("GenerateFrom(0,1,2,…) = {%q %q %q}, want {%q %q %q}",
			k.Token, k.KeyID, k.Secret, goldenToken, goldenKeyID, goldenSecret)
	}
}

func TestMintingReadsAFixedAmountOfRandomness(t *testing.T) {
	r := bytes.NewReader(counting(100))
	if _, err := defaultFormat(t).GenerateFrom(r); err != nil {
		t.Fatalf("GenerateFrom: %v", err)
	}
	if read := 100 - r.Len(); read != 41 {
		t.Errorf("GenerateFrom read %d bytes, want 41 (71 + 256 bits)", read)
	}
}

func TestExtremeRandomnessStillMintsValidKeys(t *testing.T) {
	tests := []struct {
		name string
		fill byte
		want string
	}{
		{"all zero bits", 0x00, "clr_000000000000_00000000000000000000000000000000000000000001arNpU"},
		{"all one bits", 0xFF, "clr_jNHIIMGjEEj1_yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp12sxnYi"},
	}
	f := defaultFormat(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := f.GenerateFrom(bytes.NewReader(bytes.Repeat([]byte{tt.fill}, 41)))
			if err != nil {
				t.Fatalf("GenerateFrom: %v", err)
			}
			if k.Token != tt.want {
				t.Errorf("token = %q, want %q", k.Token, tt.want)
			}
			if _, err := f.Parse(k.Token); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestMintingFailsCleanlyWithoutEnoughRandomness(t *testing.T) {
	f := defaultFormat(t)
	for _, n := range []int{0, 8, 9, 40} {
		if k, err := f.GenerateFrom(bytes.NewReader(counting(n))); err == nil || k != (Key{}) {
			t.Errorf("GenerateFrom(%d bytes) = %v, %v; want zero Key and an error", n, k, err)
		}
	}
	if _, err := f.GenerateFrom(nil); err == nil {
		t.Error("GenerateFrom(nil) succeeded, want an error")
	}
}

func TestThousandMintedKeysAreDistinctAndAllParse(t *testing.T) {
	f := defaultFormat(t)
	tokens, ids := map[string]bool{}, map[string]bool{}
	for range 1000 {
		k, err := f.Generate()
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		if tokens[k.Token] || ids[k.KeyID] {
			t.Fatalf("duplicate key or key ID after %d keys", len(tokens))
		}
		tokens[k.Token], ids[k.KeyID] = true, true
		got, err := f.Parse(k.Token)
		if err != nil {
			t.Fatalf("Parse(generated key): %v", err)
		}
		if got != k {
			t.Fatalf("Parse(generated key) differs from the generated key")
		}
	}
}

func TestValidKeysParse(t *testing.T) {
	acme, err := New("acme2_")
	if err != nil {
		t.Fatal(err)
	}
	acmeKey, err := acme.GenerateFrom(bytes.NewReader(counting(41)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		format Format
		token  string
		want   Key
	}{
		{"golden key", defaultFormat(t), goldenToken, Key{goldenToken, goldenKeyID, goldenSecret}},
		{"custom prefix", acme, acmeKey.Token, acmeKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.format.Parse(tt.token)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Errorf("Parse = {%q %q %q}, want {%q %q %q}",
					got.Token, got.KeyID, got.Secret, tt.want.Token, tt.want.KeyID, tt.want.Secret)
			}
		})
	}
}

func TestMistypedKeyIsRefusedWithoutLookup(t *testing.T) {
	f := defaultFormat(t)
	body := len(DefaultPrefix)
	for i := body; i < len(goldenToken); i++ {
		if goldenToken[i] == '_' {
			continue // changing the separator is malformed, not mistyped
		}
		for _, typo := range []byte{nextBase62(goldenToken[i]), swapCase(goldenToken[i])} {
			if typo == goldenToken[i] {
				continue // digits have no case
			}
			mistyped := goldenToken[:i] + string(typo) + goldenToken[i+1:]
			if _, err := f.Parse(mistyped); !errors.Is(err, ErrChecksum) {
				t.Errorf("character %d changed: Parse error = %v, want ErrChecksum", i, err)
			}
		}
	}
	for i := body; i+1 < len(goldenToken); i++ {
		a, b := goldenToken[i], goldenToken[i+1]
		if a == b || a == '_' || b == '_' {
			continue
		}
		swapped := goldenToken[:i] + string(b) + string(a) + goldenToken[i+2:]
		if _, err := f.Parse(swapped); !errors.Is(err, ErrChecksum) {
			t.Errorf("characters %d,%d transposed: Parse error = %v, want ErrChecksum", i, i+1, err)
		}
	}
}

func nextBase62(c byte) byte {
	i := strings.IndexByte(base62, c)
	return base62[(i+1)%len(base62)]
}

func swapCase(c byte) byte {
	switch {
	case isLower(c):
		return c - 'a' + 'A'
	case isUpper(c):
		return c - 'A' + 'a'
	}
	return c
}

// refusals are inputs Parse must refuse, built from the golden key.
var refusals = []struct {
	name  string
	token string
	want  error
}{
	{"empty", "", ErrMalformed},
	{"prefix only", "clr_", ErrMalformed},
	{"another product's prefix", "ghp_" + goldenToken[4:], ErrPrefix},
	{"uppercase prefix", "CLR_" + goldenToken[4:], ErrPrefix},
	{"prefix without separator", "clr" + goldenToken[4:], ErrPrefix},
	{"leading space", " " + goldenToken, ErrPrefix},
	{"Cyrillic lookalike in prefix", "сlr_" + goldenToken[4:], ErrPrefix},
	{"truncated by one", goldenToken[:len(goldenToken)-1], ErrMalformed},
	{"truncated to the key ID", goldenToken[:17], ErrMalformed},
	{"truncated to the access key", goldenToken[:16], ErrMalformed},
	{"extra character", goldenToken + "a", ErrMalformed},
	{"trailing newline", goldenToken + "\n", ErrMalformed},
	{"key pasted twice", goldenToken + goldenToken, ErrMalformed},
	{"separator replaced", goldenToken[:16] + "a" + goldenToken[17:], ErrMalformed},
	{"separator moved", goldenToken[:15] + "_" + goldenToken[15:16] + goldenToken[17:], ErrMalformed},
	{"base64 character in secret", goldenToken[:20] + "+" + goldenToken[21:], ErrMalformed},
	{"dash in key ID", goldenToken[:5] + "-" + goldenToken[6:], ErrMalformed},
	{"separator in secret", goldenToken[:20] + "_" + goldenToken[21:], ErrMalformed},
	{"space in checksum", goldenToken[:len(goldenToken)-1] + " ", ErrMalformed},
	{"NUL byte", goldenToken[:30] + "\x00" + goldenToken[31:], ErrMalformed},
	{"invalid UTF-8", goldenToken[:30] + "\xff" + goldenToken[31:], ErrMalformed},
	{"accented letter, same byte length", goldenToken[:30] + "é" + goldenToken[32:], ErrMalformed},
	{"full-width letter, same byte length", goldenToken[:30] + "ａ" + goldenToken[33:], ErrMalformed},
	{"unicode, same rune count", goldenToken[:30] + "é" + goldenToken[31:], ErrMalformed},
	{"checksum character changed", goldenToken[:len(goldenToken)-1] + "3", ErrChecksum},
	{"secret character changed", goldenToken[:40] + "Z" + goldenToken[41:], ErrChecksum},
}

func TestMalformedKeysAreRefusedWithTheRightError(t *testing.T) {
	f := defaultFormat(t)
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			k, err := f.Parse(tt.token)
			if !errors.Is(err, tt.want) {
				t.Errorf("Parse error = %v, want %v", err, tt.want)
			}
			if k != (Key{}) {
				t.Errorf("Parse returned a non-zero Key with an error")
			}
		})
	}
}

// TestCharactersBesideTheAlphabetAreMalformedEvenWithAValidChecksum refuses, in the key ID,
// the secret and the checksum, each byte just outside the ranges 0-9, A-Z and a-z, in a key
// whose checksum is computed over it: a CRC-32 is no defence against a key crafted to pass
// it, so the alphabet is checked on its own.
func TestCharactersBesideTheAlphabetAreMalformedEvenWithAValidChecksum(t *testing.T) {
	f := defaultFormat(t)
	for _, c := range "/:@[`{" {
		keyID := goldenKeyID[:5] + string(c) + goldenKeyID[6:]
		secret := goldenSecret[:20] + string(c) + goldenSecret[21:]
		for name, token := range map[string]string{
			"key ID":   f.assemble(keyID, goldenSecret),
			"secret":   f.assemble(goldenKeyID, secret),
			"checksum": goldenToken[:len(goldenToken)-1] + string(c),
		} {
			if _, err := f.Parse(token); !errors.Is(err, ErrMalformed) {
				t.Errorf("%q in the %s: Parse error = %v, want ErrMalformed", c, name, err)
			}
		}
	}
}

func TestKeyFromAnotherPrefixIsRefused(t *testing.T) {
	acme, err := New("acme_")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acme.Parse(goldenToken); !errors.Is(err, ErrPrefix) {
		t.Errorf("acme_ Format parsing a clr_ key: error = %v, want ErrPrefix", err)
	}
}

func TestParseErrorsNeverContainTheKey(t *testing.T) {
	f := defaultFormat(t)
	secretKey := goldenToken[17:] // secret and checksum
	for _, tt := range refusals {
		_, err := f.Parse(tt.token)
		if err == nil {
			t.Fatalf("%s: Parse succeeded", tt.name)
		}
		msg := err.Error()
		if !parseErrorMessages[msg] {
			t.Errorf("%s: unexpected error message %q; messages must come from a fixed set", tt.name, msg)
		}
		if tt.token != "" && tt.token != "clr_" && strings.Contains(msg, tt.token) {
			t.Errorf("%s: error contains the input", tt.name)
		}
		for i := 0; i+5 <= len(secretKey); i++ {
			if strings.Contains(msg, secretKey[i:i+5]) {
				t.Errorf("%s: error contains part of the secret", tt.name)
			}
		}
	}
}

// TestEncodingsHoldTheirRandomBitsWithoutLoss checks the arithmetic behind
// "no modulo bias": each random value fits its fixed width, so encoding is
// one-to-one, and each width uses the most whole bits it can.
func TestEncodingsHoldTheirRandomBitsWithoutLoss(t *testing.T) {
	tests := []struct {
		name             string
		bits, base, digs int
	}{
		{"key ID", keyIDBits, 62, keyIDLen},
		{"secret", secretBits, 62, secretLen},
		{"application ID", appIDBits, 36, appIDLen},
	}
	for _, tt := range tests {
		capacity := new(big.Int).Exp(big.NewInt(int64(tt.base)), big.NewInt(int64(tt.digs)), nil)
		if capacity.BitLen() != tt.bits+1 { // 2^bits <= capacity < 2^(bits+1)
			t.Errorf("%s: %d^%d has %d bits; want room for exactly %d whole bits",
				tt.name, tt.base, tt.digs, capacity.BitLen(), tt.bits)
		}
	}
	if secretBits < 256 {
		t.Errorf("secret has %d bits, want at least 256", secretBits)
	}
	if capacity := new(big.Int).Exp(big.NewInt(62), big.NewInt(checksumLen), nil); capacity.BitLen() <= 32 {
		t.Errorf("%d base62 characters cannot hold a CRC-32", checksumLen)
	}
}

func TestFixedWidthEncodingIsTheNumberItself(t *testing.T) {
	top := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), secretBits), big.NewInt(1))
	for _, n := range []*big.Int{big.NewInt(0), big.NewInt(61), big.NewInt(62), top} {
		s := encodeBig(new(big.Int).Set(n), base62, secretLen)
		if got := decode(s, base62); got.Cmp(n) != 0 {
			t.Errorf("encodeBig(%v) = %q, which decodes to %v", n, s, got)
		}
	}
	for _, v := range []uint64{0, 1, 61, 62, 1<<32 - 1} {
		s := encodeUint(v, base62, checksumLen)
		if got := decode(s, base62); !got.IsUint64() || got.Uint64() != v {
			t.Errorf("encodeUint(%d) = %q, which decodes to %v", v, s, got)
		}
	}
}

func decode(s, alphabet string) *big.Int {
	n, base := new(big.Int), big.NewInt(int64(len(alphabet)))
	for i := 0; i < len(s); i++ {
		n.Mul(n, base).Add(n, big.NewInt(int64(strings.IndexByte(alphabet, s[i]))))
	}
	return n
}

// TestValidKeyIDIsExactlyTheShapeOfAMintedKeysID: a minted key's id passes; a whole token, a
// shorter or longer id, or one with a character outside base62 does not.
func TestValidKeyIDIsExactlyTheShapeOfAMintedKeysID(t *testing.T) {
	f, err := New(DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	k, err := f.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if !ValidKeyID(k.KeyID) {
		t.Fatalf("a minted key's id %s is refused", k.KeyID)
	}
	for _, s := range []string{"", k.KeyID[1:], k.KeyID + "a", k.KeyID[:11] + "_", k.KeyID[:11] + "{", k.Token, k.Secret} {
		if ValidKeyID(s) {
			t.Errorf("ValidKeyID accepts a value of %d characters that is no key id", len(s))
		}
	}
}
