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
	"slices"
	"strings"
	"testing"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestTheTokenDecision is the client-credentials token endpoint's decision as a table: the key
// it presents, the scopes and org asked for, and the world's state decide the answer, with
// nothing spent or signed.
func TestTheTokenDecision(t *testing.T) {
	w := newWorld(t)
	w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:*", "dashboards:read"} })
	other := w.mint()
	for _, tc := range []struct {
		name   string
		key    string
		req    tokenRequest
		change func()
		code   string   // "" allowed
		desc   string   // in the error's description
		scopes []string // when allowed
	}{
		{name: "no scope asked: the key's", key: w.token.Token, scopes: []string{"reports:*", "dashboards:read"}},
		{name: "a narrower scope", key: w.token.Token, req: tokenRequest{scopes: []string{"reports:read"}}, scopes: []string{"reports:read"}},
		{name: "a wider scope", key: w.token.Token, req: tokenRequest{scopes: []string{"dashboards:refresh"}}, code: errInvalidScope, desc: "dashboards:refresh"},
		{name: "an org that connected it", key: w.token.Token, req: tokenRequest{org: grantOrg}, scopes: []string{"reports:*", "dashboards:read"}},
		{name: "an org that did not", key: w.token.Token, req: tokenRequest{org: "initech"}, code: errInvalidTarget, desc: "initech"},
		{name: "an unknown key", key: other.Token, code: errInvalidClient, desc: ReasonKeyUnknown},
		{name: "a wrong secret", key: w.token.Token[:len(w.token.Token)-2] + "xx", code: errInvalidClient},
		{name: "a disabled key", key: w.token.Token, change: func() { w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = ptr(false) }) },
			code: errInvalidClient, desc: ReasonKeyDisabled},
		{name: "its Application switched off", key: w.token.Token, change: func() {
			w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = nil })
			w.updateApp(func(a *v1.Application) { a.Spec.Enabled = ptr(false) })
		}, code: errInvalidClient, desc: ReasonApplicationDisabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.change != nil {
				tc.change()
			}
			d, scopes, oe := decideToken(tc.req, request{token: tc.key, cred: credFound}, &w.v.rules, w.v.index, w.clk.Now())
			switch {
			case tc.code == "" && oe != nil:
				t.Fatalf("refused: %s %s", oe.code, oe.desc)
			case tc.code == "":
				if !slices.Equal(scopes, tc.scopes) || !d.limited || d.limit.name != defaultBucket || d.limit.limit != 1000 {
					t.Errorf("scopes %v, limit %+v (%v)", scopes, d.limit, d.limited)
				}
			case oe == nil:
				t.Fatalf("allowed, want %s", tc.code)
			case oe.code != tc.code || !strings.Contains(oe.desc, tc.desc):
				t.Errorf("%s %q, want %s with %q", oe.code, oe.desc, tc.code, tc.desc)
			}
		})
	}
}
