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
	"crypto/rand"
	"io"
	"strings"
)

const (
	appIDPrefix = "app_"
	appIDLen    = 26  // base36 characters
	appIDBits   = 134 // the most whole bits that fit in 26 base36 characters
)

// ApplicationID returns a new Application ID from crypto/rand.
func ApplicationID() (string, error) {
	return NewApplicationID(rand.Reader)
}

// NewApplicationID returns "app_" and 26 random [0-9a-z] characters read from r
// (exactly 17 bytes). IDs are permanent and shared across orgs, so they are
// random rather than derived from names, which could be guessed or reused.
func NewApplicationID(r io.Reader) (string, error) {
	id, err := randomString(r, appIDBits, base36, appIDLen)
	if err != nil {
		return "", err
	}
	return appIDPrefix + id, nil
}

// ValidApplicationID reports whether s matches ^app_[0-9a-z]{26}$, the same
// rule the CRDs enforce.
func ValidApplicationID(s string) bool {
	id, ok := strings.CutPrefix(s, appIDPrefix)
	return ok && len(id) == appIDLen && isBase36(id)
}
