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
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
)

// The decision log (docs/metrics.md): what exporting every decision as an OpenTelemetry log
// record costs the verifier — throughput with --decision-log-otlp-endpoint set, to a fast
// loopback receiver this process runs, against the same verifier without it, interleaved.
const (
	// decisionLogEnv, set in a -serve verifier child's environment, is its
	// DecisionLog.Endpoint.
	decisionLogEnv             = "CLEARANCE_BENCH_DECISION_LOG"
	decisionLogThroughputFloor = 0.9
)

// otlpSink is a loopback OTLP/HTTP logs endpoint that takes every export and answers it
// accepted, without decoding it: the cost measured is the verifier's.
type otlpSink struct {
	srv            *httptest.Server
	exports, bytes atomic.Int64
}

func newOTLPSink() *otlpSink {
	s := &otlpSink{}
	empty := []byte{} // an ExportLogsServiceResponse with no partial success is empty
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.exports.Add(1)
		s.bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(empty)
	}))
	return s
}

func measureDecisionLog(res *Results, vc verifierConfig) error {
	fmt.Fprintln(os.Stderr, "bench: phase decision log")
	dir, err := os.MkdirTemp("", "clearance-bench-dlog-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	sink := newOTLPSink()
	defer sink.srv.Close()
	off, err := startServer("verifier", vc.keys, filepath.Join(dir, "tokens-off"), "", "")
	if err != nil {
		return err
	}
	defer off.stop()
	// The child inherits the environment: only this one logs its decisions.
	if err := os.Setenv(decisionLogEnv, sink.srv.URL); err != nil {
		return err
	}
	on, err := startServer("verifier", vc.keys, filepath.Join(dir, "tokens-on"), "", "")
	_ = os.Unsetenv(decisionLogEnv)
	if err != nil {
		return err
	}
	defer on.stop()
	onTokens, err := readTokens(filepath.Join(dir, "tokens-on"))
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
	res.RatioAtLeast(fmt.Sprintf("decision log: verifier throughput on / off, %d keys", vc.keys), median(onRates), median(offRates), "req/s", decisionLogThroughputFloor,
		fmt.Sprintf("the same verifier with --decision-log-otlp-endpoint set (to a loopback OTLP/HTTP receiver in the bench that reads and accepts each export) and unset, target ≥ %.2f; medians of %d alternating rounds of %d requests over %d keep-alive connections; rounds: on %s, off %s req/s; the receiver took %d exports, %.1f MiB",
			decisionLogThroughputFloor, vc.rounds, vc.perRound, vc.conns, rates(onRates), rates(offRates), sink.exports.Load(), float64(sink.bytes.Load())/(1<<20)))
	return nil
}
