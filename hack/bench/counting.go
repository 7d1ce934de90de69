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
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// Decision counting (docs/metrics.md): what counting each decision per org and application
// costs the verifier — throughput and p99 with it on against the same verifier with it off,
// interleaved — and how many series and how much heap it takes at countingConnections
// connections.
const (
	countingConnections     = 10_000
	countingThroughputFloor = 0.95
	countingP99Ceiling      = 1.1
	// A tally per connection is an array of counters, one per reason: a few hundred bytes.
	countingBytesPerConnection = 1024
)

func measureCounting(res *Results, vc verifierConfig) error {
	fmt.Fprintln(os.Stderr, "bench: phase decision counting")
	dir, err := os.MkdirTemp("", "clearance-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	tokensPath := filepath.Join(dir, "tokens")
	on, err := startServer("verifier", vc.keys, tokensPath, "", "")
	if err != nil {
		return err
	}
	defer on.stop()
	off, err := startServer("verifier-uncounted", vc.keys, filepath.Join(dir, "tokens-off"), "", "")
	if err != nil {
		return err
	}
	defer off.stop()
	// Both loaded the same number of keys, each its own; each is driven with its own tokens.
	onTokens, err := readTokens(tokensPath)
	if err != nil {
		return err
	}
	offTokens, err := readTokens(filepath.Join(dir, "tokens-off"))
	if err != nil {
		return err
	}
	onRates, offRates, err := onOffRounds(vc, on.url, off.url, onTokens, offTokens)
	if err != nil {
		return err
	}
	query := loadQuery
	res.RatioAtLeast(fmt.Sprintf("decision counting: verifier throughput on / off, %d keys", vc.keys), median(onRates), median(offRates), "req/s", countingThroughputFloor,
		fmt.Sprintf("the same verifier with counting per org and application on and off, medians of %d alternating rounds of %d requests over %d keep-alive connections; rounds: on %s, off %s req/s",
			vc.rounds, vc.perRound, vc.conns, rates(onRates), rates(offRates)))
	lat, offLat, onWin, offWin, err := interleavedLatency(on.url+query, off.url+query, onTokens, offTokens, median(offRates)/2)
	if err != nil {
		return err
	}
	res.RatioAtMost(fmt.Sprintf("decision counting: verifier p99 on / off at half load, %d keys", vc.keys), ms(percentile(lat, 0.99)), ms(percentile(offLat, 0.99)), "ms", countingP99Ceiling,
		fmt.Sprintf("open loop at %.0f req/s, windows alternating; p50 on %.2f ms, off %.2f ms; median of the windows' p99s on %.2f ms, off %.2f ms",
			median(offRates)/2, ms(percentile(lat, 0.5)), ms(percentile(offLat, 0.5)), onWin, offWin))
	return measureCountingScale(res)
}

// loadQuery is what the load generator asks the verifier: an Observer's read with a scope.
const loadQuery = verifier.PathAuthorize + "?org=" + loadGrantOrg + "&minRole=Observer&scope=reports:read"

// onOffRounds warms two servers (the same verifier with a feature on and off), then measures
// their throughput in alternating rounds, off first, each driven with its own tokens.
func onOffRounds(vc verifierConfig, onURL, offURL string, onTokens, offTokens []string) (onRates, offRates []float64, err error) {
	for _, s := range []struct {
		url    string
		tokens []string
	}{{onURL, onTokens}, {offURL, offTokens}} {
		if _, err := closedLoop(s.url+loadQuery, s.tokens, vc.conns, vc.perRound/10); err != nil {
			return nil, nil, fmt.Errorf("warming: %w", err)
		}
	}
	for range vc.rounds {
		r, err := closedLoop(offURL+loadQuery, offTokens, vc.conns, vc.perRound)
		if err != nil {
			return nil, nil, err
		}
		offRates = append(offRates, r)
		if r, err = closedLoop(onURL+loadQuery, onTokens, vc.conns, vc.perRound); err != nil {
			return nil, nil, err
		}
		onRates = append(onRates, r)
	}
	return onRates, offRates, nil
}

func readTokens(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Split(string(data), "\n"), nil
}

// measureCountingScale connects one application in countingConnections orgs, sends each org an
// allowed request and one refused for its role, and reads the series and the heap the counts
// take (the same index with counting off is the floor).
func measureCountingScale(res *Results) error {
	build := func(uncounted bool) (*verifier.Verifier, *prometheus.Registry, keyformat.Key, error) {
		format, err := keyformat.New(keyformat.DefaultPrefix)
		if err != nil {
			return nil, nil, keyformat.Key{}, err
		}
		reg := prometheus.NewRegistry()
		v, err := verifier.New(verifier.Options{Clock: clock.RealClock{}, Format: format, Registerer: reg, NoApplicationDecisions: uncounted})
		if err != nil {
			return nil, nil, keyformat.Key{}, err
		}
		k, err := format.Generate()
		if err != nil {
			return nil, nil, keyformat.Key{}, err
		}
		v.Apply(&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: loadOwnerOrg, Name: loadApp, UID: "uid-app"},
			Spec: v1.ApplicationSpec{Description: "load"}, Status: v1.ApplicationStatus{ApplicationID: loadAppID}})
		v.Apply(&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: loadOwnerOrg, Name: "key", UID: "uid-key"},
			Spec: v1.APIKeySpec{ApplicationName: loadApp}, Status: v1.APIKeyStatus{KeyID: k.KeyID, Hash: keyformat.Hash(k.Token),
				State: v1.KeyActive, ApplicationID: loadAppID, ApplicationUID: "uid-app"}})
		for i := range countingConnections {
			org := fmt.Sprintf("org-%05d", i)
			v.Apply(&v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: org, Name: loadApp, UID: types.UID("uid-conn-" + org)},
				Spec: v1.OrgConnectionSpec{ApplicationID: loadAppID, Role: v1.RoleObserver},
				Status: v1.OrgConnectionStatus{ApplicationNamespace: loadOwnerOrg, Conditions: []metav1.Condition{{
					Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonConnected, LastTransitionTime: metav1.Now()}}}})
		}
		return v, reg, k, nil
	}
	drive := func(v *verifier.Verifier, k keyformat.Key) error {
		h := v.Handler()
		for i := range countingConnections {
			for _, q := range []string{"", "&minRole=Analyst"} {
				r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("%s?org=org-%05d%s", verifier.PathAuthorize, i, q), nil)
				r.Header.Set("X-API-Key", k.Token)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if want := map[string]int{"": 200, "&minRole=Analyst": 403}[q]; rec.Code != want {
					return fmt.Errorf("org-%05d%s: HTTP %d, want %d", i, q, rec.Code, want)
				}
			}
		}
		return nil
	}
	heapOf := func(uncounted bool) (uint64, int, error) {
		before := liveHeap()
		v, reg, k, err := build(uncounted)
		if err != nil {
			return 0, 0, err
		}
		if err := drive(v, k); err != nil {
			return 0, 0, err
		}
		after := liveHeap()
		runtime.KeepAlive(v)
		families, err := reg.Gather()
		if err != nil {
			return 0, 0, err
		}
		series := 0
		for _, f := range families {
			if f.GetName() == verifier.ApplicationDecisionsMetric {
				series = len(f.GetMetric())
			}
		}
		return after - min(before, after), series, nil
	}
	offHeap, _, err := heapOf(true)
	if err != nil {
		return err
	}
	onHeap, series, err := heapOf(false)
	if err != nil {
		return err
	}
	perConn := (float64(onHeap) - float64(offHeap)) / countingConnections
	res.AtMost(fmt.Sprintf("decision counting: series at %d connections", countingConnections), float64(series), "series", 2*countingConnections,
		fmt.Sprintf("one application connected in %d orgs, each sent one allowed request and one refused for its role: one series per (org, application, reason) that occurred, never one per request or per org a client names", countingConnections))
	res.AtMost(fmt.Sprintf("decision counting: heap per connection at %d connections", countingConnections), perConn, "B", countingBytesPerConnection,
		fmt.Sprintf("live heap of the index with counting on minus off, after the same requests: %.1f MiB on, %.1f MiB off", float64(onHeap)/(1<<20), float64(offHeap)/(1<<20)))
	return nil
}
