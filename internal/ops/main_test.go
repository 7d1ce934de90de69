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
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// Each operation runs against a real kube-apiserver with Clearance's CRDs and admission
// policies and no operator: what the apiserver decides (CEL rules, the role assignment
// policy, RBAC) is decided as in a cluster.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func ctx() context.Context { return context.Background() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// person is a client acting as user, who holds only rules in ns: the client the console
// would get for a signed-in person, or the plugin for someone's kubeconfig.
func person(t *testing.T, ns, user string, rules ...rbacv1.PolicyRule) client.Client {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules}
	must(t, env.Client.Create(ctx(), role))
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
	must(t, env.Client.Create(ctx(), binding))
	c, err := client.New(env.As(user, nil, nil), client.Options{Scheme: env.Scheme})
	must(t, err)
	return c
}

// clearanceRule allows verbs on Clearance resources, optionally only on the named objects.
func clearanceRule(resource string, verbs []string, names ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{resource}, Verbs: verbs, ResourceNames: names}
}
