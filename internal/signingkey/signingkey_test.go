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

package signingkey

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var epoch = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func secretOf(t *testing.T, s Set) *corev1.Secret {
	t.Helper()
	data, ann, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: ann}, Data: data}
}

func TestEachKeyIsPublishedAPeriodBeforeItSignsAndAPeriodAfter(t *testing.T) {
	s0, err := NewSet(epoch)
	if err != nil {
		t.Fatal(err)
	}
	if s0.Previous != nil || s0.Current.KeyID == s0.Next.KeyID {
		t.Fatalf("a new set: previous %v, current %s, next %s", s0.Previous, s0.Current.KeyID, s0.Next.KeyID)
	}
	s1, err := s0.Rotate(s0.DueAt(DefaultRotation))
	if err != nil {
		t.Fatal(err)
	}
	if s1.Previous.KeyID != s0.Current.KeyID || s1.Current.KeyID != s0.Next.KeyID || s1.Next.KeyID == s0.Next.KeyID {
		t.Errorf("rotation did not shift the keys: %s %s %s → %s %s %s", "-", s0.Current.KeyID, s0.Next.KeyID,
			s1.Previous.KeyID, s1.Current.KeyID, s1.Next.KeyID)
	}
	if !s1.RotatedAt.Equal(epoch.Add(DefaultRotation)) || !s1.DueAt(DefaultRotation).Equal(epoch.Add(2*DefaultRotation)) {
		t.Errorf("rotated at %s, due at %s", s1.RotatedAt, s1.DueAt(DefaultRotation))
	}
	if n := len(s1.Published()); n != 3 {
		t.Errorf("%d keys published, want 3", n)
	}

	back, err := FromSecret(secretOf(t, s1))
	if err != nil {
		t.Fatal(err)
	}
	if len(s0.RefreshKey) != RefreshKeySize || !bytes.Equal(s1.RefreshKey, s0.RefreshKey) {
		t.Error("a new set has no refresh key, or rotating changed it")
	}
	if back.Current.KeyID != s1.Current.KeyID || back.Previous.KeyID != s1.Previous.KeyID || !back.RotatedAt.Equal(s1.RotatedAt) ||
		!bytes.Equal(back.RefreshKey, s1.RefreshKey) {
		t.Errorf("round trip: %+v", back)
	}
}

// TestASecretThatHoldsNoValidSetIsRefusedSayingWhatIsWrongWithoutQuotingIt: the refusal is
// what the controller's Replaced Warning and the verifier's log say, so it names the entry at
// fault and what is wrong with it, wraps ErrInvalid, and never quotes key material.
func TestASecretThatHoldsNoValidSetIsRefusedSayingWhatIsWrongWithoutQuotingIt(t *testing.T) {
	s, err := NewSet(epoch)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := s.Current.Key.(*ecdsa.PrivateKey).Bytes()
	d := base64.RawURLEncoding.EncodeToString(priv)
	notES256 := " is not an ES256 (P-256) private key"
	for name, tc := range map[string]struct {
		mutate func(*corev1.Secret)
		says   string
	}{
		"no current key":    {func(sec *corev1.Secret) { delete(sec.Data, DataCurrent) }, DataCurrent + " is missing"},
		"no next key":       {func(sec *corev1.Secret) { delete(sec.Data, DataNext) }, DataNext + " is missing"},
		"not JSON":          {func(sec *corev1.Secret) { sec.Data[DataCurrent] = []byte("{" + d) }, DataCurrent + " is not a JSON Web Key"},
		"a symmetric key":   {func(sec *corev1.Secret) { sec.Data[DataNext] = []byte(`{"kty":"oct","k":"` + d + `"}`) }, DataNext + notES256},
		"a public key only": {func(sec *corev1.Secret) { pub, _ := s.Current.Public().MarshalJSON(); sec.Data[DataCurrent] = pub }, DataCurrent + notES256},
		"a kid not its own": {func(sec *corev1.Secret) {
			sec.Data[DataCurrent] = []byte(strings.Replace(string(sec.Data[DataCurrent]), s.Current.KeyID, "x", 1))
		}, DataCurrent + " is not named by its RFC 7638 thumbprint"},
		"no rotation time":    {func(sec *corev1.Secret) { delete(sec.Annotations, AnnotationRotatedAt) }, AnnotationRotatedAt + " is missing"},
		"a bad rotation time": {func(sec *corev1.Secret) { sec.Annotations[AnnotationRotatedAt] = "yesterday" }, AnnotationRotatedAt + " is not an RFC 3339 time"},
		"a short refresh key": {func(sec *corev1.Secret) { sec.Data[DataRefresh] = []byte(d[:16]) }, DataRefresh + " must hold 32 bytes"},
		"a long refresh key":  {func(sec *corev1.Secret) { sec.Data[DataRefresh] = append(bytes.Clone(s.RefreshKey), 0) }, DataRefresh + " must hold 32 bytes"},
		// Well-formed keys named by their thumbprints, that ES256 cannot sign with or that say
		// they are for another algorithm: a verifier would load them and then fail every token.
		"a P-384 key":             {func(sec *corev1.Secret) { sec.Data[DataNext] = jwkOf(t, elliptic.P384(), string(Algorithm)) }, DataNext + notES256},
		"a P-256 key for ES384":   {func(sec *corev1.Secret) { sec.Data[DataCurrent] = jwkOf(t, elliptic.P256(), "ES384") }, DataCurrent + notES256},
		"a previous key on P-521": {func(sec *corev1.Secret) { sec.Data[DataPrevious] = jwkOf(t, elliptic.P521(), string(Algorithm)) }, DataPrevious + notES256},
	} {
		t.Run(name, func(t *testing.T) {
			sec := secretOf(t, s)
			tc.mutate(sec)
			_, err := FromSecret(sec)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("refused with %q, want ErrInvalid saying %q", err, tc.says)
			}
			if strings.Contains(err.Error(), d) {
				t.Errorf("the error quotes the private key: %v", err)
			}
		})
	}
}

// jwkOf is a private key on curve, marked for alg and named by its RFC 7638 thumbprint.
func jwkOf(t *testing.T, curve elliptic.Curve, alg string) []byte {
	t.Helper()
	priv, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := jose.JSONWebKey{Key: priv, Algorithm: alg, Use: "sig"}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	k.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
