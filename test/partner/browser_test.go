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
	"net/url"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearance-dev/clearance/internal/testenv/browser"
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
	token := env.ServiceAccountToken(t, org, name)
	secrets.Add("ServiceAccount token of "+org+"/"+name, token)
	return person{name: name, org: org, token: token}
}

// needsChromium says, when Chromium is missing, what the skipped test needed it for.
const needsChromium = "the consent needs a browser"

// page is one headless Chromium of its own (its own profile, so its own cookies) with the
// console's steps a partner's flow takes.
type page struct{ *browser.Page }

func newPage(t *testing.T) *page {
	t.Helper()
	return &page{browser.New(t, browser.Options{
		Base: consoleURL, Timeout: 2 * time.Minute, ActionTimeout: 30 * time.Second,
		Navigations: true, Why: needsChromium,
	})}
}

// signIn answers the console's sign-in form the browser was sent to with the person's token.
func (p *page) signIn(who person) {
	p.T.Helper()
	p.WaitVisible("#token", "sign-in form")
	p.Fill("#token", who.token)
	p.Submit("form[action='/login'] button[type=submit]")
	if p.Count("#token") != 0 {
		p.T.Fatalf("signing in as %s: %s", who.name, p.Text("main"))
	}
}

// post sends a form to the console as this browser's session would, with the session's cookie
// and CSRF token (someone scripting their own session), and returns the status and the page.
func (p *page) post(path string, form url.Values) (int, string) {
	p.T.Helper()
	form.Set("csrf", p.Value("input[name=csrf]"))
	return p.Post(path, form, p.Cookies(consoleURL)...)
}
