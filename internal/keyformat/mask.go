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
	"fmt"
	"io"
	"log/slog"
)

// ellipsis marks the hidden middle of a masked key.
const ellipsis = "…"

// maskShown is how many characters Mask reveals on each side of the ellipsis.
const maskShown = 4

// Mask returns a display form such as "clr_abcd…wxyz": the prefix, the first
// 4 characters of the public keyID and the last 4 of the key (checksum, not
// secret). It is safe for status fields and logs. Anything that is not shaped
// like a key, such as the secret half of a two-part key, masks to "…" (or to
// its prefix and "…"), so garbage in never leaks out.
func Mask(token string) string {
	prefix, body, ok := cutPrefix(token)
	if !ok {
		return ellipsis
	}
	if _, _, ok := splitBody(body); !ok {
		return prefix + ellipsis
	}
	return prefix + body[:maskShown] + ellipsis + body[len(body)-maskShown:]
}

// String returns the key's mask, so %v and friends cannot leak it.
func (k Key) String() string { return Mask(k.Token) }

// Format prints the key's mask for every verb, including %#v and %d, which
// would otherwise print the struct's fields.
func (k Key) Format(s fmt.State, _ rune) { _, _ = io.WriteString(s, k.String()) }

// LogValue logs the key's mask with log/slog.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalLog logs the key's mask with logr (and so controller-runtime's
// loggers); it satisfies logr.Marshaler without importing logr.
func (k Key) MarshalLog() any { return k.String() }
