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

package verifier

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/clearance-dev/clearance/internal/oauth"
	"github.com/clearance-dev/clearance/internal/signingkey"
)

// The token signing keys: the set the operator's signing-key controller keeps in a Secret in
// its namespace (package signingkey), loaded whole and swapped atomically when the Secret
// changes. The current key signs; current, next and previous verify and are published in the
// JWKS. Without a set, the token endpoint answers 503 and access tokens are refused with 503
// signing_keys_unavailable.

// tokenKeys is one loaded set. Immutable once published.
type tokenKeys struct {
	signer  jose.Signer
	signKID string
	verify  map[string]*ecdsa.PublicKey // kid → public key of current, next and previous
	jwks    []byte                      // the JWKS document of the same keys
	// refresh derives refresh tokens, idToken signs ID tokens (the authorization code grant,
	// codegrant.go); refresh is nil in a Secret the controller has not given one yet.
	refresh []byte
	idToken *oauth.SigningKey
}

func newTokenKeys(set signingkey.Set) (*tokenKeys, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: signingkey.Algorithm, Key: set.Current},
		(&jose.SignerOptions{}).WithType(accessTokenType))
	if err != nil {
		return nil, fmt.Errorf("verifier: a signer of the current token signing key: %w", err)
	}
	k := &tokenKeys{signer: signer, signKID: set.Current.KeyID, verify: map[string]*ecdsa.PublicKey{}, refresh: set.RefreshKey}
	if priv, ok := set.Current.Key.(*ecdsa.PrivateKey); ok {
		k.idToken = &oauth.SigningKey{Key: priv, KID: set.Current.KeyID}
	}
	var doc jose.JSONWebKeySet
	for _, jwk := range set.Published() {
		priv, ok := jwk.Key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("verifier: token signing key %s is not an ECDSA key", jwk.KeyID)
		}
		k.verify[jwk.KeyID] = &priv.PublicKey
		doc.Keys = append(doc.Keys, jwk.Public())
	}
	if k.jwks, err = json.Marshal(&doc); err != nil {
		return nil, fmt.Errorf("verifier: encoding the JWKS: %w", err)
	}
	return k, nil
}

// kids are the key ids of the set, for logs (public: RFC 7638 thumbprints of public keys).
func (k *tokenKeys) kids() []string {
	out := make([]string, 0, len(k.verify))
	for kid := range k.verify {
		out = append(out, kid)
	}
	slices.Sort(out)
	return out
}

// SetSigningKeys loads the token signing keys a Secret of the signing-key controller holds. A
// Secret that holds no valid set leaves the keys loaded before in place and is reported as an
// error (which names what is wrong, never key material).
func (v *Verifier) SetSigningKeys(sec *corev1.Secret) error {
	set, err := signingkey.FromSecret(sec)
	if err != nil {
		return err
	}
	k, err := newTokenKeys(set)
	if err != nil {
		return err
	}
	if old := v.oauth.keys.Swap(k); old == nil || !slices.Equal(old.kids(), k.kids()) || old.signKID != k.signKID {
		v.log.Info("token signing keys loaded", "signing", k.signKID, "published", k.kids())
	}
	return nil
}

// ClearSigningKeys drops the token signing keys (their Secret was deleted): no token is issued
// or accepted until a new set is loaded.
func (v *Verifier) ClearSigningKeys() {
	if v.oauth.keys.Swap(nil) != nil {
		v.log.Info("token signing keys removed; the token endpoint answers 503 and access tokens are refused until the Secret is back")
	}
}

// watchSigningKeys follows the signing keys Secret with a cache of that one Secret, in every
// replica: a list and watch by field selector on its name, which the verifier's RBAC allows by
// resourceNames.
func (v *Verifier) watchSigningKeys(mgr ctrl.Manager) error {
	key := v.opts.OAuth.SigningSecret
	c, err := signingkey.NewCache(mgr.GetConfig(), mgr.GetScheme(), key)
	if err != nil {
		return fmt.Errorf("verifier: a cache of the signing keys Secret %s: %w", key, err)
	}
	inf, err := c.GetInformer(context.Background(), &corev1.Secret{})
	if err != nil {
		return fmt.Errorf("verifier: an informer of the signing keys Secret %s: %w", key, err)
	}
	load := func(obj any) {
		sec, ok := obj.(*corev1.Secret)
		if !ok || sec.Namespace != key.Namespace || sec.Name != key.Name {
			return
		}
		if err := v.SetSigningKeys(sec); err != nil {
			v.log.Error(err, "token signing keys not loaded; keeping the keys loaded before", "secret", key.String())
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    load,
		UpdateFunc: func(_, o any) { load(o) },
		DeleteFunc: func(any) { v.ClearSigningKeys() },
	}); err != nil {
		return err
	}
	return mgr.Add(c)
}
