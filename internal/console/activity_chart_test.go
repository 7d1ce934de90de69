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

package console

import (
	"reflect"
	"testing"
	"time"

	"github.com/clearance-dev/clearance/internal/activity"
)

// TestAChartPutsEachBucketInItsPlaceAndScalesToTheTallestBar: a bucket's bar is placed by its
// end counted back from the window's end (a bucket Prometheus had nothing for leaves a gap),
// refused stacked on allowed, the tallest bar full height; no answer at all is no chart.
func TestAChartPutsEachBucketInItsPlaceAndScalesToTheTallestBar(t *testing.T) {
	end := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	step := time.Hour / chartBuckets
	c := newChart([]activity.Point{
		{At: end.Add(-2 * step), Allowed: 1},
		{At: end.Add(-step), Allowed: 3, Refused: 1},
	}, time.Hour, end)
	if c == nil || len(c.Bars) != 2 {
		t.Fatalf("chart %+v", c)
	}
	got := []bar{c.Bars[0], c.Bars[1]}
	for i := range got {
		got[i].Title = ""
	}
	want := []bar{
		{X: "211.00", W: "8.00", AllowedY: "36.00", AllowedH: "12.00", RefusedY: "36.00", RefusedH: "0.00"},
		{X: "221.00", W: "8.00", AllowedY: "12.00", AllowedH: "36.00", RefusedY: "0.00", RefusedH: "12.00"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bars\n got %+v\nwant %+v", got, want)
	}
	if c.Max != "4" {
		t.Errorf("peak %q, want 4", c.Max)
	}
	if newChart([]activity.Point{{At: end}}, time.Hour, end) != nil || newChart(nil, time.Hour, end) != nil {
		t.Error("a chart of nothing")
	}
	if got := spanText(time.Hour / chartBuckets); got != "2m30s" {
		t.Errorf("a bucket of the last hour is %q", got)
	}
	if got := spanText(168 * time.Hour / chartBuckets); got != "7h" {
		t.Errorf("a bucket of the last week is %q", got)
	}
}
