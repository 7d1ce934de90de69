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
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, refuses with a fixed message, and
// accepts only strings it would itself produce.
func FuzzParse(f *testing.F) {
	for _, tt := range refusals {
		f.Add(tt.token)
	}
	f.Add(goldenToken)
	f.Add("clr_000000000000_00000000000000000000000000000000000000000001arNpU")
	f.Add(strings.Repeat("_", 66))
	format := defaultFormat(f)
	f.Fuzz(func(t *testing.T, token string) {
		k, err := format.Parse(token)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrPrefix) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("Parse error %v wraps no sentinel", err)
			}
			if !parseErrorMessages[err.Error()] {
				t.Fatalf("Parse error message %q is not from the fixed set", err.Error())
			}
			return
		}
		if k.Token != token || format.assemble(k.KeyID, k.Secret) != token {
			t.Fatalf("Parse accepted a token it does not re-encode to")
		}
		if format.Join(AccessKey(k), SecretKey(k)) != token {
			t.Fatalf("two-part form of a parsed key does not join back")
		}
	})
}

// FuzzRoundTrip checks that any randomness, with any valid prefix, mints a key
// that parses back to itself and whose mask holds no secret characters.
func FuzzRoundTrip(f *testing.F) {
	f.Add("clr_", counting(64))
	f.Add("clr_", make([]byte, 64))
	f.Add("a123456789abcdef_", bytes.Repeat([]byte{0xFF}, 64))
	f.Fuzz(func(t *testing.T, prefix string, random []byte) {
		format, err := New(prefix)
		if err != nil {
			format = Format{Prefix: DefaultPrefix}
		}
		buf := make([]byte, 64) // any 64 bytes; short inputs are zero-padded
		copy(buf, random)
		k, err := format.GenerateFrom(bytes.NewReader(buf))
		if err != nil {
			t.Fatalf("GenerateFrom(64 bytes): %v", err)
		}
		got, err := format.Parse(k.Token)
		if err != nil || got != k {
			t.Fatalf("Parse(Generate) = %v, %v; want the generated key", got, err)
		}
		mask := Mask(k.Token)
		want := format.Prefix + k.KeyID[:4] + "…" + k.Token[len(k.Token)-4:]
		if mask != want || strings.Contains(mask, k.Secret) {
			t.Fatalf("Mask = %q, want %q (prefix, 4 of the key ID, 4 of the checksum)", mask, want)
		}
	})
}
