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
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// Field indexes over the informer caches, so lookups by ID or name never list a namespace.
const (
	// indexAppHeldID: the ID an Application holds (status.applicationID).
	indexAppHeldID = "status.applicationID"
	// indexAppClaimedID: the ID an Application holds or claims by pinning it in spec.
	indexAppClaimedID = "claimedApplicationID"
	// indexKeyApplication: the Application name an APIKey belongs to.
	indexKeyApplication = "spec.applicationName"
	// indexConnApplicationID: the Application ID an OrgConnection grants a role to.
	indexConnApplicationID = "spec.applicationID"
)

func setupIndexes(mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	ctx := context.Background()
	for _, f := range []struct {
		obj   client.Object
		field string
		fn    client.IndexerFunc
	}{
		{&v1.Application{}, indexAppHeldID, func(o client.Object) []string {
			return nonEmpty(o.(*v1.Application).Status.ApplicationID)
		}},
		{&v1.Application{}, indexAppClaimedID, func(o client.Object) []string {
			a := o.(*v1.Application)
			if a.Status.ApplicationID != "" {
				return []string{a.Status.ApplicationID}
			}
			return nonEmpty(a.Spec.ApplicationID)
		}},
		{&v1.APIKey{}, indexKeyApplication, func(o client.Object) []string {
			return nonEmpty(o.(*v1.APIKey).Spec.ApplicationName)
		}},
		{&v1.OrgConnection{}, indexConnApplicationID, func(o client.Object) []string {
			return nonEmpty(o.(*v1.OrgConnection).Spec.ApplicationID)
		}},
	} {
		if err := idx.IndexField(ctx, f.obj, f.field, f.fn); err != nil {
			return err
		}
	}
	return nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
