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
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMaskShowsOnlyPrefixAndEightCharacters(t *testing.T) {
	if got, want := Mask(goldenToken), "clr_005M…kpG2"; got != want {
		t.Errorf("Mask(golden) = %q, want %q", got, want)
	}
	f := defaultFormat(t)
	for range 200 {
		k, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		got := Mask(k.Token)
		want := "clr_" + k.KeyID[:4] + "…" + k.Token[len(k.Token)-4:]
		if got != want {
			t.Fatalf("Mask = %q, want %q", got, want)
		}
		if n := utf8.RuneCountInString(got); n != len("clr_")+4+1+4 {
			t.Fatalf("Mask = %q has %d characters, want prefix + 4 + … + 4", got, n)
		}
	}
}

func TestMaskOfAMistypedKeyStillIdentifiesIt(t *testing.T) {
	mistyped := goldenToken[:30] + "y" + goldenToken[31:] // was "x"
	if got, want := Mask(mistyped), "clr_005M…kpG2"; got != want {
		t.Errorf("Mask(mistyped) = %q, want %q", got, want)
	}
}

func TestMaskOfGarbageRevealsNothing(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "…"},
		{"_", "…"},
		{"x", "…"},
		{"hunter2", "…"},
		{"clr_", "clr_…"},
		{"clr_short", "clr_…"},
		{goldenToken[17:], "…"},     // the secret half alone
		{goldenToken[:16], "clr_…"}, // the access half alone
		{goldenToken[:len(goldenToken)-1], "clr_…"}, // truncated
		{goldenToken + "x", "clr_…"},                // too long
		{goldenToken[:30] + "é" + goldenToken[32:], "clr_…"},
		{goldenToken[:5] + "\xff" + goldenToken[6:], "clr_…"},
		{"ключ_" + goldenToken[4:], "…"},
		{"Clr_" + goldenToken[4:], "…"},
		{"\xff\xfe_", "…"},
		{strings.Repeat("_", 100), "…"},
		{"X" + goldenToken, "…"}, // "Xclr_" is no valid prefix, so nothing says this is a key
	}
	for _, tt := range tests {
		got := Mask(tt.in)
		if got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Mask(%q) = %q is not valid UTF-8", tt.in, got)
		}
	}
}

func TestPrintingAKeyShowsOnlyItsMask(t *testing.T) {
	k := goldenKey(t)
	const mask = "clr_005M…kpG2"
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X"} {
		if got := fmt.Sprintf(verb, k); got != mask {
			t.Errorf("Sprintf(%q, key) = %q, want %q", verb, got, mask)
		}
		nested := fmt.Sprintf(verb, struct{ K Key }{k})
		pointer := fmt.Sprintf(verb, &k)
		for _, out := range []string{nested, pointer} {
			if strings.Contains(out, goldenSecret) {
				t.Errorf("Sprintf(%q) of a struct or pointer holding the key leaks it: %q", verb, out)
			}
		}
	}

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("minted", "key", k)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("minted", "key", k)
	if strings.Contains(buf.String(), goldenSecret) || !strings.Contains(buf.String(), mask) {
		t.Errorf("slog output = %q, want only the mask", buf.String())
	}

	if got := k.MarshalLog(); got != mask {
		t.Errorf("MarshalLog = %v, want %q", got, mask)
	}
}
