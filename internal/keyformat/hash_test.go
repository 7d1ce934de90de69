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
	"math/rand/v2"
	"strings"
	"testing"
)

func TestStoredHashNamesItsAlgorithm(t *testing.T) {
	tests := []struct{ token, want string }{
		{"", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		if got := Hash(tt.token); got != tt.want {
			t.Errorf("Hash(%q) = %q, want %q", tt.token, got, tt.want)
		}
	}
	if h := Hash(goldenToken); strings.Contains(h, goldenSecret) || len(h) != len("sha256:")+64 {
		t.Errorf("Hash(key) = %q, want sha256: and 64 hex digits", h)
	}
}

func TestVerifierAcceptsOnlyTheKeyItStoredTheHashOf(t *testing.T) {
	stored := Hash(goldenToken)
	other := goldenKey(t)
	other.Token = strings.Replace(goldenToken, "clr_", "xyz_", 1)
	tests := []struct {
		name        string
		token, hash string
		want        bool
	}{
		{"same key", goldenToken, stored, true},
		{"one character changed", goldenToken[:30] + "y" + goldenToken[31:], stored, false},
		{"different key", other.Token, stored, false},
		{"empty key", "", stored, false},
		{"empty stored hash", goldenToken, "", false},
		{"hash without scheme", goldenToken, strings.TrimPrefix(stored, "sha256:"), false},
		{"uppercase hex", goldenToken, "sha256:" + strings.ToUpper(strings.TrimPrefix(stored, "sha256:")), false},
		{"the key itself stored by mistake", goldenToken, goldenToken, false},
	}
	for _, tt := range tests {
		if got := Verify(tt.token, tt.hash); got != tt.want {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseDigestReadsWhatHashWrites(t *testing.T) {
	token := "clr_example_token"
	digest, ok := ParseDigest(Hash(token))
	if !ok || digest != sha256.Sum256([]byte(token)) {
		t.Fatalf("ParseDigest(Hash(t)) = %x, %v", digest, ok)
	}
	for _, bad := range []string{"", "sha256:", "md5:" + Hash(token)[7:], Hash(token)[:40], Hash(token) + "00", "sha256:" + strings.Repeat("zz", 32)} {
		if _, ok := ParseDigest(bad); ok {
			t.Errorf("ParseDigest(%q) accepted", bad)
		}
	}
}

// TestADigestParsesOnlyAsHashWroteIt: ParseDigest reads only what Hash writes. For many
// generated tokens, the digest Hash wrote parses back to the token's SHA-256; the same hex with a
// letter in capitals (which Verify refuses too), without "sha256:" or after another scheme's
// name is refused, so the verifier compares exactly what the operator stored.
func TestADigestParsesOnlyAsHashWroteIt(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 256))
	for i := range 2000 {
		token := make([]byte, rng.IntN(80))
		for j := range token {
			token[j] = byte(rng.UintN(256))
		}
		stored := Hash(string(token))
		digest, ok := ParseDigest(stored)
		if !ok || digest != sha256.Sum256(token) {
			t.Fatalf("token %d (%d bytes): the hash Hash wrote did not parse back to its digest", i, len(token))
		}
		// Hex in capitals (all, or one letter) is not what Hash writes, and Verify refuses it.
		if _, ok := ParseDigest(stored[:7] + strings.ToUpper(stored[7:])); ok {
			t.Fatalf("token %d (%d bytes): the digest in capitals parsed", i, len(token))
		}
		if at := strings.IndexAny(stored[7:], "abcdef"); at >= 0 {
			one := stored[:7+at] + strings.ToUpper(stored[7+at:8+at]) + stored[8+at:]
			if _, ok := ParseDigest(one); ok || Verify(string(token), one) {
				t.Fatalf("token %d (%d bytes): a digest with one letter in capitals parsed or verified", i, len(token))
			}
		}
		bare := strings.TrimPrefix(stored, "sha256:")
		for _, scheme := range []string{"", "sha512:", "SHA256:", "sha1:", "sha256", ":"} {
			if _, ok := ParseDigest(scheme + bare); ok {
				t.Fatalf("token %d (%d bytes): a digest under scheme %q parsed as sha256", i, len(token), scheme)
			}
		}
	}
}
