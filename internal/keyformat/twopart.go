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

// AccessKey returns the public half of the two-part form (prefix and keyID),
// for clients that send an access-key and a secret-key header. It returns ""
// if k.Token is not shaped like a key.
func AccessKey(k Key) string {
	access, _ := splitTwoPart(k.Token)
	return access
}

// SecretKey returns the secret half of the two-part form (secret and
// checksum). It returns "" if k.Token is not shaped like a key.
func SecretKey(k Key) string {
	_, secret := splitTwoPart(k.Token)
	return secret
}

// splitTwoPart splits a key-shaped token around the separator before its secret.
func splitTwoPart(token string) (access, secret string) {
	prefix, body, ok := cutPrefix(token)
	if !ok {
		return "", ""
	}
	keyID, _, ok := splitBody(body)
	if !ok {
		return "", ""
	}
	return prefix + keyID, body[keyIDLen+1:]
}

// Join reassembles a token from its two-part form, for the verifier to Parse.
// Parts of the wrong length give "" (which Parse refuses as malformed), so a
// key cannot be split at a different place and still be accepted.
func (f Format) Join(accessKey, secretKey string) string {
	if len(accessKey) != len(f.Prefix)+keyIDLen || len(secretKey) != secretKeyLen {
		return ""
	}
	return accessKey + string(separator) + secretKey
}
