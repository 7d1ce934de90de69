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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clearance-dev/clearance/internal/ratestore"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// storeEnv carries the shared rate-limit store's URL to a -serve verifier child process.
const storeEnv = "CLEARANCE_BENCH_RATE_LIMIT_STORE"

// storeFromEnv is the store a -serve verifier child uses: none unless storeEnv is set.
func storeFromEnv() (verifier.RateLimitStore, error) {
	url := os.Getenv(storeEnv)
	if url == "" {
		return nil, nil
	}
	s, err := ratestore.Open(url, "")
	if err != nil {
		return nil, err
	}
	return patientStore{s}, nil
}

// patientStore waits up to a second for the store instead of the verifier's 50 ms: on a
// loaded machine a call past 50 ms would send the replica to its in-memory fallback for the
// back-off, and the rows would measure that instead of the store. A slow call still counts
// in the latency row.
type patientStore struct{ *ratestore.Redis }

func (p patientStore) Take(_ context.Context, key string, burst int64, perSecond float64) (bool, float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return p.Redis.Take(ctx, key, burst, perSecond)
}

// storeCalls is how many times redis-server ran the script (EVALSHA and EVAL).
func storeCalls(addr string) (int64, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = c.Close() }()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), cmd); ok {
				calls, _, _ := strings.Cut(rest, ",")
				v, err := strconv.ParseInt(calls, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("INFO commandstats: %q", line)
				}
				n += v
			}
		}
	}
	return n, nil
}

// measureSharedStore is the shared rate-limit store's rows (--rate-limit-store): the verifier's
// throughput spending every request's token in Debian's redis-server on loopback, against the
// same verifier limiting in memory (alternating rounds, medians), and its latency at half that
// load. Without redis-server it says so and records no rows.
func measureSharedStore(res *Results, keys, perRound, rounds, conns int) error {
	if testenv.RedisServer() == "" {
		fmt.Fprintln(os.Stderr, "bench: redis-server is not installed (apt-get install redis-server): no shared rate-limit store rows")
		return nil
	}
	dir, err := os.MkdirTemp("", "clearance-bench-store-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	store, err := testenv.StartRedis(dir)
	if err != nil {
		return err
	}
	defer store.Kill()
	tokensPath := filepath.Join(dir, "tokens")
	mem, err := startServer("verifier", keys, tokensPath, "", "")
	if err != nil {
		return err
	}
	defer mem.stop()
	// The child inherits the environment: only this one gets the store.
	if err := os.Setenv(storeEnv, store.URL); err != nil {
		return err
	}
	shared, err := startServer("verifier", keys, filepath.Join(dir, "tokens-shared"), "", "")
	_ = os.Unsetenv(storeEnv)
	if err != nil {
		return err
	}
	defer shared.stop()
	data, err := os.ReadFile(tokensPath)
	if err != nil {
		return err
	}
	tokens := strings.Split(string(data), "\n")
	sharedData, err := os.ReadFile(filepath.Join(dir, "tokens-shared"))
	if err != nil {
		return err
	}
	sharedTokens := strings.Split(string(sharedData), "\n")
	query := loadQuery
	for _, s := range []struct {
		url    string
		tokens []string
	}{{mem.url, tokens}, {shared.url, sharedTokens}} {
		if _, err := closedLoop(s.url+query, s.tokens, conns, perRound/10); err != nil {
			return fmt.Errorf("warming %s: %w", s.url, err)
		}
	}
	var memRates, sharedRates []float64
	for range rounds {
		r, err := closedLoop(mem.url+query, tokens, conns, perRound)
		if err != nil {
			return fmt.Errorf("verifier limiting in memory: %w", err)
		}
		memRates = append(memRates, r)
		r, err = closedLoop(shared.url+query, sharedTokens, conns, perRound)
		if err != nil {
			return fmt.Errorf("verifier with the shared store: %w", err)
		}
		sharedRates = append(sharedRates, r)
	}
	m, s := median(memRates), median(sharedRates)
	bare, err := startServer("bare", 0, "", "", "")
	if err != nil {
		return err
	}
	defer bare.stop()
	if _, err := closedLoop(bare.url+"/", sharedTokens, conns, perRound/10); err != nil {
		return fmt.Errorf("warming the bare handler: %w", err)
	}
	lat, bareLat, _, _, err := interleavedLatency(shared.url+query, bare.url+"/", sharedTokens, sharedTokens, s/2)
	if err != nil {
		return err
	}
	// Every request to the shared replica is a script call, unless one failed and the replica
	// limited in memory for a while: say how many the server ran.
	calls, err := storeCalls(store.Addr)
	if err != nil {
		return err
	}
	requests := perRound/10 + rounds*perRound + len(lat)
	res.RatioAtLeast("verifier throughput with the shared rate-limit store vs without", s, m, "req/s", 0.25,
		fmt.Sprintf("%d keys, each request spending a token in redis-server on loopback (one EVALSHA) against the same verifier limiting in memory: medians of %d alternating rounds of %d requests, %d keep-alive connections, rounds: store %s, memory %s req/s; redis-server ran the script %d times for %d requests",
			keys, rounds, perRound, conns, rates(sharedRates), rates(memRates), calls, requests))
	res.RatioAtMost("verifier p99 at half load with the shared rate-limit store", ms(percentile(lat, 0.99)), ms(percentile(bareLat, 0.99)), "ms", 2,
		fmt.Sprintf("open loop at %.0f req/s over %d keep-alive connections, %d windows of %s, alternating with the bare handler at the same load; p50 %.2f ms, bare %.2f ms",
			s/2, latencyConns, latencyRounds, latencyWindow, ms(percentile(lat, 0.5)), ms(percentile(bareLat, 0.5))))
	return nil
}
