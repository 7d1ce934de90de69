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

package browser_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/clearance-dev/clearance/internal/testenv/browser"
)

// form is a page with a form that posts back to itself and a select, and the answer it gives.
func form(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1", Path: "/"})
	if r.Method == http.MethodPost {
		c, _ := r.Cookie("session")
		fmt.Fprintf(w, `<main><h1>Hello %s</h1><p id="cookie">%v</p></main>`, r.FormValue("name"), c != nil)
		return
	}
	fmt.Fprint(w, `<main><form method="post" action="/"><input id="name" name="name" value="old">
<select id="color" name="color"><option value="red">Red</option><option value="blue">Blue</option></select>
<button type="submit">Send</button></form></main>`)
}

// TestAPageFillsAFormSendsItAndReadsTheAnswer: the shared actions and readings against a
// plain form, and a post made with the browser's own cookies.
func TestAPageFillsAFormSendsItAndReadsTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(form))
	defer srv.Close()
	p := browser.New(t, browser.Options{Base: srv.URL, Why: "the browser package's own test needs it"})

	if status := p.Open("/"); status != http.StatusOK {
		t.Fatalf("opening the form: status %d", status)
	}
	if got := p.Options("#color"); !slices.Equal(got, []string{"red", "blue"}) {
		t.Errorf("the select offers %v", got)
	}
	p.Fill("#name", "")
	if got := p.Value("#name"); got != "" {
		t.Errorf("after filling in nothing the field holds %q", got)
	}
	p.Fill("#name", "ada")
	p.Choose("#color", "blue")
	if status := p.Submit("button[type=submit]"); status != http.StatusOK {
		t.Fatalf("sending the form: status %d", status)
	}
	if got := p.Text("h1"); got != "Hello ada" {
		t.Errorf("the answer reads %q", got)
	}
	if n := p.Count("main h1"); n != 1 {
		t.Errorf("%d headings", n)
	}
	status, body := p.Post("/", url.Values{"name": {"bob"}}, p.Cookies(srv.URL)...)
	if status != http.StatusOK || body != `<main><h1>Hello bob</h1><p id="cookie">true</p></main>` {
		t.Errorf("posting with the browser's cookies: %d %s", status, body)
	}
}

// TestShotsAreTakenAtADesktopsAndAPhonesWidthAfterTheHook: NAME.png and NAME-phone.png land in
// the screenshots directory, and the BeforeShot script ran first.
func TestShotsAreTakenAtADesktopsAndAPhonesWidthAfterTheHook(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(form))
	defer srv.Close()
	dir := t.TempDir()
	t.Setenv(browser.ScreenshotsEnv, dir)
	p := browser.New(t, browser.Options{Base: srv.URL, BeforeShot: `document.querySelector("h1").textContent = "shot"`,
		Why: "the browser package's own test needs it"})
	p.Open("/")
	p.Fill("#name", "ada")
	p.Submit("button[type=submit]")
	p.Shots("answer")
	for _, name := range []string{"answer.png", "answer-phone.png"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := p.Text("h1"); got != "shot" {
		t.Errorf("after the screenshots the heading reads %q: the hook did not run", got)
	}
}
