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

package browser

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Open loads a page of the site and returns its HTTP status.
func (p *Page) Open(path string) int64 {
	p.T.Helper()
	resp, err := chromedp.Run(p.Ctx, chromedp.NavigateResponse(p.Base+path))
	if err == nil && resp == nil {
		// A navigation still under way (the consent's redirects to the partner's app, whose
		// arrival the test saw before the browser committed it) took this one's place: again.
		resp, err = chromedp.Run(p.Ctx, chromedp.NavigateResponse(p.Base+path))
	}
	if err != nil || resp == nil {
		p.T.Fatalf("opening %s: %v (response %v)", path, err, resp)
	}
	return resp.Status
}

// Load loads a URL, of any site, and waits until the page it lands on loaded, without asking
// for its status: through redirects chromedp at times ends a load without the document's
// response.
func (p *Page) Load(u string) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.ActionTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(u)); err != nil {
		p.T.Fatalf("opening %s: %v", redactURL(u), err)
	}
}

// Submit clicks a button (or link) that loads a new page and returns that page's status, 0
// when chromedp ended the load without the document's response.
func (p *Page) Submit(sel string) int64 {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.ActionTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		p.T.Fatalf("clicking %s: %v", sel, err)
	}
	if resp == nil {
		return 0
	}
	return resp.Status
}

// SubmitAsync is Submit in the background, for a test that watches what the click does while
// the page loads; the channel says how the load ended.
func (p *Page) SubmitAsync(sel string) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(p.Ctx, p.ActionTimeout)
		defer cancel()
		_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
		done <- err
	}()
	return done
}

// Click clicks something that does not load a page (a Copy button, a checkbox).
func (p *Page) Click(sel string) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.ActionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		p.T.Fatalf("clicking %s: %v", sel, err)
	}
}

// Fill types value into a field, replacing what it holds.
func (p *Page) Fill(sel, value string) {
	p.T.Helper()
	action := chromedp.SetValue(chromedp.CSS(sel), value)
	if value == "" {
		action = chromedp.Clear(chromedp.CSS(sel)) // SetValue cannot tell "" from no answer
	}
	if err := chromedp.Do(p.Ctx, action); err != nil {
		p.T.Fatalf("filling %s: %v", sel, err)
	}
}

// Choose picks an option of a select by value.
func (p *Page) Choose(sel, value string) {
	p.T.Helper()
	if err := chromedp.Do(p.Ctx, chromedp.SetValue(chromedp.CSS(sel), value)); err != nil {
		p.T.Fatalf("choosing %s in %s: %v", value, sel, err)
	}
}

// WaitVisible waits, through navigations, until sel is shown; what names it in the failure.
func (p *Page) WaitVisible(sel, what string) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.ActionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		p.T.Fatalf("no %s (%s) in the browser: %v", what, sel, err)
	}
}

// WaitFor waits until the page's path is path and sel is visible (a page reached through
// redirects, through other sites).
func (p *Page) WaitFor(path, sel string) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.ActionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		p.T.Fatalf("waiting for %s on %s: %v (at %s)", sel, path, err, p.Location())
	}
	if got := p.Location(); !strings.HasPrefix(got, p.Base+path) {
		p.T.Fatalf("the browser is at %s, want %s%s", got, p.Base, path)
	}
}

// WithoutScript turns JavaScript off in the page, from its next load on: everything must
// work with links and forms alone.
func (p *Page) WithoutScript() {
	p.T.Helper()
	if _, err := chromedp.Call(p.Ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		p.T.Fatal(err)
	}
}

// Text is the visible text of the first element sel matches.
func (p *Page) Text(sel string) string {
	p.T.Helper()
	s, err := chromedp.Run(p.Ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.T.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// HTML is the whole document as the browser holds it.
func (p *Page) HTML() string {
	p.T.Helper()
	s, err := chromedp.Run(p.Ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		p.T.Fatal(err)
	}
	return s
}

// Count is how many elements sel matches.
func (p *Page) Count(sel string) int {
	p.T.Helper()
	n, err := chromedp.Run(p.Ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		p.T.Fatal(err)
	}
	return n
}

// Options are the values of a select's options.
func (p *Page) Options(sel string) []string {
	p.T.Helper()
	vals, err := chromedp.Run(p.Ctx, chromedp.Evaluate[[]string](fmt.Sprintf("Array.from(document.querySelectorAll('%s option')).map(o => o.value)", sel)))
	if err != nil {
		p.T.Fatal(err)
	}
	return vals
}

// Value is an input's value.
func (p *Page) Value(sel string) string {
	p.T.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		p.T.Fatalf("reading the value of %s: %v", sel, err)
	}
	return v
}

// Location is the page's URL.
func (p *Page) Location() string {
	p.T.Helper()
	s, err := chromedp.Run(p.Ctx, chromedp.Location())
	if err != nil {
		p.T.Fatal(err)
	}
	return s
}

// GrantClipboard lets the site read the clipboard, so a test can check what a Copy button put
// there.
func (p *Page) GrantClipboard() {
	p.T.Helper()
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(p.Ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:    cdpbrowser.PermissionSettingGranted, Origin: p.Base,
		}); err != nil {
			p.T.Fatalf("granting %s: %v", name, err)
		}
	}
}

// Clipboard is what the page's clipboard holds.
func (p *Page) Clipboard() string {
	p.T.Helper()
	s, err := chromedp.Run(p.Ctx, chromedp.Evaluate[string]("navigator.clipboard.readText()", chromedp.EvalAwaitPromise))
	if err != nil {
		p.T.Fatalf("reading the clipboard: %v", err)
	}
	return s
}

// Cookies are the cookies the browser holds for the URLs.
func (p *Page) Cookies(urls ...string) []*network.Cookie {
	p.T.Helper()
	res, err := chromedp.Call(p.Ctx, network.GetCookies, network.GetCookiesParams{URLs: urls})
	if err != nil {
		p.T.Fatal(err)
	}
	return res.Cookies
}

// Post sends a form to the site with the cookies given, as a script of the browser's own
// session would, and returns the status and the page; it follows no redirect.
func (p *Page) Post(path string, form url.Values, cookies ...*network.Cookie) (int, string) {
	p.T.Helper()
	req, err := http.NewRequest(http.MethodPost, p.Base+path, strings.NewReader(form.Encode()))
	if err != nil {
		p.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		p.T.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
