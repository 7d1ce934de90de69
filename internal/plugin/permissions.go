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

package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clearance-dev/clearance/internal/ops"
)

// DefaultCatalogNamespace is where the chart installs the permission catalog (its release
// namespace, clearance-system by default).
const DefaultCatalogNamespace = "clearance-system"

// permissionView is one permission for -o json|yaml.
type permissionView struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

func (o *Options) permissionsCommand() *cobra.Command {
	var catalogNamespace string
	cmd := &cobra.Command{
		Use:   "permissions",
		Short: "List the permission catalog: the permissions a key's --scope may name",
		Long: "permissions lists the cluster-wide permission catalog, the ConfigMap clearance-permission-catalog\n" +
			"of the operator's namespace that the platform team edits: an APIKey's scopes must be\n" +
			"permissions it lists (or NAME:* over some of them).",
		Example: "  kubectl clearance permissions\n" +
			"  kubectl clearance key new --app acme-bi --scope reports:read --scope dashboards:read -n acme",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			cat, err := ops.ReadPermissions(cmd.Context(), s.client, catalogNamespace)
			if err != nil {
				return err
			}
			for _, p := range cat.Problems {
				o.note("Warning: the permission catalog %s: %s", cat.Source, p)
			}
			views := make([]permissionView, 0, len(cat.Permissions))
			rows := make([][]string, 0, len(cat.Permissions))
			for _, p := range cat.Permissions {
				views = append(views, permissionView(p))
				rows = append(rows, []string{p.Name, p.Description})
			}
			if o.structured() {
				return o.printObject(map[string]any{"catalog": cat.Source, "items": views})
			}
			if len(rows) == 0 {
				o.note("The permission catalog %s lists no permission.", cat.Source)
				return nil
			}
			return o.printTable([]string{"NAME", "DESCRIPTION"}, rows)
		},
	}
	addCatalogNamespaceFlag(cmd, &catalogNamespace)
	return cmd
}

func addCatalogNamespaceFlag(cmd *cobra.Command, ns *string) {
	cmd.Flags().StringVar(ns, "catalog-namespace", DefaultCatalogNamespace, "Namespace of the permission catalog (where Clearance is installed)")
}

// checkScopes refuses scopes the permission catalog does not list before creating a key the
// apiserver would refuse, saying which. When the catalog cannot be read it says so and lets the
// apiserver decide: its admission policy holds the same rule.
func (o *Options) checkScopes(ctx context.Context, s *session, catalogNamespace string, scopes []string) error {
	if len(scopes) == 0 {
		return nil
	}
	cat, err := ops.ReadPermissions(ctx, s.client, catalogNamespace)
	if err != nil {
		o.note("Warning: the --scope values are not checked here (%v); the apiserver checks them.", err)
		return nil
	}
	unknown := cat.Unknown(scopes)
	if len(unknown) == 0 {
		return nil
	}
	what := "is not a permission"
	if len(unknown) > 1 {
		what = "are not permissions"
	}
	return fmt.Errorf("--scope %s %s of the permission catalog (ConfigMap %s): pick from `kubectl clearance permissions`, or ask the platform team to add it there",
		strings.Join(unknown, ", "), what, cat.Source)
}
