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
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestAPartnerWithClientCredentialsCallsThroughNginx is a partner's whole flow with real
// clients: golang.org/x/oauth2's client credentials client gets a token from the verifier (both
// client authentication styles) and calls the API through Debian's nginx, whose auth_request
// asks the verifier about the token (the configuration docs/verifier.md shows, as for keys). A wrong secret is
// invalid_client, a wider scope invalid_scope, and disabling the key stops the token at once.
func TestAPartnerWithClientCredentialsCallsThroughNginx(t *testing.T) {
	const nginx = "nginx" // testenv.StartProxy skips the test when it is not installed
	w := newWorld(t)
	w.newSigningKeys()
	w.updateKey(func(k *v1.APIKey) { k.Spec.Scopes = []string{"reports:read"} })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	vln := listen(t)
	served := make(chan error, 1)
	go func() { served <- w.v.Serve(ctx, vln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(15 * time.Second):
			t.Error("the verifier did not shut down")
		}
	})
	uln := listen(t)
	upstream := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "upstream: org=%s role=%s app=%s key=%s\n", r.Header.Get("X-Clearance-Org"),
			r.Header.Get("X-Clearance-Role"), r.Header.Get("X-Clearance-Application-Id"), r.Header.Get("X-Clearance-Key-Id"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = upstream.Serve(uln) }()
	t.Cleanup(func() { _ = upstream.Close() })
	docs := readDocBlocks(t)
	proxy := "http://" + testenv.StartProxy(t, testenv.Proxy{Name: "nginx", Binary: nginx, Configure: func(t testing.TB, dir, listen string) []string {
		return configureNginx(t, docs, dir, listen, vln.Addr().String(), uln.Addr().String())
	}}, func() []string {
		var secrets []string
		for _, k := range w.minted {
			secrets = append(secrets, k.Token, keyformat.SecretKey(k))
		}
		return append(secrets, w.issued...)
	})

	base := &http.Client{Timeout: 10 * time.Second}
	cctx := context.WithValue(ctx, oauth2.HTTPClient, base)
	config := func(secret string, style oauth2.AuthStyle, scopes ...string) *clientcredentials.Config {
		return &clientcredentials.Config{ClientID: keyformat.AccessKey(w.token), ClientSecret: secret,
			TokenURL: "http://" + vln.Addr().String() + PathToken, Scopes: scopes, AuthStyle: style}
	}
	call := func(c *http.Client) (int, string, string) {
		t.Helper()
		resp, err := c.Get(proxy + "/api/reports?year=2026")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Clearance-Reason"), string(body)
	}

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := config(keyformat.SecretKey(w.token), style, "reports:read")
		tok, err := cfg.Token(cctx)
		if err != nil {
			t.Fatalf("auth style %d: %v", style, err)
		}
		w.issued = append(w.issued, tok.AccessToken)
		if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
			t.Errorf("token type %q, expiry %v", tok.TokenType, tok.Expiry)
		}
		code, reason, body := call(cfg.Client(cctx))
		if code != http.StatusOK || body != "upstream: org="+grantOrg+" role=Analyst app="+appID+" key="+w.token.KeyID+"\n" {
			t.Fatalf("auth style %d through nginx: %d %s %q", style, code, reason, body)
		}
	}

	// What a partner sees for a wrong secret and for a scope its key lacks.
	for _, tc := range []struct {
		name string
		cfg  *clientcredentials.Config
		code string
	}{
		{"a wrong secret", config(keyformat.SecretKey(w.mint()), oauth2.AuthStyleInHeader), errInvalidClient},
		{"a wider scope", config(keyformat.SecretKey(w.token), oauth2.AuthStyleInHeader, "reports:read", "reports:write"), errInvalidScope},
	} {
		_, err := tc.cfg.Token(cctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}

	// The partner keeps its client; its key is disabled: the next call is refused, token or not.
	client := config(keyformat.SecretKey(w.token), oauth2.AuthStyleInHeader).Client(cctx)
	if code, reason, _ := call(client); code != http.StatusOK {
		t.Fatalf("before disabling: %d %s", code, reason)
	}
	w.updateKey(func(k *v1.APIKey) { k.Spec.Enabled = new(false) })
	code, reason, body := call(client)
	if code != http.StatusUnauthorized || reason != ReasonKeyDisabled || !strings.Contains(body, ReasonKeyDisabled) {
		t.Fatalf("after disabling the key: %d %s %q", code, reason, body)
	}
}
