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
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
)

// +kubebuilder:webhook:path=/validate-access-clearance-dev-v1alpha1-orgconnection,mutating=false,failurePolicy=ignore,sideEffects=None,groups=access.clearance.dev,resources=orgconnections,verbs=create,versions=v1alpha1,name=vorgconnection.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5

// orgConnectionValidator tells whoever creates an OrgConnection that the org connects that
// application already, and warns when no Application has the ID yet: lookups the apiserver
// cannot make. Who may assign which role is the apiserver's own policy
// (config/policies/role_assignment.yaml), not this. It is called only on create
// (spec.applicationID cannot change) and fails open: the OrgConnection controller holds the
// rule (a second connection of an application grants nothing while the first is there, and is
// marked Conflict), this only says so at apply time.
type orgConnectionValidator struct {
	client client.Reader
	// ownWork times each admission (ownwork.go).
	ownWork *ownWork
}

func (v *orgConnectionValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	defer v.ownWork.observe(ctx)
	var conn withApplicationID
	if err := decodeObject(req, &conn); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	ns := namespaceOf(req, conn.Metadata.Namespace)
	if err := v.unique(ctx, ns, conn.Metadata.Name, conn.Spec.ApplicationID); err != nil {
		return admission.Denied(err.Error())
	}
	return admission.Allowed("").WithWarnings(v.warnings(ctx, conn.Spec.ApplicationID)...)
}

// unique refuses a second connection of the same application in one org. It reads the cache:
// a consistent list from the apiserver cost a create 60–95 ms (the apiserver waits for its
// own watch cache to catch up). A second connection created before the cache has seen the
// first gets through, and the OrgConnection controller then marks it Conflict: it grants
// nothing while the first is there.
func (v *orgConnectionValidator) unique(ctx context.Context, org, name, applicationID string) error {
	var conns v1.OrgConnectionList
	if err := v.client.List(ctx, &conns, client.InNamespace(org), client.MatchingFields{index.ConnectionApplicationID: applicationID}); err != nil {
		return err
	}
	for _, other := range conns.Items {
		if other.Name != name {
			return fmt.Errorf("org %q already connects application %s with OrgConnection %q: edit the role there instead of creating another connection",
				org, applicationID, other.Name)
		}
	}
	return nil
}

// warnings tell a user what is allowed but worth a second look, and needs a lookup (what
// needs none, such as a role above Observer, the policy clearance-advice says).
func (v *orgConnectionValidator) warnings(ctx context.Context, applicationID string) admission.Warnings {
	var apps v1.ApplicationList
	if err := v.client.List(ctx, &apps, client.MatchingFields{index.ApplicationClaimedID: applicationID}); err == nil && len(apps.Items) == 0 {
		return admission.Warnings{fmt.Sprintf("no Application has ID %s yet; the connection resolves by itself when it appears (GitOps may apply it later)", applicationID)}
	}
	return nil
}
