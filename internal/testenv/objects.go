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

package testenv

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// IsAPIKey reports whether obj, as the operator hands it to its client, stands for an APIKey:
// the typed object, or the PartialObjectMetadata its status patches are sent as (the apiserver
// then answers with metadata only). Tests that intercept the operator's writes match with it.
func IsAPIKey(obj client.Object) bool {
	if _, ok := obj.(*v1.APIKey); ok {
		return true
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	return ok && m.GroupVersionKind() == v1.GroupVersion.WithKind("APIKey")
}
