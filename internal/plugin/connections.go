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
	"fmt"
	"regexp"
	"slices"

	"github.com/spf13/cobra"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

var applicationIDPattern = regexp.MustCompile(v1.ApplicationIDPattern)

func (o *Options) connectCommand() *cobra.Command {
	var (
		role, name string
		metricSets []string
	)
	cmd := &cobra.Command{
		Use:   "connect APP_ID --role Observer",
		Short: "Grant an application (by its ID, from any org) a role in this org",
		Long: "connect creates an OrgConnection in the current namespace (the org granting access)\n" +
			"for the Application ID, which its owning org shares (`kubectl clearance apps` shows it).\n" +
			"Observer is read-only and recommended. Change the role later with kubectl patch;\n" +
			"disconnect with kubectl delete clconn NAME.",
		Example: "  kubectl clearance connect app_7k2m9q4x8v1c5n3b6z0w2r4t8y --role Observer -n globex\n" +
			"  kubectl clearance connect app_7k2m9q4x8v1c5n3b6z0w2r4t8y --role Analyst --metric-set default",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			appID := args[0]
			if !applicationIDPattern.MatchString(appID) {
				return fmt.Errorf("%q is not an Application ID: copy the ID (app_ followed by 26 lowercase letters or digits) from `kubectl clearance apps` in the owning org", appID)
			}
			if !slices.Contains(v1.Roles, v1.Role(role)) {
				return fmt.Errorf("--role %q is not a role: use Observer (read-only, recommended), Analyst, Technician or OrgAdmin", role)
			}
			s, err := o.connect()
			if err != nil {
				return err
			}
			conn, err := ops.Connect(cmd.Context(), s.client, s.namespace, appID, v1.Role(role), ops.ConnectOptions{Name: name, MetricSets: metricSets})
			if err != nil {
				return request{verb: "create", resource: "orgconnections", kind: "OrgConnection", name: conn.Name, namespace: s.namespace}.explain(err)
			}
			if o.structured() {
				return o.printObject(conn)
			}
			fmt.Fprintf(o.out(), "orgconnection/%s created: %s is connected to %s as %s\n", conn.Name, appID, conn.Namespace, conn.Spec.Role)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", string(v1.RoleObserver), "Role granted: Observer (read-only, recommended), Analyst, Technician or OrgAdmin")
	cmd.Flags().StringVar(&name, "name", "", "Name of the OrgConnection (default: conn- and the last 12 characters of the ID)")
	cmd.Flags().StringArrayVar(&metricSets, "metric-set", nil, "Limit the connection to this MetricSet (repeatable; default: all)")
	return cmd
}

func (o *Options) connectionsCommand() *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:     "connections",
		Aliases: []string{"conns"},
		Short:   "List the applications connected to this org, with who created them and their role",
		Example: "  kubectl clearance connections -n globex",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			ns, opts := lf.scope(s)
			var list v1.OrgConnectionList
			if err := s.client.List(cmd.Context(), &list, opts...); err != nil {
				return request{verb: "list", resource: "orgconnections", kind: "OrgConnections", namespace: ns}.explain(err)
			}
			l := listing{list: &list, all: lf.allNamespaces, header: []string{"NAME", "ID", "DESCRIPTION", "CREATED-BY", "ROLE", "READY"}}
			for _, c := range list.Items {
				l.rows = append(l.rows, row{c.Namespace, []string{
					c.Name, c.Spec.ApplicationID, c.Status.Description, c.Status.CreatedBy, string(c.Spec.Role), ready(c.Status.Conditions),
				}})
			}
			return o.printList(s, l)
		},
	}
	lf.add(cmd)
	return cmd
}
