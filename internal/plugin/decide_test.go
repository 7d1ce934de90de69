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

package plugin

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

func TestDefaultConnectionNamesAreValidObjectNames(t *testing.T) {
	for _, id := range []string{"app_7k2m9q4x8v1c5n3b6z0w2r4t8y", "app_00000000000000000000000000"} {
		name := ops.ConnectionName(id)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || name != "conn-"+id[len(id)-12:] {
			t.Errorf("connectionName(%s) = %s: %v", id, name, errs)
		}
	}
}

func TestSwitchingAMetricChangesOnlyWhatIsNeeded(t *testing.T) {
	listed := func() v1.MetricSetSpec {
		return v1.MetricSetSpec{Metrics: []v1.Metric{{Name: "on", Enabled: ptr.To(true)}, {Name: "off", Enabled: ptr.To(false)}, {Name: "defaulted"}}}
	}
	tests := []struct {
		metric      string
		on, changed bool
		want        string
	}{
		{"on", true, false, "on=true off=false defaulted=true"},
		{"defaulted", true, false, "on=true off=false defaulted=true"},
		{"off", true, true, "on=true off=true defaulted=true"},
		{"new", true, true, "on=true off=false defaulted=true new=true"},
		{"on", false, true, "on=false off=false defaulted=true"},
		{"defaulted", false, true, "on=true off=false defaulted=false"},
		{"off", false, false, "on=true off=false defaulted=true"},
		{"new", false, false, "on=true off=false defaulted=true"}, // not listed is off already
	}
	for _, tt := range tests {
		spec := listed()
		changed := ops.SetMetric(&spec, tt.metric, tt.on)
		got := ""
		for i, m := range spec.Metrics {
			if i > 0 {
				got += " "
			}
			got += fmt.Sprintf("%s=%t", m.Name, m.IsEnabled())
		}
		if changed != tt.changed || got != tt.want {
			t.Errorf("setMetric(%s, %t): changed %t, %s; want %t, %s", tt.metric, tt.on, changed, got, tt.changed, tt.want)
		}
	}
}

func TestKeyNewWaitsOnlyWhileTheOperatorCanStillMintTheKey(t *testing.T) {
	tests := []struct {
		state      v1.KeyState
		done, fail bool
	}{
		{"", false, false},
		{v1.KeyPending, false, false},
		{v1.KeyActive, true, false},
		{v1.KeyRotating, true, false},
		{v1.KeyFailed, true, true},
		{v1.KeyDisabled, true, true},
		{v1.KeyExpired, true, true},
	}
	for _, tt := range tests {
		done, err := keySettled(&v1.APIKey{Status: v1.APIKeyStatus{State: tt.state}})
		if done != tt.done || (err != nil) != tt.fail {
			t.Errorf("state %q: done %t, err %v", tt.state, done, err)
		}
	}
}

func TestAPIErrorsBecomeOneSentenceSayingWhatToDo(t *testing.T) {
	r := request{verb: "get", resource: "apikeys", kind: "APIKey", name: "k", namespace: "acme", notFound: "list the keys"}
	gr := schema.GroupResource{Group: "access.clearance.dev", Resource: "apikeys"}
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "access.clearance.dev", Kind: "MetricSet"}, "default",
		field.ErrorList{field.Invalid(field.NewPath("spec", "metrics"), "array", "more metrics are enabled than spec.maxEnabled allows")})
	policy := apierrors.NewForbidden(gr, "k", errors.New(`ValidatingAdmissionPolicy 'clearance-role-assignment' with binding 'clearance-role-assignment' denied request: user "tina" may not assign role OrgAdmin`))
	webhook := apierrors.NewForbidden(gr, "k", errors.New(`admission webhook "vorgconnection.clearance.dev" denied the request: connected already`))
	tests := []struct {
		err  error
		want string
	}{
		{policy, policy.Error()},
		{webhook, webhook.Error()},
		{apierrors.NewForbidden(gr, "k", errors.New("RBAC")), "you may not get apikeys in namespace acme: ask an org admin for get on apikeys.access.clearance.dev in namespace acme"},
		{apierrors.NewNotFound(gr, "k"), "APIKey k not found in namespace acme: list the keys"},
		{apierrors.NewAlreadyExists(gr, "k"), "APIKey k already exists in namespace acme: choose another name with --name"},
		{apierrors.NewConflict(gr, "k", errors.New("changed")), "APIKey k was changed by someone else meanwhile: run the command again"},
		{invalid, invalid.Error()},
		{&meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "access.clearance.dev", Kind: "APIKey"}},
			"this cluster does not serve Clearance's apikeys (access.clearance.dev/v1alpha1): install the Clearance CRDs or check --context"},
		{apierrors.NewUnauthorized("expired"), "the cluster did not accept your credentials: log in again or check --kubeconfig, --context and --user"},
		{clientcmd.ErrEmptyConfig, "no cluster is configured: set KUBECONFIG or pass --kubeconfig (and --context)"},
	}
	for _, tt := range tests {
		if got := r.explain(tt.err).Error(); got != tt.want {
			t.Errorf("explain(%v):\n got %s\nwant %s", tt.err, got, tt.want)
		}
	}

	all := request{verb: "list", resource: "secrets", kind: "Secrets"}
	want := "you may not list secrets across all namespaces: drop -A, or ask a cluster admin for list on secrets in every namespace"
	if got := all.explain(apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", errors.New("RBAC"))).Error(); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}
