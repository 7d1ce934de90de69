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
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/index"
)

// +kubebuilder:webhook:path=/validate-access-clearance-dev-v1alpha1-orgconnection,mutating=false,failurePolicy=fail,sideEffects=None,groups=access.clearance.dev,resources=orgconnections,verbs=create;update,versions=v1alpha1,name=vorgconnection.access.clearance.dev,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"creation-or-spec-edited","expression":"request.operation != 'UPDATE' || object.?spec.orValue({}) != oldObject.?spec.orValue({})"}]}`

// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// orgConnectionValidator makes sure nobody assigns a role above their own, and that an org
// connects an application at most once.
type orgConnectionValidator struct {
	client client.Client
	// reviewer creates SubjectAccessReviews; a separate writer so tests can count reviews.
	reviewer client.Client
	// ownWork times each admission apart from the reviews it waits on (ownwork.go).
	ownWork *ownWork
}

// ValidateCreate checks the assignment and uniqueness, and warns about what GitOps users
// should know.
func (v *orgConnectionValidator) ValidateCreate(ctx context.Context, conn *v1.OrgConnection) (admission.Warnings, error) {
	defer v.ownWork.observe(ctx)
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if err := v.mayAssign(ctx, req.UserInfo, conn.Namespace, conn.Spec.Role); err != nil {
		return nil, err
	}
	if err := v.unique(ctx, conn); err != nil {
		return nil, err
	}
	return v.warnings(ctx, conn), nil
}

// ValidateUpdate checks a raised role, and widened metric sets (which grant the role over more
// metrics): lowering the role or narrowing the sets is allowed to whoever may update.
func (v *orgConnectionValidator) ValidateUpdate(ctx context.Context, old, conn *v1.OrgConnection) (admission.Warnings, error) {
	defer v.ownWork.observe(ctx)
	raised := conn.Spec.Role.Rank() > old.Spec.Role.Rank()
	widened := widensMetricSets(old.Spec.MetricSets, conn.Spec.MetricSets)
	if !raised && !widened {
		return nil, nil
	}
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if raised {
		if err := v.mayAssign(ctx, req.UserInfo, conn.Namespace, conn.Spec.Role); err != nil {
			return nil, err
		}
		return v.warnings(ctx, conn), nil
	}
	ok, err := v.mayBind(ctx, req.UserInfo, conn.Namespace, conn.Spec.Role)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("user %q may not widen the metric sets of OrgConnection %q, which grants role %s in org %q: widening them needs the bind verb on orgroles.access.clearance.dev named %q in that namespace, which an org admin of %q can grant (or narrow them, or lower the role, instead)",
			req.UserInfo.Username, conn.Name, conn.Spec.Role, conn.Namespace, conn.Spec.Role, conn.Namespace)
	}
	return nil, nil
}

// widensMetricSets says whether updated lets a connection reach metrics old did not: no sets means
// every set of the org.
func widensMetricSets(old, updated []string) bool {
	if len(old) == 0 {
		return false
	}
	if len(updated) == 0 {
		return true
	}
	for _, set := range updated {
		if !slices.Contains(old, set) {
			return true
		}
	}
	return false
}

// ValidateDelete allows disconnecting; protected connections are guarded by their own webhook.
func (v *orgConnectionValidator) ValidateDelete(context.Context, *v1.OrgConnection) (admission.Warnings, error) {
	return nil, nil
}

// mayAssign refuses, with what to do about it, a role the user may not bind in this org.
func (v *orgConnectionValidator) mayAssign(ctx context.Context, user authenticationv1.UserInfo, org string, role v1.Role) error {
	ok, err := v.mayBind(ctx, user, org, role)
	if err != nil || ok {
		return err
	}
	return fmt.Errorf("user %q may not assign role %s in org %q: assigning it needs the bind verb on orgroles.access.clearance.dev named %q in that namespace, which an org admin of %q can grant (the clearance-org-admin ClusterRole has it for every role)",
		user.Username, role, org, role, org)
}

// mayBind asks the apiserver, as Kubernetes RBAC does for role bindings, whether the user
// holds "bind" on the role in this org. The review copies the requester's username, UID,
// groups and extra exactly: dropping groups or extra misjudges OIDC users.
func (v *orgConnectionValidator) mayBind(ctx context.Context, user authenticationv1.UserInfo, org string, role v1.Role) (bool, error) {
	sar := BindReview(user, org, role)
	if err := v.ownWork.waiting(ctx, func() error { return v.reviewer.Create(ctx, sar) }); err != nil {
		return false, fmt.Errorf("could not check whether %q may assign role %s (SubjectAccessReview failed): %w", user.Username, role, err)
	}
	return sar.Status.Allowed, nil
}

// BindReview is the SubjectAccessReview the webhook sends before a role is assigned: may the
// user bind the role in the org. (The bench asks it too, as the floor under the webhook.)
func BindReview(user authenticationv1.UserInfo, org string, role v1.Role) *authorizationv1.SubjectAccessReview {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, vals := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(vals)
	}
	return &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   user.Username,
		UID:    user.UID,
		Groups: user.Groups,
		Extra:  extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: org,
			Verb:      "bind",
			Group:     v1.GroupVersion.Group,
			Resource:  "orgroles",
			Name:      string(role),
		},
	}}
}

// unique refuses a second connection of the same application in one org. It reads the cache:
// a consistent list from the apiserver cost a create 60–95 ms (the apiserver waits for its
// own watch cache to catch up). A second connection created before the cache has seen the
// first gets through, and the OrgConnection controller then marks it Conflict: it grants
// nothing while the first is there.
func (v *orgConnectionValidator) unique(ctx context.Context, conn *v1.OrgConnection) error {
	var conns v1.OrgConnectionList
	if err := v.client.List(ctx, &conns, client.InNamespace(conn.Namespace), client.MatchingFields{index.ConnectionApplicationID: conn.Spec.ApplicationID}); err != nil {
		return err
	}
	for _, other := range conns.Items {
		if other.Name != conn.Name {
			return fmt.Errorf("org %q already connects application %s with OrgConnection %q: edit the role there instead of creating another connection",
				conn.Namespace, conn.Spec.ApplicationID, other.Name)
		}
	}
	return nil
}

// warnings tell a user what is allowed but worth a second look.
func (v *orgConnectionValidator) warnings(ctx context.Context, conn *v1.OrgConnection) admission.Warnings {
	var w admission.Warnings
	var apps v1.ApplicationList
	if err := v.client.List(ctx, &apps, client.MatchingFields{index.ApplicationClaimedID: conn.Spec.ApplicationID}); err == nil && len(apps.Items) == 0 {
		w = append(w, fmt.Sprintf("no Application has ID %s yet; the connection resolves by itself when it appears (GitOps may apply it later)", conn.Spec.ApplicationID))
	}
	if conn.Spec.Role.Rank() > v1.RoleObserver.Rank() {
		w = append(w, fmt.Sprintf("role %s grants more than Observer (read-only, the recommended default): make sure application %s needs it", conn.Spec.Role, conn.Spec.ApplicationID))
	}
	return w
}
