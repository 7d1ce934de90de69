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

// Package activity reads what applications did from the Prometheus that scrapes the verifiers
// (docs/metrics.md): clearance_verifier_application_decisions_total, summed over replicas, for
// the console's Activity view and `kubectl clearance usage`. Every query is built here from a
// validated org name or Application ID; nothing a caller passes becomes PromQL text.
package activity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Metric is the verifier's per-application decisions counter (internal/verifier's
// ApplicationDecisionsMetric; not imported, so the console need not link the verifier).
const Metric = "clearance_verifier_application_decisions_total"

// Client queries one Prometheus.
type Client struct{ api promv1.API }

// New is a client of the Prometheus at url (http or https), with rt as its transport (nil: the
// default).
func New(url string, rt http.RoundTripper) (*Client, error) {
	c, err := api.NewClient(api.Config{Address: url, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("activity: Prometheus URL %q: %w", url, err)
	}
	return &Client{api: promv1.NewAPI(c)}, nil
}

// Row is what one application did in one org over a window: decisions by reason ("ok" for
// allowed).
type Row struct {
	// Org is the granting org; "" for answers about the application's keys or tokens made before
	// a connection of the org asked for was found (a disabled key, an org not connected).
	Org           string
	ApplicationID string
	Reasons       map[string]int64
}

// Allowed is the count of allowed requests.
func (r Row) Allowed() int64 { return r.Reasons["ok"] }

// Refused is the count of every other answer.
func (r Row) Refused() int64 {
	var n int64
	for reason, c := range r.Reasons {
		if reason != "ok" {
			n += c
		}
	}
	return n
}

var appID = regexp.MustCompile(`^app_[a-z0-9]{1,64}$`)

// ErrInvalidName says an org or Application ID is not one: never sent to Prometheus.
var ErrInvalidName = errors.New("not an org name or Application ID")

// InOrg is what each application did in org (the granting org's view) over the window
// ending at at.
func (c *Client) InOrg(ctx context.Context, org string, window time.Duration, at time.Time) ([]Row, error) {
	if len(validation.IsDNS1123Label(org)) > 0 {
		return nil, fmt.Errorf("%w: org %q", ErrInvalidName, org)
	}
	return c.rows(ctx, fmt.Sprintf(`org=%q`, org), window, at)
}

// OfApplication is what the application did in every org (the owning org's view), with its
// answers before any connection under Org "".
func (c *Client) OfApplication(ctx context.Context, applicationID string, window time.Duration, at time.Time) ([]Row, error) {
	if !appID.MatchString(applicationID) {
		return nil, fmt.Errorf("%w: application %q", ErrInvalidName, applicationID)
	}
	return c.rows(ctx, fmt.Sprintf(`application=%q`, applicationID), window, at)
}

// rows runs the count query for a matcher and groups the result.
func (c *Client) rows(ctx context.Context, matcher string, window time.Duration, at time.Time) ([]Row, error) {
	v, _, err := c.api.Query(ctx, countQuery(matcher, window), at)
	if err != nil {
		return nil, fmt.Errorf("activity: querying Prometheus: %w", err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("activity: Prometheus answered a %s, want a vector", v.Type())
	}
	byKey := map[[2]string]*Row{}
	for _, s := range vec {
		k := [2]string{string(s.Metric["org"]), string(s.Metric["application"])}
		r := byKey[k]
		if r == nil {
			r = &Row{Org: k[0], ApplicationID: k[1], Reasons: map[string]int64{}}
			byKey[k] = r
		}
		if n := int64(s.Value + 0.5); n > 0 {
			r.Reasons[string(s.Metric["reason"])] += n
		}
	}
	out := make([]Row, 0, len(byKey))
	for _, r := range byKey {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ApplicationID != out[j].ApplicationID {
			return out[i].ApplicationID < out[j].ApplicationID
		}
		return out[i].Org < out[j].Org
	})
	return out, nil
}

// countQuery counts the decisions of the window exactly, per replica: a counter's value now
// minus its value a window ago; a series born within the window (a connection made, a replica
// started) counts its whole value; a series that went down (a replica restarted) counts what it
// has now. Then summed over replicas.
func countQuery(matcher string, window time.Duration) string {
	sel := fmt.Sprintf(`%s{%s}`, Metric, matcher)
	by := `sum by (org, application, reason, instance)`
	w := model.Duration(window).String()
	return fmt.Sprintf(`sum by (org, application, reason) (((%[1]s (%[2]s) - %[1]s (%[2]s offset %[3]s)) >= 0) or %[1]s (%[2]s))`, by, sel, w)
}

// Point is one bucket of a timeline: the answers that ended in it.
type Point struct {
	At               time.Time // the bucket's end
	Allowed, Refused float64
}

// Timeline is what the application did in org over the window ending at at, in buckets equal
// buckets (for a chart): Prometheus's increase over each bucket, summed over replicas, which
// extrapolates at a series' edges (the exact totals are InOrg's).
func (c *Client) Timeline(ctx context.Context, org, applicationID string, window time.Duration, buckets int, at time.Time) ([]Point, error) {
	if len(validation.IsDNS1123Label(org)) > 0 || !appID.MatchString(applicationID) {
		return nil, fmt.Errorf("%w: org %q, application %q", ErrInvalidName, org, applicationID)
	}
	if buckets < 1 || buckets > 500 {
		return nil, fmt.Errorf("activity: %d buckets, want 1 to 500", buckets)
	}
	step := window / time.Duration(buckets)
	if step < time.Second {
		step = time.Second
	}
	r := promv1.Range{Start: at.Add(-window + step), End: at, Step: step}
	points := map[int64]*Point{}
	var order []int64
	for _, part := range []struct {
		match string
		set   func(*Point, float64)
	}{{`reason="ok"`, func(p *Point, v float64) { p.Allowed = v }}, {`reason!="ok"`, func(p *Point, v float64) { p.Refused = v }}} {
		q := fmt.Sprintf(`sum(increase(%s{org=%q, application=%q, %s}[%s]))`, Metric, org, applicationID, part.match, model.Duration(step))
		v, _, err := c.api.QueryRange(ctx, q, r)
		if err != nil {
			return nil, fmt.Errorf("activity: querying Prometheus: %w", err)
		}
		m, ok := v.(model.Matrix)
		if !ok {
			return nil, fmt.Errorf("activity: Prometheus answered a %s, want a matrix", v.Type())
		}
		for _, s := range m {
			for _, sp := range s.Values {
				k := sp.Timestamp.Unix()
				p := points[k]
				if p == nil {
					p = &Point{At: sp.Timestamp.Time()}
					points[k] = p
					order = append(order, k)
				}
				part.set(p, float64(sp.Value))
			}
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	out := make([]Point, len(order))
	for i, k := range order {
		out[i] = *points[k]
	}
	return out, nil
}
