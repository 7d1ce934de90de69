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

// Package index names the field indexes over the manager's informer caches, so lookups by ID
// or name never list a namespace, and registers each of them once. The controllers and the
// webhooks query the same indexes by the same names; the process registers them (Register)
// once, whichever of the two it runs.
package index

import (
	"context"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// The indexed fields, for client.MatchingFields.
const (
	// ApplicationHeldID is the ID an Application holds (status.applicationID).
	ApplicationHeldID = "status.applicationID"
	// ApplicationClaimedID is every ID an Application holds or claims: the one in
	// status.applicationID and the one pinned in spec.applicationID. The two differ only while
	// a pinned ID is not yet allocated (or was refused as another Application's).
	ApplicationClaimedID = "claimedApplicationID"
	// KeyApplication is the name of the Application an APIKey belongs to (spec.applicationName).
	KeyApplication = "spec.applicationName"
	// ConnectionApplicationID is the Application ID an OrgConnection grants a role to
	// (spec.applicationID).
	ConnectionApplicationID = "spec.applicationID"
)

// Field is one index: the kind it covers, its name and what it extracts.
type Field struct {
	Object  client.Object
	Name    string
	Extract client.IndexerFunc
}

// Fields are every index Clearance uses.
func Fields() []Field {
	return []Field{
		{&v1.Application{}, ApplicationHeldID, ApplicationHeldIDs},
		{&v1.Application{}, ApplicationClaimedID, ApplicationClaimedIDs},
		{&v1.APIKey{}, KeyApplication, KeyApplicationName},
		{&v1.OrgConnection{}, ConnectionApplicationID, ConnectionApplicationIDs},
	}
}

// Register adds every index to the cache behind indexer (the manager's GetFieldIndexer). Call
// it once per manager, before it starts: a second registration of a name is refused.
func Register(ctx context.Context, indexer client.FieldIndexer) error {
	for _, f := range Fields() {
		if err := indexer.IndexField(ctx, f.Object, f.Name, f.Extract); err != nil {
			return err
		}
	}
	return nil
}

// ApplicationHeldIDs extracts ApplicationHeldID from an Application.
func ApplicationHeldIDs(o client.Object) []string {
	return nonEmpty(o.(*v1.Application).Status.ApplicationID)
}

// ApplicationClaimedIDs extracts ApplicationClaimedID from an Application: the held ID, then
// the pinned one when it is another.
func ApplicationClaimedIDs(o client.Object) []string {
	a := o.(*v1.Application)
	var ids []string
	for _, id := range []string{a.Status.ApplicationID, a.Spec.ApplicationID} {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// KeyApplicationName extracts KeyApplication from an APIKey.
func KeyApplicationName(o client.Object) []string {
	return nonEmpty(o.(*v1.APIKey).Spec.ApplicationName)
}

// ConnectionApplicationIDs extracts ConnectionApplicationID from an OrgConnection.
func ConnectionApplicationIDs(o client.Object) []string {
	return nonEmpty(o.(*v1.OrgConnection).Spec.ApplicationID)
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
