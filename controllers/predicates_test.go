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

package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestAnObjectMadeAgainUnderItsNameIsLookedAtAgain: an informer that lists again after its
// watch could not resume delivers an object deleted and made again meanwhile as an update of
// the old one, with the same generation. The predicates the controllers watch through pass it
// (another UID), and still drop what they dropped before (the same object, the same
// generation).
func TestAnObjectMadeAgainUnderItsNameIsLookedAtAgain(t *testing.T) {
	objects := map[string]func(uid string) client.Object{
		"Application": func(uid string) client.Object {
			return &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "acme", Name: "bi", UID: types.UID(uid), Generation: 1}}
		},
		"APIKey": func(uid string) client.Object {
			return &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: "acme", Name: "prod", UID: types.UID(uid), Generation: 1}}
		},
		"OrgConnection": func(uid string) client.Object {
			return &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "globex", Name: "bi", UID: types.UID(uid), Generation: 1}}
		},
		"MetricSet": func(uid string) client.Object {
			return &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: "globex", Name: "default", UID: types.UID(uid), Generation: 1}}
		},
	}
	for kind, obj := range objects {
		again := event.UpdateEvent{ObjectOld: obj("uid-old"), ObjectNew: obj("uid-new")}
		same := event.UpdateEvent{ObjectOld: obj("uid-old"), ObjectNew: obj("uid-old")}
		if !specChanged().Update(again) {
			t.Errorf("%s made again with the same generation: specChanged drops it", kind)
		}
		if !createOrDelete().Update(again) {
			t.Errorf("%s made again: createOrDelete drops it", kind)
		}
		if specChanged().Update(same) {
			t.Errorf("%s updated without a new generation: specChanged passes it", kind)
		}
		if createOrDelete().Update(same) {
			t.Errorf("%s updated: createOrDelete passes it", kind)
		}
	}
}
