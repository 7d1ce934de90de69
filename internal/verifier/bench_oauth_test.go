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
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clearance-dev/clearance/internal/keyformat"
)

// oauthBenchKeys is how many keys get tokens in the OAuth benchmarks (the index holds benchKeys).
const oauthBenchKeys = 1000

// BenchmarkTokenIssuance is the token endpoint alone: client authentication, the rate limit,
// an ES256 signature, the JSON answer. tokens/s is per benchmark process (all cores).
func BenchmarkTokenIssuance(b *testing.B) {
	w := newWorld(b)
	w.newSigningKeys()
	tokens := populate(b, w, oauthBenchKeys)
	forms := make([]string, len(tokens))
	for i, tok := range tokens {
		k, err := w.format.Parse(tok)
		if err != nil {
			b.Fatal(err)
		}
		forms[i] = url.Values{"grant_type": {"client_credentials"}, "client_id": {keyformat.AccessKey(k)},
			"client_secret": {keyformat.SecretKey(k)}}.Encode()
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(forms[i%len(forms)]))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			w.v.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			i += 7
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkAuthorizeTokenVsKey answers forward-auth for a key and for an access token of the
// same key, interleaved in one loop over an index of benchKeys keys, and reports each one's
// time and their ratio (jwt/key): what checking a signature costs over a hash lookup.
func BenchmarkAuthorizeTokenVsKey(b *testing.B) {
	w := newWorld(b)
	w.newSigningKeys()
	keys := populate(b, w, benchKeys)[:oauthBenchKeys]
	jwts := make([]string, len(keys))
	for i, tok := range keys {
		k, _ := w.format.Parse(tok)
		rec := w.requestToken(k, true)
		if rec.Code != http.StatusOK {
			b.Fatalf("token: %d %s", rec.Code, rec.Body.String())
		}
		body := rec.Body.String()
		start := strings.Index(body, `"access_token":"`) + len(`"access_token":"`)
		jwts[i] = body[start : start+strings.IndexByte(body[start:], '"')]
	}
	w.recorded = nil // the tokens above are the token endpoint's answers: nothing to check
	ask := func(r *http.Request, header, value string) time.Duration {
		r.Header = http.Header{header: {value}}
		rec := httptest.NewRecorder()
		start := time.Now()
		w.v.ServeHTTP(rec, r)
		d := time.Since(start)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		return d
	}
	r := httptest.NewRequest(http.MethodGet, PathAuthorize+"?org="+grantOrg, nil)
	var byKey, byJWT time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := (i * 7) % len(keys)
		byKey += ask(r, "X-Api-Key", keys[j])
		byJWT += ask(r, "Authorization", "Bearer "+jwts[j])
	}
	b.ReportMetric(float64(byKey.Nanoseconds())/float64(b.N), "key-ns/op")
	b.ReportMetric(float64(byJWT.Nanoseconds())/float64(b.N), "jwt-ns/op")
	b.ReportMetric(float64(byJWT)/float64(byKey), "jwt/key")
}
