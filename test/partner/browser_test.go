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

package partner

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The org admin's side: a person with a ServiceAccount in their org, signing in to the console
// with a token of it in Debian's Chromium (as internal/console's browser tests do).

// person is someone with a ServiceAccount in an org, bound to Clearance's people roles there.
type person struct {
	name, org, token string
}

// username is the person as the apiserver names them.
func (p person) username() string { return "system:serviceaccount:" + p.org + ":" + p.name }

// newPerson creates ServiceAccount name in org, binds it to clusterRoles there and returns a
// token for it from the TokenRequest API, as kubectl create token does.
func newPerson(t *testing.T, org, name string, clusterRoles ...string) person {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name}}
	must(t, env.Client.Create(ctx, sa))
	for _, role := range clusterRoles {
		must(t, env.Client.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name + "-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: org, Name: name}},
		}))
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	must(t, err)
	tr, err := cs.CoreV1().ServiceAccounts(org).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for %s/%s: %v", org, name, err)
	}
	secrets.Add("ServiceAccount token of "+org+"/"+name, tr.Status.Token)
	return person{name: name, org: org, token: tr.Status.Token}
}

// chromium is the system browser, or the test is skipped (as the console's browser tests are).
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
	t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it): the consent needs a browser")
	return ""
}

// actionTimeout bounds one step in the browser: a missing button fails the test in this time.
const actionTimeout = 30 * time.Second

// page is one headless Chromium of its own (its own profile, so its own cookies).
type page struct {
	t   *testing.T
	ctx context.Context
}

func newPage(t *testing.T) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	// What the browser loaded and what failed, without queries (codes, states), shown when the
	// test fails: a navigation the browser stops shows nowhere else.
	var trail browserTrail
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
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return &page{t: t, ctx: ctx}
}

// open loads a URL and waits until the page it lands on loaded.
func (p *page) open(u string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(u)); err != nil {
		p.t.Fatalf("opening %s: %v", redactURL(u), err)
	}
}

// waitVisible waits, through navigations, until sel is shown.
func (p *page) waitVisible(sel, what string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("no %s (%s) in the browser: %v", what, sel, err)
	}
}

// submit clicks a button (or link) that loads a new page and waits until it loaded. (The pages'
// contents tell what happened: chromedp at times ends a load without the document's response.)
func (p *page) submit(sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		p.t.Fatalf("clicking %s: %v", sel, err)
	}
}

// submitAsync is submit in the background, for a test that watches what the click does while
// the page loads; the channel says how the load ended.
func (p *page) submitAsync(sel string) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
		defer cancel()
		_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
		done <- err
	}()
	return done
}

// fill types value into a field, replacing what it holds; choose picks an option of a select.
func (p *page) fill(sel, value string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.SetValue(chromedp.CSS(sel), value)); err != nil {
		p.t.Fatalf("filling %s: %v", sel, err)
	}
}

func (p *page) choose(sel, value string) { p.t.Helper(); p.fill(sel, value) }

// text is the visible text of the first element sel matches.
func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("reading %s: %v", sel, err)
	}
	return s
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

// options are the values of a select's options.
func (p *page) options(sel string) []string {
	p.t.Helper()
	vals, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](fmt.Sprintf("Array.from(document.querySelectorAll('%s option')).map(o => o.value)", sel)))
	if err != nil {
		p.t.Fatal(err)
	}
	return vals
}

// signIn answers the console's sign-in form the browser was sent to with the person's token.
func (p *page) signIn(who person) {
	p.t.Helper()
	p.waitVisible("#token", "sign-in form")
	p.fill("#token", who.token)
	p.submit("form[action='/login'] button[type=submit]")
	if p.count("#token") != 0 {
		p.t.Fatalf("signing in as %s: %s", who.name, p.text("main"))
	}
}

// count is how many elements sel matches.
func (p *page) count(sel string) int {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

// post sends a form to the console as this browser's session would, with the session's cookie
// and CSRF token (someone scripting their own session), and returns the status and the page.
func (p *page) post(path string, form url.Values) (int, string) {
	p.t.Helper()
	form.Set("csrf", p.value("input[name=csrf]"))
	res, err := chromedp.Call(p.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{consoleURL}})
	if err != nil {
		p.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, consoleURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range res.Cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: actionTimeout}
	resp, err := c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// browserTrail records a browser's navigations from the event goroutine.
type browserTrail struct {
	mu    sync.Mutex
	lines []string
}

func (b *browserTrail) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, line)
}

func (b *browserTrail) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// redactURL drops a URL's query (a code, a state) from a message.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
