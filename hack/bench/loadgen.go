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
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/verifier"
)

const (
	loadOwnerOrg = "acme"
	loadGrantOrg = "globex"
	loadApp      = "acme-bi"
	loadAppID    = "app_0123456789abcdefghijklmn"
)

// loadedVerifier is the real verifier with n keys in its index, fed through Apply as the
// informers feed it: one Application with a rate limit, one connection, n Active keys, each
// with a UID and a name as long as the apiserver's. uncounted turns off counting decisions per
// org and application.
func loadedVerifier(n int, uncounted bool) (*verifier.Verifier, []string, error) {
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		return nil, nil, err
	}
	store, err := storeFromEnv()
	if err != nil {
		return nil, nil, err
	}
	v, err := verifier.New(verifier.Options{Clock: clock.RealClock{}, Format: format, Registerer: prometheus.NewRegistry(), RateLimitStore: store,
		NoApplicationDecisions: uncounted, DecisionLog: verifier.DecisionLogOptions{Endpoint: os.Getenv(decisionLogEnv)}})
	if err != nil {
		return nil, nil, err
	}
	v.Apply(&v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: loadOwnerOrg, Name: loadApp, UID: "uid-app"},
		Spec: v1.ApplicationSpec{Description: "load", RateLimits: []v1.RateLimit{
			{Name: "general", Limit: 1_000_000_000, Period: metav1.Duration{Duration: time.Second}}}},
		Status: v1.ApplicationStatus{ApplicationID: loadAppID},
	})
	v.Apply(&v1.OrgConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: loadGrantOrg, Name: loadApp, UID: "uid-conn"},
		Spec:       v1.OrgConnectionSpec{ApplicationID: loadAppID, Role: v1.RoleAnalyst},
		Status: v1.OrgConnectionStatus{ApplicationNamespace: loadOwnerOrg, Conditions: []metav1.Condition{{
			Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonConnected, LastTransitionTime: metav1.Now()}}},
	})
	tokens := make([]string, n)
	for i := range n {
		k, err := format.Generate()
		if err != nil {
			return nil, nil, err
		}
		tokens[i] = k.Token
		v.Apply(&v1.APIKey{
			ObjectMeta: metav1.ObjectMeta{Namespace: loadOwnerOrg, Name: fmt.Sprintf("key-%07d", i),
				UID: types.UID(fmt.Sprintf("%08x-%04x-4000-8000-%012x", i, i&0xffff, i))},
			Spec: v1.APIKeySpec{ApplicationName: loadApp, Scopes: []string{"reports:read"}},
			Status: v1.APIKeyStatus{KeyID: k.KeyID, Hash: keyformat.Hash(k.Token), State: v1.KeyActive,
				ApplicationID: loadAppID, Masked: keyformat.Mask(k.Token)},
		})
	}
	return v, tokens, nil
}

// liveHeap is the heap left after a full collection, in bytes.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// serveMode runs in a child process (bench -serve verifier|bare): the server under load lives
// in a process of its own, as the verifier does behind nginx, so neither its heap nor the load
// generator's is the other's garbage to collect. It prints its URL on stdout (the verifier
// also the bytes of live heap its index added) and serves until stdin closes. The verifier's
// tokens go to tokensPath for the load generator; heapProfile, if set, gets a heap profile
// of the loaded index, cpuProfile a CPU profile of its serving.
func serveMode(kind string, keys int, tokensPath, heapProfile, cpuProfile string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	switch kind {
	case "verifier", "verifier-uncounted":
		empty := liveHeap()
		v, tokens, err := loadedVerifier(keys, kind == "verifier-uncounted")
		if err != nil {
			return err
		}
		if err := os.WriteFile(tokensPath, []byte(strings.Join(tokens, "\n")), 0o600); err != nil {
			return err
		}
		tokens = nil
		loaded := liveHeap()
		if heapProfile != "" {
			if err := writeHeapProfile(heapProfile); err != nil {
				return err
			}
		}
		if cpuProfile != "" {
			f, err := os.Create(cpuProfile)
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		fmt.Printf("http://%s %d\n", ln.Addr(), int64(loaded)-int64(empty))
		go v.RunDecisionLog(ctx) // returns at once unless the bench set decisionLogEnv
		return v.Serve(ctx, ln)
	case "bare":
		okBody := []byte(`{"valid":true}`)
		srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(okBody)
			})}
		go func() { <-ctx.Done(); _ = srv.Close() }()
		fmt.Printf("http://%s 0\n", ln.Addr())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	return fmt.Errorf("-serve %q: want verifier, verifier-uncounted or bare", kind)
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// server is a child process serving on loopback.
type server struct {
	url string
	// heap is the live heap the verifier's loaded index added, in bytes (0 for the bare handler).
	heap int64
	stop func()
}

// startServer starts this binary in serve mode and waits for its URL.
func startServer(kind string, keys int, tokensPath, heapProfile, cpuProfile string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-serve", kind, "-verifier-keys", strconv.Itoa(keys), "-tokens", tokensPath, "-heapprofile", heapProfile, "-serve-cpuprofile", cpuProfile}
	cmd := exec.Command(self, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() { _ = stdin.Close(); _ = cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	var s server
	if err == nil {
		_, err = fmt.Sscan(line, &s.url, &s.heap)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		stop()
		return nil, fmt.Errorf("the %s server did not start: %w", kind, err)
	}
	s.stop = stop
	return &s, nil
}

// loadClient keeps conns connections alive to one loopback server.
func loadClient(conns int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute,
		DisableCompression: true,
	}}
}

// hit sends one forward-auth request as nginx's auth_request would and checks the answer.
func hit(c *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header["X-Api-Key"] = []string{token}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// closedLoop sends total requests over conns keep-alive connections as fast as they are
// answered and returns requests per second.
func closedLoop(url string, tokens []string, conns, total int) (float64, error) {
	c := loadClient(conns)
	defer c.CloseIdleConnections()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) || failed.Load() != nil {
					return
				}
				if err := hit(c, url, tokens[(int(i)*7919+w)%len(tokens)]); err != nil {
					failed.Store(&err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if errp := failed.Load(); errp != nil {
		return 0, *errp
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// openLoop sends requests at rate per second for d, each released at its own instant, and
// returns each one's latency from its release: time waiting for a free connection counts (so
// a stall counts against every request it delays, not only the one in flight), the pacer's
// own timer slack does not. It sends over rawConns, not net/http's client: with the client,
// the load generator's own work and collections put a bare handler's p99 at 3.2 ms on two
// cores; with rawConns, 1.1–1.9 ms.
// Request i sends token (first+i)*7919 mod len(tokens), so consecutive windows go on through
// the keys rather than asking the same ones again.
func openLoop(conns []*rawConn, tokens []string, first int, rate float64, d time.Duration) ([]time.Duration, error) {
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	type job struct {
		i  int
		at time.Time
	}
	jobs := make(chan job, total)
	lat := make([]time.Duration, total)
	var failures atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if code, err := c.get(tokens[((first+j.i)*7919)%len(tokens)]); err != nil || code != http.StatusOK {
					if err == nil {
						err = fmt.Errorf("HTTP %d", code)
					}
					firstErr.CompareAndSwap(nil, &err)
					failures.Add(1)
				}
				lat[j.i] = time.Since(j.at)
			}
		}()
	}
	start := time.Now()
	for i := 0; i < total; {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		// Release every request whose instant has come (the sleep may overshoot).
		now := time.Now()
		for ; i < total && !start.Add(time.Duration(i)*interval).After(now); i++ {
			jobs <- job{i: i, at: now}
		}
	}
	close(jobs)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		return nil, fmt.Errorf("%d of %d requests failed, the first with %v", n, total, *firstErr.Load())
	}
	return lat, nil
}

// latencyWindow and latencyRounds: each server is measured in latencyRounds windows, the two
// alternating (short, so a burst of other work on the machine falls on both), long enough
// together to take in several garbage collections of the verifier's heap; latencyConns is the
// keep-alive pool of one nginx worker's upstream block.
const (
	latencyWindow = 250 * time.Millisecond
	latencyRounds = 80
	latencyConns  = 8
)

// verifierConfig is what the verifier rows take from the bench's flags.
type verifierConfig struct {
	keys     int   // the index of the throughput and latency rows
	sizes    []int // the indexes of the scale rows (heap per key, p99 at the same load)
	perRound int
	rounds   int
	conns    int
	// profiles, if set, is a directory for a heap profile of each loaded index and a CPU
	// profile of each verifier while it is measured.
	profiles string
}

// verifierPoint is one index size of the verifier's scale curve.
type verifierPoint struct {
	keys        int
	bytesPerKey float64
	p99, bare   float64 // ms, at the same offered load
}

// measureVerifier is the throughput row (verifier vs. a bare handler, alternating rounds in one
// run, median of each), the latency row at half the verifier's throughput, and for each index
// size its heap per key and its p99 at that same offered load, each against the bare handler
// measured in windows interleaved with it.
func measureVerifier(res *Results, vc verifierConfig) ([]verifierPoint, error) {
	dir, err := os.MkdirTemp("", "clearance-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bare, err := startServer("bare", 0, "", "", "")
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	query := loadQuery
	sizes := []int{vc.keys}
	for _, n := range vc.sizes {
		if n != vc.keys {
			sizes = append(sizes, n)
		}
	}
	var rate float64
	var points []verifierPoint
	for _, n := range sizes {
		var heap, cpu string
		if vc.profiles != "" {
			heap = filepath.Join(vc.profiles, fmt.Sprintf("verifier-%d-heap.pprof", n))
			cpu = filepath.Join(vc.profiles, fmt.Sprintf("verifier-%d-cpu.pprof", n))
		}
		fmt.Fprintf(os.Stderr, "bench: loading %d keys into the verifier\n", n)
		tokensPath := filepath.Join(dir, "tokens")
		ver, err := startServer("verifier", n, tokensPath, heap, cpu)
		if err != nil {
			return nil, err
		}
		point, r, err := measureIndex(res, vc, n, ver, bare, tokensPath, query, rate)
		ver.stop()
		if err != nil {
			return nil, err
		}
		if rate == 0 {
			rate = r
		}
		points = append(points, point)
	}
	sort.Slice(points, func(i, j int) bool { return points[i].keys < points[j].keys })
	return points, nil
}

// measureIndex measures the verifier with n keys: its heap per key, and its p99 at rate
// against the bare handler's. With rate 0 (the first, main index) it measures the throughput
// first and returns half of it as the rate.
func measureIndex(res *Results, vc verifierConfig, n int, ver, bare *server, tokensPath, query string, rate float64) (verifierPoint, float64, error) {
	point := verifierPoint{keys: n, bytesPerKey: float64(ver.heap) / float64(n)}
	data, err := os.ReadFile(tokensPath)
	if err != nil {
		return point, 0, err
	}
	tokens := strings.Split(string(data), "\n")
	res.AtMost(fmt.Sprintf("verifier index: heap per key, %d keys", n), point.bytesPerKey, "B", 300,
		fmt.Sprintf("%d Active keys fed through verifier.Apply as its informers feed it (no apiserver; UIDs and names as long as the apiserver's); live heap after a full collection, loaded minus empty: %.1f MiB", n, float64(ver.heap)/(1<<20)))
	// Warm both (connections, caches) before measuring.
	for _, u := range []string{bare.url + "/", ver.url + query} {
		if _, err := closedLoop(u, tokens, vc.conns, vc.perRound/10); err != nil {
			return point, 0, fmt.Errorf("warming %s: %w", u, err)
		}
	}
	name := fmt.Sprintf("verifier p99 at the same load, %d keys", n)
	if rate == 0 {
		var bareRates, verRates []float64
		for range vc.rounds {
			r, err := closedLoop(bare.url+"/", tokens, vc.conns, vc.perRound)
			if err != nil {
				return point, 0, fmt.Errorf("bare handler: %w", err)
			}
			bareRates = append(bareRates, r)
			r, err = closedLoop(ver.url+query, tokens, vc.conns, vc.perRound)
			if err != nil {
				return point, 0, fmt.Errorf("verifier: %w", err)
			}
			verRates = append(verRates, r)
		}
		b, vr := median(bareRates), median(verRates)
		res.RatioAtLeast(fmt.Sprintf("verifier throughput vs bare net/http, %d keys", n), vr, b, "req/s", 0.7,
			fmt.Sprintf("/v1/authorize vs a bare handler answering 200 with a short JSON body; medians of %d alternating rounds of %d requests over %d keep-alive connections, every request a different key; rounds: verifier %s, bare %s req/s",
				vc.rounds, vc.perRound, vc.conns, rates(verRates), rates(bareRates)))
		rate = vr / 2
		name = fmt.Sprintf("verifier p99 at half load, %d keys", n)
	}
	lat, bareLat, verWin, bareWin, err := interleavedLatency(ver.url+query, bare.url+"/", tokens, tokens, rate)
	if err != nil {
		return point, 0, err
	}
	point.p99, point.bare = ms(percentile(lat, 0.99)), ms(percentile(bareLat, 0.99))
	fmt.Fprintf(os.Stderr, "bench: %d keys at %.0f req/s: verifier p50 %.2f ms, p99 %.2f ms; bare handler p50 %.2f ms, p99 %.2f ms\n",
		n, rate, ms(percentile(lat, 0.5)), point.p99, ms(percentile(bareLat, 0.5)), point.bare)
	res.RatioAtMost(name, point.p99, point.bare, "ms", 1.5,
		fmt.Sprintf("open loop at %.0f req/s over %d keep-alive connections, %d windows of %s each, verifier and bare handler alternating, %d requests each; latency from each request's release; p50 %.2f ms, bare %.2f ms; median of the windows' p99s %.2f ms, bare %.2f ms",
			rate, latencyConns, latencyRounds, latencyWindow, len(lat), ms(percentile(lat, 0.5)), ms(percentile(bareLat, 0.5)), verWin, bareWin))
	return point, rate, nil
}

// interleavedLatency runs the open loop at rate against the verifier (with tokens) and the bare
// handler (with bareTokens: the same, or another verifier's) in
// alternating windows (bare, verifier, verifier, bare, …), each over its own keep-alive
// connections, so what else the machine does in that minute falls on both, and returns each
// one's latencies pooled, and the median over its windows of each window's p99 (a figure a
// burst of other work in a few windows does not move).
func interleavedLatency(verURL, bareURL string, tokens, bareTokens []string, rate float64) (ver, bare []time.Duration, verWindowP99, bareWindowP99 float64, err error) {
	dial := func(url string) ([]*rawConn, error) {
		conns := make([]*rawConn, latencyConns)
		for i := range conns {
			c, err := dialRaw(url)
			if err != nil {
				return nil, err
			}
			conns[i] = c
		}
		return conns, nil
	}
	verConns, err := dial(verURL)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	bareConns, err := dial(bareURL)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	defer func() {
		for _, c := range append(verConns, bareConns...) {
			_ = c.Close()
		}
	}()
	var verP99s, bareP99s []float64
	for r := range latencyRounds {
		order := []bool{false, true} // verifier?
		if r%2 == 1 {
			order = []bool{true, false}
		}
		for _, isVer := range order {
			conns, first, toks := bareConns, len(bare), bareTokens
			if isVer {
				conns, first, toks = verConns, len(ver), tokens
			}
			lat, err := openLoop(conns, toks, first, rate, latencyWindow)
			if err != nil {
				return nil, nil, 0, 0, err
			}
			if isVer {
				ver = append(ver, lat...)
				verP99s = append(verP99s, ms(percentile(lat, 0.99)))
			} else {
				bare = append(bare, lat...)
				bareP99s = append(bareP99s, ms(percentile(lat, 0.99)))
			}
		}
	}
	return ver, bare, median(verP99s), median(bareP99s), nil
}

func rates(v []float64) string {
	parts := make([]string, len(v))
	for i, r := range v {
		parts[i] = fmt.Sprintf("%.0f", r)
	}
	return strings.Join(parts, ", ")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
