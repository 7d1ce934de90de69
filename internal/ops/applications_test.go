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

package ops_test

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

func TestCreateApplicationNamesItAfterItsDescriptionUnlessNamed(t *testing.T) {
	ns := env.Namespace(t, "apps")
	for _, c := range []struct{ name, description, want string }{
		{"", "Acme BI export", "acme-bi-export"},
		{" crm ", "CRM sync", "crm"},
		{"", "ÄÖÜ ✓", ""},                                                  // no name in it: app- and a generated tail
		{"", strings.Repeat("a", 49) + " export", strings.Repeat("a", 49)}, // cut at 50, never ending in a dash
		{"", "(Globex) CRM sync!", "globex-crm-sync"},                      // never starting or ending in a dash
		{"", strings.Repeat("b", 60), strings.Repeat("b", 50)},             // cut at 50, not before
	} {
		app, err := ops.CreateApplication(ctx(), env.Client, ns, c.name, c.description)
		must(t, err)
		if generated := strings.HasPrefix(app.Name, "app-") && len(app.Name) > len("app-"); c.want == "" && !generated || c.want != "" && app.Name != c.want {
			t.Errorf("%q (name %q): named %q, want %q (empty: generated)", c.description, c.name, app.Name, c.want)
		}
		var got v1.Application
		must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(app), &got))
		if got.Spec.Description != c.description || got.UID != app.UID {
			t.Errorf("%q: created %+v", c.description, got.Spec)
		}
	}

	_, err := ops.CreateApplication(ctx(), env.Client, ns, "blank", "   ")
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "description must not be blank") {
		t.Errorf("a blank description: %v, want the CEL rule's refusal", err)
	}
	_, err = ops.CreateApplication(ctx(), env.Client, ns, "", "Acme BI export")
	if !apierrors.IsAlreadyExists(err) {
		t.Errorf("the same description twice: %v, want AlreadyExists", err)
	}
}

func TestRenameApplicationChangesTheDescriptionAndNothingElse(t *testing.T) {
	ns := env.Namespace(t, "rename")
	created, err := ops.CreateApplication(ctx(), env.Client, ns, "bi", "Acme BI export")
	must(t, err)
	created.Spec.AllowedOrigins = []string{"https://bi.acme.example"}
	created.Spec.Enabled = ptr.To(false) // switched off: a rename must not switch it on again
	must(t, env.Client.Update(ctx(), created))

	app := &v1.Application{}
	app.Name, app.Namespace = "bi", ns
	must(t, ops.RenameApplication(ctx(), env.Client, app, "Acme BI"))
	if app.Spec.Description != "Acme BI" || len(app.Spec.AllowedOrigins) != 1 || app.UID != created.UID || app.IsEnabled() {
		t.Errorf("after renaming, the answer holds %+v", app.Spec)
	}

	err = ops.RenameApplication(ctx(), env.Client, app, "")
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "description must not be blank") {
		t.Errorf("renaming to nothing: %v, want the CEL rule's refusal", err)
	}
	missing := &v1.Application{}
	missing.Name, missing.Namespace = "nope", ns
	if err := ops.RenameApplication(ctx(), env.Client, missing, "x"); !apierrors.IsNotFound(err) {
		t.Errorf("renaming a missing application: %v, want NotFound", err)
	}
}

func TestSetApplicationEnabledSwitchesItOffAndOnAgain(t *testing.T) {
	ns := env.Namespace(t, "appswitch")
	app, err := ops.CreateApplication(ctx(), env.Client, ns, "bi", "Acme BI export")
	must(t, err)
	must(t, ops.SetApplicationEnabled(ctx(), env.Client, app, false))
	if app.IsEnabled() {
		t.Error("switched off, the answer says enabled")
	}
	must(t, ops.SetApplicationEnabled(ctx(), env.Client, app, true))
	var got v1.Application
	must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(app), &got))
	if !got.IsEnabled() || got.Spec.Enabled == nil {
		t.Errorf("switched on again, spec.enabled is %v", got.Spec.Enabled)
	}
}
