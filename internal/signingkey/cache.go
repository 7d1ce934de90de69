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

package signingkey

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Cache holds the one Secret: it lists and watches Secrets in its namespace with a field
// selector on its name, which RBAC grants by resourceNames (the verifier may read this Secret
// and no other). It runs in every replica, leader or not.
type Cache struct {
	cache.Cache
}

// NewCache builds the cache of the Secret key; add it to the manager, which starts it.
func NewCache(cfg *rest.Config, scheme *runtime.Scheme, key types.NamespacedName) (*Cache, error) {
	c, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{key.Namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Field: fields.OneTermEqualSelector("metadata.name", key.Name)},
		},
	})
	if err != nil {
		return nil, err
	}
	return &Cache{Cache: c}, nil
}

// NeedLeaderElection is false: every replica reads the keys.
func (c *Cache) NeedLeaderElection() bool { return false }

// Start runs the cache until ctx ends.
func (c *Cache) Start(ctx context.Context) error { return c.Cache.Start(ctx) }
