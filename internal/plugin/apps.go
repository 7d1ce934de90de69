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
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
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

// setAppEnabledCommand is enable-app / disable-app: Application.spec.enabled, which refuses (or
// restores) every key of the application in every org at once, keeping the keys.
func (o *Options) setAppEnabledCommand(verb string, on bool) *cobra.Command {
	short := "Switch an application on again: its keys work again, the same keys"
	if !on {
		short = "Switch an application off: every key of it is refused in every org at once, until enable-app"
	}
	return &cobra.Command{
		Use:     verb + " APP",
		Short:   short,
		Example: "  kubectl clearance " + verb + " acme-bi -n acme",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := o.patchApplication(cmd, args[0], func(ctx context.Context, c client.Client, app *v1.Application) error {
				return ops.SetApplicationEnabled(ctx, c, app, on)
			})
			if err != nil {
				return err
			}
			if o.structured() {
				return o.printObject(app)
			}
			orgs := "no org is connected yet"
			if len(app.Status.ConnectedOrgs) > 0 {
				orgs = "connected orgs: " + strings.Join(app.Status.ConnectedOrgs, ", ")
			}
			if on {
				fmt.Fprintf(o.out(), "application/%s (%s) enabled: its %d keys work again, the same keys (%s)\n",
					app.Name, orNone(app.Status.ApplicationID), app.Status.KeyCount, orgs)
				return nil
			}
			fmt.Fprintf(o.out(), "application/%s (%s) disabled: its %d keys are refused in every org until `kubectl clearance enable-app %s` (%s)\n",
				app.Name, orNone(app.Status.ApplicationID), app.Status.KeyCount, app.Name, orgs)
			return nil
		},
	}
}

// appCommand is `app`: create or rename one application.
func (o *Options) appCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "app", Aliases: []string{"application"}, Short: "Create or rename one application"}
	cmd.AddCommand(o.appCreateCommand(), o.appRenameCommand())
	return cmd
}

// errNoDescription is create or rename without --description.
var errNoDescription = errors.New(`--description is required: say what the application is, as the orgs it connects to will see it, e.g. --description "Acme BI export"`)

func (o *Options) appCreateCommand() *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:     "create [NAME] --description DESCRIPTION",
		Aliases: []string{"new"},
		Short:   "Create an application; the operator then gives it its Application ID",
		Long: "create makes an Application in the current namespace, the org that owns it. The\n" +
			"description is what the orgs it connects to see. NAME is its object name; left out, it\n" +
			"is made from the description (\"Acme BI export\" becomes acme-bi-export). The operator\n" +
			"then allocates its Application ID, which `kubectl clearance apps` shows: share it with\n" +
			"the orgs that are to connect it, and create its keys with `kubectl clearance key new`.",
		Example: "  kubectl clearance app create --description \"Acme BI export\" -n acme\n" +
			"  kubectl clearance app create acme-bi --description \"Acme BI export\" -n acme -o json",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("description") {
				return errNoDescription
			}
			s, err := o.connect()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			app, err := ops.CreateApplication(cmd.Context(), s.client, s.namespace, name, description)
			if err != nil {
				return request{verb: "create", resource: "applications", kind: "Application", name: app.Name, namespace: s.namespace,
					exists: "name it yourself with `kubectl clearance app create NAME --description …`"}.explain(err)
			}
			if o.structured() {
				return o.printObject(app)
			}
			fmt.Fprintf(o.out(), "application/%s created in %s: its Application ID appears in `kubectl clearance apps -n %s` as soon as the operator has allocated it\n",
				app.Name, app.Namespace, app.Namespace)
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "What the application is, as the orgs it connects to will see it (required)")
	return cmd
}

func (o *Options) appRenameCommand() *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "rename NAME --description DESCRIPTION",
		Short: "Change an application's description, which the orgs it is connected to see",
		Long: "rename sets the description of Application NAME (spec.description). Its name and\n" +
			"Application ID stay, so its keys and connections are untouched; the orgs it is\n" +
			"connected to see the new description in `kubectl clearance connections`.",
		Example: "  kubectl clearance app rename acme-bi --description \"Acme BI\" -n acme",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("description") {
				return errNoDescription
			}
			app, err := o.patchApplication(cmd, args[0], func(ctx context.Context, c client.Client, app *v1.Application) error {
				return ops.RenameApplication(ctx, c, app, description)
			})
			if err != nil {
				return err
			}
			if o.structured() {
				return o.printObject(app)
			}
			fmt.Fprintf(o.out(), "application/%s (%s) renamed: now described as %q\n", app.Name, orNone(app.Status.ApplicationID), app.Spec.Description)
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "The new description, as the orgs it is connected to will see it (required)")
	return cmd
}

// patchApplication runs change (an ops function that patches it) on Application name of the
// current namespace, and says what to do when it fails.
func (o *Options) patchApplication(cmd *cobra.Command, name string, change func(context.Context, client.Client, *v1.Application) error) (*v1.Application, error) {
	s, err := o.connect()
	if err != nil {
		return nil, err
	}
	app := &v1.Application{}
	app.Name, app.Namespace = name, s.namespace
	if err := change(cmd.Context(), s.client, app); err != nil {
		return nil, request{verb: "patch", resource: "applications", kind: "Application", name: name, namespace: s.namespace,
			notFound: "list the applications with `kubectl clearance apps -n " + s.namespace + "`"}.explain(err)
	}
	return app, nil
}
