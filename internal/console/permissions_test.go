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
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// TestTheKeyFormOffersTheCatalogsPermissionsAndRefusesAKeyWithNoneTicked: the generate form has
// one checkbox per permission of the catalog, with its description; none ticked is refused with
// a sentence saying so (not a key with its application's whole role);
// a permission outside the catalog smuggled into the form is refused by the apiserver's policy,
// whose message the page shows; ticking one generates a key with just that permission.
func TestTheKeyFormOffersTheCatalogsPermissionsAndRefusesAKeyWithNoneTicked(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "perms")
	application(t, org, "bi", "Acme BI export")
	admin := newPerson(t, org, "alice", orgAdmin...)
	catalog, err := ops.ReadPermissions(ctx, env.Client, "clearance-system")
	if err != nil {
		t.Fatal(err)
	}
	p := newPage(t, 1280, 900)
	p.signIn(admin)
	p.Open("/applications/bi/keys")
	if got := p.Count("#key-permissions input[type=checkbox][name=scope]"); got != len(catalog.Permissions) {
		t.Errorf("the form has %d permission checkboxes, the catalog %d permissions", got, len(catalog.Permissions))
	}
	if p.Count("#key-permissions input:checked") != 0 {
		t.Error("a permission is ticked before the person ticks one")
	}
	text := strings.Join(strings.Fields(p.Text("#key-permissions")), " ")
	for _, perm := range catalog.Permissions {
		if !strings.Contains(text, perm.Name+" "+perm.Description) {
			t.Errorf("the form does not offer %s with its description %q: %s", perm.Name, perm.Description, text)
		}
	}
	p.Shot("key-permissions")

	form := "form[action='/applications/bi/keys'] button[type=submit]"
	p.Fill("#key-description", "nothing ticked")
	if status := p.Submit(form); status != http.StatusBadRequest {
		t.Errorf("no permission ticked: status %d, want 400", status)
	}
	if msg := p.Text("#error"); msg != "Tick at least one permission: a key gets only the permissions ticked, and none is not taken to mean all." {
		t.Errorf("no permission ticked: the page says %q", msg)
	}
	var keys v1.APIKeyList
	if err := env.Client.List(ctx, &keys, client.InNamespace(org)); err != nil || len(keys.Items) != 0 {
		t.Fatalf("no permission ticked created %d keys (%v)", len(keys.Items), err)
	}

	// A value the catalog does not list (a hand-made request): the apiserver refuses it.
	p.Click("#key-permissions input[value='metrics:read']")
	if _, err := chromedp.Run(p.Ctx, chromedp.Evaluate[any](`document.querySelector("#key-permissions input[value='metrics:read']").value = "metrics:write"`)); err != nil {
		t.Fatal(err)
	}
	if status := p.Submit(form); status != http.StatusForbidden {
		t.Errorf("a permission outside the catalog: status %d, want 403", status)
	}
	if msg := p.Text("#error"); !strings.Contains(msg, "names permission metrics:write, not in the permission catalog (ConfigMap clearance-system/clearance-permission-catalog)") {
		t.Errorf("a permission outside the catalog: the page says %q", msg)
	}
	if p.Count("#key-permissions input[value='metrics:write']:checked") != 0 {
		t.Error("the refused form ticked a permission the catalog does not list")
	}

	p.Click("#key-permissions input[value='exports:create']")
	if status := p.Submit(form); status != http.StatusCreated {
		t.Fatalf("one permission ticked: status %d: %s", status, p.Text("main"))
	}
	if err := env.Client.List(ctx, &keys, client.InNamespace(org)); err != nil || len(keys.Items) != 1 ||
		!slices.Equal(keys.Items[0].Spec.Scopes, []string{"exports:create"}) {
		t.Errorf("one permission ticked: keys %+v (%v)", keys.Items, err)
	}
}
