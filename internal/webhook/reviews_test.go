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
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// countingReviewer counts the SubjectAccessReviews sent to the apiserver.
type countingReviewer struct {
	client.Client
	reviews atomic.Int32
}

func (c *countingReviewer) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.reviews.Add(1)
	return c.Client.Create(ctx, obj, opts...)
}

func TestAllowedRoleReviewsAreRememberedForTheirTTLAndRefusalsNever(t *testing.T) {
	peopleRoles(t)
	org := env.Namespace(t, "reviews")
	rita := newPerson(t, org, "rita", "clearance-org-admin")
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	allowed, err := newReviewCache(10*time.Second, clk, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	reviewer := &countingReviewer{Client: env.Client}
	v := &orgConnectionValidator{reviewer: reviewer, allowed: allowed}
	ctx := context.Background()
	user := authenticationv1.UserInfo{Username: rita.user, Groups: []string{"system:authenticated"}, Extra: map[string]authenticationv1.ExtraValue{"acr": {"mfa"}}}
	expect := func(what string, u authenticationv1.UserInfo, role v1.Role, allow bool, reviews int32) {
		t.Helper()
		err := v.mayAssign(ctx, u, org, role)
		if (err == nil) != allow {
			t.Errorf("%s: allowed %v, want %v (%v)", what, err == nil, allow, err)
		}
		if got := reviewer.reviews.Load(); got != reviews {
			t.Errorf("%s: %d SubjectAccessReviews so far, want %d", what, got, reviews)
		}
	}

	expect("first assignment", user, v1.RoleAnalyst, true, 1)
	expect("same user, org and role", user, v1.RoleAnalyst, true, 1)
	expect("another role", user, v1.RoleTechnician, true, 2)
	other := user
	other.Extra = map[string]authenticationv1.ExtraValue{"acr": {"password"}}
	expect("the same name with other extra", other, v1.RoleAnalyst, true, 3)
	other = user
	other.Groups = []string{"system:authenticated", "partners"}
	expect("the same name with other groups", other, v1.RoleAnalyst, true, 4)

	mallory := authenticationv1.UserInfo{Username: "mallory", Groups: []string{"system:authenticated"}}
	expect("a user without the bind verb", mallory, v1.RoleObserver, false, 5)
	expect("refusals are not remembered", mallory, v1.RoleObserver, false, 6)

	// Taking the permission away: remembered answers hold until their TTL, then the apiserver
	// is asked again (its RBAC cache may take a moment to see the deletion).
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "rita-clearance-org-admin"}}
	if err := env.Client.Delete(ctx, rb); err != nil {
		t.Fatal(err)
	}
	expect("within the TTL after the permission went", user, v1.RoleAnalyst, true, 6)
	refused := false
	for deadline := time.Now().Add(10 * time.Second); !refused && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		clk.Step(11 * time.Second)
		refused = v.mayAssign(ctx, user, org, v1.RoleAnalyst) != nil
	}
	if !refused {
		t.Error("still allowed past the TTL after the permission went")
	}
	if cached, asked := counterValue(t, allowed.lookups.WithLabelValues("cached")), counterValue(t, allowed.lookups.WithLabelValues("asked")); cached != 2 || asked != float64(reviewer.reviews.Load()) {
		t.Errorf("clearance_webhook_role_reviews_total: cached %v (want 2), asked %v (want %d)", cached, asked, reviewer.reviews.Load())
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestReviewKeysTellGroupsAndExtraApart(t *testing.T) {
	sar := func(groups []string, extra map[string]authorizationv1.ExtraValue) *authorizationv1.SubjectAccessReview {
		return &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "u", Groups: groups, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "org", Verb: "bind", Resource: "orgroles", Name: "Analyst"},
		}}
	}
	keys := map[string]string{}
	for what, s := range map[string]*authorizationv1.SubjectAccessReview{
		"groups a,b":        sar([]string{"a", "b"}, nil),
		"group \"a,b\"":     sar([]string{"a,b"}, nil),
		"no groups":         sar(nil, nil),
		"extra k=[a b]":     sar(nil, map[string]authorizationv1.ExtraValue{"k": {"a", "b"}}),
		"extra k=[\"a,b\"]": sar(nil, map[string]authorizationv1.ExtraValue{"k": {"a,b"}}),
		"extra k=[] j=[]":   sar(nil, map[string]authorizationv1.ExtraValue{"k": {}, "j": {}}),
		"extra kj=[]":       sar(nil, map[string]authorizationv1.ExtraValue{"kj": {}}),
	} {
		k := reviewKey(s)
		if prev, dup := keys[k]; dup {
			t.Errorf("%s and %s share a key", what, prev)
		}
		keys[k] = what
	}
}
