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

package ops

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// Permission is one entry of the permission catalog: a name an APIKey's spec.scopes may hold and
// what it allows, in a line.
type Permission struct {
	Name        string
	Description string
}

// PermissionCatalog is the cluster-wide permission catalog as read from its ConfigMap.
type PermissionCatalog struct {
	// Source names the ConfigMap, namespace/name.
	Source      string
	Permissions []Permission
	// Problems are the lines that name no valid permission (or a permission twice), which the
	// admission policy cannot match either; the platform team fixes them in the catalog.
	Problems []string
}

// permissionName is the scope grammar of the APIKey CRD (spec.scopes' CEL rule).
var permissionName = regexp.MustCompile(`^[a-z][a-z0-9_-]*(:[a-z*][a-z0-9_*-]*)*$`)

// ParsePermissions reads the catalog's data key: one permission a line, "name: description",
// blank lines and lines starting with # skipped. The name is what comes before the first ": ",
// as the admission policy clearance-permissions reads it.
func ParsePermissions(data string) (perms []Permission, problems []string) {
	seen := map[string]bool{}
	for line := range strings.SplitSeq(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, desc, _ := strings.Cut(line, ": ")
		name = strings.TrimSpace(name)
		switch {
		case !permissionName.MatchString(name):
			problems = append(problems, fmt.Sprintf("line %q names no permission: write \"name: description\" with a name of lowercase words joined by ':'", line))
		case seen[name]:
			problems = append(problems, fmt.Sprintf("permission %s is listed twice", name))
		default:
			seen[name] = true
			perms = append(perms, Permission{Name: name, Description: strings.TrimSpace(desc)})
		}
	}
	return perms, problems
}

// ReadPermissions reads the permission catalog, ConfigMap v1.PermissionCatalogName in namespace
// (the operator's), with c: the caller's own credentials. Everyone signed in may read it with
// the shipped RBAC (Role clearance-permission-catalog-reader).
func ReadPermissions(ctx context.Context, c client.Client, namespace string) (*PermissionCatalog, error) {
	source := namespace + "/" + v1.PermissionCatalogName
	var cm corev1.ConfigMap
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: v1.PermissionCatalogName}, &cm)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("the permission catalog, ConfigMap %s, does not exist, so no key can name permissions: the platform team installs it (the chart's permissionCatalog.enabled, or config/catalog)", source)
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("you may not read the permission catalog, ConfigMap %s: the chart lets everyone signed in get it (Role and RoleBinding clearance-permission-catalog-reader there); ask a cluster admin to restore them", source)
	case err != nil:
		return nil, fmt.Errorf("reading the permission catalog, ConfigMap %s: %w", source, err)
	}
	data, ok := cm.Data[v1.PermissionCatalogKey]
	if !ok {
		return nil, fmt.Errorf("the permission catalog, ConfigMap %s, has no data key %s: the platform team restores it, one \"name: description\" a line", source, v1.PermissionCatalogKey)
	}
	perms, problems := ParsePermissions(data)
	return &PermissionCatalog{Source: source, Permissions: perms, Problems: problems}, nil
}

// Unknown returns the scopes the catalog does not list, in order. A scope ending in ":*" is
// known when the catalog lists a permission under its prefix: the rule of the admission policy.
func (c *PermissionCatalog) Unknown(scopes []string) []string {
	var unknown []string
	for _, s := range scopes {
		if !c.knows(s) {
			unknown = append(unknown, s)
		}
	}
	return unknown
}

func (c *PermissionCatalog) knows(scope string) bool {
	prefix, wildcard := strings.CutSuffix(scope, "*")
	wildcard = wildcard && strings.HasSuffix(prefix, ":")
	for _, p := range c.Permissions {
		if p.Name == scope || wildcard && strings.HasPrefix(p.Name, prefix) {
			return true
		}
	}
	return false
}

// ErrNoPermissions: a key was asked to name at least one permission and names none.
var ErrNoPermissions = errors.New("a key needs at least one permission from the catalog here: one with none would have its application's whole role")
