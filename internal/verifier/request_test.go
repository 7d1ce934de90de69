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
	"testing"

	"github.com/clearance-dev/clearance/internal/keyformat"
)

// TestAuthorizeRequestReadsWhatTheDecisionNeeds: the HTTP edge's reading of a forward-auth
// request, without a handler: parameters from the query or (Envoy) from X-Clearance-* headers
// only, the org header agreeing with org=, and the key.
func TestAuthorizeRequestReadsWhatTheDecisionNeeds(t *testing.T) {
	format := keyformat.Format{Prefix: keyformat.DefaultPrefix}
	const tok = "clr_anything"
	for _, tc := range []struct {
		name   string
		query  string
		header http.Header
		envoy  bool
		want   params
		cred   credStatus
		rs     reason
	}{
		{name: "query", query: "org=globex&minRole=Analyst&scope=reports%3Aread&metric=a.b&bucket=gen", header: http.Header{hXAPIKey: {tok}},
			want: params{org: "globex", minRole: "Analyst", scope: "reports:read", metric: "a.b", bucket: "gen"}, cred: credFound},
		{name: "org from the header", header: http.Header{hClearanceOrg: {"globex"}}, want: params{org: "globex"}},
		{name: "org in both, agreeing", query: "org=globex", header: http.Header{hClearanceOrg: {"globex"}}, want: params{org: "globex"}},
		{name: "org in both, disagreeing", query: "org=globex", header: http.Header{hClearanceOrg: {"acme"}}, rs: rOrgConflict},
		{name: "org header twice", header: http.Header{hClearanceOrg: {"globex", "globex"}}, rs: rInvalidParameter},
		{name: "parameter twice", query: "org=a&org=a", rs: rInvalidParameter},
		{name: "bad escape", query: "org=%zz", rs: rInvalidParameter},
		{name: "no org: the decision's to refuse", query: "scope=x", want: params{scope: "x"}},
		{name: "envoy: the query is the client's", envoy: true, query: "org=evil&minRole=Observer",
			header: http.Header{hClearanceOrg: {"globex"}, hClearanceMinRole: {"Analyst"}, hAuthorization: {"api-key " + tok}},
			want:   params{org: "globex", minRole: "Analyst"}, cred: credFound},
		{name: "envoy: a header twice", envoy: true, header: http.Header{hClearanceScope: {"a", "b"}}, rs: rInvalidParameter},
		{name: "key given twice", query: "org=globex", header: http.Header{hXAPIKey: {tok, tok}}, want: params{org: "globex"}, cred: credMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.header == nil {
				tc.header = http.Header{}
			}
			req, rs := authorizeRequest(tc.header, tc.query, tc.envoy, format)
			if rs != tc.rs {
				t.Fatalf("reason %s, want %s", rs, tc.rs)
			}
			if rs != rOK {
				return
			}
			if req.params != tc.want || req.cred != tc.cred || (tc.cred == credFound) != (req.token == tok) {
				t.Fatalf("read %+v (cred %d, token %q), want %+v (cred %d)", req.params, req.cred, req.token, tc.want, tc.cred)
			}
		})
	}
}

func TestVerifyRequestTrimsTheKey(t *testing.T) {
	req, _ := verifyRequest(&VerifyRequest{Key: "  clr_x \n", Org: "globex", MinRole: "Analyst", Scope: "s", Metric: "m", Bucket: "b"})
	if req.token != "clr_x" || req.cred != credFound || req.params != (params{org: "globex", minRole: "Analyst", scope: "s", metric: "m", bucket: "b"}) {
		t.Fatalf("%+v", req)
	}
	if req, _ := verifyRequest(&VerifyRequest{Key: " ", Org: "globex"}); req.cred != credMissing {
		t.Fatalf("a blank key: cred %d, want missing", req.cred)
	}
}
