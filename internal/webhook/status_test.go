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
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// TestOnlyUpdateOnAPIKeyCredentialsLetsAnyoneChangeWhatDecidesAKeysValidity: RBAC cannot tell
// one field of apikeys/status from another, so clearance-apikey-status asks the authorizer for
// update on the virtual subresource apikeys/credentials before anyone but the operator changes
// what decides a key's validity. A subject holding every verb on apikeys and apikeys/status, but
// not that one, may write usage and is refused the key ID, the hash and the state, each on its
// own; the same subject granted update on apikeys/credentials may write them.
func TestOnlyUpdateOnAPIKeyCredentialsLetsAnyoneChangeWhatDecidesAKeysValidity(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "credentials")
	key, forged := activeKeyStatus(t, org)
	everything := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "keys-and-status"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"apikeys", "apikeys/status"}, Verbs: []string{"*"}}}}
	credentials := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "credentials"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"apikeys/credentials"}, Verbs: []string{"update"}}}}
	for _, r := range []*rbacv1.Role{everything, credentials} {
		if err := env.Client.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	ref := func(r *rbacv1.Role) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.Name}
	}
	statusPatch := func(c client.Client, status obj, opts ...client.SubResourcePatchOption) error {
		return c.Status().Patch(ctx, key.DeepCopy(), client.RawPatch(types.MergePatchType, js(obj{"status": status})), opts...)
	}
	changes := map[string]any{"keyID": forged.KeyID, "hash": keyformat.Hash(forged.Token), "state": v1.KeyDisabled}
	for _, kind := range subjectKinds {
		s := bindSubject(t, kind, org, string(kind)+"-status", ref(everything))
		s.waitAllowed(t, org, "patch", "apikeys")
		if err := statusPatch(s.c, obj{"usageCount": 7}, client.DryRunAll); err != nil {
			t.Errorf("%s %s writing usage: %v", kind, s.user, err)
		}
		for field, value := range changes {
			err := statusPatch(s.c, obj{field: value})
			want := "only the operator may change status." + field + " of APIKey " + org + "/exporter"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s %s holding every verb on apikeys and apikeys/status changing status.%s: %v, want a refusal containing %q", kind, s.user, field, err, want)
			}
		}
		got := &v1.APIKey{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), got); err != nil {
			t.Fatal(err)
		}
		if got.Status.Hash != key.Status.Hash || got.Status.KeyID != key.Status.KeyID || got.Status.State != key.Status.State {
			t.Errorf("%s %s: a refused status write changed the key", kind, s.user)
		}
		granted := bindSubject(t, kind, org, string(kind)+"-credentials", ref(everything), ref(credentials))
		eventually(t, func() bool { return statusPatch(granted.c, obj{"hash": changes["hash"]}, client.DryRunAll) == nil })
		for field, value := range changes {
			if err := statusPatch(granted.c, obj{field: value}, client.DryRunAll); err != nil {
				t.Errorf("%s %s holding update on apikeys/credentials changing status.%s: %v", kind, granted.user, field, err)
			}
		}
	}
}

func mustGenerate(t *testing.T, format keyformat.Format) keyformat.Key {
	t.Helper()
	k, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestOnlyTheOperatorsOwnServiceAccountSkipsTheStatusGuardNotANamesake: clearance-apikey-status
// spares the authorizer call for the operator's ServiceAccount (clearance in clearance-system),
// by its exact name. A ServiceAccount called clearance in an org's namespace or in another
// namespace, another ServiceAccount of the operator's namespace, or a user named clearance, each
// holding every verb on apikeys and apikeys/status but not update on apikeys/credentials, is
// refused the key ID, the hash and the state, and changes nothing.
func TestOnlyTheOperatorsOwnServiceAccountSkipsTheStatusGuardNotANamesake(t *testing.T) {
	ctx := context.Background()
	org := env.Namespace(t, "status-namesakes")
	key, forged := activeKeyStatus(t, org)
	const group = "test:status-namesakes"
	if err := env.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "keys-and-status"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"apikeys", "apikeys/status"}, Verbs: []string{"*"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "namesakes"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "keys-and-status"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: group}}}); err != nil {
		t.Fatal(err)
	}
	changes := map[string]any{"keyID": forged.KeyID, "hash": keyformat.Hash(forged.Token), "state": v1.KeyDisabled}
	for _, name := range []string{
		"system:serviceaccount:" + org + ":clearance",
		"system:serviceaccount:clearance-system-x:clearance",
		"system:serviceaccount:clearance-system:clearance-verifier",
		"system:serviceaccount:clearance-system:clearance:x",
		"clearance",
	} {
		s := &subject{kind: kindUser, user: name, groups: []string{group, "system:serviceaccounts", "system:authenticated"}}
		s.waitAllowed(t, org, "patch", "apikeys")
		c, err := client.New(env.As(s.user, s.groups, nil), client.Options{Scheme: env.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		for field, value := range changes {
			err := c.Status().Patch(ctx, key.DeepCopy(), client.RawPatch(types.MergePatchType, js(obj{"status": obj{field: value}})))
			want := "only the operator may change status." + field + " of APIKey " + org + "/exporter"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q changing status.%s: %v, want a refusal containing %q", name, field, err, want)
			}
		}
	}
	got := &v1.APIKey{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Hash != key.Status.Hash || got.Status.KeyID != key.Status.KeyID || got.Status.State != key.Status.State {
		t.Error("a namesake's status write changed the key")
	}
}

// activeKeyStatus creates an APIKey in org whose status records a minted key, as the operator
// would, and returns it with another key nobody minted.
func activeKeyStatus(t *testing.T, org string) (*v1.APIKey, keyformat.Key) {
	t.Helper()
	ctx := context.Background()
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: "exporter"}, Spec: v1.APIKeySpec{ApplicationName: "bi", TTL: &metav1.Duration{Duration: time.Hour}}}
	if err := env.Client.Create(ctx, key); err != nil {
		t.Fatal(err)
	}
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	minted, forged := mustGenerate(t, format), mustGenerate(t, format)
	key.Status = v1.APIKeyStatus{KeyID: minted.KeyID, Masked: keyformat.Mask(minted.Token), Hash: keyformat.Hash(minted.Token), State: v1.KeyActive, ApplicationID: newID()}
	if err := env.Client.Status().Update(ctx, key); err != nil {
		t.Fatal(err)
	}
	return key, forged
}
