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
	"math/bits"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
)

// +kubebuilder:webhook:path=/validate-access-clearance-dev-v1alpha1-application,mutating=false,failurePolicy=ignore,sideEffects=None,groups=access.clearance.dev,resources=applications,verbs=create;update,versions=v1alpha1,name=vapplication.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"pinned-id-set-or-changed","expression":"object.spec.?applicationID.orValue('') != '' && (request.operation != 'UPDATE' || object.spec.applicationID != oldObject.spec.?applicationID.orValue(''))"}]}`

// applicationValidator keeps pinned Application IDs unique across the cluster: a lookup the
// apiserver cannot make. It is called only when spec.applicationID is set or changed, and fails
// open: the Application controller holds the rule (a second claimant of an ID gets none and is
// marked Conflict), this only says so at apply time.
type applicationValidator struct{ client client.Reader }

// withApplicationID is all the Application and OrgConnection webhooks read of an object: its
// name, namespace and spec.applicationID (an Application's pinned ID, the ID a connection
// grants).
type withApplicationID struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		ApplicationID string `json:"applicationID"`
	} `json:"spec"`
}

func (v *applicationValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	var app withApplicationID
	if err := decodeObject(req, &app); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	id := app.Spec.ApplicationID
	if id == "" {
		return admission.Allowed("")
	}
	ns := namespaceOf(req, app.Metadata.Namespace)
	var apps v1.ApplicationList
	if err := v.client.List(ctx, &apps, client.MatchingFields{index.ApplicationClaimedID: id}); err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	for _, other := range apps.Items {
		if other.Namespace != ns || other.Name != app.Metadata.Name {
			return admission.Denied(fmt.Sprintf("application ID %s already belongs to Application %s/%s: remove spec.applicationID to have a new ID generated",
				id, other.Namespace, other.Name))
		}
	}
	return admission.Allowed("")
}

// +kubebuilder:webhook:path=/validate-access-clearance-dev-v1alpha1-apikey,mutating=false,failurePolicy=ignore,sideEffects=None,groups=access.clearance.dev,resources=apikeys,verbs=create;update,versions=v1alpha1,name=vapikey.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"rate-limits-set-or-changed","expression":"size(object.spec.?rateLimits.orValue([])) > 0 && (request.operation != 'UPDATE' || object.spec.rateLimits != oldObject.spec.?rateLimits.orValue([]))"}]}`

// apiKeyValidator keeps a key's rate limits within its Application's, which needs the
// Application: a lookup the apiserver cannot make. It is called only for a key whose
// spec.rateLimits is set or changed (an ordinary key's create never leaves the apiserver), and
// fails open: the verifier holds the rule (it applies the narrower of the key's and the
// Application's limit to every request), this only says so at apply time.
type apiKeyValidator struct{ client client.Reader }

// limitedKey is all of an APIKey the webhook reads.
type limitedKey struct {
	Metadata struct {
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		ApplicationName string         `json:"applicationName"`
		RateLimits      []v1.RateLimit `json:"rateLimits"`
	} `json:"spec"`
}

func (v apiKeyValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	var key limitedKey
	if err := decodeObject(req, &key); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if err := v.narrowsRateLimits(ctx, namespaceOf(req, key.Metadata.Namespace), key.Spec.ApplicationName, key.Spec.RateLimits); err != nil {
		return admission.Denied(err.Error())
	}
	return admission.Allowed("")
}

// narrowsRateLimits refuses a key bucket its Application does not define, or one that allows
// more requests per second than the Application's. An Application not there yet (GitOps may
// apply the key first) leaves the check to the verifier, which always applies the narrower.
func (v apiKeyValidator) narrowsRateLimits(ctx context.Context, namespace, appName string, limits []v1.RateLimit) error {
	if len(limits) == 0 {
		return nil
	}
	app := &v1.Application{}
	if err := v.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: appName}, app); err != nil {
		return client.IgnoreNotFound(err)
	}
	defined := map[string]v1.RateLimit{}
	for _, l := range app.Spec.RateLimits {
		defined[l.Name] = l
	}
	for _, l := range limits {
		appLimit, ok := defined[l.Name]
		if !ok {
			return fmt.Errorf("rate limit bucket %q is not defined by Application %s: a key may only narrow its application's buckets", l.Name, app.Name)
		}
		if l.Limit > appLimit.Limit || fasterThan(l, appLimit) {
			return fmt.Errorf("rate limit %q (%d per %s) allows more than Application %s's (%d per %s): a key may only narrow it",
				l.Name, l.Limit, l.Period.Duration, app.Name, appLimit.Limit, appLimit.Period.Duration)
		}
	}
	return nil
}

// fasterThan reports whether a allows more requests per second than b: a.limit/a.period >
// b.limit/b.period, compared exactly, without division, as a.limit·b.period > b.limit·a.period
// in 128 bits, where the product of any two int64 fits (periods in nanoseconds: a fraction of a
// second counts). A period that is not positive (the CRD refuses it) is faster than any.
func fasterThan(a, b v1.RateLimit) bool {
	if a.Period.Duration <= 0 || b.Period.Duration <= 0 {
		return a.Period.Duration <= 0 && b.Period.Duration > 0
	}
	aHi, aLo := bits.Mul64(uint64(max(a.Limit, 0)), uint64(b.Period.Duration))
	bHi, bLo := bits.Mul64(uint64(max(b.Limit, 0)), uint64(a.Period.Duration))
	return aHi > bHi || (aHi == bHi && aLo > bLo)
}
