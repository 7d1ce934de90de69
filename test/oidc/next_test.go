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

package oidc

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/clearance-dev/clearance/internal/console"
)

var continueLink = regexp.MustCompile(`id="continue" href="([^"]*)"`)

// TestAnOIDCSignInLeadsOnlyToTheOrgPickerOrThisConsolesConsentPage: a link starting the sign-in
// with the provider may name where it leads (?next=, the consent page coming back). Whatever it
// names, the page the console answers the provider's callback with moves the browser on to the
// org picker, or to this console's own consent page for a well-formed request ID: never to
// another site, scheme or path.
func TestAnOIDCSignInLeadsOnlyToTheOrgPickerOrThisConsolesConsentPage(t *testing.T) {
	good := "/oauth2/consent?request=req-1"
	cases := map[string]string{good: good, "": "/org"}
	for _, bad := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)",
		"https://evil.example/oauth2/consent?request=a", "/oauth2/consent?request=a&org=other", "/oauth2/consent?request=a/../../evil",
		"/oauth2/consent?request=" + strings.Repeat("a", 129), "/oauth2/consentx?request=a", "/logout", good + "#x", good + "&next=//evil.example"} {
		cases[bad] = "/org"
	}
	for next, want := range cases {
		b := newBrowser(t)
		status, loc, _ := b.get(consoleURL + console.PathOIDCStart + "?" + url.Values{"next": {next}}.Encode())
		if status != http.StatusSeeOther {
			t.Fatalf("starting a sign-in with next %q: status %d", next, status)
		}
		env.OIDC.QueueUser("eve")
		status, loc, _ = b.get(loc)
		if status != http.StatusFound {
			t.Fatalf("the provider's authorization endpoint: status %d", status)
		}
		status, _, body := b.get(loc)
		m := continueLink.FindStringSubmatch(body)
		if status != http.StatusOK || m == nil {
			t.Fatalf("the callback of a sign-in with next %q: status %d: %s", next, status, errorOf(body))
		}
		if got := html.UnescapeString(m[1]); got != want {
			t.Errorf("a sign-in started with next %q leads to %q, want %q", next, got, want)
		}
	}
	noSecretLogged(t)
}
