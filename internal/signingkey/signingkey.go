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

// Package signingkey is the layout of the Secret that holds the OAuth token signing keys: the
// operator's signing-key controller writes it, the verifier reads it. Nothing else of either
// role is shared.
//
// The Secret holds three ES256 (P-256) private keys as JWKs, each named by its RFC 7638
// thumbprint:
//
//	next.jwk      published (in the JWKS, accepted) for one rotation period before it signs
//	current.jwk   signs new tokens
//	previous.jwk  signed until the last rotation; published for one more period
//
// and refresh.key, 32 random bytes every verifier derives refresh tokens with (the
// authorization code grant, docs/oauth.md): made with the first set, kept across rotations,
// since a refresh token lives longer than a rotation period.
//
// Every rotation shifts them by one (previous ← current ← next ← a new key), so each key is
// published a whole period before any verifier sees a token it signed, and for a whole period
// after it signed the last one. A verifier that saw the rotation late, or not yet, still accepts
// every token: validation never breaks across a rotation as long as the period is longer than
// the longest token lifetime.
package signingkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
)

// Names in the Secret.
const (
	// DataNext, DataCurrent and DataPrevious are the Secret's data keys.
	DataNext     = "next.jwk"
	DataCurrent  = "current.jwk"
	DataPrevious = "previous.jwk"
	DataRefresh  = "refresh.key"
	// RefreshKeySize is the size of the refresh key.
	RefreshKeySize = 32
	// AnnotationRotatedAt is when the keys last shifted (RFC 3339); the next rotation is one
	// period later.
	AnnotationRotatedAt = "access.clearance.dev/signing-keys-rotated-at"
	// Label marks the Secret as Clearance's token signing keys.
	Label = "access.clearance.dev/oauth-signing-keys"
)

// Defaults the operator and the chart share.
const (
	// DefaultSecretName is the Secret's name in the operator's namespace.
	DefaultSecretName = "clearance-oauth-signing-keys"
	// DefaultRotation is how often the keys shift: each key is published 30 days before it
	// signs and 30 days after.
	DefaultRotation = 30 * 24 * time.Hour
	// Algorithm is the only signing algorithm: ES256.
	Algorithm = jose.ES256
)

// Set is the three keys and when they last shifted. Current and Next are always set in a Set
// read from a valid Secret; Previous is nil until the first rotation.
type Set struct {
	Next, Current, Previous *jose.JSONWebKey
	RotatedAt               time.Time
	// RefreshKey derives refresh tokens; nil in a Secret written before it existed (the
	// controller adds one).
	RefreshKey []byte
}

// NewRefreshKey makes a refresh key.
func NewRefreshKey() ([]byte, error) {
	k := make([]byte, RefreshKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("signing key: a refresh key: %w", err)
	}
	return k, nil
}

// NewKey makes an ES256 private key from r (crypto/rand outside tests), named by its RFC 7638
// thumbprint.
func NewKey(r io.Reader) (*jose.JSONWebKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return nil, fmt.Errorf("signing key: generating a P-256 key: %w", err)
	}
	k := &jose.JSONWebKey{Key: priv, Algorithm: string(Algorithm), Use: "sig"}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key: thumbprint: %w", err)
	}
	k.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return k, nil
}

// NewSet is the first set: a current key and the next one, rotated at now.
func NewSet(now time.Time) (Set, error) {
	cur, err := NewKey(rand.Reader)
	if err != nil {
		return Set{}, err
	}
	next, err := NewKey(rand.Reader)
	if err != nil {
		return Set{}, err
	}
	refresh, err := NewRefreshKey()
	if err != nil {
		return Set{}, err
	}
	return Set{Current: cur, Next: next, RotatedAt: now.UTC().Truncate(time.Second), RefreshKey: refresh}, nil
}

// Rotate shifts the keys at now: the current key becomes the previous one, the next one signs,
// and a new key is published as next.
func (s Set) Rotate(now time.Time) (Set, error) {
	next, err := NewKey(rand.Reader)
	if err != nil {
		return Set{}, err
	}
	return Set{Previous: s.Current, Current: s.Next, Next: next, RotatedAt: now.UTC().Truncate(time.Second), RefreshKey: s.RefreshKey}, nil
}

// DueAt is when the set should next rotate, with period every.
func (s Set) DueAt(every time.Duration) time.Time { return s.RotatedAt.Add(every) }

// Published are the keys a verifier accepts tokens of: current, next and previous (when set).
func (s Set) Published() []*jose.JSONWebKey {
	out := []*jose.JSONWebKey{s.Current, s.Next}
	if s.Previous != nil {
		out = append(out, s.Previous)
	}
	return out
}

// Data is the Secret's data and annotations for s.
func (s Set) Data() (data map[string][]byte, annotations map[string]string, err error) {
	data = map[string][]byte{}
	for name, k := range map[string]*jose.JSONWebKey{DataNext: s.Next, DataCurrent: s.Current, DataPrevious: s.Previous} {
		if k == nil {
			continue
		}
		b, err := json.Marshal(k)
		if err != nil {
			return nil, nil, fmt.Errorf("signing key: encoding %s: %w", name, err)
		}
		data[name] = b
	}
	if s.RefreshKey != nil {
		data[DataRefresh] = s.RefreshKey
	}
	return data, map[string]string{AnnotationRotatedAt: s.RotatedAt.UTC().Format(time.RFC3339)}, nil
}

// ErrInvalid wraps every reason a Secret does not hold a valid set. Messages name the data key
// and what is wrong with it, never the key material.
var ErrInvalid = errors.New("signing keys Secret is not valid")

// FromSecret reads the set a Secret holds.
func FromSecret(sec *corev1.Secret) (Set, error) {
	var s Set
	var err error
	if s.Current, err = parseKey(sec.Data, DataCurrent, true); err != nil {
		return Set{}, err
	}
	if s.Next, err = parseKey(sec.Data, DataNext, true); err != nil {
		return Set{}, err
	}
	if s.Previous, err = parseKey(sec.Data, DataPrevious, false); err != nil {
		return Set{}, err
	}
	if raw, ok := sec.Data[DataRefresh]; ok {
		if len(raw) != RefreshKeySize {
			return Set{}, fmt.Errorf("%w: %s must hold %d bytes", ErrInvalid, DataRefresh, RefreshKeySize)
		}
		s.RefreshKey = raw
	}
	at, ok := sec.Annotations[AnnotationRotatedAt]
	if !ok {
		return Set{}, fmt.Errorf("%w: annotation %s is missing", ErrInvalid, AnnotationRotatedAt)
	}
	if s.RotatedAt, err = time.Parse(time.RFC3339, at); err != nil {
		return Set{}, fmt.Errorf("%w: annotation %s is not an RFC 3339 time", ErrInvalid, AnnotationRotatedAt)
	}
	return s, nil
}

// parseKey reads one private ES256 key, named by its thumbprint.
func parseKey(data map[string][]byte, name string, required bool) (*jose.JSONWebKey, error) {
	raw, ok := data[name]
	if !ok || len(raw) == 0 {
		if required {
			return nil, fmt.Errorf("%w: %s is missing", ErrInvalid, name)
		}
		return nil, nil
	}
	var k jose.JSONWebKey
	if err := json.Unmarshal(raw, &k); err != nil {
		// go-jose's errors quote no key material, but say nothing useful either.
		return nil, fmt.Errorf("%w: %s is not a JSON Web Key", ErrInvalid, name)
	}
	priv, ok := k.Key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() || k.Algorithm != string(Algorithm) {
		return nil, fmt.Errorf("%w: %s is not an ES256 (P-256) private key", ErrInvalid, name)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil || k.KeyID != base64.RawURLEncoding.EncodeToString(tp) {
		return nil, fmt.Errorf("%w: %s is not named by its RFC 7638 thumbprint", ErrInvalid, name)
	}
	return &k, nil
}
