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
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// MayReadActivity says whether the person behind c may see what applications did in org:
// whoever may list the org's OrgConnections (a SelfSubjectAccessReview with c's own
// credentials). The console and `kubectl clearance usage` ask it before any figure of an org is
// read from Prometheus, which knows nothing of who asks.
func MayReadActivity(ctx context.Context, c client.Client, org string) (bool, error) {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: org, Verb: "list",
			Group: v1.GroupVersion.Group, Resource: "orgconnections"}}}
	if err := c.Create(ctx, review); err != nil {
		return false, fmt.Errorf("asking the apiserver whether you may read the activity of %s: %w", org, err)
	}
	return review.Status.Allowed, nil
}
