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

package webhook

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// +kubebuilder:webhook:path=/validate-access-clearance-dev-v1alpha1-application,mutating=false,failurePolicy=fail,sideEffects=None,groups=access.clearance.dev,resources=applications,verbs=create;update,versions=v1alpha1,name=vapplication.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5

// applicationValidator keeps pinned Application IDs unique across the cluster.
type applicationValidator struct{ client client.Client }

func (v *applicationValidator) ValidateCreate(ctx context.Context, app *v1.Application) (admission.Warnings, error) {
	return nil, v.uniqueID(ctx, app)
}

func (v *applicationValidator) ValidateUpdate(ctx context.Context, _, app *v1.Application) (admission.Warnings, error) {
	return nil, v.uniqueID(ctx, app)
}

func (v *applicationValidator) ValidateDelete(context.Context, *v1.Application) (admission.Warnings, error) {
	return nil, nil
}

// uniqueID refuses a pinned ID that another Application holds or claims.
func (v *applicationValidator) uniqueID(ctx context.Context, app *v1.Application) error {
	id := app.Spec.ApplicationID
	if id == "" {
		return nil
	}
	var apps v1.ApplicationList
	if err := v.client.List(ctx, &apps, client.MatchingFields{indexApplicationID: id}); err != nil {
		return err
	}
	for _, other := range apps.Items {
		if other.Namespace != app.Namespace || other.Name != app.Name {
			return fmt.Errorf("application ID %s already belongs to Application %s/%s: remove spec.applicationID to have a new ID generated",
				id, other.Namespace, other.Name)
		}
	}
	return nil
}

// +kubebuilder:webhook:path=/validate-access-clearance-dev-v1alpha1-apikey,mutating=false,failurePolicy=fail,sideEffects=None,groups=access.clearance.dev,resources=apikeys,verbs=create;update,versions=v1alpha1,name=vapikey.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5

// apiKeyValidator warns about keys that never expire.
type apiKeyValidator struct{}

func (apiKeyValidator) ValidateCreate(_ context.Context, key *v1.APIKey) (admission.Warnings, error) {
	return keyWarnings(key), nil
}

func (apiKeyValidator) ValidateUpdate(_ context.Context, _, key *v1.APIKey) (admission.Warnings, error) {
	return keyWarnings(key), nil
}

func (apiKeyValidator) ValidateDelete(context.Context, *v1.APIKey) (admission.Warnings, error) {
	return nil, nil
}

func keyWarnings(key *v1.APIKey) admission.Warnings {
	if key.Spec.ExpiresAt == nil && key.Spec.TTL == nil && key.Spec.Rotation == nil {
		return admission.Warnings{fmt.Sprintf(
			"APIKey %s never expires and never rotates: consider spec.ttl (e.g. %s) or spec.rotation", key.Name, (90 * 24 * time.Hour).String())}
	}
	return nil
}
