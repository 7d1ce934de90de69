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
	"errors"
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
			"Observer is read-only and recommended. Change the role later with\n" +
			"`kubectl clearance set-role`; disconnect with `kubectl clearance disconnect`.",
		Example: "  kubectl clearance connect app_7k2m9q4x8v1c5n3b6z0w2r4t8y --role Observer -n globex\n" +
			"  kubectl clearance connect app_7k2m9q4x8v1c5n3b6z0w2r4t8y --role Analyst --metric-set default",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			appID := args[0]
			if !applicationIDPattern.MatchString(appID) {
				return fmt.Errorf("%q is not an Application ID: copy the ID (app_ followed by 26 lowercase letters or digits) from `kubectl clearance apps` in the owning org", appID)
			}
			if err := checkRole(role); err != nil {
				return err
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

// connectionRef is how set-role and disconnect take the connection: the application's ID or
// the OrgConnection's name, both in `kubectl clearance connections`.
const connectionRef = "The connection is found by the application's ID or by the OrgConnection's name,\n" +
	"both shown by `kubectl clearance connections`."

func (o *Options) setRoleCommand() *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:     "set-role APP_ID|NAME --role ROLE",
		Aliases: []string{"role"},
		Short:   "Change the role a connected application has in this org",
		Long: "set-role changes the role of the OrgConnection that connects an application to the\n" +
			"current namespace (spec.role).\n" + connectionRef + "\n" +
			"Raising a role needs the bind verb on orgroles.access.clearance.dev named after the\n" +
			"role, which the apiserver checks (its refusal is printed as it is); keeping or lowering\n" +
			"one needs only patch on orgconnections.",
		Example: "  kubectl clearance set-role app_7k2m9q4x8v1c5n3b6z0w2r4t8y --role Analyst -n globex\n" +
			"  kubectl clearance set-role conn-3b6z0w2r4t8y --role Observer -n globex",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRole(role); err != nil {
				return err
			}
			s, err := o.connect()
			if err != nil {
				return err
			}
			conn, err := findConnection(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			old := conn.Spec.Role
			if old != v1.Role(role) {
				if err := ops.SetRole(cmd.Context(), s.client, conn, v1.Role(role)); err != nil {
					return request{verb: "patch", resource: "orgconnections", kind: "OrgConnection", name: conn.Name, namespace: s.namespace}.explain(err)
				}
			}
			if o.structured() {
				return o.printObject(conn)
			}
			if old == conn.Spec.Role {
				fmt.Fprintf(o.out(), "orgconnection/%s unchanged: %s already has role %s in %s\n", conn.Name, conn.Spec.ApplicationID, old, conn.Namespace)
				return nil
			}
			fmt.Fprintf(o.out(), "orgconnection/%s updated: %s now has role %s in %s (was %s)\n", conn.Name, conn.Spec.ApplicationID, conn.Spec.Role, conn.Namespace, old)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "Role to grant: Observer (read-only, recommended), Analyst, Technician or OrgAdmin (required)")
	return cmd
}

func (o *Options) disconnectCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "disconnect APP_ID|NAME",
		Short: "Disconnect an application from this org: it loses its role here; the application is untouched",
		Long: "disconnect deletes the OrgConnection that connects an application to the current\n" +
			"namespace.\n" + connectionRef + "\n" +
			"The application's keys stop working in this org (the verifier drops the connection as\n" +
			"soon as it sees it go); the Application itself, its keys and its other orgs are\n" +
			"untouched, and `kubectl clearance connect` connects it again.",
		Example: "  kubectl clearance disconnect app_7k2m9q4x8v1c5n3b6z0w2r4t8y -n globex",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			conn, err := findConnection(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			if err := ops.Disconnect(cmd.Context(), s.client, conn); err != nil {
				return request{verb: "delete", resource: "orgconnections", kind: "OrgConnection", name: conn.Name, namespace: s.namespace}.explain(err)
			}
			if o.structured() {
				return o.printObject(conn)
			}
			fmt.Fprintf(o.out(), "orgconnection/%s deleted: %s is disconnected from %s; the application itself is untouched\n",
				conn.Name, conn.Spec.ApplicationID, conn.Namespace)
			return nil
		},
	}
}

// checkRole refuses what is not a role before asking the apiserver.
func checkRole(role string) error {
	if role == "" {
		return errors.New("--role is required: use Observer (read-only, recommended), Analyst, Technician or OrgAdmin")
	}
	if !slices.Contains(v1.Roles, v1.Role(role)) {
		return fmt.Errorf("--role %q is not a role: use Observer (read-only, recommended), Analyst, Technician or OrgAdmin", role)
	}
	return nil
}

// findConnection is ops.FindConnection with its failures told in the user's terms.
func findConnection(ctx context.Context, s *session, ref string) (*v1.OrgConnection, error) {
	conn, err := ops.FindConnection(ctx, s.client, s.namespace, ref)
	if err == nil {
		return conn, nil
	}
	hint := "list the connections with `kubectl clearance connections -n " + s.namespace + "`"
	var several *ops.SeveralConnectionsError
	switch {
	case errors.Is(err, ops.ErrNotConnected):
		return nil, fmt.Errorf("application %s is not connected to %s: %s", ref, s.namespace, hint)
	case errors.As(err, &several):
		return nil, err
	case applicationIDPattern.MatchString(ref):
		return nil, request{verb: "list", resource: "orgconnections", kind: "OrgConnections", namespace: s.namespace}.explain(err)
	}
	return nil, request{verb: "get", resource: "orgconnections", kind: "OrgConnection", name: ref, namespace: s.namespace, notFound: hint}.explain(err)
}
