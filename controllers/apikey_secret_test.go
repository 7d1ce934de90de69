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

package controllers

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

const tableAppID = "app_0025burfp0j7epb0hqfcuw340g"

// tableKey mints a real key with the default prefix.
func tableKey(t *testing.T) (keyformat.Format, keyformat.Key) {
	t.Helper()
	f, err := keyformat.New("clr_")
	if err != nil {
		t.Fatal(err)
	}
	k, err := f.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return f, k
}

func tableAPIKey(name string) *v1.APIKey {
	return &v1.APIKey{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "acme", UID: types.UID("uid-" + name)},
		Spec:       v1.APIKeySpec{ApplicationName: "exporter"},
	}
}

func TestSecretCarriesTheKeyInEveryFormClientsSend(t *testing.T) {
	f, k := tableKey(t)
	data := keyData(k, tableAppID)

	var keys []string
	for name := range data {
		keys = append(keys, name)
	}
	slices.Sort(keys)
	if want := []string{"access-key", "application-id", "authorization", "secret-key", "token"}; !slices.Equal(keys, want) {
		t.Fatalf("keyData keys = %v, want exactly %v", keys, want)
	}
	checks := []struct{ key, want string }{
		{"token", k.Token},
		{"application-id", tableAppID},
		{"authorization", "api-key " + k.Token},
		{"access-key", keyformat.AccessKey(k)},
		{"secret-key", keyformat.SecretKey(k)},
	}
	for _, c := range checks {
		if got := string(data[c.key]); got != c.want {
			t.Errorf("data[%q] = %q, want %q", c.key, got, c.want)
		}
	}
	if access := string(data["access-key"]); !strings.HasPrefix(access, "clr_") || !strings.Contains(access, k.KeyID) || strings.Contains(access, k.Secret) {
		t.Errorf("access-key %q should be the prefix and key ID only", access)
	}
	if joined := f.Join(string(data["access-key"]), string(data["secret-key"])); joined != k.Token {
		t.Errorf("Join(access-key, secret-key) = %q, want the token %q", joined, k.Token)
	}
}

// tableTokenLeaks reports the label or annotation that holds the token or its secret part.
func tableTokenLeaks(s *corev1.Secret, k keyformat.Key) []string {
	var leaks []string
	for _, m := range []map[string]string{s.Labels, s.Annotations} {
		for name, value := range m {
			for _, part := range []string{k.Token, k.Secret, keyformat.SecretKey(k)} {
				if strings.Contains(value, part) || strings.Contains(name, part) {
					leaks = append(leaks, name)
				}
			}
		}
	}
	return leaks
}

func TestSecretMetadataIsOwnedAndNeverHoldsTheKey(t *testing.T) {
	_, k := tableKey(t)
	hash := keyformat.Hash(k.Token)
	expiresAt := metav1.NewTime(time.Date(2026, 4, 1, 14, 0, 0, 0, time.FixedZone("CEST", 2*3600)))

	tests := []struct {
		name           string
		existing       *corev1.Secret
		template       *v1.SecretTemplate
		expiresAt      *metav1.Time
		wantLabels     map[string]string
		wantAnnotation map[string]string
		wantNoExpiry   bool
	}{
		{
			name:      "fresh Secret with an expiry",
			existing:  &corev1.Secret{},
			expiresAt: &expiresAt,
			wantLabels: map[string]string{
				v1.LabelAPIKey: "prod-exporter",
			},
			wantAnnotation: map[string]string{
				annotationKeyHash:   hash,
				annotationKeyID:     k.KeyID,
				annotationExpiresAt: "2026-04-01T12:00:00Z",
			},
		},
		{
			name:     "template labels and annotations are added; others' labels are kept",
			existing: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "data"}, Annotations: map[string]string{"reloader": "on"}}},
			template: &v1.SecretTemplate{
				Labels:      map[string]string{"app.kubernetes.io/part-of": "exporter"},
				Annotations: map[string]string{"vault.io/sync": "true"},
			},
			wantLabels: map[string]string{
				v1.LabelAPIKey:              "prod-exporter",
				"team":                      "data",
				"app.kubernetes.io/part-of": "exporter",
			},
			wantAnnotation: map[string]string{
				annotationKeyHash: hash,
				annotationKeyID:   k.KeyID,
				"reloader":        "on",
				"vault.io/sync":   "true",
			},
			wantNoExpiry: true,
		},
		{
			name: "a template cannot take over the Clearance label or the key annotations",
			existing: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
				Labels: map[string]string{v1.LabelAPIKey: "someone-else"},
			}},
			template: &v1.SecretTemplate{
				Labels:      map[string]string{v1.LabelAPIKey: "spoofed"},
				Annotations: map[string]string{annotationKeyHash: "sha256:spoofed", annotationKeyID: "spoofed"},
			},
			wantLabels:     map[string]string{v1.LabelAPIKey: "prod-exporter"},
			wantAnnotation: map[string]string{annotationKeyHash: hash, annotationKeyID: k.KeyID},
			wantNoExpiry:   true,
		},
		{
			name: "the expires-at annotation goes when expiresAt is nil",
			existing: &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{annotationExpiresAt: "2026-01-01T00:00:00Z", "keep": "me"}},
				Type:       corev1.SecretTypeBasicAuth,
			},
			wantLabels:     map[string]string{v1.LabelAPIKey: "prod-exporter"},
			wantAnnotation: map[string]string{"keep": "me", annotationKeyHash: hash, annotationKeyID: k.KeyID},
			wantNoExpiry:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tableAPIKey("prod-exporter")
			key.Spec.SecretTemplate = tt.template
			s := tt.existing
			applySecretMeta(s, key, hash, k.KeyID, tt.expiresAt)

			for name, want := range tt.wantLabels {
				if got, ok := s.Labels[name]; !ok || got != want {
					t.Errorf("label %s = %q, want %q", name, got, want)
				}
			}
			for name, want := range tt.wantAnnotation {
				if got, ok := s.Annotations[name]; !ok || got != want {
					t.Errorf("annotation %s = %q, want %q", name, got, want)
				}
			}
			if _, ok := s.Annotations[annotationExpiresAt]; tt.wantNoExpiry && ok {
				t.Errorf("annotation %s kept without an expiry", annotationExpiresAt)
			}
			if s.Type != corev1.SecretTypeOpaque {
				t.Errorf("type = %q, want Opaque", s.Type)
			}
			if len(s.OwnerReferences) != 1 {
				t.Fatalf("owner references = %v, want exactly one", s.OwnerReferences)
			}
			ref := s.OwnerReferences[0]
			if ref.APIVersion != v1.GroupVersion.String() || ref.Kind != "APIKey" || ref.Name != "prod-exporter" || ref.UID != key.UID {
				t.Errorf("owner reference = %+v, want the APIKey prod-exporter", ref)
			}
			if ref.Controller == nil || !*ref.Controller {
				t.Errorf("owner reference is not the controller: %+v", ref)
			}
			if ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
				t.Errorf("owner reference does not block owner deletion: %+v", ref)
			}
			if leaks := tableTokenLeaks(s, k); len(leaks) > 0 {
				t.Errorf("key material in labels/annotations %v", leaks)
			}
			if s.Data != nil {
				t.Errorf("applySecretMeta touched the data")
			}
		})
	}
}

func TestNewKeySecretHoldsTheTokenOnlyInItsData(t *testing.T) {
	_, k := tableKey(t)
	key := tableAPIKey("prod-exporter")
	key.Spec.SecretTemplate = &v1.SecretTemplate{Labels: map[string]string{"l": "v"}, Annotations: map[string]string{"a": "v"}}
	expiresAt := metav1.NewTime(time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC))
	s := newKeySecret(key, k, tableAppID, &expiresAt)
	if s.Name != "prod-exporter-key" || s.Namespace != "acme" {
		t.Errorf("Secret %s/%s, want acme/prod-exporter-key", s.Namespace, s.Name)
	}
	if string(s.Data[v1.SecretKeyToken]) != k.Token {
		t.Errorf("Secret data does not hold the token")
	}
	if !keyformat.Verify(k.Token, s.Annotations[annotationKeyHash]) {
		t.Errorf("hash annotation %q does not verify the token", s.Annotations[annotationKeyHash])
	}
	if leaks := tableTokenLeaks(s, k); len(leaks) > 0 {
		t.Errorf("key material in labels/annotations %v", leaks)
	}
	if len(s.StringData) != 0 {
		t.Errorf("StringData set: %v", s.StringData)
	}
}

func TestAPIKeyTakesBackOnlyItsOwnOrANamedKey(t *testing.T) {
	f, k := tableKey(t)
	_, other := tableKey(t)
	key := tableAPIKey("prod-exporter")
	// made is the Secret this very APIKey (same UID) wrote; earlier is one an earlier APIKey of
	// the same name wrote (another UID), as a deletion with --cascade=orphan or a re-apply that
	// beats the garbage collector leaves it.
	made := func() *corev1.Secret { return newKeySecret(key, k, tableAppID, nil) }
	earlier := func() *corev1.Secret {
		old := tableAPIKey("prod-exporter")
		old.UID = "uid-of-the-deleted-apikey"
		return newKeySecret(old, k, tableAppID, nil)
	}
	named := func(keyID string) *v1.APIKey {
		a := tableAPIKey("prod-exporter")
		a.Annotations = map[string]string{v1.AnnotationAdoptKeyID: keyID}
		return a
	}

	tests := []struct {
		name string
		key  *v1.APIKey
		s    func() *corev1.Secret
		want adoptVerdict
	}{
		{"its own Secret (status lost)", key, made, adoptOwned},
		{"an earlier APIKey's Secret: revoked with it", key, earlier, adoptRetired},
		{"an orphaned Secret (no owner)", key, func() *corev1.Secret {
			s := earlier()
			s.OwnerReferences = nil
			return s
		}, adoptRetired},
		{"an owner that is not the controller", key, func() *corev1.Secret {
			s := made()
			s.OwnerReferences[0].Controller = nil
			return s
		}, adoptRetired},
		{"an earlier APIKey's Secret whose key a person named (restore)", named(k.KeyID), earlier, adoptRequested},
		{"an earlier APIKey's Secret, another key named", named(other.KeyID), earlier, adoptRetired},
		{"the label names another APIKey", key, func() *corev1.Secret {
			s := made()
			s.Labels[v1.LabelAPIKey] = "staging-exporter"
			return s
		}, adoptNone},
		{"no Clearance label", key, func() *corev1.Secret {
			s := made()
			delete(s.Labels, v1.LabelAPIKey)
			return s
		}, adoptNone},
		{"the token was replaced by another valid key", key, func() *corev1.Secret {
			s := made()
			s.Data[v1.SecretKeyToken] = []byte(other.Token)
			return s
		}, adoptUntrusted},
		{"the token was edited (one character changed)", key, func() *corev1.Secret {
			s := made()
			tok := []byte(k.Token)
			if tok[len(tok)-1] == 'A' {
				tok[len(tok)-1] = 'B'
			} else {
				tok[len(tok)-1] = 'A'
			}
			s.Data[v1.SecretKeyToken] = tok
			return s
		}, adoptUntrusted},
		{"the hash annotation was edited to match another key", key, func() *corev1.Secret {
			s := made()
			s.Annotations[annotationKeyHash] = keyformat.Hash(other.Token)
			return s
		}, adoptUntrusted},
		{"the hash annotation was removed", key, func() *corev1.Secret {
			s := made()
			delete(s.Annotations, annotationKeyHash)
			return s
		}, adoptUntrusted},
		{"no Secret", key, func() *corev1.Secret { return nil }, adoptNone},
		{"a Secret without a token (expired)", key, func() *corev1.Secret {
			s := made()
			delete(s.Data, v1.SecretKeyToken)
			return s
		}, adoptUntrusted},
		{"a Secret without data", key, func() *corev1.Secret {
			s := made()
			s.Data = nil
			return s
		}, adoptUntrusted},
	}
	for _, tt := range tests {
		got, verdict := adoptable(tt.s(), tt.key, f)
		if verdict != tt.want {
			t.Errorf("%s: adoptable = %v, want %v", tt.name, verdict, tt.want)
			continue
		}
		taken := verdict == adoptOwned || verdict == adoptRequested
		if taken && (got.Token != k.Token || got.KeyID != k.KeyID || got.Secret != k.Secret) {
			t.Errorf("%s: adopted key %v, want %v", tt.name, got, k)
		}
		if !taken && got != (keyformat.Key{}) {
			t.Errorf("%s: refused adoption still returned a key", tt.name)
		}
	}
}
