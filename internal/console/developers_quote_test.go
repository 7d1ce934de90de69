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

package console_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/clearance-dev/clearance/internal/console"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// TestTheTesterNeverShowsThePastedKeyEvenWhenTheVerifierQuotesIt: a key pasted into the
// Developers page's tester goes into that one request to the verifier only. Against a
// verifier (or anything in its place) that quotes the request back, in its status line, its
// body, its reason and every header the documentation lists, the page shows the answer with the
// key blanked:
// for both routes the tester offers, several keys, each client method.
func TestTheTesterNeverShowsThePastedKeyEvenWhenTheVerifierQuotesIt(t *testing.T) {
	quoting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		said := r.Header.Get("Authorization") + " " + string(body) + " " + r.URL.RawQuery
		if r.Header.Get("X-Original-Method") == http.MethodDelete || strings.Contains(string(body), `"method":"DELETE"`) {
			// Its status line too, which only a raw answer can word.
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer func() { _ = conn.Close() }()
			quote, _ := json.Marshal(map[string]string{"reason": said})
			_, _ = fmt.Fprintf(buf, "HTTP/1.1 401 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				strings.ReplaceAll(said, "\n", " "), len(quote), quote)
			_ = buf.Flush()
			return
		}
		for _, h := range []string{"X-Clearance-Reason", "X-Clearance-Org", "X-Clearance-Role", "X-Clearance-Key-Id", "X-Clearance-Application",
			"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "WWW-Authenticate"} {
			w.Header().Set(h, said)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"valid": false, "reason": said, "request": said})
	}))
	t.Cleanup(quoting.Close)
	base := startConsole(t, console.Options{VerifierURL: quoting.URL})
	org := env.Namespace(t, "acme")
	c := signIn(t, base, newPerson(t, org, "alice", observer...).token)
	format, _ := keyformat.New(keyformat.DefaultPrefix)
	for i := range 3 {
		made, err := format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		issued.add(made.Token) // the suite's leak check looks for it too
		for _, route := range []string{"authorizeGet", "verifyKey"} {
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
				req, _ := http.NewRequest(http.MethodGet, base+"/developers", nil)
				_, page := fetch(t, c, req)
				form := url.Values{"csrf": {hiddenCSRF.FindStringSubmatch(page)[1]}, "key": {made.Token}, "route": {route}, "org": {org}, "method": {method}}
				req, _ = http.NewRequest(http.MethodPost, base+"/developers", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, body := fetch(t, c, req)
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, "(your key)") {
					t.Fatalf("key %d, %s %s: status %d, and the verifier's quote of the request is not shown", i, route, method, resp.StatusCode)
				}
				if strings.Contains(body, made.Token) {
					t.Errorf("key %d, %s %s: the page holds the pasted key, quoted by the verifier", i, route, method)
				}
			}
		}
	}
}
