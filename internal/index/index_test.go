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
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
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

// TestEachIndexIsRegisteredWithItsOwnExtractor: the held-ID index, from which a connection
// resolves the Application it grants a role to, must not list an ID an Application only pins
// (it may be another's, refused as a Conflict), and the claimed-ID index, which refuses a
// second claimant, must list it.
func TestEachIndexIsRegisteredWithItsOwnExtractor(t *testing.T) {
	r := recorder{}
	if err := Register(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	pinnedNotHeld := app(idB, idA)
	for key, want := range map[string][]string{
		"Application/" + ApplicationHeldID:         {idA},
		"Application/" + ApplicationClaimedID:      {idA, idB},
		"APIKey/" + KeyApplication:                 {"acme-bi"},
		"OrgConnection/" + ConnectionApplicationID: {idB},
	} {
		fn := r[key]
		if fn == nil {
			t.Errorf("%s: not registered", key)
			continue
		}
		var obj client.Object
		switch kind, _, _ := strings.Cut(key, "/"); kind {
		case "Application":
			obj = pinnedNotHeld
		case "APIKey":
			obj = &v1.APIKey{Spec: v1.APIKeySpec{ApplicationName: "acme-bi"}}
		case "OrgConnection":
			obj = &v1.OrgConnection{Spec: v1.OrgConnectionSpec{ApplicationID: idB}}
		}
		if got := fn(obj); !slices.Equal(got, want) {
			t.Errorf("%s extracts %q, want %q", key, got, want)
		}
	}
}
