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
	"strings"

	"github.com/spf13/cobra"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// transportNames are the names --allow and --refuse take, lower-case; each transport is also
// taken by its API name (WebSockets, ServerSentEvents, LongPolling), in any case.
var transportNames = map[string]v1.Transport{
	"websockets": v1.TransportWebSockets, "websocket": v1.TransportWebSockets, "ws": v1.TransportWebSockets,
	"sse": v1.TransportServerSentEvents, "serversentevents": v1.TransportServerSentEvents, "server-sent-events": v1.TransportServerSentEvents,
	"long-polling": v1.TransportLongPolling, "longpolling": v1.TransportLongPolling,
}

const transportChoice = "websockets, sse or long-polling"

func (o *Options) transportsCommand() *cobra.Command {
	var allow, refuse []string
	cmd := &cobra.Command{
		Use:   "transports APP_ID|NAME [--refuse T]... [--allow T]...",
		Short: "Show, allow or refuse WebSockets, Server-Sent Events and long polling for a connected application",
		Long: "transports shows which transports the OrgConnection of an application allows in the\n" +
			"current namespace (spec.transports), and with --refuse or --allow changes them:\n" +
			transportChoice + " (comma-separated or repeated). All three are allowed by default; the\n" +
			"verifier refuses the opening request of a refused one with 403 transport_not_allowed.\n" +
			connectionRef + "\n" +
			"Refusing needs patch on orgconnections; allowing a transport the connection refuses\n" +
			"needs bind on orgroles.access.clearance.dev named after its role, as raising a role does.",
		Example: "  kubectl clearance transports app_7k2m9q4x8v1c5n3b6z0w2r4t8y -n globex\n" +
			"  kubectl clearance transports conn-3b6z0w2r4t8y --refuse websockets,long-polling -n globex\n" +
			"  kubectl clearance transports conn-3b6z0w2r4t8y --allow websockets -n globex",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := transportChanges(allow, refuse)
			if err != nil {
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
			before := conn.Spec.Transports.DeepCopy()
			changed := changesAnything(before, set)
			if changed {
				if err := ops.SetTransports(cmd.Context(), s.client, conn, set); err != nil {
					return request{verb: "patch", resource: "orgconnections", kind: "OrgConnection", name: conn.Name, namespace: s.namespace}.explain(err)
				}
			}
			if o.structured() {
				return o.printObject(conn)
			}
			switch {
			case changed:
				fmt.Fprintf(o.out(), "orgconnection/%s updated: %s\n", conn.Name, describeTransports(conn))
			case len(set) > 0:
				fmt.Fprintf(o.out(), "orgconnection/%s unchanged: %s\n", conn.Name, describeTransports(conn))
			default:
				rows := make([][]string, 0, len(v1.Transports))
				for _, t := range v1.Transports {
					rows = append(rows, []string{string(t), string(conn.Spec.Transports.Policy(t))})
				}
				return o.printTable([]string{"TRANSPORT", "POLICY"}, rows)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&refuse, "refuse", nil, "Refuse these transports: "+transportChoice)
	cmd.Flags().StringSliceVar(&allow, "allow", nil, "Allow these transports: "+transportChoice)
	return cmd
}

// transportChanges reads --allow and --refuse into the policies to set, refusing a name that
// is not a transport and a transport named in both.
func transportChanges(allow, refuse []string) (map[v1.Transport]v1.TransportPolicy, error) {
	set := map[v1.Transport]v1.TransportPolicy{}
	for _, f := range []struct {
		flag   string
		names  []string
		policy v1.TransportPolicy
	}{{"--allow", allow, v1.TransportAllowed}, {"--refuse", refuse, v1.TransportRefused}} {
		for _, name := range f.names {
			t, ok := transportNames[strings.ToLower(strings.TrimSpace(name))]
			if !ok {
				return nil, fmt.Errorf("%s %q is not a transport: use %s", f.flag, name, transportChoice)
			}
			if p, seen := set[t]; seen && p != f.policy {
				return nil, fmt.Errorf("%s is both allowed and refused: name it in --allow or in --refuse, not both", t)
			}
			set[t] = f.policy
		}
	}
	return set, nil
}

func changesAnything(ct *v1.ConnectionTransports, set map[v1.Transport]v1.TransportPolicy) bool {
	for t, p := range set {
		if ct.Policy(t) != p {
			return true
		}
	}
	return false
}

// describeTransports says what the connection allows, for one line of output.
func describeTransports(conn *v1.OrgConnection) string {
	var allowed, refused []string
	for _, t := range v1.Transports {
		if conn.Spec.TransportAllowed(t) {
			allowed = append(allowed, string(t))
		} else {
			refused = append(refused, string(t))
		}
	}
	switch {
	case len(refused) == 0:
		return fmt.Sprintf("%s may use every transport in %s", conn.Spec.ApplicationID, conn.Namespace)
	case len(allowed) == 0:
		return fmt.Sprintf("%s may use no transport in %s (%s refused)", conn.Spec.ApplicationID, conn.Namespace, strings.Join(refused, ", "))
	}
	return fmt.Sprintf("%s may use %s in %s; %s refused", conn.Spec.ApplicationID, strings.Join(allowed, ", "), conn.Namespace, strings.Join(refused, ", "))
}
