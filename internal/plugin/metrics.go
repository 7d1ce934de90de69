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
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// defaultMetricSet is the MetricSet an install creates in each org.
const defaultMetricSet = "default"

// metricSetView is one MetricSet as `metrics` shows it: the listed metrics after the
// --show-disabled filter, and how many are on out of the cap.
type metricSetView struct {
	Namespace    string       `json:"namespace"`
	Name         string       `json:"name"`
	EnabledCount int          `json:"enabledCount"`
	MaxEnabled   int32        `json:"maxEnabled"`
	Metrics      []metricView `json:"metrics"`
}

type metricView struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
}

// viewMetricSet counts from spec, which is what the cap is checked against, so the summary is
// right even before the operator has updated status.
func viewMetricSet(ms *v1.MetricSet, showDisabled bool) metricSetView {
	v := metricSetView{Namespace: ms.Namespace, Name: ms.Name, MaxEnabled: ms.Spec.Cap(), Metrics: []metricView{}}
	for _, m := range ms.Spec.Metrics {
		on := m.IsEnabled()
		if on {
			v.EnabledCount++
		}
		if on || showDisabled {
			v.Metrics = append(v.Metrics, metricView{Name: m.Name, Enabled: on})
		}
	}
	slices.SortFunc(v.Metrics, func(a, b metricView) int { return cmp.Compare(a.Name, b.Name) })
	return v
}

func (o *Options) metricsCommand() *cobra.Command {
	var (
		lf           listFlags
		set          string
		showDisabled bool
	)
	cmd := &cobra.Command{
		Use:   "metrics",
		Short: "List the metrics an org has switched on (and, with --show-disabled, those it listed off)",
		Example: "  kubectl clearance metrics -n acme\n" +
			"  kubectl clearance metrics --set default --show-disabled",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			sets, err := listMetricSets(cmd.Context(), s, &lf, set)
			if err != nil {
				return err
			}
			views := make([]metricSetView, 0, len(sets))
			for i := range sets {
				views = append(views, viewMetricSet(&sets[i], showDisabled))
			}
			if o.structured() {
				return o.printObject(map[string]any{"items": views})
			}
			return o.printMetrics(s, views, lf.allNamespaces)
		},
	}
	lf.add(cmd)
	cmd.Flags().StringVar(&set, "set", "", "Only this MetricSet (default: every MetricSet in the namespace)")
	cmd.Flags().BoolVar(&showDisabled, "show-disabled", false, "Also show metrics listed with enabled: false")
	return cmd
}

// listMetricSets is one named set or every set in scope.
func listMetricSets(ctx context.Context, s *session, lf *listFlags, name string) ([]v1.MetricSet, error) {
	if name != "" {
		var ms v1.MetricSet
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: name}, &ms); err != nil {
			return nil, metricSetRequest("get", name, s.namespace).explain(err)
		}
		return []v1.MetricSet{ms}, nil
	}
	ns, opts := lf.scope(s)
	var list v1.MetricSetList
	if err := s.client.List(ctx, &list, opts...); err != nil {
		return nil, request{verb: "list", resource: "metricsets", kind: "MetricSets", namespace: ns}.explain(err)
	}
	return list.Items, nil
}

// printMetrics prints one table of every shown metric, then a summary line per set.
func (o *Options) printMetrics(s *session, views []metricSetView, all bool) error {
	if len(views) == 0 {
		return o.printList(s, listing{all: all})
	}
	header := []string{"SET", "METRIC", "ENABLED"}
	if all {
		header = append([]string{"NAMESPACE"}, header...)
	}
	var rows [][]string
	for _, v := range views {
		for _, m := range v.Metrics {
			r := []string{v.Name, m.Name, strconv.FormatBool(m.Enabled)}
			if all {
				r = append([]string{v.Namespace}, r...)
			}
			rows = append(rows, r)
		}
	}
	if len(rows) > 0 {
		if err := o.printTable(header, rows); err != nil {
			return err
		}
		fmt.Fprintln(o.out())
	}
	for _, v := range views {
		set := v.Name
		if all {
			set = v.Namespace + "/" + v.Name
		}
		fmt.Fprintf(o.out(), "%d of %d enabled in MetricSet %s\n", v.EnabledCount, v.MaxEnabled, set)
	}
	return nil
}

func metricSetRequest(verb, name, ns string) request {
	return request{verb: verb, resource: "metricsets", kind: "MetricSet", name: name, namespace: ns,
		notFound: "pick the set with --set; `kubectl clearance metrics -n " + ns + "` lists them"}
}

func (o *Options) setMetricCommand(verb string, on bool) *cobra.Command {
	var set string
	short := "Switch a metric on in a MetricSet (adds it if it is not listed)"
	if !on {
		short = "Switch a metric off in a MetricSet (it stays listed, disabled)"
	}
	cmd := &cobra.Command{
		Use:     verb + " NAME",
		Short:   short,
		Example: "  kubectl clearance " + verb + " occupancy.peak -n acme",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			metric := args[0]
			ms, changed, err := ops.ToggleMetric(cmd.Context(), s.client, s.namespace, set, metric, on)
			if err != nil {
				return metricSetRequest("update", set, s.namespace).explain(err)
			}
			if o.structured() {
				return o.printObject(ms)
			}
			v := viewMetricSet(ms, false)
			state := map[bool]string{true: "enabled", false: "disabled"}[on]
			if changed {
				fmt.Fprintf(o.out(), "metric %s %s in MetricSet %s (%d of %d enabled)\n", metric, state, set, v.EnabledCount, v.MaxEnabled)
			} else {
				fmt.Fprintf(o.out(), "metric %s is already %s in MetricSet %s (%d of %d enabled)\n", metric, state, set, v.EnabledCount, v.MaxEnabled)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&set, "set", defaultMetricSet, "MetricSet to change")
	return cmd
}
