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

package oauth

import (
	"encoding/json"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// idToken signs the OpenID Connect ID token of a redeemed code: sub is who consented.
func (h *Handler) idToken(k *SigningKey, rec CodeRecord, now time.Time) (string, error) {
	key := jose.JSONWebKey{Key: k.Key, KeyID: k.KID}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	claims := map[string]any{
		"iss": h.cfg.Issuer, "sub": rec.Grant.ConsentedBy, "aud": rec.Request.ClientID, "azp": rec.Request.ClientID,
		"iat": now.Unix(), "exp": now.Add(h.cfg.IDTokenTTL).Unix(), "auth_time": rec.IssuedAt.Unix(),
	}
	if rec.Request.Nonce != "" {
		claims["nonce"] = rec.Request.Nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
