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
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium is the system browser, or the test is skipped.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("chromium is not installed (apt-get install chromium): signing in with the provider needs a browser")
	return ""
}

// actionTimeout bounds one step in the browser.
const actionTimeout = 45 * time.Second

// page is a headless Chromium of its own (own profile, own cookies) on one console, trusting
// the provider's certificate and no other unknown one.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func newPage(t *testing.T, base string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("ignore-certificate-errors-spki-list", env.OIDC.CertSPKI),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return &page{t: t, ctx: ctx, base: base}
}

// open loads a page of the console and returns its HTTP status.
func (p *page) open(path string) int64 {
	p.t.Helper()
	resp, err := chromedp.Run(p.ctx, chromedp.NavigateResponse(p.base+path))
	if err != nil {
		p.t.Fatalf("opening %s: %v", path, err)
	}
	return resp.Status
}

// submit clicks a button or link that loads a new page and returns that page's status.
func (p *page) submit(sel string) int64 {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		p.t.Fatalf("clicking %s: %v", sel, err)
	}
	return resp.Status
}

// click clicks something that does not load a page (a checkbox).
func (p *page) click(sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		p.t.Fatalf("clicking %s: %v", sel, err)
	}
}

// value is an input's value.
func (p *page) value(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("reading the value of %s: %v", sel, err)
	}
	return v
}

// fill types value into a field.
func (p *page) fill(sel, value string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.SetValue(chromedp.CSS(sel), value)); err != nil {
		p.t.Fatalf("filling %s: %v", sel, err)
	}
}

// text is the visible text of the first element sel matches.
func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// html is the whole document as the browser holds it.
func (p *page) html() string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// ScreenshotsEnv names a directory for the screenshots (docs/console/login-oidc.png comes from
// there), as in the console's own tests; unset, the test's temporary directory.
const ScreenshotsEnv = "CLEARANCE_CONSOLE_SCREENSHOTS"

// shot writes a screenshot of the whole page as NAME.png.
func (p *page) shot(name string) {
	p.t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		dir = p.t.TempDir()
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// location is the page's URL.
func (p *page) location() string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Location())
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// waitFor waits until the page's path is path and sel is visible (a page reached through
// redirects and the console's own hop after the provider).
func (p *page) waitFor(path, sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("waiting for %s on %s: %v (at %s)", sel, path, err, p.location())
	}
	if got := p.location(); !strings.HasPrefix(got, p.base+path) {
		p.t.Fatalf("the browser is at %s, want %s%s", got, p.base, path)
	}
}

// cookies are every cookie the browser holds, for every site.
func (p *page) cookies() []*network.Cookie {
	p.t.Helper()
	res, err := chromedp.Call(p.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.base, env.OIDC.Issuer}})
	if err != nil {
		p.t.Fatal(err)
	}
	return res.Cookies
}

// signIn signs who in with the provider from the sign-in page and opens org.
func (p *page) signIn(who, org string, groups ...string) {
	p.t.Helper()
	if status := p.open("/login"); status != http.StatusOK {
		p.t.Fatalf("the sign-in page: status %d", status)
	}
	env.OIDC.QueueUser(who, groups...)
	p.submit("#oidc-sign-in")
	p.waitFor("/org", "#org")
	p.noSecretOnPage()
	p.fill("#org", org)
	if status := p.submit("form[action='/org'].stack button[type=submit]"); status != http.StatusOK {
		p.t.Fatalf("opening org %s: status %d: %s", org, status, p.text("main"))
	}
	p.noSecretOnPage()
}

// noSecretOnPage fails the test when the page, or a cookie, holds a code or token the
// provider issued.
func (p *page) noSecretOnPage() {
	p.t.Helper()
	html := p.html()
	var jar strings.Builder
	for _, c := range p.cookies() {
		jar.WriteString(c.Name + "=" + c.Value + "\n")
	}
	for _, s := range env.OIDC.Issued.All() {
		if strings.Contains(html, s.Value) {
			p.t.Errorf("the page at %s holds %s", p.location(), s.Label)
		}
		if strings.Contains(jar.String(), s.Value) {
			p.t.Errorf("a cookie holds %s", s.Label)
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
