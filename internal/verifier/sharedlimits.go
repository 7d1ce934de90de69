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

package verifier

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// RateLimitStore keeps rate-limit buckets for every verifier replica at once
// (--rate-limit-store; internal/ratestore is the Redis one).
type RateLimitStore interface {
	// Take spends one request from the bucket named key, a token bucket of at most burst tokens
	// refilled at perSecond (full when the store has never seen it), and returns whether the
	// request was allowed and the tokens left: what golang.org/x/time/rate's Limiter answers.
	Take(ctx context.Context, key string, burst int64, perSecond float64) (allowed bool, tokens float64, err error)
}

// Defaults of the shared store's Options.
const (
	DefaultRateLimitStoreTimeout = 50 * time.Millisecond
	DefaultRateLimitStoreBackoff = 5 * time.Second
	DefaultFallbackReplicas      = 2
)

// sharedLimits spends rate-limit budget in the shared store, and falls back to this replica's
// share of each limit, in memory, while the store is unreachable: authorization never waits
// on it for longer than one timeout, and never fails because of it.
//
// A breaker keeps a broken store off the request path: after a failed call every request uses
// the fallback for backoff; then one request tries the store again (the others keep to the
// fallback until it answers), and a success closes the breaker. No goroutine polls the store.
type sharedLimits struct {
	store    RateLimitStore
	timeout  time.Duration
	backoff  time.Duration
	replicas int64
	log      logr.Logger

	// retryAt is when the store may be tried again, in Unix nanoseconds of the verifier's
	// clock; 0 while it answers.
	retryAt atomic.Int64

	up     prometheus.Gauge
	errors prometheus.Counter
}

func newSharedLimits(opts Options) (*sharedLimits, error) {
	s := &sharedLimits{
		store:    opts.RateLimitStore,
		timeout:  opts.RateLimitStoreTimeout,
		backoff:  opts.RateLimitStoreBackoff,
		replicas: int64(opts.RateLimitFallbackReplicas),
		log:      opts.Logger,
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clearance_verifier_rate_limit_store_up",
			Help: "1 while the shared rate-limit store (--rate-limit-store) answers, 0 while this replica limits each key to its share of the limit in memory instead.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clearance_verifier_rate_limit_store_errors_total",
			Help: "Calls to the shared rate-limit store that failed or timed out; each request they served was limited in memory instead.",
		}),
	}
	for _, c := range []prometheus.Collector{s.up, s.errors} {
		if err := opts.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	s.up.Set(1)
	return s, nil
}

// take spends one request from the bucket cfg of the APIKey in ref's slot in the store, or,
// while the store is down, from this replica's share of it in ks.
func (s *sharedLimits) take(ks *keyStore, ref ownerRef, cfg rateLimit, now time.Time) rateResult {
	id := ks.storeIDs.at(ref.slot)
	if id == nil || !s.try(now) {
		return ks.take(ref, s.share(cfg), now) // no id: a slot made before the store was set
	}
	conf := ks.confs.of(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	allowed, tokens, err := s.store.Take(ctx, storeKey(*id, cfg.name), int64(burstOf(cfg)), conf.perSecond)
	cancel()
	if err != nil {
		s.failed(now, err)
		return ks.take(ref, s.share(cfg), now)
	}
	s.answered()
	return rateResultOf(conf, allowed, tokens)
}

// share is this replica's part of cfg while the store is down: the limit over the replicas,
// rounded up so that no limit becomes zero; the replicas together allow at most
// limit + replicas - 1 per period.
func (s *sharedLimits) share(cfg rateLimit) rateLimit {
	if s.replicas <= 1 {
		return cfg
	}
	cfg.limit = (cfg.limit + s.replicas - 1) / s.replicas
	return cfg
}

// try says whether this request calls the store: yes while it answers; while the breaker is
// open only once the back-off is over, and then for one request, which pushes the next try a
// back-off further on for the others.
func (s *sharedLimits) try(now time.Time) bool {
	at := s.retryAt.Load()
	if at == 0 {
		return true
	}
	if now.UnixNano() < at {
		return false
	}
	return s.retryAt.CompareAndSwap(at, now.Add(s.backoff).UnixNano())
}

// failed opens the breaker (or keeps it open) for a back-off, saying so once.
func (s *sharedLimits) failed(now time.Time, err error) {
	s.errors.Inc()
	if s.retryAt.Swap(now.Add(s.backoff).UnixNano()) == 0 {
		s.up.Set(0)
		s.log.Error(err, "rate-limit store unreachable: limiting each key to this replica's share of its limits in memory until it answers again",
			"share", fmt.Sprintf("1/%d", max(s.replicas, 1)), "retryEvery", s.backoff)
	}
}

// answered closes the breaker, saying so once.
func (s *sharedLimits) answered() {
	if at := s.retryAt.Load(); at != 0 && s.retryAt.CompareAndSwap(at, 0) {
		s.up.Set(1)
		s.log.Info("rate-limit store answers again: limits are shared by every replica")
	}
}

// storeKey names an APIKey's bucket in the store: the APIKey's UID (as the index keeps it, the
// first half of its SHA-256) and the bucket's name. Every replica derives the same name.
func storeKey(id uidKey, bucket string) string {
	return "clearance:ratelimit:" + hex.EncodeToString(id[:]) + ":" + bucket
}
