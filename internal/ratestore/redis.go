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

// Package ratestore keeps the verifier's rate-limit buckets in Redis (or Valkey), shared by
// every verifier replica (--rate-limit-store), so a key's limit holds exactly however many
// replicas answer for it. Spending a request is one script call: one round trip.
package ratestore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// PasswordEnv is the environment variable the operator reads the store's password from, so it
// need not be written in the URL (the chart sets it from a Secret).
const PasswordEnv = "CLEARANCE_RATE_LIMIT_STORE_PASSWORD"

// takeScript spends one request from a bucket; see take.lua.
//
//go:embed take.lua
var takeSource string

var takeScript = redis.NewScript(takeSource)

// Redis is a rate-limit store in a Redis or Valkey server. It is safe for concurrent use.
type Redis struct {
	client   *redis.Client
	redacted string
}

// Open checks rawURL (redis://[user:password@]host:port/db or rediss://… for TLS) and returns a
// store for it, with password (when not empty) in place of the URL's. It does not connect: the
// first Take does, and every Take reconnects as needed.
func Open(rawURL, password string) (*Redis, error) {
	opts, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if password != "" {
		opts.Password = password
	}
	// Each call is bounded by its context (the verifier's short timeout), not by the client's
	// own multi-second socket timeouts.
	opts.ContextTimeoutEnabled = true
	return &Redis{client: redis.NewClient(opts), redacted: Redact(rawURL)}, nil
}

// ParseURL parses a store URL as go-redis does, with errors that say what is wrong without
// repeating the URL, which may hold a password.
func ParseURL(rawURL string) (*redis.Options, error) {
	const want = "want redis://[user:password@]host:port/db or rediss://… for TLS"
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL
		}
		return nil, fmt.Errorf("not a URL (%v); %s", err, want)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("scheme %q is not supported; %s", u.Scheme, want)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("no host; %s", want)
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%v; %s", err, want)
	}
	return opts, nil
}

// Redact returns rawURL with its password replaced, for logs.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(not a URL)"
	}
	return u.Redacted()
}

// String is the store's URL without its password.
func (r *Redis) String() string { return r.redacted }

// Client is the store's Redis client, for other records every replica shares (the OAuth
// authorization code grant's, oauth.RedisStore).
func (r *Redis) Client() *redis.Client { return r.client }

// Take spends one request at the server's time from the bucket named key: a token bucket of at
// most burst tokens, refilled at perSecond, full when the key is absent. It returns whether the
// request was allowed and the tokens left after it, as golang.org/x/time/rate's Limiter.AllowN
// and TokensAt would for the same sequence of requests. A key whose burst or rate changed keeps
// its tokens (capped at the new burst), as Limiter.SetLimitAt and SetBurstAt do.
func (r *Redis) Take(ctx context.Context, key string, burst int64, perSecond float64) (allowed bool, tokens float64, err error) {
	res, err := takeScript.Run(ctx, r.client, []string{key}, burst, strconv.FormatFloat(perSecond, 'g', -1, 64)).Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("rate-limit script answered %d values, want 2", len(res))
	}
	ok, isInt := res[0].(int64)
	s, isStr := res[1].(string)
	if !isInt || !isStr {
		return false, 0, fmt.Errorf("rate-limit script answered %T and %T, want an integer and a string", res[0], res[1])
	}
	tokens, err = strconv.ParseFloat(s, 64)
	if err != nil {
		return false, 0, fmt.Errorf("rate-limit script answered tokens %q: %w", s, err)
	}
	return ok == 1, tokens, nil
}

// Close closes the client's connections.
func (r *Redis) Close() error { return r.client.Close() }
