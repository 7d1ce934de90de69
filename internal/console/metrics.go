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
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/ops"
)

// metricsData is the Metrics page: one MetricSet's catalog with what is on.
type metricsData struct {
	Sets         []string
	Set          *v1.MetricSet
	SetsError    string
	Query        string
	ShowDisabled bool
	Rows         []metricRow
	Total        int // metrics in the catalog (or listed, without one)
	Enabled      int
	Cap          int32
	AtCap        bool
	CatalogNote  string
	CanChange    bool
	// Back is the query string that brings the person back to this view after a switch.
	Back string
}

// metricRow is one metric of the catalog.
type metricRow struct {
	Name    string
	Cost    string
	Enabled bool
}

func (s *Server) metricsPage(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, org := r.Context(), sess.currentOrg()
	q := r.URL.Query()
	data := metricsData{Query: strings.TrimSpace(q.Get("q")), ShowDisabled: q.Get("disabled") == "show"}
	var sets v1.MetricSetList
	if err := sess.client.List(ctx, &sets, client.InNamespace(org)); err != nil {
		data.SetsError = apiMessage(err)
	}
	for i := range sets.Items {
		data.Sets = append(data.Sets, sets.Items[i].Name)
		if sets.Items[i].Name == q.Get("set") || (q.Get("set") == "" && data.Set == nil) {
			data.Set = &sets.Items[i]
		}
	}
	if data.Set != nil {
		s.fillMetrics(r, sess, &data)
	}
	p := newPage(r, sess, "Metrics", "metrics")
	p.Data = data
	s.render(w, http.StatusOK, "metrics", p)
}

// fillMetrics merges the set's catalog (when the person may read it) with what the set lists,
// then filters by the search and the show-disabled switch.
func (s *Server) fillMetrics(r *http.Request, sess *session, data *metricsData) {
	ms := data.Set
	costs := map[string]string{}
	if ref := ms.Spec.CatalogRef; ref != nil {
		var catalog corev1.ConfigMap
		if err := sess.client.Get(r.Context(), client.ObjectKey{Namespace: ms.Namespace, Name: ref.Name}, &catalog); err != nil {
			data.CatalogNote = "The catalog " + ref.Name + " cannot be read (" + apiMessage(err) + "): only the metrics this set lists are shown."
		}
		costs = catalog.Data
	}
	on := map[string]bool{}
	for _, m := range ms.Spec.Metrics {
		on[m.Name] = m.IsEnabled()
		if _, ok := costs[m.Name]; !ok {
			costs[m.Name] = ""
		}
	}
	data.Total = len(costs)
	data.Enabled = ops.EnabledCount(&ms.Spec)
	data.Cap = ms.Spec.Cap()
	data.AtCap = int32(data.Enabled) >= data.Cap
	data.CanChange = allowed(r.Context(), sess, ms.Namespace, clearance("update", "metricsets"))[clearance("update", "metricsets")]
	query := strings.ToLower(data.Query)
	for name, cost := range costs {
		if (!on[name] && !data.ShowDisabled) || !strings.Contains(name, query) {
			continue
		}
		data.Rows = append(data.Rows, metricRow{Name: name, Cost: cost, Enabled: on[name]})
	}
	slices.SortFunc(data.Rows, func(a, b metricRow) int { return strings.Compare(a.Name, b.Name) })
	back := url.Values{"set": {ms.Name}}
	if data.Query != "" {
		back.Set("q", data.Query)
	}
	if data.ShowDisabled {
		back.Set("disabled", "show")
	}
	data.Back = back.Encode()
}

// toggleMetric switches one metric of a set on or off; the cap and the catalog are the
// apiserver's to enforce (CEL and the operator), and their words are shown.
func (s *Server) toggleMetric(w http.ResponseWriter, r *http.Request, sess *session) {
	set, metric := r.PostForm.Get("set"), r.PostForm.Get("metric")
	on, _ := strconv.ParseBool(r.PostForm.Get("on"))
	back := "/metrics"
	if v, err := url.ParseQuery(r.PostForm.Get("back")); err == nil {
		back += "?" + v.Encode()
	}
	_, changed, err := ops.ToggleMetric(r.Context(), sess.client, sess.currentOrg(), set, metric, on)
	switch {
	case err != nil:
		sess.addFlash("error", apiMessage(err))
		http.Redirect(w, r, back, http.StatusSeeOther)
	case !changed:
		done(w, r, sess, back, "Metric "+metric+" was already "+onOff(on)+".")
	default:
		done(w, r, sess, back, "Metric "+metric+" "+onOff(on)+" in MetricSet "+set+".")
	}
}

func onOff(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}
