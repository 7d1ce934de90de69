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
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	// This package's browser is the scripted one of refused_test.go.
	chromium "github.com/clearance-dev/clearance/internal/testenv/browser"
)

// page is a headless Chromium of its own (own profile, own cookies) on one console, trusting
// the provider's certificate and no other unknown one.
type page struct{ *chromium.Page }

func newPage(t *testing.T, base string) *page {
	t.Helper()
	return &page{chromium.New(t, chromium.Options{
		Base: base, Timeout: 3 * time.Minute,
		Flags: []chromedp.ExecAllocatorOption{chromedp.Flag("ignore-certificate-errors-spki-list", env.OIDC.CertSPKI)},
		Why:   "signing in with the provider needs a browser",
	})}
}

// cookies are every cookie the browser holds, for every site.
func (p *page) cookies() []*network.Cookie {
	p.T.Helper()
	return p.Cookies(p.Base, env.OIDC.Issuer)
}

// signIn signs who in with the provider from the sign-in page and opens org.
func (p *page) signIn(who, org string, groups ...string) {
	p.T.Helper()
	if status := p.Open("/login"); status != http.StatusOK {
		p.T.Fatalf("the sign-in page: status %d", status)
	}
	env.OIDC.QueueUser(who, groups...)
	p.Submit("#oidc-sign-in")
	p.WaitFor("/org", "#org")
	p.noSecretOnPage()
	p.Fill("#org", org)
	if status := p.Submit("form[action='/org'].stack button[type=submit]"); status != http.StatusOK {
		p.T.Fatalf("opening org %s: status %d: %s", org, status, p.Text("main"))
	}
	p.noSecretOnPage()
}

// noSecretOnPage fails the test when the page, or a cookie, holds a code or token the
// provider issued.
func (p *page) noSecretOnPage() {
	p.T.Helper()
	html := p.HTML()
	var jar strings.Builder
	for _, c := range p.cookies() {
		jar.WriteString(c.Name + "=" + c.Value + "\n")
	}
	for _, s := range env.OIDC.Issued.All() {
		if strings.Contains(html, s.Value) {
			p.T.Errorf("the page at %s holds %s", p.Location(), s.Label)
		}
		if strings.Contains(jar.String(), s.Value) {
			p.T.Errorf("a cookie holds %s", s.Label)
		}
	}
}

// noSecretLogged fails the test when the operator's log or the in-process console's holds a
// code or token the provider issued.
func noSecretLogged(t *testing.T) {
	t.Helper()
	opLog, err := os.ReadFile(operator.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range env.OIDC.Issued.All() {
		if strings.Contains(string(opLog), s.Value) {
			t.Errorf("the operator's log holds %s", s.Label)
		}
		if strings.Contains(logs.String(), s.Value) {
			t.Errorf("the in-process console's log holds %s", s.Label)
		}
	}
}
