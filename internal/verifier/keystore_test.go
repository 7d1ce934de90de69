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

package verifier

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// TestAFreedSlotServesNoneOfItsOldAPIKeyAndIdentitiesSurviveCompaction: a key found just before
// its APIKey was deleted reads nothing of the APIKey given its slot next, and the identities the
// usage flush writes to stay right when deleted APIKeys make the arena compact.
func TestAFreedSlotServesNoneOfItsOldAPIKeyAndIdentitiesSurviveCompaction(t *testing.T) {
	ix := newIndex(logr.Discard())
	format := keyformat.Format{Prefix: keyformat.DefaultPrefix}
	long := strings.Repeat("x", 200) // identities large enough to reach the compaction threshold
	apiKey := func(i int) (*v1.APIKey, string) {
		k, err := format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		return &v1.APIKey{
			ObjectMeta: metav1.ObjectMeta{Namespace: "acme", Name: fmt.Sprintf("k%d-%s", i, long), UID: types.UID(fmt.Sprintf("uid-%d", i))},
			Spec:       v1.APIKeySpec{ApplicationName: "bi"},
			Status:     v1.APIKeyStatus{KeyID: k.KeyID, Hash: keyformat.Hash(k.Token), State: v1.KeyActive},
		}, k.Token
	}
	const n = 2000
	keys := make([]*v1.APIKey, n)
	refs := make([]ownerRef, n)
	for i := range n {
		var tok string
		keys[i], tok = apiKey(i)
		ix.applyAPIKey(keys[i])
		view, ok := ix.lookupKey(keys[i].Status.KeyID, tok)
		if !ok || view.namespace != "acme" || view.appName != "bi" {
			t.Fatalf("key %d: found %v, %+v", i, ok, view)
		}
		refs[i] = view.row.owner
	}
	// Delete three in four: their slots are reused and the arena compacts.
	for i := range n {
		if i%4 != 0 {
			ix.removeAPIKey(keys[i])
		}
	}
	for i := range n / 2 {
		k, _ := apiKey(n + i)
		ix.applyAPIKey(k)
	}
	if ix.garbage > len(ix.arena)/2+64<<10 {
		t.Errorf("arena never compacted: %d of %d bytes unused", ix.garbage, len(ix.arena))
	}
	for i := range n {
		uid, ns, name, ok := ix.identity(refs[i])
		switch {
		case i%4 != 0 && ok:
			t.Fatalf("deleted APIKey %d: its old reference still names %s/%s (%s)", i, ns, name, uid)
		case i%4 != 0:
			if _, ok := ix.keyStore.owner(refs[i]); ok {
				t.Fatalf("deleted APIKey %d: its old reference still reads a row", i)
			}
		case !ok || uid != keys[i].UID || ns != "acme" || name != keys[i].Name:
			t.Fatalf("APIKey %d after compaction: %v %q %q %q", i, ok, uid, ns, name)
		}
	}
}
