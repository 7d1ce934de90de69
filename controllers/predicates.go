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
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// madeAgain reports an update that is another object under the same name. An informer that
// lists again because its watch could not resume (a long partition, an apiserver restart that
// no longer holds its resource version) hands an object deleted and made again meanwhile to the
// update handlers, not as a delete and a create, and often with the generation the old one had
// (1). A predicate that passes only a new generation or a changed field would leave the new
// object unreconciled until the next resync, hours later.
func madeAgain(e event.UpdateEvent) bool { return e.ObjectOld.GetUID() != e.ObjectNew.GetUID() }

// specChanged passes creations, deletions, a new generation and an object made again.
func specChanged() predicate.Predicate {
	return predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.Funcs{UpdateFunc: madeAgain})
}

// createOrDelete passes creations and deletions, and an object made again (a delete and a
// create an informer's relist delivered as an update).
func createOrDelete() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc:  madeAgain,
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}
