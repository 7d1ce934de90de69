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
	"github.com/spf13/cobra"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

func (o *Options) appsCommand() *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:     "apps",
		Aliases: []string{"applications"},
		Short:   "List applications with their IDs, descriptions and key counts",
		Example: "  kubectl clearance apps -n acme\n  kubectl clearance apps -A -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			ns, opts := lf.scope(s)
			var list v1.ApplicationList
			if err := s.client.List(cmd.Context(), &list, opts...); err != nil {
				return request{verb: "list", resource: "applications", kind: "Applications", namespace: ns}.explain(err)
			}
			l := listing{list: &list, all: lf.allNamespaces, header: []string{"NAME", "ID", "DESCRIPTION", "KEYS", "READY"}}
			for _, a := range list.Items {
				l.rows = append(l.rows, row{a.Namespace, []string{
					a.Name, a.Status.ApplicationID, a.Spec.Description, itoa(a.Status.KeyCount), ready(a.Status.Conditions),
				}})
			}
			return o.printList(s, l)
		},
	}
	lf.add(cmd)
	return cmd
}
