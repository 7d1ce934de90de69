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

package index

import (
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/wiring"
)

const (
	idA = "app_aaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB = "app_bbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func app(spec, status string) *v1.Application {
	return &v1.Application{Spec: v1.ApplicationSpec{ApplicationID: spec}, Status: v1.ApplicationStatus{ApplicationID: status}}
}

func TestExtract(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   client.IndexerFunc
		obj  client.Object
		want []string
	}{
		{"held: none yet", ApplicationHeldIDs, app("", ""), nil},
		{"held: pinned, not allocated", ApplicationHeldIDs, app(idA, ""), nil},
		{"held: allocated", ApplicationHeldIDs, app("", idA), []string{idA}},
		{"held: pinned and allocated", ApplicationHeldIDs, app(idA, idA), []string{idA}},
		{"claimed: none yet", ApplicationClaimedIDs, app("", ""), nil},
		{"claimed: pinned, not allocated", ApplicationClaimedIDs, app(idA, ""), []string{idA}},
		{"claimed: generated", ApplicationClaimedIDs, app("", idA), []string{idA}},
		{"claimed: pinned and allocated, once", ApplicationClaimedIDs, app(idA, idA), []string{idA}},
		{"claimed: held and another pinned, held first", ApplicationClaimedIDs, app(idB, idA), []string{idA, idB}},
		{"key: application name", KeyApplicationName, &v1.APIKey{Spec: v1.APIKeySpec{ApplicationName: "acme-bi"}}, []string{"acme-bi"}},
		{"key: no application name", KeyApplicationName, &v1.APIKey{}, nil},
		{"connection: application ID", ConnectionApplicationIDs, &v1.OrgConnection{Spec: v1.OrgConnectionSpec{ApplicationID: idA}}, []string{idA}},
		{"connection: no application ID", ConnectionApplicationIDs, &v1.OrgConnection{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fn(tc.obj); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// recorder is a FieldIndexer that remembers what was registered and, as the informer cache
// does, refuses a name registered twice for a kind.
type recorder map[string]client.IndexerFunc

func (r recorder) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	key := kindOf(obj) + "/" + field
	if _, dup := r[key]; dup {
		return &duplicate{key}
	}
	r[key] = fn
	return nil
}

type duplicate struct{ key string }

func (d *duplicate) Error() string { return "indexer conflict: " + d.key }

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *v1.Application:
		return "Application"
	case *v1.APIKey:
		return "APIKey"
	case *v1.OrgConnection:
		return "OrgConnection"
	}
	return "unknown"
}

func TestRegisterAddsEveryIndexOnce(t *testing.T) {
	r := recorder{}
	if err := Register(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"APIKey/" + KeyApplication,
		"Application/" + ApplicationClaimedID,
		"Application/" + ApplicationHeldID,
		"OrgConnection/" + ConnectionApplicationID,
	}
	var got []string
	for k := range r {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("registered %q, want %q", got, want)
	}
	if err := Register(context.Background(), r); err == nil {
		t.Error("a second Register on the same indexer succeeded; the informer cache refuses it")
	}
}

// TestLookups queries each index the way the controllers and webhooks do.
func TestLookups(t *testing.T) {
	b := fake.NewClientBuilder().WithScheme(wiring.Scheme())
	for _, f := range Fields() {
		b = b.WithIndex(f.Object, f.Name, f.Extract)
	}
	obj := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: "acme", Name: name} }
	held, pinned := app("", idA), app(idA, "")
	held.ObjectMeta, pinned.ObjectMeta = obj("held"), obj("pinned")
	c := b.WithObjects(held, pinned,
		&v1.APIKey{ObjectMeta: obj("prod"), Spec: v1.APIKeySpec{ApplicationName: "held"}},
		&v1.OrgConnection{ObjectMeta: obj("conn"), Spec: v1.OrgConnectionSpec{ApplicationID: idA}},
	).Build()
	ctx := context.Background()
	names := func(list client.ObjectList, field, value string) []string {
		t.Helper()
		if err := c.List(ctx, list, client.MatchingFields{field: value}); err != nil {
			t.Fatal(err)
		}
		var out []string
		switch l := list.(type) {
		case *v1.ApplicationList:
			for _, i := range l.Items {
				out = append(out, i.Name)
			}
		case *v1.APIKeyList:
			for _, i := range l.Items {
				out = append(out, i.Name)
			}
		case *v1.OrgConnectionList:
			for _, i := range l.Items {
				out = append(out, i.Name)
			}
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		list         client.ObjectList
		field, value string
		want         []string
	}{
		{&v1.ApplicationList{}, ApplicationHeldID, idA, []string{"held"}},
		{&v1.ApplicationList{}, ApplicationClaimedID, idA, []string{"held", "pinned"}},
		{&v1.ApplicationList{}, ApplicationClaimedID, idB, nil},
		{&v1.APIKeyList{}, KeyApplication, "held", []string{"prod"}},
		{&v1.APIKeyList{}, KeyApplication, "pinned", nil},
		{&v1.OrgConnectionList{}, ConnectionApplicationID, idA, []string{"conn"}},
	} {
		if got := names(tc.list, tc.field, tc.value); !slices.Equal(got, tc.want) {
			t.Errorf("%s=%s: got %q, want %q", tc.field, tc.value, got, tc.want)
		}
	}
}
