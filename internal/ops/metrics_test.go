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

package ops_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

func TestToggleMetricAddsSwitchesAndLeavesAnUnchangedSetUnwritten(t *testing.T) {
	ns := env.Namespace(t, "metrics")
	ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}, Spec: v1.MetricSetSpec{MaxEnabled: ptr.To[int32](2),
		Metrics: []v1.Metric{{Name: "occupancy.current", Enabled: ptr.To(true)}}}}
	must(t, env.Client.Create(ctx(), ms))

	got, changed, err := ops.ToggleMetric(ctx(), env.Client, ns, "default", "dwell.p95", true)
	if err != nil || !changed || ops.EnabledCount(&got.Spec) != 2 {
		t.Errorf("enabling an unlisted metric: %v, changed %v, %d enabled", err, changed, ops.EnabledCount(&got.Spec))
	}
	rv := got.ResourceVersion
	got, changed, err = ops.ToggleMetric(ctx(), env.Client, ns, "default", "dwell.p95", true)
	if err != nil || changed || got.ResourceVersion != rv {
		t.Errorf("enabling it again: %v, changed %v, written %v", err, changed, got.ResourceVersion != rv)
	}
	_, _, err = ops.ToggleMetric(ctx(), env.Client, ns, "default", "occupancy.peak", true)
	if err == nil || !strings.Contains(err.Error(), "more metrics are enabled than spec.maxEnabled allows") {
		t.Errorf("enabling one over the cap: %v, want the CRD's refusal", err)
	}
	got, changed, err = ops.ToggleMetric(ctx(), env.Client, ns, "default", "occupancy.current", false)
	if err != nil || !changed || ops.EnabledCount(&got.Spec) != 1 || len(got.Spec.Metrics) != 2 {
		t.Errorf("disabling a metric: %v, changed %v, spec %+v", err, changed, got.Spec.Metrics)
	}
}

// TestSwitchingAMetricToWhatItIsAlreadyWritesNothing: someone who may read the MetricSet but not
// change it is told nothing changed, not refused, for a metric already on, already off or not
// listed.
func TestSwitchingAMetricToWhatItIsAlreadyWritesNothing(t *testing.T) {
	ns := env.Namespace(t, "metricsread")
	ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}, Spec: v1.MetricSetSpec{MaxEnabled: ptr.To[int32](2),
		Metrics: []v1.Metric{{Name: "occupancy.current", Enabled: ptr.To(true)}, {Name: "dwell.p95", Enabled: ptr.To(false)}}}}
	must(t, env.Client.Create(ctx(), ms))
	reader := person(t, ns, "rita", clearanceRule("metricsets", []string{"get"}))
	for metric, on := range map[string]bool{"occupancy.current": true, "dwell.p95": false, "occupancy.peak": false} {
		got, changed, err := ops.ToggleMetric(ctx(), reader, ns, "default", metric, on)
		if err != nil || changed || got.ResourceVersion != ms.ResourceVersion {
			t.Errorf("switching %s to %v as it is: %v, changed %v", metric, on, err, changed)
		}
	}
}

// TestToggleMetricReappliesOnlyItsSwitchOverAChangeMadeMeanwhile: someone else's change to the
// MetricSet between ToggleMetric's read and its write (here, right after its first read) makes
// the write conflict; ToggleMetric reads the set again and applies its one switch to that, so
// neither person's change is lost and neither is refused.
func TestToggleMetricReappliesOnlyItsSwitchOverAChangeMadeMeanwhile(t *testing.T) {
	ns := env.Namespace(t, "metricsrace")
	ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}, Spec: v1.MetricSetSpec{MaxEnabled: ptr.To[int32](3),
		Metrics: []v1.Metric{{Name: "occupancy.current", Enabled: ptr.To(true)}}}}
	must(t, env.Client.Create(ctx(), ms))
	direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	must(t, err)
	reads := 0
	c := interceptor.NewClient(direct, interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if err := c.Get(ctx, key, obj, opts...); err != nil {
			return err
		}
		if reads++; reads == 1 { // someone else switches another metric on meanwhile
			other := &v1.MetricSet{}
			if err := env.Client.Get(ctx, key, other); err != nil {
				return err
			}
			other.Spec.Metrics = append(other.Spec.Metrics, v1.Metric{Name: "dwell.p95", Enabled: ptr.To(true)})
			return env.Client.Update(ctx, other)
		}
		return nil
	}})

	got, changed, err := ops.ToggleMetric(ctx(), c, ns, "default", "occupancy.current", false)
	if err != nil || !changed || reads != 2 {
		t.Fatalf("switching a metric off while another was switched on: %v, changed %v, %d reads; want it written on a second read", err, changed, reads)
	}
	var stored v1.MetricSet
	must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(ms), &stored))
	for _, set := range []*v1.MetricSet{got, &stored} {
		if len(set.Spec.Metrics) != 2 || set.Spec.Metrics[0].IsEnabled() || set.Spec.Metrics[1].Name != "dwell.p95" || !set.Spec.Metrics[1].IsEnabled() {
			t.Errorf("the set holds %+v, want occupancy.current off and dwell.p95 on", set.Spec.Metrics)
		}
	}
}
