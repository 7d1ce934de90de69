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

package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/testenv/browser"
)

var (
	env        *testenv.Env
	operator   *testenv.Operator
	consoleURL string
	verifier   *stubVerifier
)

// TestMain starts the control plane and one operator process with its webhooks (so admission
// decides as in a cluster) and the console on a loopback port, as make run does, and installs
// the people's ClusterRoles the chart ships. When prometheus is installed, two verifier
// replicas in this process and a Prometheus scraping them start first, and the console reads
// activity from it (the Activity tests skip otherwise).
func TestMain(m *testing.M) {
	testenv.Main(m, &env, func(e *testenv.Env) (func() error, error) {
		ports, err := testenv.FreePorts(1)
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(ports[0])
		consoleURL = "http://" + addr
		if verifier, err = newStubVerifier(); err != nil {
			return nil, err
		}
		args := []string{"--console-bind-address=" + addr, "--console-verifier-url=" + verifier.URL}
		stopActivity, err := startActivity()
		if err != nil {
			verifier.Close()
			return nil, err
		}
		if prom != nil {
			args = append(args, "--console-prometheus-url="+prom.URL)
		}
		operator, err = e.StartOperator(testenv.OperatorOptions{Name: "console", WithWebhooks: true, Args: args})
		if err != nil {
			stopActivity()
			verifier.Close()
			return nil, err
		}
		if err := applyPeopleRoles(e); err != nil {
			operator.Cleanup()
			stopActivity()
			return nil, err
		}
		testenv.CollectTokensForLeakCheck(issued.all)
		return func() error { operator.Cleanup(); verifier.Close(); stopActivity(); return nil }, nil
	})
}

// applyPeopleRoles installs config/rbac/people_roles.yaml, the clearance-observer, -analyst,
// -technician and -org-admin ClusterRoles.
func applyPeopleRoles(e *testenv.Env) error {
	if err := e.ApplyPeopleRoles(context.Background()); err != nil {
		return fmt.Errorf("applying the people roles: %w", err)
	}
	for i := range testRoles {
		if err := e.Client.Create(context.Background(), &testRoles[i]); err != nil {
			return err
		}
	}
	return nil
}

// tokens are the ServiceAccount tokens the tests signed in with: the leak check makes sure
// none reached a log.
type tokens struct {
	mu   sync.Mutex
	list []string
}

func (t *tokens) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.list = append(t.list, s)
}

func (t *tokens) all() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.list...)
}

var issued tokens

// person is someone with a ServiceAccount in an org, bound to Clearance's people roles (and
// the built-in ones the chart aggregates them into), signing in with a token of it.
type person struct {
	name, org, token string
}

// newPerson creates ServiceAccount name in org, binds it to clusterRoles there and returns a
// token for it from the TokenRequest API, as kubectl create token does.
func newPerson(t *testing.T, org, name string, clusterRoles ...string) person {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name}}
	if err := env.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	for _, role := range clusterRoles {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name + "-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: org, Name: name}},
		}
		if err := env.Client.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
	}
	token := env.ServiceAccountToken(t, org, name)
	issued.add(token)
	return person{name: name, org: org, token: token}
}

// Roles as an org binds them: Clearance's ClusterRole and, for what it does not cover
// (reading Secrets and RoleBindings, the metric catalog ConfigMap), what the built-in admin and view roles it
// aggregates into add in a cluster. (The test's control plane runs no ClusterRole
// aggregation, so the built-in roles stay empty: these two stand in for them.)
var (
	orgAdmin   = []string{"clearance-org-admin", secretReader, catalogReader, bindingReader}
	technician = []string{"clearance-technician", catalogReader}
	observer   = []string{"clearance-observer", catalogReader}
)

const (
	secretReader  = "console-test-secret-reader"
	catalogReader = "console-test-catalog-reader"
	bindingReader = "console-test-rolebinding-reader"
)

// testRoles are the stand-ins for the built-in admin and view roles.
var testRoles = []rbacv1.ClusterRole{
	{ObjectMeta: metav1.ObjectMeta{Name: secretReader}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}}}},
	{ObjectMeta: metav1.ObjectMeta{Name: catalogReader}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}}},
	{ObjectMeta: metav1.ObjectMeta{Name: bindingReader}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}, Verbs: []string{"get", "list", "watch"}}}},
}

// page is one browser tab on the console, with the console's own steps.
type page struct{ *browser.Page }

// newPage starts a headless Chromium of its own (its own profile, so its own cookies) on the
// console, at a window size.
func newPage(t *testing.T, width, height int) *page {
	t.Helper()
	return &page{browser.New(t, browser.Options{
		Base: consoleURL, Width: width, Height: height, Timeout: 5 * time.Minute,
		BeforeShot: beforeShot, Why: "the console's browser tests need it",
	})}
}

// beforeShot blurs key material on the page before a screenshot: a screenshot is test output,
// and test output never holds a key. An open dialog is shown whole, not scrolled within the
// screen.
const beforeShot = `document.querySelectorAll("#new-key, #token").forEach(e => { e.style.color = "transparent"; e.style.textShadow = "0 0 14px #1f2328"; });
document.querySelectorAll("dialog[open]").forEach(d => { d.style.maxHeight = "none"; d.style.position = "absolute"; d.style.top = "1rem"; d.style.marginTop = "0"; });`

// menu opens the ⋮ menu of the row sel matches.
func (p *page) menu(row string) {
	p.T.Helper()
	p.Click(row + " details.menu summary")
}

// dialog clicks a link that opens a dialog (console.js fetches the page's dialog part) and
// waits until the dialog shows it; it returns the dialog's heading.
func (p *page) dialog(sel string) string {
	p.T.Helper()
	// A dialog may be open already: wait for a heading that was not there before the click.
	if err := chromedp.Do(p.Ctx, chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("#dialog h1").forEach(h => h.setAttribute("data-old", ""))`)); err != nil {
		p.T.Fatal(err)
	}
	p.Click(sel)
	ctx, cancel := context.WithTimeout(p.Ctx, p.ActionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#dialog[open] .dialog-body h1:not([data-old])"))); err != nil {
		p.T.Fatalf("the dialog of %s did not open: %v", sel, err)
	}
	return p.Text("#dialog .dialog-body h1")
}

// dialogOpen waits for the dialog a page opens as it loads (the keys dialog after a change made
// in it).
func (p *page) dialogOpen() {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.ActionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#dialog[open] .dialog-body h1"))); err != nil {
		p.T.Fatalf("no dialog opened: %v", err)
	}
}

// sessionCookie is the console's session cookie as the browser holds it: __Host-, so Secure,
// which Chromium keeps from http://127.0.0.1, a secure origin to it as to every browser.
func (p *page) sessionCookie() *network.Cookie {
	p.T.Helper()
	cookies := p.Cookies(consoleURL)
	for _, c := range cookies {
		if c.Name == "__Host-clearance-console" {
			if !c.Secure || !c.HTTPOnly || c.Path != "/" {
				p.T.Fatalf("the browser holds the session cookie as %+v: want Secure, HttpOnly, Path=/", c)
			}
			return c
		}
	}
	p.T.Fatalf("the browser holds no console session cookie: %v", cookies)
	return nil
}

// signIn signs in with the person's token and opens their org.
func (p *page) signIn(who person) {
	p.T.Helper()
	p.Open("/login")
	if p.Width >= 1280 && who.name == "alice" {
		p.Shots("login")
	}
	p.Fill("#token", who.token)
	if status := p.Submit("form[action='/login'] button[type=submit]"); status != http.StatusOK {
		p.T.Fatalf("signing in as %s: status %d: %s", who.name, status, p.Text("main"))
	}
	if p.Width >= 1280 && who.name == "alice" {
		p.Shots("org")
	}
	p.Fill("#org", who.org)
	if status := p.Submit("form[action='/org'].stack button[type=submit]"); status != http.StatusOK {
		p.T.Fatalf("opening org %s: status %d: %s", who.org, status, p.Text("main"))
	}
	if html := p.HTML(); strings.Contains(html, who.token) {
		p.T.Fatal("the page holds the bearer token")
	}
}

// within waits for cond, reading the page again each time.
func within(t *testing.T, what string, cond func() error) {
	t.Helper()
	testenv.Within(t, 60*time.Second, what, cond)
}

// application creates an Application as an admin and waits for its ID.
func application(t *testing.T, org, name, description string, limits ...v1.RateLimit) *v1.Application {
	t.Helper()
	ctx := context.Background()
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name}, Spec: v1.ApplicationSpec{Description: description, RateLimits: limits}}
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	within(t, "the application's ID", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
			return err
		}
		if app.Status.ApplicationID == "" {
			return fmt.Errorf("no ID yet")
		}
		return nil
	})
	return app
}

// post sends a form to the console as this browser's session would, with the session's CSRF
// token (someone scripting their own session, say), and returns the status and the page.
func (p *page) post(path string, form url.Values) (int, string) {
	p.T.Helper()
	form.Set("csrf", p.Value("input[name=csrf]"))
	return p.postWithout(path, form)
}

// postWithout sends a form with the session cookie and only the fields given.
func (p *page) postWithout(path string, form url.Values) (int, string) {
	p.T.Helper()
	return p.Post(path, form, p.sessionCookie())
}

// activeKey creates an APIKey as an admin, waits until it is Active and returns it with its
// key from the Secret.
func activeKey(t *testing.T, org, name, app string) (*v1.APIKey, string) {
	t.Helper()
	ctx := context.Background()
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: name}, Spec: v1.APIKeySpec{ApplicationName: app, Description: "prod exporter"}}
	if err := env.Client.Create(ctx, key); err != nil {
		t.Fatal(err)
	}
	within(t, "the key to be Active", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), key); err != nil {
			return err
		}
		if key.Status.State != v1.KeyActive {
			return fmt.Errorf("state %q", key.Status.State)
		}
		return nil
	})
	var secret corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: key.Status.SecretName}, &secret); err != nil {
		t.Fatal(err)
	}
	return key, string(secret.Data[v1.SecretKeyToken])
}
