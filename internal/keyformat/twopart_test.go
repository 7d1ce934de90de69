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
	"errors"
	"strings"
	"testing"
)

func TestClientCanSendTheKeyAsAccessAndSecretHeaders(t *testing.T) {
	f := defaultFormat(t)
	for range 100 {
		k, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		access, secret := AccessKey(k), SecretKey(k)
		if access != "clr_"+k.KeyID {
			t.Fatalf("AccessKey = %q, want prefix + keyID", access)
		}
		if !strings.HasPrefix(secret, k.Secret) || len(secret) != 49 || strings.Contains(access, k.Secret) {
			t.Fatalf("SecretKey is not secret + checksum")
		}
		joined := f.Join(access, secret)
		if joined != k.Token {
			t.Fatalf("Join(AccessKey, SecretKey) does not give back the key")
		}
		if got, err := f.Parse(joined); err != nil || got != k {
			t.Fatalf("Parse(Join(…)) = %v, %v; want the original key", got, err)
		}
	}
}

func TestKeySplitInTheWrongPlaceIsRefused(t *testing.T) {
	f := defaultFormat(t)
	access, secret := goldenToken[:16], goldenToken[17:]
	tests := []struct{ name, access, secret string }{
		{"secret starts early", access[:15], access[15:] + "_" + secret},
		{"access runs long", access + "_" + secret[:1], secret[1:]},
		{"missing secret", access, ""},
		{"missing access", "", secret},
		{"separator kept on access", access + "_", secret},
		{"separator kept on secret", access, "_" + secret},
	}
	for _, tt := range tests {
		joined := f.Join(tt.access, tt.secret)
		if joined != "" {
			t.Errorf("%s: Join = %q, want \"\"", tt.name, joined)
		}
		if _, err := f.Parse(joined); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse(Join) error = %v, want ErrMalformed", tt.name, err)
		}
	}
}

func TestTwoPartFormOfAMalformedKeyIsEmpty(t *testing.T) {
	for _, k := range []Key{
		{},
		{Token: "garbage"},
		{Token: "x_" + strings.Repeat("a", 49)},
		{Token: goldenToken[:len(goldenToken)-1]},
		{Token: "ключ_" + goldenToken[4:]},
	} {
		if a, s := AccessKey(k), SecretKey(k); a != "" || s != "" {
			t.Errorf("AccessKey, SecretKey of %q = %q, %q; want empty", k.Token, a, s)
		}
	}
}
