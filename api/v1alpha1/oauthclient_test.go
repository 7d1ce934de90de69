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

package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

var registered = &v1.OAuthClient{RedirectURIs: []string{
	"https://bi.partner.example/oauth/callback",
	"https://bi.partner.example:8443/cb?tenant=acme",
	"http://127.0.0.1/callback",
	"http://[::1]:9000/cb",
	"com.partner.bi:/oauth2redirect",
}}

// TestRedirectsMatchExactlyOrByLoopbackPort is RFC 9700 §4.1.3 and RFC 8252 §7.3: every near
// miss an attacker would try is refused.
func TestRedirectsMatchExactlyOrByLoopbackPort(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want bool
	}{
		{"https://bi.partner.example/oauth/callback", true},
		{"https://bi.partner.example:8443/cb?tenant=acme", true},
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:51234/callback", true},
		{"http://127.0.0.1:1/callback", true},
		{"http://[::1]/cb", true},
		{"http://[::1]:61000/cb", true},
		{"com.partner.bi:/oauth2redirect", true},

		{"", false},
		{"https://bi.partner.example/oauth/callback/", false},         // trailing slash
		{"https://bi.partner.example/oauth/callback/../evil", false},  // path traversal
		{"https://bi.partner.example/oauth/callbackx", false},         // prefix
		{"https://bi.partner.example/oauth", false},                   // shorter
		{"https://bi.partner.example/oauth/callback?x=1", false},      // extra query
		{"https://bi.partner.example/oauth/callback#x", false},        // fragment
		{"https://BI.partner.example/oauth/callback", false},          // case
		{"HTTPS://bi.partner.example/oauth/callback", false},          // scheme case
		{"https://bi.partner.example/OAuth/callback", false},          // path case
		{"https://evil.bi.partner.example/oauth/callback", false},     // host suffix
		{"https://bi.partner.example.evil/oauth/callback", false},     // host prefix
		{"https://attacker@bi.partner.example/oauth/callback", false}, // userinfo
		{"http://bi.partner.example/oauth/callback", false},           // downgrade
		{"https://bi.partner.example:443/oauth/callback", false},      // explicit default port
		{"https://bi.partner.example:8444/cb?tenant=acme", false},     // another port, not loopback
		{"https://bi.partner.example:8443/cb?tenant=evil", false},     // other query
		{"https://bi.partner.example:8443/cb", false},                 // query dropped
		{"http://127.0.0.1:/callback", false},                         // empty port
		{"http://127.0.0.1:123456/callback", false},                   // six digits
		{"http://127.0.0.1:80x/callback", false},                      // not a port
		{"http://127.0.0.1:8080/callback/", false},                    // loopback, other path
		{"http://127.0.0.1:8080/callbackx", false},                    // loopback, prefix
		{"http://127.0.0.1:8080@evil.example/callback", false},        // userinfo trick
		{"http://127.0.0.1.evil.example/callback", false},             // host prefix
		{"http://localhost/callback", false},                          // name, not the literal
		{"http://127.0.0.2/callback", false},                          // another loopback address
		{"https://127.0.0.1/callback", false},                         // scheme of a loopback
		{"HTTP://127.0.0.1:8080/callback", false},                     // scheme case
		{"http://[::1]:8080/cb/", false},                              // v6 trailing slash
		{"http://[::1]:8080/callback", false},                         // v6 path of the v4 one
		{"http://127.0.0.1:8080/cb", false},                           // v4 path of the v6 one
		{"com.partner.bi:/oauth2redirect/", false},
		{"com.partner.bi://oauth2redirect", false},
		{"com.partner.evil:/oauth2redirect", false},
	} {
		if got := registered.AllowsRedirect(tc.uri); got != tc.want {
			t.Errorf("AllowsRedirect(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
	var none *v1.OAuthClient
	if none.AllowsRedirect("https://bi.partner.example/oauth/callback") {
		t.Error("an application that is not an OAuth client allows no redirect")
	}
}

// FuzzAllowsRedirect: whatever the string, a match is the registered string itself or a
// registered loopback redirect with only the port changed.
func FuzzAllowsRedirect(f *testing.F) {
	for _, s := range append(registered.RedirectURIs, "http://127.0.0.1:8080/callback", "http://[::1]:/cb", "http://127.0.0.1:0/callback") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if !registered.AllowsRedirect(uri) {
			return
		}
		for _, r := range registered.RedirectURIs {
			if uri == r || withoutPort(uri) == withoutPort(r) && strings.HasPrefix(r, "http://") {
				return
			}
		}
		t.Fatalf("AllowsRedirect(%q) is true, but it is no registered URI with another port", uri)
	})
}

// withoutPort drops the port of an http URL to a loopback IP literal, the one difference
// AllowsRedirect forgives.
func withoutPort(s string) string {
	for _, host := range []string{"http://127.0.0.1", "http://[::1]"} {
		rest, ok := strings.CutPrefix(s, host)
		if !ok {
			continue
		}
		if p, ok := strings.CutPrefix(rest, ":"); ok {
			i := strings.IndexByte(p, '/')
			if i < 0 {
				i = len(p)
			}
			if i == 0 || i > 5 || strings.Trim(p[:i], "0123456789") != "" {
				return "bad"
			}
			rest = p[i:]
		}
		return host + rest
	}
	return s
}

// TestRedirectURIsAreValidatedAtApply: the apiserver refuses a redirect URI that could not be
// matched exactly or is unsafe, with one sentence saying what it must be.
func TestRedirectURIsAreValidatedAtApply(t *testing.T) {
	ns := env.Namespace(t, "redirects")
	const msg = "each redirect URI must be https://host/path, http://127.0.0.1[:port]/path or http://[::1][:port]/path for a native app, or a private-use scheme such as com.example.app:/callback; lowercase scheme and host, no fragment, userinfo or spaces"
	for i, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://bi.partner.example/oauth/callback", true},
		{"https://bi.partner.example:8443/cb?tenant=acme", true},
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:8080/callback", true},
		{"http://[::1]/cb", true},
		{"com.partner.bi:/oauth2redirect", true},
		{"http://bi.partner.example/callback", false},
		{"http://localhost:8080/callback", false},
		{"https://bi.partner.example/callback#frag", false},
		{"https://user@bi.partner.example/callback", false},
		{"https://BI.partner.example/callback", false},
		{"HTTPS://bi.partner.example/callback", false},
		{"https://bi.partner.example/call back", false},
		{"https:///callback", false},
		{"javascript:alert(1)", false},
		{"data:text/html,x", false},
		{"/callback", false},
	} {
		a := application("redirect-" + string(rune('a'+i)))
		a.Namespace = ns
		a.Spec.OAuth = &v1.OAuthClient{RedirectURIs: []string{tc.uri}}
		err := env.Client.Create(context.Background(), a)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%q refused: %v", tc.uri, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), msg)):
			t.Errorf("%q: got %v, want the sentence %q", tc.uri, err, msg)
		case tc.ok && a.Spec.OAuth.ClientType != v1.OAuthConfidential:
			t.Errorf("clientType defaults to %q, want Confidential", a.Spec.OAuth.ClientType)
		}
	}
	empty := application("no-redirects")
	empty.Namespace = ns
	empty.Spec.OAuth = &v1.OAuthClient{ClientType: v1.OAuthPublic}
	err := env.Client.Create(context.Background(), empty)
	if err == nil || !strings.Contains(err.Error(), "spec.oauth.redirectURIs") {
		t.Errorf("an OAuth client without redirect URIs: %v", err)
	}
}
