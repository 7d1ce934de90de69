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

package plugin

import (
	"strings"
	"testing"

	"github.com/clearance-dev/clearance/internal/keyformat"
)

func TestTokenPrintsTheClientCredentialsCommandsWithoutTheKey(t *testing.T) {
	ns := env.Namespace(t, "token")
	_, token := mintedKey(t, ns, "acme-bi-prod", "acme-bi", nil)
	out := run(t, ns, "token", "acme-bi-prod", "--issuer", "https://api.acme.example/", "--scope", "reports:read dashboards:sales",
		"--org", "globex").ok(t).stdout
	for _, want := range []string{
		"kubectl get secret acme-bi-prod-key -n " + ns + " -o jsonpath='{.data.access-key}' | base64 -d",
		"kubectl get secret acme-bi-prod-key -n " + ns + " -o jsonpath='{.data.secret-key}' | base64 -d",
		`curl -sf -u "$ACCESS:$SECRET" -d grant_type=client_credentials --data-urlencode 'scope=reports:read dashboards:sales' -d org=globex https://api.acme.example/oauth2/token`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	k, err := keyformat.New(keyformat.DefaultPrefix)
	must(t, err)
	parsed, err := k.Parse(token)
	must(t, err)
	if strings.Contains(out, parsed.Secret) {
		t.Error("token printed key material")
	}
	for _, bad := range [][]string{{"--org", "x;rm"}, {"--issuer", "https://x/$(id)"}, {"--scope", "a'b"}} {
		if msg := run(t, ns, "token", "acme-bi-prod", bad[0], bad[1]).failed(t); !strings.Contains(msg, bad[0]) {
			t.Errorf("a shell-unsafe %s: %s", bad[0], msg)
		}
	}
	if msg := run(t, ns, "token", "nope").failed(t); !strings.Contains(msg, "APIKey nope not found") {
		t.Errorf("missing key: %s", msg)
	}
}
