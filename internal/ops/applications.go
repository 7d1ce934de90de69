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

package ops

import (
	"context"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// generatedApplicationPrefix starts the name of an application whose description gives none.
const generatedApplicationPrefix = "app-"

// CreateApplication creates an Application in org ns described as description. Without a
// name, it is named after the description ("Acme BI export" → acme-bi-export), or app- and a
// generated tail when no name comes out of it. The description goes as given: the CRD's rules
// judge it (a blank one is refused in their words). It returns the Application as created, or
// as asked for when the apiserver refused it; its ID follows in status once the operator has
// allocated it.
func CreateApplication(ctx context.Context, c client.Client, ns, name, description string) (*v1.Application, error) {
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: strings.TrimSpace(name)},
		Spec: v1.ApplicationSpec{Description: description}}
	if app.Name == "" {
		app.Name = nameFrom(description)
	}
	if app.Name == "" {
		app.GenerateName = generatedApplicationPrefix
	}
	return app, c.Create(ctx, app)
}

var notNameChars = regexp.MustCompile(`[^a-z0-9]+`)

// nameFrom makes an object name out of a description ("Acme BI export" → acme-bi-export), or
// nothing when no valid name comes out of it.
func nameFrom(description string) string {
	name := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(description), "-"), "-")
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return ""
	}
	return name
}

// RenameApplication sets the description of the application, which is how the orgs it is
// connected to see it (renaming is an edit of spec.description; its name and ID stay). app
// names the Application and is updated from the answer.
func RenameApplication(ctx context.Context, c client.Client, app *v1.Application, description string) error {
	return mergePatch(ctx, c, app, map[string]any{"spec": map[string]any{"description": description}})
}

// SetApplicationEnabled switches the application's spec.enabled: off refuses every key of it
// in every org at once, keeping the keys; on makes the same keys work again. app names the
// Application and is updated from the answer.
func SetApplicationEnabled(ctx context.Context, c client.Client, app *v1.Application, on bool) error {
	return mergePatch(ctx, c, app, map[string]any{"spec": map[string]any{"enabled": on}})
}
