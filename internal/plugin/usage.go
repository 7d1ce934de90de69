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
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/activity"
	"github.com/clearance-dev/clearance/internal/ops"
)

// PrometheusURLEnv is where `usage` finds the Prometheus that scrapes the verifiers when
// --prometheus-url is not given.
const PrometheusURLEnv = "CLEARANCE_PROMETHEUS_URL"

func (o *Options) usageCommand() *cobra.Command {
	var (
		promURL string
		window  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "usage [APPLICATION]",
		Short: "What each connected application did in this org, or what one of this org's applications did in each org",
		Long: "usage reads the verifier's answers per org, application and reason from the Prometheus that\n" +
			"scrapes the verifiers (docs/metrics.md), summed over replicas, over --window.\n" +
			"Without APPLICATION: each application connected to the current namespace (the org that\n" +
			"granted access), its allowed requests and its refusals by reason.\n" +
			"With APPLICATION (an Application of the current namespace): its use in each org that\n" +
			"connected it; the row with no org is its keys' and tokens' answers before any connection\n" +
			"was found (a disabled key, an org that has not connected it).\n" +
			"You see an org's figures only if you may list its OrgConnections.",
		Example: "  kubectl clearance usage -n globex --prometheus-url http://prometheus.monitoring:9090\n" +
			"  CLEARANCE_PROMETHEUS_URL=http://127.0.0.1:9090 kubectl clearance usage acme-bi -n acme --window 24h",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if promURL == "" {
				promURL = os.Getenv(PrometheusURLEnv)
			}
			if promURL == "" {
				return fmt.Errorf("no Prometheus to read from: pass --prometheus-url (the Prometheus that scrapes the verifiers) or set %s", PrometheusURLEnv)
			}
			if window <= 0 || window > 31*24*time.Hour {
				return fmt.Errorf("--window %s must be between 1s and 744h (31 days)", window)
			}
			s, err := o.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			allowed, err := ops.MayReadActivity(ctx, s.client, s.namespace)
			if err != nil {
				return err
			}
			if !allowed {
				return fmt.Errorf("you may not see the activity of %s: it is shown to those who may list its OrgConnections (ask an org admin of %s)", s.namespace, s.namespace)
			}
			pc, err := activity.New(promURL, nil)
			if err != nil {
				return err
			}
			now := o.Clock.Now()
			var rows []activity.Row
			first := "APPLICATION-ID"
			if len(args) == 0 {
				rows, err = pc.InOrg(ctx, s.namespace, window, now)
			} else {
				var app v1.Application
				if err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: args[0]}, &app); err != nil {
					return request{verb: "get", resource: "applications", kind: "Application", name: args[0], namespace: s.namespace}.explain(err)
				}
				if app.Status.ApplicationID == "" {
					return fmt.Errorf("application %s has no Application ID yet, so nothing was counted for it", args[0])
				}
				first = "ORG"
				rows, err = pc.OfApplication(ctx, app.Status.ApplicationID, window, now)
			}
			if err != nil {
				return fmt.Errorf("%w (Prometheus at %s)", err, promURL)
			}
			if o.structured() {
				return o.printObject(rows)
			}
			if len(rows) == 0 {
				o.note("No answers of the verifiers in the last %s.", window)
				return nil
			}
			table := make([][]string, 0, len(rows))
			for _, r := range rows {
				key := r.ApplicationID
				if first == "ORG" {
					key = r.Org
					if key == "" {
						key = "(none)"
					}
				}
				table = append(table, []string{key, strconv.FormatInt(r.Allowed(), 10), strconv.FormatInt(r.Refused(), 10), refusals(r)})
			}
			return o.printTable([]string{first, "ALLOWED", "REFUSED", "REFUSALS"}, table)
		},
	}
	cmd.Flags().StringVar(&promURL, "prometheus-url", "", "The Prometheus that scrapes the verifiers (default $"+PrometheusURLEnv+")")
	cmd.Flags().DurationVar(&window, "window", time.Hour, "How far back to count: 1h, 24h, 168h (a week), …")
	return cmd
}

// refusals lists a row's refusals by reason, the most frequent first, in one cell:
// "role_insufficient=3,rate_limited=1".
func refusals(r activity.Row) string {
	type rc struct {
		reason string
		n      int64
	}
	var list []rc
	for reason, n := range r.Reasons {
		if reason != "ok" && n > 0 {
			list = append(list, rc{reason, n})
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].reason < list[j].reason
	})
	parts := make([]string, len(list))
	for i, x := range list {
		parts[i] = x.reason + "=" + strconv.FormatInt(x.n, 10)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}
