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
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestIdentitiesComeBackExactlyWhateverTheirUID: the usage flush gets back the very UID,
// namespace and name of each APIKey, whether its UID is an apiserver's UUID (kept as 16
// bytes), an uppercase one, or something else (kept as text).
func TestIdentitiesComeBackExactlyWhateverTheirUID(t *testing.T) {
	ix := newIndex(logr.Discard())
	format := keyformat.Format{Prefix: keyformat.DefaultPrefix}
	for i, uid := range []types.UID{"6f1c2a8e-0b4d-4c1e-9a3f-2d7e5b8c9a01", "6F1C2A8E-0B4D-4C1E-9A3F-2D7E5B8C9A02", "uid-3", "6f1c2a8e0b4d4c1e9a3f2d7e5b8c9a04", ""} {
		k, err := format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		key := &v1.APIKey{
			ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("org-%d", i), Name: fmt.Sprintf("key-%d", i), UID: uid},
			Status:     v1.APIKeyStatus{KeyID: k.KeyID, Hash: keyformat.Hash(k.Token), State: v1.KeyActive},
		}
		ix.applyAPIKey(key)
		view, ok := ix.lookupKey(k.KeyID, k.Token)
		if !ok {
			t.Fatalf("key %d not found", i)
		}
		got, ns, name, ok := ix.identity(view.row.owner)
		want := uidOf(uid, key.Namespace, key.Name)
		if !ok || got != want || ns != key.Namespace || name != key.Name {
			t.Errorf("identity of %q: %v %q %q %q, want %q %q %q", uid, ok, got, ns, name, want, key.Namespace, key.Name)
		}
	}
}

// TestLookupsWhileAPIKeysRotateAndComeAndGo: requests look keys up while APIKeys are rotated,
// deleted and created again (rows and slots freed and reused): a key found is always the key
// presented, of a live APIKey, in its namespace (run with -race: readers and writers share rows
// only under the shard and owner locks).
func TestLookupsWhileAPIKeysRotateAndComeAndGo(t *testing.T) {
	ix := newIndex(logr.Discard())
	format := keyformat.Format{Prefix: keyformat.DefaultPrefix}
	const n = 64
	type live struct{ keyID, token, namespace string }
	current := make([]atomic.Pointer[live], n)
	objects := make([]*v1.APIKey, n)
	publish := func(i, gen int, previous *keyformat.Key) keyformat.Key {
		k, err := format.Generate()
		if err != nil {
			t.Error(err)
			return k
		}
		key := &v1.APIKey{
			ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("org-%d", i%4), Name: fmt.Sprintf("key-%d", i), UID: types.UID(fmt.Sprintf("uid-%d-%d", i, gen))},
			Status:     v1.APIKeyStatus{KeyID: k.KeyID, Hash: keyformat.Hash(k.Token), State: v1.KeyActive},
		}
		if previous != nil {
			key.Status.PreviousKeys = []v1.PreviousKey{{KeyID: previous.KeyID, Hash: keyformat.Hash(previous.Token), ValidUntil: metav1.NewTime(time.Now().Add(time.Hour))}}
		}
		ix.applyAPIKey(key)
		objects[i] = key
		current[i].Store(&live{keyID: k.KeyID, token: k.Token, namespace: key.Namespace})
		return k
	}
	keys := make([]keyformat.Key, n)
	for i := range n {
		keys[i] = publish(i, 0, nil)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for j := r; ; j++ {
				select {
				case <-done:
					return
				default:
				}
				l := current[j%n].Load()
				if view, ok := ix.lookupKey(l.keyID, l.token); ok && (view.keyID != l.keyID || view.namespace != l.namespace) {
					t.Errorf("looked up %s of %s, found %s of %s", l.keyID, l.namespace, view.keyID, view.namespace)
					return
				}
			}
		})
	}
	for step := range 3000 {
		i := step * 7 % n
		switch step % 3 {
		case 0: // rotate: a new key, the old one valid for its overlap
			old := keys[i]
			keys[i] = publish(i, step, &old)
		case 1: // delete and create again: a new UID, a freed slot and freed rows reused
			ix.removeAPIKey(objects[i])
			keys[i] = publish(i, step, nil)
		default: // the overlap ends
			keys[i] = publish(i, step, nil)
		}
	}
	close(done)
	wg.Wait()
	for i := range n {
		if _, ok := ix.lookupKey(keys[i].KeyID, keys[i].Token); !ok {
			t.Fatalf("APIKey %d's current key is not found", i)
		}
	}
}
