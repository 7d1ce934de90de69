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

// Package plugin is the kubectl plugin kubectl-clearance: daily commands over Applications,
// APIKeys, OrgConnections and MetricSets, with kubectl's kubeconfig flags, tables by default
// and -o json|yaml for scripts. Errors say in one sentence what is wrong and what to do.
package plugin

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/clearance-dev/clearance/internal/wiring"
)

// DefaultKeyWaitTimeout bounds how long `key new` waits for the operator to mint the key.
const DefaultKeyWaitTimeout = 30 * time.Second

// Options are the plugin's dependencies; main sets them, tests inject their own.
type Options struct {
	// ConfigFlags are kubectl's kubeconfig flags (--kubeconfig, --context, -n, --as, ...).
	ConfigFlags *genericclioptions.ConfigFlags
	// IOStreams: results go to Out; warnings and notes to ErrOut. Key material only ever goes
	// to Out, and only from `key show`.
	IOStreams genericiooptions.IOStreams
	// Clock is the only source of time (rotation requests, "last used" ages).
	Clock clock.PassiveClock
	// KeyWaitTimeout is the default of `key new --timeout`.
	KeyWaitTimeout time.Duration
	// Version is printed by `version`.
	Version string

	scheme *runtime.Scheme
	output string
}

// NewOptions returns Options for a real terminal session.
func NewOptions(streams genericiooptions.IOStreams, version string) *Options {
	return &Options{
		ConfigFlags:    genericclioptions.NewConfigFlags(true),
		IOStreams:      streams,
		Clock:          clock.RealClock{},
		KeyWaitTimeout: DefaultKeyWaitTimeout,
		Version:        version,
	}
}

// NewCommand builds `kubectl clearance` and its subcommands.
func NewCommand(o *Options) *cobra.Command {
	if o.scheme == nil {
		o.scheme = wiring.Scheme()
	}
	root := &cobra.Command{
		Use:   "kubectl-clearance",
		Short: "Manage Clearance applications, API keys, connections and metrics",
		Long: "kubectl clearance lists and changes Clearance objects in an org (a namespace):\n" +
			"applications and their API keys, connections that grant applications a role, and\n" +
			"the metrics an org has switched on. It uses your kubeconfig and RBAC, like kubectl.",
		Annotations:       map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl clearance"},
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(*cobra.Command, []string) error { return checkOutput(o.output) },
	}
	root.SetIn(o.IOStreams.In)
	root.SetOut(o.IOStreams.Out)
	root.SetErr(o.IOStreams.ErrOut)
	o.ConfigFlags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVarP(&o.output, "output", "o", "", "Output format: json or yaml (default: a table)")

	keyCmd := &cobra.Command{Use: "key", Short: "Show or create one API key"}
	keyCmd.AddCommand(o.keyShowCommand(), o.keyNewCommand())
	root.AddCommand(
		o.appsCommand(),
		o.appCommand(),
		o.setAppEnabledCommand("enable-app", true),
		o.setAppEnabledCommand("disable-app", false),
		o.keysCommand(),
		keyCmd,
		o.rotateCommand(),
		o.revokeCommand(),
		o.tokenCommand(),
		o.setEnabledCommand("enable", true),
		o.setEnabledCommand("disable", false),
		o.connectCommand(),
		o.setRoleCommand(),
		o.transportsCommand(),
		o.disconnectCommand(),
		o.connectionsCommand(),
		o.usageCommand(),
		o.metricsCommand(),
		o.permissionsCommand(),
		o.setMetricCommand("enable-metric", true),
		o.setMetricCommand("disable-metric", false),
		o.versionCommand(),
	)
	return root
}

// Run executes the plugin with args and returns the process exit code; errors are printed to
// ErrOut as kubectl prints them.
func Run(o *Options, args []string) int {
	cmd := NewCommand(o)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(o.IOStreams.ErrOut, "error: %v\n", err)
		return 1
	}
	return 0
}

// session is what a command needs to talk to the cluster.
type session struct {
	client    client.WithWatch
	namespace string
}

// connect builds a client from the kubeconfig flags. Admission warnings in API responses are
// printed to ErrOut as "Warning: ...", as kubectl does.
func (o *Options) connect() (*session, error) {
	cfg, err := o.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, explainConfig(err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = rest.NewWarningWriter(o.IOStreams.ErrOut, rest.WarningWriterOptions{Deduplicate: true})
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: o.scheme})
	if err != nil {
		return nil, explainConfig(err)
	}
	ns, _, err := o.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, explainConfig(err)
	}
	return &session{client: c, namespace: ns}, nil
}

// out is where results go.
func (o *Options) out() io.Writer { return o.IOStreams.Out }

// note prints a human hint to ErrOut, so stdout stays the result alone.
func (o *Options) note(format string, args ...any) {
	fmt.Fprintf(o.IOStreams.ErrOut, format+"\n", args...)
}

// structured reports whether -o asks for json or yaml rather than a table.
func (o *Options) structured() bool { return o.output == "json" || o.output == "yaml" }

func checkOutput(format string) error {
	switch format {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unsupported output format %q: use -o json or -o yaml, or leave -o out for a table", format)
}
