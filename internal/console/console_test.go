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
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

var appIDPattern = regexp.MustCompile(v1.ApplicationIDPattern)

// TestAnOrgAdminCreatesAnApplicationCopiesItsIDAndGeneratesAKeyShownOnce is seed 000's org
// admin: Users → Applications, create one with a description (a blank one gets the CEL rule's
// own words), copy its Application ID, open its keys, generate a key and see it once.
func TestAnOrgAdminCreatesAnApplicationCopiesItsIDAndGeneratesAKeyShownOnce(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "acme")
	admin := newPerson(t, org, "alice", orgAdmin...)
	p := newPage(t, 1280, 800)
	p.signIn(admin)
	p.shot("applications-empty")
	if got := p.text("h1"); got != "Applications" {
		t.Fatalf("after sign-in the page is %q, want Applications", got)
	}

	// A blank description reaches the apiserver, whose CEL rule says what is wrong.
	p.submit("a[href='/applications/new']")
	p.fill("#description", "   ")
	p.fill("#name", "blank")
	if status := p.submit("form[action='/applications/new'] button[type=submit]"); status != http.StatusUnprocessableEntity {
		t.Errorf("a blank description: status %d, want 422", status)
	}
	if msg := p.text("#error"); !strings.Contains(msg, "description must not be blank") {
		t.Errorf("a blank description: the page says %q, want the CEL rule's message", msg)
	}

	p.fill("#description", "Acme BI export")
	p.fill("#name", "")
	p.shot("application-new")
	p.submit("form[action='/applications/new'] button[type=submit]")
	app := &v1.Application{}
	within(t, "the card to show the Application ID", func() error {
		p.open("/applications")
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: "acme-bi-export"}, app); err != nil {
			return err
		}
		if app.Status.ApplicationID == "" || p.count("#id-acme-bi-export[value]") == 0 {
			return fmt.Errorf("no ID on the card yet")
		}
		return nil
	})
	id := p.value("#id-acme-bi-export")
	if id != app.Status.ApplicationID || !appIDPattern.MatchString(id) {
		t.Fatalf("the card shows ID %q, the Application has %q", id, app.Status.ApplicationID)
	}
	p.grantClipboard()
	p.click("button[data-copy='id-acme-bi-export']")
	if got := p.clipboard(); got != id {
		t.Errorf("Copy put %q on the clipboard, want the Application ID %s", got, id)
	}
	p.shot("applications")

	// Keys: none yet; generate one, shown once, as its Secret holds it.
	p.submit("a[href='/applications/acme-bi-export/keys']")
	p.fill("#key-description", "prod exporter")
	p.choose("#ttl", "720h")
	p.shot("keys-empty")
	if status := p.submit("form[action='/applications/acme-bi-export/keys'] button[type=submit]"); status != http.StatusCreated {
		t.Fatalf("generating a key: status %d: %s", status, p.text("main"))
	}
	p.shot("key-new")
	token := p.value("#new-key")
	var keys v1.APIKeyList
	if err := env.Client.List(ctx, &keys, client.InNamespace(org)); err != nil || len(keys.Items) != 1 {
		t.Fatalf("want one APIKey after generating, got %d (%v)", len(keys.Items), err)
	}
	key := keys.Items[0]
	var secret corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: org, Name: key.Status.SecretName}, &secret); err != nil {
		t.Fatal(err)
	}
	if token == "" || token != string(secret.Data["token"]) {
		t.Fatalf("the page shows a key that is not the one in Secret %s", key.Status.SecretName)
	}
	p.click("button[data-copy='new-key']")
	if p.clipboard() != token {
		t.Error("Copy did not put the new key on the clipboard")
	}
	if key.Spec.Description != "prod exporter" || key.Spec.TTL == nil || key.Spec.TTL.Duration.String() != "720h0m0s" {
		t.Errorf("the APIKey was created with %+v, want the description and the 30-day TTL chosen", key.Spec)
	}

	// Once: the keys page shows it masked only.
	p.submit("a[href='/applications/acme-bi-export/keys']")
	html := p.html()
	if strings.Contains(html, token) {
		t.Fatal("the keys page shows the key in full after it was shown once")
	}
	if !strings.Contains(html, key.Status.Masked) || !strings.Contains(p.text("tbody"), "Active") {
		t.Errorf("the keys page does not list key %s as Active: %s", key.Status.Masked, p.text("main"))
	}
	p.shot("keys")
}
