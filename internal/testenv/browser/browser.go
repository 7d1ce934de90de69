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

// Package browser drives Debian's Chromium, headless, through chromedp for the tests that use
// the console as people do: one Page is a browser of its own (its own profile, so its own
// cookies) with the actions and readings those tests share, each bounded in time so that a
// missing button fails the test at once, and screenshots at a desktop's and a phone's width.
// What one front end's pages hold (the console's sign-in form, its dialogs) stays in its tests.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// ScreenshotsEnv names a directory the tests write their screenshots to (the ones in
// docs/console/ come from there); unset, they go to each test's temporary directory.
const ScreenshotsEnv = "CLEARANCE_CONSOLE_SCREENSHOTS"

// Chromium is the system browser, or the test is skipped; why says what needs it.
func Chromium(t *testing.T, why string) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skipf("chromium is not installed (apt-get install chromium; .ci/run installs it): %s", why)
	return ""
}

// Options say how to start a page. Unset fields take the defaults named.
type Options struct {
	// Base is the site Open's paths are relative to, Post sends to and GrantClipboard grants.
	Base string
	// Width and Height are the window's, 1280 by 800.
	Width, Height int
	// Timeout bounds the browser's whole life, 3 minutes.
	Timeout time.Duration
	// ActionTimeout bounds one click or wait, 45 seconds.
	ActionTimeout time.Duration
	// Flags are more of Chromium's options, such as a chromedp.Flag.
	Flags []chromedp.ExecAllocatorOption
	// BeforeShot is a script run in the page before each screenshot, such as one that blurs key
	// material: a screenshot is test output, and test output never holds a key.
	BeforeShot string
	// Navigations logs, when the test fails, the documents the browser loaded (without their
	// queries) and the loads that failed: a navigation the browser stops shows nowhere else.
	Navigations bool
	// Why says what needs the browser, in the message of the test skipped without one.
	Why string
}

// Page is one tab of a headless Chromium of its own.
type Page struct {
	T *testing.T
	// Ctx is the tab's: chromedp actions run in it.
	Ctx context.Context
	// Base, Width and ActionTimeout are the Options', defaults filled in.
	Base          string
	Width         int
	ActionTimeout time.Duration

	beforeShot string
	shots      string
}

// New starts a headless Chromium, or skips the test when there is none. It stops with the
// test.
func New(t *testing.T, o Options) *Page {
	t.Helper()
	o = o.withDefaults()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t, o.Why)),
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(o.Width, o.Height),
	)
	opts = append(opts, o.Flags...)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, o.Timeout)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if o.Navigations {
		logNavigations(t, ctx)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(o.Width), int64(o.Height))); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	shots := os.Getenv(ScreenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	}
	return &Page{T: t, Ctx: ctx, Base: o.Base, Width: o.Width, ActionTimeout: o.ActionTimeout, beforeShot: o.BeforeShot, shots: shots}
}

func (o Options) withDefaults() Options {
	if o.Width == 0 {
		o.Width = 1280
	}
	if o.Height == 0 {
		o.Height = 800
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.ActionTimeout == 0 {
		o.ActionTimeout = 45 * time.Second
	}
	return o
}

// logNavigations records the documents the tab loads and the loads that fail, and logs them
// when the test fails.
func logNavigations(t *testing.T, ctx context.Context) {
	var trail navigations
	_ = chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if e.Type == network.ResourceTypeDocument {
				trail.add(fmt.Sprintf("%s %s", e.Request.Method, redactURL(e.Request.URL)))
			}
		case *network.EventLoadingFailed:
			trail.add(fmt.Sprintf("failed: %s %s", e.ErrorText, e.BlockedReason))
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the browser's navigations:\n%s", trail.String())
		}
	})
}

// navigations records a browser's navigations from the event goroutine.
type navigations struct {
	mu    sync.Mutex
	lines []string
}

func (n *navigations) add(line string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lines = append(n.lines, line)
}

func (n *navigations) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.lines, "\n")
}

// redactURL drops a URL's query (a code, a state) from a message.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
