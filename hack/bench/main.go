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

// Command bench measures every figure of the numbers to beat (docs/performance.md) in one run (make bench):
// a local kube-apiserver and etcd, the operator as a process of its own, and the verifier under
// a Go load generator on loopback. It writes bench/results.json and prints the table.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/clearance-dev/clearance/internal/testenv"
)

type config struct {
	out          string
	plot         string
	steps        []int
	idle         time.Duration
	foreign      int
	foreignSize  int
	revocations  int
	assignments  int
	verifierKeys int
	scale        int
	heapProfiles string
	operatorKeys int
	mintRound    int
	perRound     int
	rounds       int
	conns        int
	verifierOnly bool
	oauthOnly    bool
	cpuProfile   string
	profiles     string
	opPprof      string
	opFlags      string
	warmup       int
	// withoutAdmission removes Clearance's admission before the phases (-without-admission).
	withoutAdmission bool
	// phases are the phases to run (-phases); nil runs every one.
	phases map[string]bool
}

// allPhases are the names -phases takes, in the order they run.
var allPhases = []string{"oauth", "mint", "idle", "admission", "revocation", "disconnect", "memory", "operator-scale", "verifier"}

// runs reports whether -phases asks for phase name.
func (cfg config) runs(name string) bool { return cfg.phases == nil || cfg.phases[name] }

func main() { os.Exit(benchMain()) }

// benchMain returns the exit code: 0 when every row met its target, 1 when one missed or the
// bench failed, 2 for bad flags.
func benchMain() int {
	var cfg config
	var steps, phases string
	flag.StringVar(&cfg.out, "out", "bench/results.json", "Where to write the results.")
	flag.StringVar(&cfg.plot, "plot", "bench/scale.png", "Where to draw the scale model (empty: no plot).")
	flag.StringVar(&steps, "keys", "1000,2000,5000", "Key totals of the scale model; the first is the mint row, the last the idle and memory rows.")
	flag.DurationVar(&cfg.idle, "idle", 60*time.Second, "How long settled keys are watched for writes.")
	flag.IntVar(&cfg.foreign, "foreign-secrets", 5000, "Foreign Secrets added for the memory row.")
	flag.IntVar(&cfg.foreignSize, "foreign-secret-size", 100<<10, "Bytes of data in each foreign Secret.")
	flag.IntVar(&cfg.revocations, "revocations", 200, "Disable/delete operations timed until the verifier refuses.")
	flag.IntVar(&cfg.assignments, "assignments", 1000, "OrgConnection role assignments by an org admin: a quarter of them connections (creates), the rest raises of their roles.")
	flag.IntVar(&cfg.verifierKeys, "verifier-keys", 100_000, "Keys in the verifier's index for the throughput and latency rows.")
	flag.IntVar(&cfg.scale, "scale", 100_000, "The largest verifier index of the scale rows (heap per key, p99 at the same load): 10,000 keys, then ten times more until this (-scale=1000000 for a million).")
	flag.StringVar(&cfg.profiles, "profiles", "", "Write CPU profiles into this directory: kube-apiserver and the operator during the first mint round, the role assignments and the revocations; each verifier while it is measured; and a heap profile of each loaded verifier index.")
	flag.IntVar(&cfg.operatorKeys, "operator-keys", 0, "After the other phases, mint keys up to this total and record the operator's RSS (e.g. 20000; 0: not done).")
	flag.IntVar(&cfg.perRound, "requests", 100_000, "Requests per throughput round.")
	flag.IntVar(&cfg.rounds, "rounds", 3, "Alternating throughput rounds (verifier, bare handler); the median counts.")
	flag.IntVar(&cfg.conns, "connections", 32, "Keep-alive connections of the load generator.")
	flag.BoolVar(&cfg.verifierOnly, "verifier-only", false, "Measure only the verifier rows (no cluster), while working on the verifier.")
	flag.BoolVar(&cfg.oauthOnly, "oauth-only", false, "Measure only the in-process OAuth rows (seconds), while working on OAuth.")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "Write a CPU profile of the bench process (the load generator runs in it) to this file.")
	flag.StringVar(&cfg.opFlags, "operator-flags", "", "More flags for the operator, separated by spaces (e.g. --enable-http2), to measure what one changes.")
	flag.StringVar(&cfg.opPprof, "operator-pprof", "", "Serve the operator's /debug/pprof on this loopback address (e.g. 127.0.0.1:6060), to profile or trace it during a phase.")
	flag.IntVar(&cfg.mintRound, "mint-round", 500, "Keys Clearance mints before the floor's bare client makes the same writes: rounds alternate so the machine's noise falls on both.")
	flag.StringVar(&phases, "phases", "", "Only these phases, comma-separated, of "+strings.Join(allPhases, ",")+" (empty: all). A phase works on what the ones before it made: idle, memory and revocation want mint's keys.")
	flag.IntVar(&cfg.warmup, "warmup", 500, "Keys minted before the measured batches (not counted), so the apiserver and the operator are warm.")
	flag.BoolVar(&cfg.withoutAdmission, "without-admission", false, "Diagnostic, with -phases mint only: remove every admission policy binding and webhook configuration of Clearance's first, to see what the operator alone costs against the floor. Its rows are not the product's figures, and their notes say so.")
	var serve, tokensPath, heapProfile, serveCPUProfile string
	flag.StringVar(&serve, "serve", "", "Internal: serve the loaded verifier or a bare handler for the load generator (a child process).")
	flag.StringVar(&tokensPath, "tokens", "", "Internal: where -serve verifier writes its tokens.")
	flag.StringVar(&heapProfile, "heapprofile", "", "Internal: where -serve verifier writes a heap profile of its loaded index.")
	flag.StringVar(&serveCPUProfile, "serve-cpuprofile", "", "Internal: where -serve verifier writes a CPU profile of its serving.")
	flag.Parse()
	if serve != "" {
		if err := serveMode(serve, cfg.verifierKeys, tokensPath, heapProfile, serveCPUProfile); err != nil {
			fmt.Fprintf(os.Stderr, "bench -serve %s: %v\n", serve, err)
			return 1
		}
		return 0
	}
	for _, s := range strings.Split(steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 || (len(cfg.steps) > 0 && n <= cfg.steps[len(cfg.steps)-1]) {
			fmt.Fprintf(os.Stderr, "bench: -keys must be increasing positive totals such as 1000,2000,5000, got %q\n", steps)
			return 2
		}
		cfg.steps = append(cfg.steps, n)
	}
	if cfg.mintRound < 1 || cfg.scale < 10_000 || (cfg.operatorKeys != 0 && cfg.operatorKeys <= cfg.steps[len(cfg.steps)-1]) {
		fmt.Fprintf(os.Stderr, "bench: -mint-round must be at least 1 (got %d), -scale at least 10000 (got %d), and -operator-keys 0 or more than the last -keys total (got %d)\n", cfg.mintRound, cfg.scale, cfg.operatorKeys)
		return 2
	}
	if phases != "" {
		cfg.phases = map[string]bool{}
		for _, p := range strings.Split(phases, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(allPhases, p) {
				fmt.Fprintf(os.Stderr, "bench: -phases takes names of %s, got %q\n", strings.Join(allPhases, ","), p)
				return 2
			}
			cfg.phases[p] = true
		}
	}
	if cfg.withoutAdmission && (len(cfg.phases) != 1 || !cfg.phases["mint"]) {
		fmt.Fprintln(os.Stderr, "bench: -without-admission measures the mint phase only: add -phases mint")
		return 2
	}
	if cfg.assignments < 2 {
		fmt.Fprintf(os.Stderr, "bench: -assignments must be at least 2 (a connection and a raise), got %d\n", cfg.assignments)
		return 2
	}
	ctrllog.SetLogger(logr.Discard()) // the bench's own clients log nothing worth reading
	if cfg.profiles != "" {
		if err := os.MkdirAll(cfg.profiles, 0o755); err != nil {
			fmt.Fprintf(os.Stderr, "bench: -profiles: %v\n", err)
			return 2
		}
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -cpuprofile: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	res := &Results{}
	err := run(cfg, res)
	if len(res.Rows) > 0 {
		if cfg.withoutAdmission {
			for i := range res.Rows {
				res.Rows[i].Note = "WITHOUT ADMISSION (-without-admission, a diagnostic: not the product's figure): " + res.Rows[i].Note
			}
		}
		if werr := res.Write(cfg.out); werr != nil && err == nil {
			err = werr
		}
		fmt.Printf("\nClearance bench, %s, %d CPUs (GOMAXPROCS %d), %s in all\n\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.GOMAXPROCS(0), time.Since(start).Round(time.Second))
		res.Print(os.Stdout)
		fmt.Printf("\nwritten to %s\n", cfg.out)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	if failed := res.Failed(); len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d rows missed their targets: %s\n", len(failed), strings.Join(failed, "; "))
		return 1
	}
	return 0
}

// bench is what the cluster phases share.
type bench struct {
	cfg config
	env *testenv.Env
	op  *testenv.Operator
	c   client.Client
	cs  kubernetes.Interface
	tr  *tracker
	// cache is the bench's own watch of APIKeys, key Secrets and BenchKeys.
	cache cache.Cache
	res   *Results
	// grants maps each connected Application to an org that connected it (the admission phase).
	grants map[types.NamespacedName]string
	// scale holds the scale model's points: key total → mint seconds, writes per key, RSS MiB.
	scale []scalePoint
	// floor is what the floors of the mint, admission and revocation rows share (floor.go).
	floor *floors
}

type scalePoint struct {
	keys          int
	batch         int
	seconds       float64
	floorSeconds  float64 // the bare writes' floor under the same batch; 0 when not measured
	writesPerKey  float64
	rssMiB        float64
	foreignRSSMiB float64
}

// verifierSizes are the index sizes of the verifier's scale rows: 10,000, then ten times more
// up to scale, and the main index.
func (cfg config) verifierSizes() []int {
	var out []int
	for n := 10_000; n <= cfg.scale; n *= 10 {
		out = append(out, n)
	}
	if out[len(out)-1] != cfg.scale {
		out = append(out, cfg.scale)
	}
	if !slices.Contains(out, cfg.verifierKeys) {
		out = append(out, cfg.verifierKeys)
	}
	slices.Sort(out)
	return out
}

func (cfg config) verifier() verifierConfig {
	return verifierConfig{keys: cfg.verifierKeys, sizes: cfg.verifierSizes(), perRound: cfg.perRound, rounds: cfg.rounds,
		conns: cfg.conns, profiles: cfg.profiles}
}

func run(cfg config, res *Results) error {
	// Long enough for the largest runs: a million keys in the verifier, 20,000 in the cluster.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if cfg.runs("oauth") {
		if err := measureOAuth(res); err != nil {
			return fmt.Errorf("OAuth: %w", err)
		}
	}
	if cfg.oauthOnly {
		return nil
	}
	if cfg.profiles != "" && cfg.opPprof == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		cfg.opPprof = ln.Addr().String()
		_ = ln.Close()
	}
	if cfg.verifierOnly {
		points, err := measureVerifier(res, cfg.verifier())
		if err == nil && cfg.plot != "" {
			err = plotScale(cfg.plot, nil, points)
		}
		if err != nil {
			return err
		}
		vc := cfg.verifier()
		if err := measureCounting(res, vc); err != nil {
			return err
		}
		if err := measureDecisionLog(res, vc); err != nil {
			return err
		}
		return measureSharedStore(res, vc.keys, vc.perRound, vc.rounds, vc.conns)
	}

	fmt.Fprintln(os.Stderr, "bench: starting kube-apiserver and etcd on loopback")
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = env.Stop()
		}
	}()

	b := &bench{cfg: cfg, env: env, res: res}
	fast := rest.CopyConfig(env.Config)
	fast.QPS, fast.Burst = 2000, 4000
	if b.c, err = client.New(fast, client.Options{Scheme: env.Scheme}); err != nil {
		return err
	}
	if b.cs, err = kubernetes.NewForConfig(fast); err != nil {
		return err
	}

	// As a cluster runs it: as its ServiceAccount, with the chart's RBAC and no more, so the
	// apiserver authorizes and admits its writes as it does in production.
	fmt.Fprintln(os.Stderr, "bench: building and starting the operator as a process of its own, as its ServiceAccount")
	if b.op, err = env.StartOperator(testenv.OperatorOptions{Name: "bench-operator", WithWebhooks: true, ServiceAccount: true, Args: operatorArgs(cfg)}); err != nil {
		return err
	}
	defer b.op.Cleanup()

	watch, err := keyWatchCache(b)
	if err != nil {
		return err
	}
	b.cache = watch
	if b.tr, err = newTracker(ctx, watch); err != nil {
		return err
	}
	if err := b.setupFloors(ctx, watch); err != nil {
		return err
	}
	if cfg.withoutAdmission {
		if err := b.removeAdmission(ctx); err != nil {
			return fmt.Errorf("-without-admission: %w", err)
		}
	}
	// The watch ends before the apiserver stops, or its graceful stop waits on it.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() { _ = watch.Start(watchCtx) }()
	if !watch.WaitForCacheSync(ctx) {
		return fmt.Errorf("the bench's watch did not sync")
	}

	// The foreign Secrets come last: 500 MB of them weigh on the apiserver the other rows use.
	phases := []struct {
		key, name string
		fn        func(context.Context) error
	}{
		{"mint", "mint and scale model", b.mint},
		{"idle", "idle", b.idleWrites},
		{"admission", "admission", b.admission},
		{"revocation", "revocation", b.revocation},
		{"disconnect", "oauth disconnect", b.disconnect},
		{"memory", "memory with foreign Secrets", b.foreignSecrets},
		{"operator-scale", "operator at scale", b.operatorScale},
	}
	for _, p := range phases {
		if !cfg.runs(p.key) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: phase %s\n", p.name)
		if err := p.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}

	// The verifier rows want a quiet machine: the cluster goes first.
	b.op.Cleanup()
	stopWatch()
	stopped = true
	if err := env.Stop(); err != nil {
		return err
	}
	if !cfg.runs("verifier") {
		return nil
	}
	fmt.Fprintln(os.Stderr, "bench: phase verifier")
	points, err := measureVerifier(res, cfg.verifier())
	if err != nil {
		return err
	}
	if cfg.plot != "" {
		if err := plotScale(cfg.plot, b.scale, points); err != nil {
			return fmt.Errorf("drawing %s: %w", cfg.plot, err)
		}
	}
	vc := cfg.verifier()
	if err := measureCounting(res, vc); err != nil {
		return err
	}
	if err := measureDecisionLog(res, vc); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bench: phase shared rate-limit store")
	return measureSharedStore(res, vc.keys, vc.perRound, vc.rounds, vc.conns)
}

// operatorArgs are the flags the bench adds to the operator's defaults.
func operatorArgs(cfg config) []string {
	args := append([]string{"--oauth-consent-url=" + benchConsentURL}, strings.Fields(cfg.opFlags)...)
	if cfg.opPprof != "" {
		args = append(args, "--pprof-bind-address="+cfg.opPprof)
	}
	return args
}

// profileDuring writes CPU profiles of kube-apiserver and the operator over the next seconds
// into -profiles as name-apiserver.pprof and name-operator.pprof, and returns a function
// that waits for them. Without -profiles it does nothing.
func (b *bench) profileDuring(ctx context.Context, name string, seconds int) func() error {
	if b.cfg.profiles == "" {
		return func() error { return nil }
	}
	done := make(chan error, 2)
	go func() {
		data, err := b.cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(seconds)).Timeout(time.Duration(seconds+30) * time.Second).DoRaw(ctx)
		if err == nil {
			err = os.WriteFile(filepath.Join(b.cfg.profiles, name+"-apiserver.pprof"), data, 0o644)
		}
		done <- err
	}()
	go func() {
		c := &http.Client{Timeout: time.Duration(seconds+30) * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.cfg.opPprof, seconds))
		if err == nil {
			var data []byte
			data, err = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(b.cfg.profiles, name+"-operator.pprof"), data, 0o644)
			}
		}
		done <- err
	}()
	return func() error {
		for range 2 {
			if err := <-done; err != nil {
				return fmt.Errorf("profiling %s: %w", name, err)
			}
		}
		return nil
	}
}
