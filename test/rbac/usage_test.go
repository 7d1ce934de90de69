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

package rbac

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
)

const (
	// statusPolicy is the admission policy of config/policies that keeps APIKey status beyond
	// usage to the operator.
	statusPolicy = "clearance-apikey-status"
	operatorSA   = "clearance"
)

// usageFields are the fields of APIKeyStatus the verifier writes. Every other field decides a
// key's validity or records the operator's work, and only the operator may change it.
var usageFields = []string{"lastUsedAt", "usageCount"}

// statusFields returns the JSON names of APIKeyStatus's fields, in the order of the type, with
// their Go fields.
func statusFields(t *testing.T) map[string]reflect.StructField {
	t.Helper()
	fields := map[string]reflect.StructField{}
	typ := reflect.TypeFor[v1.APIKeyStatus]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			t.Fatalf("APIKeyStatus.%s has no JSON name: the policy cannot name it", f.Name)
		}
		fields[name] = f
	}
	return fields
}

// validityFields are statusFields but usage, sorted.
func validityFields(t *testing.T) []string {
	var names []string
	for name := range statusFields(t) {
		if !slices.Contains(usageFields, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// TestTheAPIKeyStatusPolicyListsEveryFieldButUsage reads the policy from config/policies (the
// chart's copy is kept equal by make manifests): it compares every field of APIKeyStatus but
// lastUsedAt and usageCount, so a field added to the type and not to the policy fails here.
func TestTheAPIKeyStatusPolicyListsEveryFieldButUsage(t *testing.T) {
	policy := readStatusPolicy(t)
	var expr string
	for _, v := range policy.Spec.Variables {
		if v.Name == "changedFields" {
			expr = v.Expression
		}
	}
	if expr == "" {
		t.Fatalf("policy %s has no variable changedFields: %+v", statusPolicy, policy.Spec.Variables)
	}
	fields := validityFields(t)
	for _, name := range fields {
		term := fmt.Sprintf("(object.?status.?%[1]s == oldObject.?status.?%[1]s ? [] : ['%[1]s'])", name)
		if !strings.Contains(expr, term) {
			t.Errorf("policy %s does not compare status.%s, which only the operator may write: add\n  %s", statusPolicy, name, term)
		}
	}
	for _, name := range usageFields {
		if strings.Contains(expr, "?"+name+" ") {
			t.Errorf("policy %s compares status.%s, which the verifier writes (usage)", statusPolicy, name)
		}
	}
	if n := strings.Count(expr, "oldObject.?status.?"); n != len(fields) {
		t.Errorf("policy %s compares %d fields, want the %d of APIKeyStatus but usage: %v", statusPolicy, n, len(fields), fields)
	}
	if policy.Spec.FailurePolicy == nil || *policy.Spec.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("policy %s must fail closed (failurePolicy: Fail)", statusPolicy)
	}
}

func readStatusPolicy(t *testing.T) admissionregistrationv1.ValidatingAdmissionPolicy {
	t.Helper()
	files, err := testenv.PolicyFiles(env.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			var p admissionregistrationv1.ValidatingAdmissionPolicy
			if err := yaml.Unmarshal([]byte(doc), &p); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if p.Kind == "ValidatingAdmissionPolicy" && p.Name == statusPolicy {
				return p
			}
		}
	}
	t.Fatalf("no ValidatingAdmissionPolicy %s in config/policies (%v)", statusPolicy, files)
	return admissionregistrationv1.ValidatingAdmissionPolicy{}
}

// TestTheChartInstallsTheStatusPolicyInEveryTopology: the policy and its binding come with the
// chart whatever the values, since the verifier's RBAC relies on it.
func TestTheChartInstallsTheStatusPolicyInEveryTopology(t *testing.T) {
	for _, args := range [][]string{nil, {"--set", "verifier.separate=false"}, {"--set", "verifier.hpa.enabled=true"}} {
		kinds := map[string]bool{}
		for _, d := range parseChart(t, env.HelmTemplate(t, args...)).docs {
			var meta metav1.PartialObjectMetadata
			if err := yaml.Unmarshal(d.data, &meta); err != nil {
				t.Fatal(err)
			}
			if meta.Name == statusPolicy {
				kinds[d.kind] = true
			}
		}
		if !kinds["ValidatingAdmissionPolicy"] || !kinds["ValidatingAdmissionPolicyBinding"] {
			t.Errorf("helm template %v renders %v named %s, want the policy and its binding", args, kinds, statusPolicy)
		}
	}
}

// TestTheVerifierMayWriteUsageButNothingThatDecidesValidity takes the identities as the chart
// creates them and an APIKey whose status the operator wrote. The verifier's ServiceAccount,
// which RBAC lets patch apikeys/status for usage, is refused when it writes itself a key (a hash
// and key id of its choosing) and when it changes any one field of the status but usage, each
// field in turn (the list comes from the type, as in
// TestTheAPIKeyStatusPolicyListsEveryFieldButUsage); its usage patch, written as the verifier
// writes it, lands; metadata and spec it sends to /status do not land. The operator's
// ServiceAccount writes each of those fields. (TestTheVerifierServesWithAnIdentityThatCannotReadSecrets
// runs the verifier with its token, writing usage through the policy;
// TestTheOperatorCompletesTheSampleStoryWithOnlyItsShippedRBAC mints with the operator's.)
func TestTheVerifierMayWriteUsageButNothingThatDecidesValidity(t *testing.T) {
	ctx := context.Background()
	applyChartRBAC(t)
	ns := env.Namespace(t, "forge")
	asVerifier := clientAs(t, verifierSA)
	asOperator := clientAs(t, operatorSA)

	// RBAC: both may patch apikeys/status; only the operator holds the policy's virtual
	// permission.
	for _, tc := range []struct {
		sa, verb, subresource string
		want                  bool
	}{
		{verifierSA, "patch", "status", true}, {verifierSA, "update", "credentials", false},
		{operatorSA, "patch", "status", true}, {operatorSA, "update", "credentials", true},
	} {
		st := env.Review(t, authorizationv1.SubjectAccessReviewSpec{
			User: serviceAccountUser(tc.sa), Groups: serviceAccountGroups(),
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: tc.verb,
				Group: v1.GroupVersion.Group, Resource: "apikeys", Subresource: tc.subresource, Name: "bi-prod"},
		})
		if st.Allowed != tc.want {
			t.Errorf("ServiceAccount %s may %s apikeys/%s: %v, want %v", tc.sa, tc.verb, tc.subresource, st.Allowed, tc.want)
		}
	}

	// The operator mints: the whole status, with its identity.
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bi-prod"}, Spec: v1.APIKeySpec{ApplicationName: "bi"}}
	if err := env.Client.Create(ctx, key); err != nil {
		t.Fatal(err)
	}
	minted, forged := newKey(t, "minted by the operator"), newKey(t, "forged by the verifier")
	now := metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	if err := patchStatus(ctx, asOperator, key, map[string]any{
		"keyID": minted.KeyID, "masked": keyformat.Mask(minted.Token), "hash": keyformat.Hash(minted.Token),
		"state": v1.KeyActive, "applicationID": "app_forge", "mintedAt": now, "secretName": "bi-prod-key",
		"createdBy": "alice", "observedGeneration": 1,
		"conditions": []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonMinted,
			Message: "minted", LastTransitionTime: now, ObservedGeneration: 1}},
	}); err != nil {
		t.Fatalf("the operator's ServiceAccount cannot write a minted key's status: %v", err)
	}
	key = getKey(t, key)
	if key.Status.Hash != keyformat.Hash(minted.Token) {
		t.Fatalf("the operator's status write did not land: %+v", key.Status)
	}

	// The verifier writes itself a key: the hash and id of a key it made up. The apiserver loads a
	// new policy within about a second, so this is tried as a dry run until refused.
	mintForged := map[string]any{"keyID": forged.KeyID, "masked": keyformat.Mask(forged.Token), "hash": keyformat.Hash(forged.Token)}
	var err error
	testenv.Within(t, 20*time.Second, "the verifier's ServiceAccount to be refused a key of its own in status (is config/policies installed?)", func() error {
		err = patchStatus(ctx, asVerifier, key, mintForged, client.DryRunAll)
		if err == nil {
			return fmt.Errorf("the verifier's ServiceAccount may write status.hash")
		}
		return nil
	})
	for _, want := range []string{"hash", "keyID", "masked"} {
		wantRefusal(t, err, "the verifier's own key", want)
	}
	t.Logf("the verifier writing itself a key is refused: %v", err)
	if err := patchStatus(ctx, asVerifier, key, mintForged); err == nil {
		t.Fatal("the verifier's ServiceAccount wrote a key of its own into status")
	}
	if got := getKey(t, key); got.Status.Hash != keyformat.Hash(minted.Token) {
		t.Fatalf("status.hash changed to %s after a refused patch", got.Status.Hash)
	}

	// Each field but usage: refused to the verifier and unchanged, then written by the operator.
	fields := statusFields(t)
	var refused []string
	for _, name := range validityFields(t) {
		before := getKey(t, key)
		value := forgedValue(t, name, fields[name], reflect.ValueOf(before.Status).FieldByIndex(fields[name].Index).Interface())
		err := patchStatus(ctx, asVerifier, before, map[string]any{name: value})
		wantRefusal(t, err, "status."+name, name)
		refused = append(refused, name)
		after := getKey(t, key)
		if !reflect.DeepEqual(after.Status, before.Status) {
			t.Errorf("status.%s: the verifier's refused patch changed status from %+v to %+v", name, before.Status, after.Status)
		}
		if err := patchStatus(ctx, asOperator, after, map[string]any{name: value}); err != nil {
			t.Errorf("status.%s: the operator's ServiceAccount may not write it: %v", name, err)
			continue
		}
		got, _ := json.Marshal(reflect.ValueOf(getKey(t, key).Status).FieldByIndex(fields[name].Index).Interface())
		want, _ := json.Marshal(value)
		if string(got) != string(want) {
			t.Errorf("status.%s after the operator's write: %s, want %s", name, got, want)
		}
	}
	t.Logf("each refused to the verifier and written by the operator: %v", refused)
	// Nor may it wipe status (every field at once).
	before := getKey(t, key)
	wipe := asVerifier.Status().Patch(ctx, before.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":null}`)))
	wantRefusal(t, wipe, "status: null", "hash")

	// Usage, as the verifier writes it (internal/verifier/usage.go): a merge patch with the
	// resourceVersion read, adding to usageCount and moving lastUsedAt.
	before = getKey(t, key)
	orig := before.DeepCopy()
	used := metav1.NewTime(time.Now().UTC().Truncate(time.Second).Add(time.Minute))
	before.Status.UsageCount += 3
	before.Status.LastUsedAt = &used
	if err := asVerifier.Status().Patch(ctx, before, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		t.Fatalf("the verifier's usage patch was refused: %v", err)
	}
	after := getKey(t, key)
	if after.Status.UsageCount != orig.Status.UsageCount+3 || after.Status.LastUsedAt == nil || !after.Status.LastUsedAt.Equal(&used) {
		t.Errorf("the verifier's usage did not land: usageCount %d lastUsedAt %v, want %d and %v",
			after.Status.UsageCount, after.Status.LastUsedAt, orig.Status.UsageCount+3, used)
	}
	orig.Status.UsageCount, orig.Status.LastUsedAt = after.Status.UsageCount, after.Status.LastUsedAt
	if !reflect.DeepEqual(after.Status, orig.Status) {
		t.Errorf("the usage patch changed more than usage: %+v, want %+v", after.Status, orig.Status)
	}

	// Metadata and spec sent to /status do not land: the apiserver keeps the stored ones (the
	// usage in the same patch does).
	before = getKey(t, key)
	sneak := fmt.Sprintf(`{"metadata":{"labels":{"forged":"true"},"annotations":{"access.clearance.dev/adopt-key-id":%q},
		"finalizers":["forged.example/hold"],"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"x","uid":"00000000-0000-0000-0000-000000000001"}]},
		"spec":{"enabled":false,"applicationName":"other"},"status":{"usageCount":%d}}`, forged.KeyID, before.Status.UsageCount+1)
	if err := asVerifier.Status().Patch(ctx, before.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(sneak))); err != nil {
		t.Fatalf("the verifier's usage patch carrying metadata and spec: %v", err)
	}
	after = getKey(t, key)
	if after.Status.UsageCount != before.Status.UsageCount+1 {
		t.Errorf("usageCount %d, want %d", after.Status.UsageCount, before.Status.UsageCount+1)
	}
	if !reflect.DeepEqual(after.Labels, before.Labels) || !reflect.DeepEqual(after.Annotations, before.Annotations) ||
		!reflect.DeepEqual(after.Finalizers, before.Finalizers) || !reflect.DeepEqual(after.OwnerReferences, before.OwnerReferences) ||
		!reflect.DeepEqual(after.Spec, before.Spec) {
		t.Errorf("metadata or spec sent to /status landed:\nbefore %+v %+v\nafter  %+v %+v", before.ObjectMeta, before.Spec, after.ObjectMeta, after.Spec)
	}
}

// forgedValue returns a value for status field name that differs from cur and passes the CRD's
// schema, so that only admission can refuse it. A field of a new type needs a case here.
func forgedValue(t *testing.T, name string, f reflect.StructField, cur any) any {
	t.Helper()
	later := metav1.NewTime(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	switch v := cur.(type) {
	case v1.KeyState:
		if v == v1.KeyActive {
			return v1.KeyDisabled
		}
		return v1.KeyActive
	case string:
		return "forged-" + name
	case types.UID:
		return types.UID("forged-" + name)
	case int64:
		return v + 1000
	case *metav1.Time:
		if v != nil && v.Equal(&later) {
			return metav1.NewTime(later.Add(time.Hour))
		}
		return later
	case []v1.PreviousKey:
		return append(slices.Clone(v), v1.PreviousKey{KeyID: "forged", Hash: keyformat.Hash("forged"), ValidUntil: later})
	case []metav1.Condition:
		return []metav1.Condition{{Type: "Forged", Status: metav1.ConditionTrue, Reason: "Forged", Message: "forged", LastTransitionTime: later}}
	}
	t.Fatalf("status.%s is a %s, for which forgedValue has no value: add one", name, f.Type)
	return nil
}

// wantRefusal fails unless err is the status policy's refusal naming status.field.
func wantRefusal(t *testing.T, err error, what, field string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: the verifier's ServiceAccount wrote it", what)
	case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+statusPolicy+"'"):
		t.Errorf("%s: want the refusal of policy %s (403), got %v", what, statusPolicy, err)
	case !strings.Contains(err.Error(), "status."+field+",") && !strings.Contains(err.Error(), "status."+field+" of"):
		t.Errorf("%s: the refusal does not name status.%s: %v", what, field, err)
	}
}

func patchStatus(ctx context.Context, c client.Client, key *v1.APIKey, status map[string]any, opts ...client.SubResourcePatchOption) error {
	body, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	return c.Status().Patch(ctx, key.DeepCopy(), client.RawPatch(types.MergePatchType, body), opts...)
}

func getKey(t *testing.T, key *v1.APIKey) *v1.APIKey {
	t.Helper()
	got := &v1.APIKey{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(key), got); err != nil {
		t.Fatal(err)
	}
	return got
}

func newKey(t *testing.T, label string) keyformat.Key {
	t.Helper()
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	k, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	testenv.CollectSecretsForLeakCheck(func() []testenv.LeakSecret { return []testenv.LeakSecret{{Label: label, Value: k.Token}} })
	return k
}

func serviceAccountUser(name string) string {
	return "system:serviceaccount:" + releaseNamespace + ":" + name
}

func serviceAccountGroups() []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"}
}

// clientAs is a client impersonating the chart's ServiceAccount name.
func clientAs(t *testing.T, name string) client.Client {
	t.Helper()
	c, err := client.New(env.As(serviceAccountUser(name), serviceAccountGroups(), nil), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
