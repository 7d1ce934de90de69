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
	"fmt"
	"io"
	"math/big"
)

// Alphabets in ASCII order, so fixed-width strings sort like the numbers they encode.
const (
	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	base36 = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// randomString reads bits uniformly random bits from r and writes them as a
// width-character number in alphabet. Callers pick bits so that
// 2^bits <= len(alphabet)^width: every value then has its own string, so the
// result carries exactly bits of entropy and no modulo bias.
func randomString(r io.Reader, bits int, alphabet string, width int) (string, error) {
	if r == nil {
		return "", errors.New("keyformat: nil random reader")
	}
	buf := make([]byte, (bits+7)/8)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", fmt.Errorf("keyformat: reading randomness: %w", err)
	}
	buf[0] &= 0xFF >> (len(buf)*8 - bits) // drop the bits beyond the budget
	return encodeBig(new(big.Int).SetBytes(buf), alphabet, width), nil
}

// encodeBig writes n as exactly width digits of alphabet, most significant
// first, zero-padded. n must be below len(alphabet)^width.
func encodeBig(n *big.Int, alphabet string, width int) string {
	out := make([]byte, width)
	base := big.NewInt(int64(len(alphabet)))
	digit := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, digit)
		out[i] = alphabet[digit.Int64()]
	}
	return string(out)
}

// encodeUint is encodeBig for small numbers, kept allocation-light for Parse.
func encodeUint(v uint64, alphabet string, width int) string {
	out := make([]byte, width)
	base := uint64(len(alphabet))
	for i := width - 1; i >= 0; i-- {
		out[i] = alphabet[v%base]
		v /= base
	}
	return string(out)
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && !isLower(s[i]) && !isUpper(s[i]) {
			return false
		}
	}
	return true
}

func isBase36(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && !isLower(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
