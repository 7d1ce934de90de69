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
	"regexp"
	"testing"
)

var appIDShape = regexp.MustCompile(`^app_[0-9a-z]{26}$`)

func TestApplicationIDsAreRandomLowercaseAndPrefixed(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, err := ApplicationID()
		if err != nil {
			t.Fatal(err)
		}
		if !appIDShape.MatchString(id) || !ValidApplicationID(id) {
			t.Fatalf("ApplicationID() = %q, want %v", id, appIDShape)
		}
		if seen[id] {
			t.Fatalf("duplicate application ID after %d", len(seen))
		}
		seen[id] = true
	}
}

func TestSameRandomnessGivesTheSameApplicationID(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"counting bytes", counting(17), "app_0025burfp0j7epb0hqfcuw340g"},
		{"all zero bits", make([]byte, 17), "app_00000000000000000000000000"},
		{"all one bits", bytes.Repeat([]byte{0xFF}, 17), "app_qxz0arjyi5m41pm71i7zcj0lj3"},
	}
	for _, tt := range tests {
		r := bytes.NewReader(append(tt.in, 0xAA)) // one byte too many: must stay unread
		got, err := NewApplicationID(r)
		if err != nil || got != tt.want {
			t.Errorf("%s: NewApplicationID = %q, %v; want %q", tt.name, got, err, tt.want)
		}
		if r.Len() != 1 {
			t.Errorf("%s: NewApplicationID read %d bytes, want 17", tt.name, 18-r.Len())
		}
	}
}

func TestApplicationIDFailsCleanlyWithoutEnoughRandomness(t *testing.T) {
	if id, err := NewApplicationID(bytes.NewReader(counting(16))); err == nil || id != "" {
		t.Errorf("NewApplicationID(16 bytes) = %q, %v; want an error", id, err)
	}
	if _, err := NewApplicationID(nil); err == nil {
		t.Error("NewApplicationID(nil) succeeded, want an error")
	}
}

func TestOnlyWellFormedApplicationIDsAreValid(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"app_0025burfp0j7epb0hqfcuw340g", true},
		{"app_zzzzzzzzzzzzzzzzzzzzzzzzzz", true},
		{"", false},
		{"app_", false},
		{"app_0025burfp0j7epb0hqfcuw340", false},   // 25 characters
		{"app_0025burfp0j7epb0hqfcuw340gg", false}, // 27 characters
		{"APP_0025burfp0j7epb0hqfcuw340g", false},
		{"app_0025BURFP0J7EPB0HQFCUW340G", false},
		{"app-0025burfp0j7epb0hqfcuw340g", false},
		{"app_0025burfp0j7epb0hqfcuw34_g", false},
		{"app_0025burfp0j7epb0hqfcuw34{g", false}, // the byte after 'z'
		{"app_0025burfp0j7epb0hqfcuw34:g", false}, // the byte after '9'
		{"0025burfp0j7epb0hqfcuw340g", false},     // no prefix
		{"bpp_0025burfp0j7epb0hqfcuw340g", false},
		{"app_0025burfp0j7epb0hqfcuw34é", false}, // 26 bytes, 25 runes
		{" app_0025burfp0j7epb0hqfcuw340g", false},
		{"app_0025burfp0j7epb0hqfcuw340g\n", false},
	}
	for _, tt := range tests {
		if got := ValidApplicationID(tt.id); got != tt.want {
			t.Errorf("ValidApplicationID(%q) = %v, want %v", tt.id, got, tt.want)
		}
		if got := appIDShape.MatchString(tt.id); got != tt.want {
			t.Errorf("test case disagrees with the CRD pattern for %q", tt.id)
		}
	}
}
