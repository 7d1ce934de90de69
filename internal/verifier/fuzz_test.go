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
	"strings"
	"testing"

	"github.com/clearance-dev/clearance/internal/keyformat"
)

// FuzzParseCredentials feeds arbitrary header values and queries to the credential and
// parameter parsers and to the whole handler: nothing may panic, a found token is always taken
// from what the client sent, and no response echoes it.
func FuzzParseCredentials(f *testing.F) {
	format, _ := keyformat.New(keyformat.DefaultPrefix)
	k, _ := format.Generate()
	f.Add("api-key "+k.Token, "", "", "", "", "org=globex")
	f.Add("Bearer "+k.Token, k.Token, "", "", "", "org=globex&minRole=Analyst&scope=reports:read&metric=a.b&bucket=general")
	f.Add("", "", keyformat.AccessKey(k), keyformat.SecretKey(k), "", "org=%zz&org=a")
	f.Add("", "", "", "", "clearance.v1, clearance.key."+k.Token+",,", "&&=&org")
	f.Add("api-key", " ", "_", "_", "clearance.key.", "minRole=%E2%82%AC")
	f.Add("Basic \x00\xff", "clr_", "clr_x", strings.Repeat("a", 49), " clearance.key.clearance.key.x", "bucket=+")

	w := newWorld(f)
	f.Fuzz(func(t *testing.T, authorization, apiKey, access, secret, wsProtocol, query string) {
		h := http.Header{}
		for name, v := range map[string]string{
			hAuthorization: authorization, hXAPIKey: apiKey, hAccessKey: access, hSecretKey: secret, hWebSocketProtocol: wsProtocol,
		} {
			if v != "" {
				h[name] = []string{v}
			}
		}
		token, status := credentials(h, format)
		if status == credFound {
			sent := authorization + apiKey + wsProtocol + access + secret
			if token == "" || (!strings.Contains(sent, token) && token != format.Join(strings.TrimSpace(access), strings.TrimSpace(secret))) {
				t.Fatalf("credentials invented a token")
			}
		}
		_, _ = queryParams(query)
		_, _ = headerParams(h)

		r := httptest.NewRequest(http.MethodGet, PathAuthorize, nil)
		r.URL.RawQuery = query
		r.Header = h
		rec := httptest.NewRecorder()
		w.v.ServeHTTP(rec, r)
		if token != "" && len(token) > 8 && strings.Contains(rec.Body.String()+headerText(rec.Header()), token) {
			t.Fatalf("a response echoed the presented key")
		}
	})
}

func headerText(h http.Header) string {
	var b strings.Builder
	_ = h.Write(&b)
	return b.String()
}
