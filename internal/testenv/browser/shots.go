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
	"os"
	"path/filepath"

	"github.com/chromedp/chromedp"
)

// Shot writes a screenshot of the whole page as NAME.png, after the BeforeShot script.
func (p *Page) Shot(name string) {
	p.T.Helper()
	if p.beforeShot != "" {
		if err := chromedp.Do(p.Ctx, chromedp.Evaluate[chromedp.Void](p.beforeShot)); err != nil {
			p.T.Fatal(err)
		}
	}
	png, err := chromedp.Run(p.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.T.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.shots, name+".png"), png, 0o644); err != nil {
		p.T.Fatal(err)
	}
}

// Shots writes a screenshot at the page's width as NAME.png and one at a phone's width (390) as
// NAME-phone.png, marks the test failed when the page is wider than the phone's screen, then goes
// back to the page's width (800 high, whatever the window's height): the same page, dialog and all.
func (p *Page) Shots(name string) {
	p.T.Helper()
	p.Shot(name)
	if err := chromedp.Do(p.Ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		p.T.Fatal(err)
	}
	p.Shot(name + "-phone")
	if wide, err := chromedp.Run(p.Ctx, chromedp.Evaluate[bool]("document.documentElement.scrollWidth > window.innerWidth")); err != nil || wide {
		p.T.Errorf("%s is wider than a phone's screen (%v)", name, err)
	}
	if err := chromedp.Do(p.Ctx, chromedp.EmulateViewport(int64(p.Width), 800)); err != nil {
		p.T.Fatal(err)
	}
}
