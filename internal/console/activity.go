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
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/activity"
	"github.com/clearance-dev/clearance/internal/ops"
)

// activityWindows are the windows the Activity page offers, as ?window= takes them.
var activityWindows = []struct {
	Value string
	Label string
	Span  time.Duration
}{
	{"1h", "Last hour", time.Hour},
	{"24h", "Last day", 24 * time.Hour},
	{"168h", "Last week", 168 * time.Hour},
}

// chartBuckets is how many bars a chart has.
const chartBuckets = 24

// activityQueryTimeout bounds what the page waits for Prometheus.
const activityQueryTimeout = 10 * time.Second

// activityData is the Activity page of one org.
type activityData struct {
	Org          string
	Window       string
	WindowLabel  string
	Windows      []windowLink
	NoPrometheus bool
	// Connected is what each application connected to the org did in it (the granting view).
	Connected    []appActivity
	ConnectError string
	// Own is what each of the org's own applications did in every org (the owning view).
	Own      []ownActivity
	OwnError string
	// KeysNote says why the keys' last use is not shown.
	KeysNote string
}

// windowLink is one entry of the window selector.
type windowLink struct {
	Label, Href string
	Current     bool
}

// appActivity is one connected application's figures in the org.
type appActivity struct {
	Connection, Description, ApplicationID string
	Allowed, Refused                       int64
	Refusals                               []reasonCount
	Chart                                  *chart
	ChartError                             string
}

// ownActivity is one of the org's own applications: its use in each org.
type ownActivity struct {
	Name, Description, ApplicationID string
	Orgs                             []orgActivity
	// LastUsed is the latest use of any of its keys; KeysShown says it was read.
	LastUsed  *metav1.Time
	KeysShown bool
}

// orgActivity is an application's figures in one org ("(none)": before any connection was
// found).
type orgActivity struct {
	Org              string
	Allowed, Refused int64
	Refusals         []reasonCount
}

// reasonCount is one refusal reason and its count.
type reasonCount struct {
	Reason string
	Count  int64
}

// activityPage shows what applications did in an org: the session's current org, or the one
// ?org= names (a direct link), which is refused like any other unless the person may list that
// org's OrgConnections. Figures come from the Prometheus that scrapes the verifiers, through
// internal/activity, which builds every query from validated names.
func (s *Server) activityPage(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	org := sess.currentOrg()
	if o := r.URL.Query().Get("org"); o != "" {
		org = o
	}
	p := newPage(r, sess, "Activity", "activity")
	data := activityData{Org: org}
	p.Data = &data
	if errs := validation.IsDNS1123Label(org); len(errs) > 0 {
		p.Title, p.Error = "Activity", "\""+org+"\" is not an org (a namespace name): "+errs[0]
		s.render(w, http.StatusBadRequest, "message", p)
		return
	}
	var span time.Duration
	data.Window = r.URL.Query().Get("window")
	if data.Window == "" {
		data.Window = activityWindows[0].Value
	}
	for _, win := range activityWindows {
		q := url.Values{"window": {win.Value}}
		if org != sess.currentOrg() {
			q.Set("org", org)
		}
		data.Windows = append(data.Windows, windowLink{Label: win.Label, Href: "/activity?" + q.Encode(), Current: win.Value == data.Window})
		if win.Value == data.Window {
			span, data.WindowLabel = win.Span, strings.ToLower(win.Label)
		}
	}
	if span == 0 {
		p.Error = "The window must be 1h, 24h or 168h (the last hour, day or week)."
		s.render(w, http.StatusBadRequest, "message", p)
		return
	}
	may, err := ops.MayReadActivity(ctx, sess.client, org)
	if err != nil {
		p.Error = apiMessage(err)
		s.render(w, statusOf(err), "message", p)
		return
	}
	if !may {
		p.Title = "Activity refused"
		p.Error = "You may not see the activity of " + org + ": it is shown to those who may list its OrgConnections (its org admins, technicians and observers); ask an org admin of " + org + "."
		s.render(w, http.StatusForbidden, "message", p)
		return
	}
	if s.activity == nil {
		data.NoPrometheus = true
		s.render(w, http.StatusOK, "activity", p)
		return
	}
	qctx, cancel := context.WithTimeout(ctx, activityQueryTimeout)
	defer cancel()
	now := s.opts.Clock.Now()
	if err := s.fillConnected(qctx, sess, &data, span, now); err != nil {
		p.Error = err.Error()
		s.render(w, http.StatusBadGateway, "activity", p)
		return
	}
	if err := s.fillOwn(qctx, sess, &data, span, now); err != nil {
		p.Error = err.Error()
		s.render(w, http.StatusBadGateway, "activity", p)
		return
	}
	s.render(w, http.StatusOK, "activity", p)
}

// prometheusError is what the page says when Prometheus did not answer.
func (s *Server) prometheusError(err error) error {
	return fmt.Errorf("the Prometheus at %s did not answer (%v), so no figures are shown; try again in a moment", s.opts.PrometheusURL, err)
}

// fillConnected reads the org's connections with the person's client and what each connected
// application did in the org, with its chart.
func (s *Server) fillConnected(ctx context.Context, sess *session, data *activityData, span time.Duration, now time.Time) error {
	var conns v1.OrgConnectionList
	if err := sess.client.List(ctx, &conns, client.InNamespace(data.Org)); err != nil {
		data.ConnectError = apiMessage(err)
	}
	rows, err := s.activity.InOrg(ctx, data.Org, span, now)
	if err != nil {
		return s.prometheusError(err)
	}
	byID := map[string]activity.Row{}
	for _, row := range rows {
		byID[row.ApplicationID] = row
	}
	seen := map[string]bool{}
	add := func(a appActivity) {
		row := byID[a.ApplicationID]
		a.Allowed, a.Refused, a.Refusals = row.Allowed(), row.Refused(), refusalsOf(row)
		points, err := s.activity.Timeline(ctx, data.Org, a.ApplicationID, span, chartBuckets, now)
		if err != nil {
			a.ChartError = "No chart: " + err.Error()
		} else {
			a.Chart = newChart(points, span, now)
		}
		data.Connected = append(data.Connected, a)
		seen[a.ApplicationID] = true
	}
	slices.SortFunc(conns.Items, func(a, b v1.OrgConnection) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range conns.Items {
		if c.Spec.ApplicationID == "" || seen[c.Spec.ApplicationID] {
			continue
		}
		add(appActivity{Connection: c.Name, Description: c.Status.Description, ApplicationID: c.Spec.ApplicationID})
	}
	for _, row := range rows { // counted in the window, disconnected since
		if !seen[row.ApplicationID] {
			add(appActivity{ApplicationID: row.ApplicationID})
		}
	}
	return nil
}

// fillOwn reads the org's own applications and their keys' last use with the person's client
// (the keys only if they may list them), and what each application did in every org.
func (s *Server) fillOwn(ctx context.Context, sess *session, data *activityData, span time.Duration, now time.Time) error {
	var apps v1.ApplicationList
	if err := sess.client.List(ctx, &apps, client.InNamespace(data.Org)); err != nil {
		data.OwnError = apiMessage(err)
		return nil
	}
	slices.SortFunc(apps.Items, func(a, b v1.Application) int { return strings.Compare(a.Name, b.Name) })
	lastUsed := map[string]*metav1.Time{}
	keysShown := true
	var keys v1.APIKeyList
	if err := sess.client.List(ctx, &keys, client.InNamespace(data.Org)); err != nil {
		keysShown = false
		data.KeysNote = "The keys' last use is not shown: " + apiMessage(err)
	}
	for _, k := range keys.Items {
		if t := k.Status.LastUsedAt; t != nil && (lastUsed[k.Spec.ApplicationName] == nil || t.After(lastUsed[k.Spec.ApplicationName].Time)) {
			lastUsed[k.Spec.ApplicationName] = t
		}
	}
	for _, app := range apps.Items {
		own := ownActivity{Name: app.Name, Description: app.Spec.Description, ApplicationID: app.Status.ApplicationID,
			LastUsed: lastUsed[app.Name], KeysShown: keysShown}
		if own.ApplicationID != "" {
			rows, err := s.activity.OfApplication(ctx, own.ApplicationID, span, now)
			if err != nil {
				return s.prometheusError(err)
			}
			for _, row := range rows {
				o := orgActivity{Org: row.Org, Allowed: row.Allowed(), Refused: row.Refused(), Refusals: refusalsOf(row)}
				if o.Org == "" {
					o.Org = "(none)"
				}
				own.Orgs = append(own.Orgs, o)
			}
		}
		data.Own = append(data.Own, own)
	}
	return nil
}

// refusalsOf lists a row's refusals by reason, the most frequent first.
func refusalsOf(r activity.Row) []reasonCount {
	var out []reasonCount
	for reason, n := range r.Reasons {
		if reason != "ok" && n > 0 {
			out = append(out, reasonCount{reason, n})
		}
	}
	slices.SortFunc(out, func(a, b reasonCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
	})
	return out
}

// chart is a bar chart drawn as inline SVG by the template: allowed and refused stacked per
// bucket, in a ChartWidth × ChartHeight view box.
type chart struct {
	Bars  []bar
	Max   string // the tallest bar's figure, for the axis label
	Label string // what a screen reader says
}

// bar is one bucket: two rectangles, refused stacked on allowed.
type bar struct {
	X, W                         string
	AllowedY, AllowedH, RefusedY string
	RefusedH                     string
	Title                        string
}

// The chart's view box.
const (
	ChartWidth  = 240
	ChartHeight = 48
)

// newChart scales the timeline's points, of the window span ending at end, into bars, the
// tallest full height; nil without any answer.
func newChart(points []activity.Point, span time.Duration, end time.Time) *chart {
	var peak, allowed, refused float64
	for _, p := range points {
		peak = max(peak, p.Allowed+p.Refused)
		allowed += p.Allowed
		refused += p.Refused
	}
	if peak <= 0 {
		return nil
	}
	c := &chart{Max: strconv.FormatFloat(peak, 'f', 0, 64)}
	step := float64(ChartWidth) / chartBuckets
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	for _, p := range points {
		i := chartBuckets - 1 - int((end.Sub(p.At)+span/chartBuckets/2)/(span/chartBuckets))
		if i < 0 || i >= chartBuckets {
			continue
		}
		ah := p.Allowed / peak * ChartHeight
		rh := p.Refused / peak * ChartHeight
		c.Bars = append(c.Bars, bar{
			X: f(float64(i)*step + 1), W: f(step - 2),
			AllowedY: f(ChartHeight - ah), AllowedH: f(ah),
			RefusedY: f(ChartHeight - ah - rh), RefusedH: f(rh),
			Title: fmt.Sprintf("until %s: %.0f allowed, %.0f refused", p.At.UTC().Format("Jan 2 15:04 UTC"), p.Allowed, p.Refused),
		})
	}
	c.Label = fmt.Sprintf("Requests per %s: about %.0f allowed and %.0f refused in all, at most %s in one bar", spanText(span/chartBuckets), allowed, refused, c.Max)
	return c
}

// spanText is a bucket's length as people write it: 2m30s, 1h, 7h.
func spanText(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return d.Round(time.Second).String()
}
