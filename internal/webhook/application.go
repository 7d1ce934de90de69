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

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
)

// +kubebuilder:webhook:path=/validate-access-clearance-dev-v1alpha1-application,mutating=false,failurePolicy=fail,sideEffects=None,groups=access.clearance.dev,resources=applications,verbs=create;update,versions=v1alpha1,name=vapplication.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"creation-or-spec-edited","expression":"request.operation != 'UPDATE' || object.?spec.orValue({}) != oldObject.?spec.orValue({})"}]}`

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
	if err := v.client.List(ctx, &apps, client.MatchingFields{index.ApplicationClaimedID: id}); err != nil {
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

// +kubebuilder:webhook:path=/validate-access-clearance-dev-v1alpha1-apikey,mutating=false,failurePolicy=fail,sideEffects=None,groups=access.clearance.dev,resources=apikeys,verbs=create;update,versions=v1alpha1,name=vapikey.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"creation-or-spec-edited","expression":"request.operation != 'UPDATE' || object.?spec.orValue({}) != oldObject.?spec.orValue({})"}]}`

// apiKeyValidator keeps a key's rate limits within its Application's and warns about keys
// that never expire.
type apiKeyValidator struct{ client client.Client }

func (v apiKeyValidator) ValidateCreate(ctx context.Context, key *v1.APIKey) (admission.Warnings, error) {
	if err := validSecretTemplate(key.Spec.SecretTemplate); err != nil {
		return nil, err
	}
	return keyWarnings(key), v.narrowsRateLimits(ctx, key)
}

func (v apiKeyValidator) ValidateUpdate(ctx context.Context, _, key *v1.APIKey) (admission.Warnings, error) {
	if err := validSecretTemplate(key.Spec.SecretTemplate); err != nil {
		return nil, err
	}
	return keyWarnings(key), v.narrowsRateLimits(ctx, key)
}

// validSecretTemplate refuses labels and annotations the Secret could never carry, at apply
// time rather than when the operator writes the Secret. (CEL cannot afford these checks over
// maps of unbounded strings; apimachinery's own validation is the reference anyway.)
func validSecretTemplate(t *v1.SecretTemplate) error {
	if t == nil {
		return nil
	}
	for k, val := range t.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("secretTemplate.labels key %q is not a valid label key: %s", k, errs[0])
		}
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			return fmt.Errorf("secretTemplate.labels[%s] is not a valid label value: %s", k, errs[0])
		}
	}
	for k := range t.Annotations {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("secretTemplate.annotations key %q is not a valid annotation key: %s", k, errs[0])
		}
	}
	return nil
}

func (apiKeyValidator) ValidateDelete(context.Context, *v1.APIKey) (admission.Warnings, error) {
	return nil, nil
}

// narrowsRateLimits refuses a key bucket its Application does not define, or one that allows
// more requests per second than the Application's. An Application not there yet (GitOps may
// apply the key first) leaves the check to the verifier, which always applies the narrower.
func (v apiKeyValidator) narrowsRateLimits(ctx context.Context, key *v1.APIKey) error {
	if len(key.Spec.RateLimits) == 0 {
		return nil
	}
	app := &v1.Application{}
	if err := v.client.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.Spec.ApplicationName}, app); err != nil {
		return client.IgnoreNotFound(err)
	}
	defined := map[string]v1.RateLimit{}
	for _, l := range app.Spec.RateLimits {
		defined[l.Name] = l
	}
	for _, l := range key.Spec.RateLimits {
		appLimit, ok := defined[l.Name]
		if !ok {
			return fmt.Errorf("rate limit bucket %q is not defined by Application %s: a key may only narrow its application's buckets", l.Name, app.Name)
		}
		// Compare rates without division: limit per period, periods in whole seconds.
		keySeconds, appSeconds := int64(l.Period.Seconds()), int64(appLimit.Period.Seconds())
		if l.Limit > appLimit.Limit || l.Limit*appSeconds > appLimit.Limit*keySeconds {
			return fmt.Errorf("rate limit %q (%d per %s) allows more than Application %s's (%d per %s): a key may only narrow it",
				l.Name, l.Limit, l.Period.Duration, app.Name, appLimit.Limit, appLimit.Period.Duration)
		}
	}
	return nil
}

func keyWarnings(key *v1.APIKey) admission.Warnings {
	if key.Spec.ExpiresAt == nil && key.Spec.TTL == nil && key.Spec.Rotation == nil {
		return admission.Warnings{fmt.Sprintf(
			"APIKey %s never expires and never rotates: consider spec.ttl (e.g. %s) or spec.rotation", key.Name, (90 * 24 * time.Hour).String())}
	}
	return nil
}
