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

package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// families is one scrape of a /metrics endpoint.
type families map[string]*dto.MetricFamily

// scrapeAPIServer reads kube-apiserver's own /metrics (text format).
func scrapeAPIServer(ctx context.Context, cs kubernetes.Interface) (families, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the apiserver's metrics: %w", err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(strings.NewReader(string(raw)))
}

// scrapeOperator reads the operator's /metrics in the protobuf format, which carries native
// histograms (controller-runtime's webhook latency has them: buckets about 9% wide).
func scrapeOperator(url string) (families, error) {
	req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	out := families{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("decoding the operator's metrics: %w", err)
		}
		out[mf.GetName()] = mf
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// writeVerbs are the apiserver_request_total verbs that change something.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true, "APPLY": true, "DELETECOLLECTION": true}

// writeCounts are apiserver_request_total's writes by "VERB resource[/subresource]".
type writeCounts map[string]float64

func writes(f families) writeCounts {
	out := writeCounts{}
	for _, m := range f["apiserver_request_total"].GetMetric() {
		verb := label(m, "verb")
		if !writeVerbs[verb] || label(m, "dry_run") != "" {
			continue
		}
		res := label(m, "resource")
		if sub := label(m, "subresource"); sub != "" {
			res += "/" + sub
		}
		out[verb+" "+res] += m.GetCounter().GetValue()
	}
	return out
}

// clearanceResources are what the operator writes; anything else (the apiserver's own lease
// heartbeats, say) is not the operator's doing.
var clearanceResources = map[string]bool{
	"secrets": true, "events": true, "apikeys": true, "applications": true, "orgconnections": true,
	"metricsets": true, "configmaps": true, "deployments": true, "statefulsets": true,
}

// operatorWrites is after-before over the resources the operator writes, less the writes the
// bench itself made (given as "VERB resource" → count), with the breakdown for the log.
func operatorWrites(before, after writeCounts, ours map[string]float64) (float64, string) {
	var total float64
	var parts []string
	keys := make([]string, 0, len(after))
	for k := range after {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		res := strings.SplitN(strings.SplitN(k, " ", 2)[1], "/", 2)[0]
		if !clearanceResources[res] {
			continue
		}
		d := after[k] - before[k] - ours[k]
		if d != 0 {
			parts = append(parts, fmt.Sprintf("%s=%g", k, d))
			total += d
		}
	}
	return total, strings.Join(parts, " ")
}

// histogram is a latency distribution: upper bounds (seconds) → count in that bucket (not
// cumulative), and the total.
type histogram struct {
	bounds []float64
	counts []float64
	total  float64
}

// classic reads the sum over series matching match of a classic histogram.
func classic(f families, name string, match func(*dto.Metric) bool) map[float64]float64 {
	out := map[float64]float64{}
	for _, m := range f[name].GetMetric() {
		if !match(m) {
			continue
		}
		hasInf := false
		for _, b := range m.GetHistogram().GetBucket() {
			out[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !hasInf {
			out[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return out
}

// classicDelta turns two cumulative classic histograms into per-bucket counts.
func classicDelta(before, after map[float64]float64) histogram {
	var bounds []float64
	for b := range after {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	h := histogram{}
	prev := 0.0
	for _, b := range bounds {
		cum := after[b] - before[b]
		h.bounds = append(h.bounds, b)
		h.counts = append(h.counts, cum-prev)
		prev = cum
	}
	h.total = prev
	return h
}

// native reads the sum over series matching match of a native (sparse) histogram as bucket
// index → count; index i covers (base^(i-1), base^i] with base = 2^(2^-schema). Index
// math.MinInt stands for the zero bucket.
func native(f families, name string, match func(*dto.Metric) bool) (map[int]float64, int32, bool) {
	out := map[int]float64{}
	var schema int32
	found := false
	for _, m := range f[name].GetMetric() {
		if !match(m) {
			continue
		}
		h := m.GetHistogram()
		if h.GetSchema() == 0 && len(h.GetPositiveSpan()) == 0 && h.GetZeroCount() == 0 && h.GetSampleCount() != 0 {
			continue // a classic-only series
		}
		found = true
		schema = h.GetSchema()
		out[math.MinInt] += float64(h.GetZeroCount())
		idx, count := 0, int64(0)
		deltas := h.GetPositiveDelta()
		d := 0
		for _, span := range h.GetPositiveSpan() {
			idx += int(span.GetOffset())
			for range span.GetLength() {
				count += deltas[d]
				d++
				out[idx] += float64(count)
				idx++
			}
		}
	}
	return out, schema, found
}

// nativeDelta turns two native histograms into a distribution with upper bounds.
func nativeDelta(before, after map[int]float64, schema int32) histogram {
	var idx []int
	for i := range after {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	base := math.Pow(2, math.Pow(2, -float64(schema)))
	h := histogram{}
	for _, i := range idx {
		c := after[i] - before[i]
		if c == 0 {
			continue
		}
		bound := 0.0
		if i != math.MinInt {
			bound = math.Pow(base, float64(i))
		}
		h.bounds = append(h.bounds, bound)
		h.counts = append(h.counts, c)
		h.total += c
	}
	return h
}

// quantile is the upper bound of the bucket holding the q-quantile: a figure the true value
// does not exceed, never an interpolation that flatters.
func (h histogram) quantile(q float64) float64 {
	if h.total == 0 {
		return math.NaN()
	}
	rank := q * h.total
	cum := 0.0
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			return h.bounds[i]
		}
	}
	return h.bounds[len(h.bounds)-1]
}

// within is the share of samples in buckets whose upper bound is at most bound.
func (h histogram) within(bound float64) float64 {
	if h.total == 0 {
		return math.NaN()
	}
	in := 0.0
	for i, c := range h.counts {
		if h.bounds[i] <= bound {
			in += c
		}
	}
	return in / h.total
}

// interpolated is the q-quantile as Prometheus' histogram_quantile computes it: linear within
// the bucket that holds it (what a dashboard over these metrics shows). For coarse buckets it
// is an estimate; quantile gives the bound.
func (h histogram) interpolated(q float64) float64 {
	if h.total == 0 {
		return math.NaN()
	}
	rank := q * h.total
	cum, lower := 0.0, 0.0
	for i, c := range h.counts {
		if cum+c >= rank && c > 0 {
			if math.IsInf(h.bounds[i], 1) {
				return lower
			}
			return lower + (h.bounds[i]-lower)*(rank-cum)/c
		}
		cum += c
		lower = h.bounds[i]
	}
	return lower
}

// percentile of measured durations (nearest rank).
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	if i < 0 {
		i = 0
	}
	return s[i]
}

// operatorRequests is the operator's own count of its requests to the apiserver by method
// (client-go's rest_client_requests_total), so a note can say how many reads went with its
// writes.
func operatorRequests(url string) (map[string]float64, error) {
	f, err := scrapeOperator(url)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, m := range f["rest_client_requests_total"].GetMetric() {
		out[label(m, "method")] += m.GetCounter().GetValue()
	}
	return out, nil
}

// requestsText is after-before of operatorRequests, "GET 12, PATCH 1000, …", methods sorted.
func requestsText(before, after map[string]float64) string {
	var parts []string
	for _, method := range slices.Sorted(maps.Keys(after)) {
		if d := after[method] - before[method]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %g", method, d))
		}
	}
	return strings.Join(parts, ", ")
}

// counterDelta is after-before of a counter summed over the series matching match.
func counterDelta(before, after families, name string, match func(*dto.Metric) bool) float64 {
	sum := func(f families) float64 {
		total := 0.0
		for _, m := range f[name].GetMetric() {
			if match(m) {
				total += m.GetCounter().GetValue()
			}
		}
		return total
	}
	return sum(after) - sum(before)
}

// webhookCalls is after-before of the apiserver's admission webhook calls
// (apiserver_admission_webhook_request_total, every label set), with the calls by webhook and
// operation, "vorgconnection.access.clearance.dev CREATE 250, …", sorted.
func webhookCalls(before, after families) (float64, string) {
	const name = "apiserver_admission_webhook_request_total"
	byCall := map[string]float64{}
	add := func(f families, sign float64) {
		for _, m := range f[name].GetMetric() {
			byCall[label(m, "name")+" "+label(m, "operation")] += sign * m.GetCounter().GetValue()
		}
	}
	add(after, 1)
	add(before, -1)
	var total float64
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(byCall)) {
		if d := byCall[k]; d != 0 {
			parts = append(parts, fmt.Sprintf("%s %g", k, d))
			total += d
		}
	}
	return total, strings.Join(parts, ", ")
}

// familiesWithPrefix lists the names of the scraped families that begin with prefix, sorted.
func familiesWithPrefix(f families, prefix string) []string {
	var out []string
	for name := range f {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
