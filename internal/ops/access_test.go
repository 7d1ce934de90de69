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
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/clearance-dev/clearance/internal/ops"
)

// TestOnlyWhoMayListAnOrgsConnectionsMayReadItsActivity: the apiserver answers for the person
// behind the client, about the org asked of: listing the org's OrgConnections is what counts,
// not getting them, listing its keys, or listing another org's connections.
func TestOnlyWhoMayListAnOrgsConnectionsMayReadItsActivity(t *testing.T) {
	org, other := env.Namespace(t, "activity"), env.Namespace(t, "activity-other")
	for _, tc := range []struct {
		who  string
		c    client.Client
		want bool
	}{
		{"an org admin", env.Client, true},
		{"someone who may list its connections", person(t, org, "lena", clearanceRule("orgconnections", []string{"list"})), true},
		{"someone who may only get and watch them", person(t, org, "gabe", clearanceRule("orgconnections", []string{"get", "watch"})), false},
		{"someone who may list its keys", person(t, org, "kim", clearanceRule("apikeys", []string{"list"})), false},
		{"someone who may list another org's connections", person(t, other, "otto", clearanceRule("orgconnections", []string{"list"})), false},
	} {
		may, err := ops.MayReadActivity(ctx(), tc.c, org)
		if err != nil || may != tc.want {
			t.Errorf("%s: may read the activity %v (%v), want %v", tc.who, may, err, tc.want)
		}
	}
}

// TestAnAccessReviewThatGetsNoAnswerNeverAllows: when the apiserver cannot be asked (here the
// request is cancelled before it is sent), the answer is no, with an error saying what was
// being asked: never a yes that a caller reading the answer first would act on.
func TestAnAccessReviewThatGetsNoAnswerNeverAllows(t *testing.T) {
	org := env.Namespace(t, "activity-unasked")
	cancelled, cancel := context.WithCancel(ctx())
	cancel()
	may, err := ops.MayReadActivity(cancelled, env.Client, org)
	if may || err == nil || !strings.Contains(err.Error(), "asking the apiserver whether you may read the activity of "+org) {
		t.Errorf("an unanswered review: may read the activity %v (%v), want no and what was asked", may, err)
	}
}
