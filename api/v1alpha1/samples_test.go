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

package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestSamplesApplyWithKubectlAndListAsOneCategory applies config/samples the way the README
// tells a new user to, and lists them with the category and printer columns.
func TestSamplesApplyWithKubectlAndListAsOneCategory(t *testing.T) {
	// An earlier run in this process (go test -count) deleted the samples' namespaces without
	// waiting: apply into them only once they are gone.
	testenv.Within(t, 2*time.Minute, "the samples' namespaces of an earlier run to be gone", func() error {
		for _, name := range []string{"acme", "globex"} {
			ns := &corev1.Namespace{}
			if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, ns); err == nil && ns.DeletionTimestamp != nil {
				return fmt.Errorf("namespace %s is being deleted", name)
			}
		}
		return nil
	})
	if out, err := env.Kubectl(t, "apply", "-k", "config/samples"); err != nil {
		t.Fatalf("samples do not apply: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = env.Kubectl(t, "delete", "--wait=false", "-k", "config/samples") })

	out, err := env.Kubectl(t, "get", "clearance", "-A")
	if err != nil {
		t.Fatal(err)
	}
	for _, header := range []string{
		// applications
		"NAMESPACE   NAME      ID   DESCRIPTION      ENABLED   KEYS   READY   AGE",
		// keys
		"APPLICATION   KEY   ENABLED   STATE   EXPIRES   LAST-USED   USES   AGE",
		// the connected applications table
		"ID                             DESCRIPTION   CREATED-BY   ROLE       AGE",
		// metric sets
		"ENABLED   MAX   DISABLED   READY   AGE",
	} {
		if !containsFields(out, header) {
			t.Errorf("kubectl get clearance -A lacks the columns %q:\n%s", header, out)
		}
	}
	for _, row := range []string{"acme-bi-prod", "acme-bi-backfill", "Acme BI export", "Observer", "app_7k2m9q4x8v1c5n3b6z0w2r4t8y"} {
		if !strings.Contains(out, row) {
			t.Errorf("kubectl get clearance -A does not show %q:\n%s", row, out)
		}
	}
	for _, short := range []string{"clapp", "clkey", "clconn", "clmetrics"} {
		if _, err := env.Kubectl(t, "get", short, "-A"); err != nil {
			t.Errorf("short name %s: %v", short, err)
		}
	}
}

// containsFields reports whether some line of out holds the words of header in order,
// whatever the spacing kubectl chose for the column widths.
func containsFields(out, header string) bool {
	want := strings.Join(strings.Fields(header), " ")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(strings.Join(strings.Fields(line), " "), want) {
			return true
		}
	}
	return false
}

// TestOmittedFieldsGetSafeDefaults checks that the defaults a user relies on are applied by
// the apiserver: keys are enabled, connections are Observer, metric sets are capped at 50.
func TestOmittedFieldsGetSafeDefaults(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "defaults")

	key := apiKey("defaulted")
	key.Namespace = ns
	conn := &v1.OrgConnection{
		ObjectMeta: metav1.ObjectMeta{Name: "defaulted", Namespace: ns},
		Spec:       v1.OrgConnectionSpec{ApplicationID: validID},
	}
	ms := &v1.MetricSet{
		ObjectMeta: metav1.ObjectMeta{Name: "defaulted", Namespace: ns},
		Spec:       v1.MetricSetSpec{Metrics: []v1.Metric{{Name: "occupancy.current"}}},
	}
	for _, obj := range []client.Object{key, conn, ms} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating %s: %v", obj.GetName(), err)
		}
	}
	if key.Spec.Enabled == nil || !*key.Spec.Enabled {
		t.Errorf("spec.enabled defaults to %v, want true", key.Spec.Enabled)
	}
	if conn.Spec.Role != v1.RoleObserver {
		t.Errorf("spec.role defaults to %q, want Observer", conn.Spec.Role)
	}
	if ms.Spec.MaxEnabled == nil || *ms.Spec.MaxEnabled != v1.DefaultMaxEnabled {
		t.Errorf("spec.maxEnabled defaults to %v, want %d", ms.Spec.MaxEnabled, v1.DefaultMaxEnabled)
	}
	if e := ms.Spec.Metrics[0].Enabled; e == nil || !*e {
		t.Errorf("a listed metric's enabled defaults to %v, want true", e)
	}
}
