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
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// The rate-limit budget of requests made with access tokens no key obtained (the authorization
// code grant, docs/oauth.md): such a client may have no key at all (a public client), so its
// budget is its Application's limit per grant, that is per OrgConnection, in the shared store
// when there is one. Buckets are kept per connection and bucket name and forgotten when the
// connection goes: as many as there are connections used through such tokens, times buckets.

type grantBucketKey struct {
	conn   types.UID
	bucket string
}

type grantBuckets struct {
	mu sync.Mutex
	m  map[grantBucketKey]*tokenBucket
}

// forget drops the buckets of a connection that is gone.
func (g *grantBuckets) forget(conn types.UID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range g.m {
		if k.conn == conn {
			delete(g.m, k)
		}
	}
}

// takeGrant spends one request at now from the bucket cfg of connection conn: in the shared
// store while it answers (the same key on every replica), else in memory, with this replica's
// share of the limit when a shared store is configured but down.
func (s *keyStore) takeGrant(conn types.UID, cfg rateLimit, now time.Time) rateResult {
	if sh := s.shared; sh != nil {
		if sh.try(now) {
			conf := s.confs.of(cfg)
			ctx, cancel := context.WithTimeout(context.Background(), sh.timeout)
			allowed, tokens, err := sh.store.Take(ctx, grantStoreKey(conn, cfg.name), int64(burstOf(cfg)), conf.perSecond)
			cancel()
			if err == nil {
				sh.answered()
				return rateResultOf(conf, allowed, tokens)
			}
			sh.failed(now, err)
		}
		cfg = sh.share(cfg)
	}
	g := &s.grantBuckets
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[grantBucketKey]*tokenBucket{}
	}
	at := now.UnixNano()
	b := g.m[grantBucketKey{conn, cfg.name}]
	var conf *bucketConf
	switch {
	case b == nil:
		b = &tokenBucket{}
		g.m[grantBucketKey{conn, strings.Clone(cfg.name)}] = b
		conf = s.confs.of(cfg)
		b.fill(conf, at)
	default:
		if conf = s.confs.get(b.conf); conf.cfg != cfg { // the limit changed: adjust in place
			next := s.confs.of(cfg)
			b.adjust(conf, next, at)
			conf = next
		}
	}
	allowed := b.allow(conf, at)
	return rateResultOf(conf, allowed, b.advance(conf, at))
}

// grantStoreKey names a connection's bucket in the shared store, apart from the keys' buckets.
func grantStoreKey(conn types.UID, bucket string) string {
	id := uidKeyOf(conn)
	return "clearance:ratelimit:grant:" + hex.EncodeToString(id[:]) + ":" + bucket
}
