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

package webhook

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/utils/clock"
)

// reviewCacheSize bounds the remembered reviews: one per user, org and role assigned lately.
const reviewCacheSize = 4096

// reviewCache remembers, for ttl, the SubjectAccessReviews that allowed a role assignment, as
// kube-apiserver's webhook authorizer does (it keeps allowed answers 5 minutes by default): a
// GitOps tool or an admin assigning roles over many connections asks the apiserver once per
// org and role, not once per connection. Refusals are never remembered, so a permission just
// granted works at once; a permission just taken away still allows assignments for up to ttl.
type reviewCache struct {
	ttl     time.Duration
	entries *cache.LRUExpireCache
	lookups *prometheus.CounterVec
}

// newReviewCache returns a cache keeping allowed reviews for ttl on clk; nil when ttl is 0.
func newReviewCache(ttl time.Duration, clk clock.PassiveClock, reg prometheus.Registerer) (*reviewCache, error) {
	if ttl <= 0 {
		return nil, nil
	}
	c := &reviewCache{
		ttl:     ttl,
		entries: cache.NewLRUExpireCacheWithClock(reviewCacheSize, clk),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clearance_webhook_role_reviews_total",
			Help: "Role assignments checked by the OrgConnection webhook, by where the answer came from: cached (an allowing SubjectAccessReview of the last --role-review-cache-ttl) or asked (a new SubjectAccessReview).",
		}, []string{"answer"}),
	}
	if reg != nil {
		if err := reg.Register(c.lookups); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *reviewCache) has(key string) bool {
	if c == nil {
		return false
	}
	_, ok := c.entries.Get(key)
	if ok {
		c.lookups.WithLabelValues("cached").Inc()
	} else {
		c.lookups.WithLabelValues("asked").Inc()
	}
	return ok
}

func (c *reviewCache) add(key string) {
	if c != nil {
		c.entries.Add(key, struct{}{}, c.ttl)
	}
}

// reviewKey is everything a review is judged on: the user's name, UID, groups and extra, and
// the resource. Each part is quoted, so no value can pass for another's separator.
func reviewKey(sar *authorizationv1.SubjectAccessReview) string {
	s, r := sar.Spec, sar.Spec.ResourceAttributes
	var b strings.Builder
	for _, part := range []string{s.User, s.UID, r.Namespace, r.Verb, r.Group, r.Resource, r.Name} {
		b.WriteString(strconv.Quote(part))
	}
	b.WriteString(strconv.Quote(strings.Join(quoteAll(s.Groups), ",")))
	keys := make([]string, 0, len(s.Extra))
	for k := range s.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString(strconv.Quote(k))
		b.WriteString(strconv.Quote(strings.Join(quoteAll(s.Extra[k]), ",")))
	}
	return b.String()
}

func quoteAll(vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strconv.Quote(v)
	}
	return out
}
