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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// The index holds what the verifier knows, built from the informers' objects. Readers (every
// request) use the sharded maps; writers (informer handlers, serialized by mu) also keep the
// bookkeeping needed to undo what an object contributed when it changes or goes away.
type index struct {
	log logr.Logger

	*keyStore                                     // APIKeys (keystore.go)
	apps      *shardedMap[nsName, *appEntry]      // Application namespace/name → entry
	conns     *shardedMap[connKey, []*connEntry]  // (org, Application ID) → connections
	metrics   *shardedMap[string, *orgMetrics]    // org → enabled metrics of its MetricSets
	origins   atomic.Pointer[map[string]struct{}] // every allowed origin of every Application, for preflights

	mu           sync.Mutex
	appUIDs      map[nsName]types.UID                  // which Application object an app entry came from
	connByUID    map[types.UID]*connEntry              // OrgConnection UID → its published entry
	metricSets   map[string]map[string]map[string]bool // org → MetricSet name → enabled metric names
	metricUIDs   map[nsName]types.UID                  // which MetricSet object a set came from
	originCounts map[string]int                        // allowed origin → Applications listing it
	grants       grantIndex                            // OAuth clients and consents (grants.go)
	tallies      *tallies                              // decisions per org and application (tallies.go)
}

func newIndex(log logr.Logger) *index {
	ix := &index{
		log:          log,
		keyStore:     newKeyStore(),
		apps:         newShardedMap[nsName, *appEntry](hashNsName),
		conns:        newShardedMap[connKey, []*connEntry](hashConnKey),
		metrics:      newShardedMap[string, *orgMetrics](hashString),
		appUIDs:      map[nsName]types.UID{},
		connByUID:    map[types.UID]*connEntry{},
		metricSets:   map[string]map[string]map[string]bool{},
		metricUIDs:   map[nsName]types.UID{},
		originCounts: map[string]int{},
		grants:       newGrantIndex(),
		tallies:      newTallies(false),
	}
	empty := map[string]struct{}{}
	ix.origins.Store(&empty)
	return ix
}

// appEntry is an Application. Immutable once published.
type appEntry struct {
	uid        types.UID
	uidKey     uidKey // uid as keys record it (keyView.appUID)
	id         string
	idHeader   []string
	deleting   bool
	enabled    bool
	origins    map[string]struct{}
	rateLimits map[string]rateLimit
	namespace  string
	desc       string
	oauth      *v1.OAuthClient // nil: not an OAuth client
	tally      *decisionTally  // its decisions before a connection was found (tallies.go)
}

// connEntry is an OrgConnection. Immutable once published.
type connEntry struct {
	uid           types.UID
	org, name     string
	orgHeader     []string
	role          v1.Role
	rank          int
	roleHeader    []string
	metricSets    []string
	refused       transportSet // the transports spec.transports refuses
	ready         bool
	deleting      bool
	appNamespace  string
	applicationID string
	consent       string         // annotation access.clearance.dev/consent
	consentedBy   string         // annotation access.clearance.dev/consented-by
	tally         *decisionTally // its decisions (tallies.go)
}

// orgMetrics are the enabled metrics of an org's MetricSets. Immutable once published.
type orgMetrics struct {
	sets map[string]map[string]bool // MetricSet name → enabled metric names
	all  map[string]bool            // union of sets
}

// rateLimit is one named bucket: limit requests per period.
type rateLimit struct {
	name   string
	limit  int64
	period time.Duration
}

func rateLimitsOf(list []v1.RateLimit) map[string]rateLimit {
	if len(list) == 0 {
		return nil
	}
	m := make(map[string]rateLimit, len(list))
	for _, rl := range list {
		if rl.Limit <= 0 || rl.Period.Duration <= 0 {
			continue // the CRD refuses these; never divide by them
		}
		m[rl.Name] = rateLimit{name: rl.Name, limit: rl.Limit, period: rl.Period.Duration}
	}
	return m
}

// header returns a one-value header slice whose capacity is full, so a later Add on a
// response copies instead of writing into the shared array.
func header(v string) []string { return []string{v}[:1:1] }

// uidOf falls back to namespace/name for objects without a UID (hand-built test objects).
func uidOf(uid types.UID, namespace, name string) types.UID {
	if uid != "" {
		return uid
	}
	return types.UID(namespace + "/" + name)
}

// Applications.

func (ix *index) applyApplication(a *v1.Application) {
	uid := uidOf(a.UID, a.Namespace, a.Name)
	e := &appEntry{
		uid:        uid,
		uidKey:     uidKeyOf(uid),
		id:         a.Status.ApplicationID,
		idHeader:   header(a.Status.ApplicationID),
		deleting:   a.DeletionTimestamp != nil,
		enabled:    a.IsEnabled(),
		origins:    make(map[string]struct{}, len(a.Spec.AllowedOrigins)),
		rateLimits: rateLimitsOf(a.Spec.RateLimits),
		namespace:  a.Namespace,
		desc:       a.Spec.Description,
		oauth:      a.Spec.OAuth.DeepCopy(),
	}
	for _, o := range a.Spec.AllowedOrigins {
		e.origins[o] = struct{}{}
	}
	e.tally = ix.tallies.take("", e.id)
	key := nsName{a.Namespace, a.Name}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old, _ := ix.apps.get(key)
	ix.appUIDs[key] = uid
	ix.apps.set(key, e)
	if old != nil {
		ix.tallies.give(old.tally)
	}
	ix.countOrigins(old, e)
	ix.grants.setApp(key, old, e)
}

func (ix *index) removeApplication(a *v1.Application) {
	key := nsName{a.Namespace, a.Name}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if uid, ok := ix.appUIDs[key]; !ok || uid != uidOf(a.UID, a.Namespace, a.Name) {
		return // a newer object of the same name replaced it already
	}
	old, _ := ix.apps.get(key)
	delete(ix.appUIDs, key)
	ix.apps.delete(key)
	if old != nil {
		ix.tallies.give(old.tally)
	}
	ix.countOrigins(old, nil)
	ix.grants.setApp(key, old, nil)
}

// countOrigins keeps the set of all allowed origins, which answers CORS preflights (they carry
// no key, so no one Application can be picked). Applications change rarely: rebuild the set.
func (ix *index) countOrigins(old, cur *appEntry) {
	changed := false
	if old != nil {
		for o := range old.origins {
			if ix.originCounts[o]--; ix.originCounts[o] <= 0 {
				delete(ix.originCounts, o)
				changed = true
			}
		}
	}
	if cur != nil {
		for o := range cur.origins {
			if ix.originCounts[o]++; ix.originCounts[o] == 1 {
				changed = true
			}
		}
	}
	if !changed {
		return
	}
	set := make(map[string]struct{}, len(ix.originCounts))
	for o := range ix.originCounts {
		set[o] = struct{}{}
	}
	ix.origins.Store(&set)
}

// OrgConnections.

func (ix *index) applyOrgConnection(c *v1.OrgConnection) {
	uid := uidOf(c.UID, c.Namespace, c.Name)
	e := &connEntry{
		uid:           uid,
		org:           c.Namespace,
		name:          c.Name,
		orgHeader:     header(c.Namespace),
		role:          c.Spec.Role,
		rank:          c.Spec.Role.Rank(),
		roleHeader:    header(string(c.Spec.Role)),
		metricSets:    slices.Clone(c.Spec.MetricSets),
		refused:       refusedTransports(&c.Spec),
		ready:         meta.IsStatusConditionTrue(c.Status.Conditions, v1.ConditionReady),
		deleting:      c.DeletionTimestamp != nil,
		appNamespace:  c.Status.ApplicationNamespace,
		applicationID: c.Spec.ApplicationID,
		consent:       c.Annotations[v1.AnnotationConsent],
		consentedBy:   c.Annotations[v1.AnnotationConsentedBy],
	}
	e.tally = ix.tallies.take(e.org, e.applicationID)
	key := connKey{e.org, e.applicationID}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old := ix.connByUID[uid]; old != nil {
		ix.tallies.give(old.tally)
		if (connKey{old.org, old.applicationID}) != key {
			ix.unlinkConn(old)
		}
	}
	ix.grants.setConn(ix.connByUID[uid], e)
	ix.connByUID[uid] = e
	// One swap from the old list to the new: readers never see the connection missing.
	list, _ := ix.conns.get(key)
	ix.conns.set(key, append(without(list, uid), e))
}

func (ix *index) removeOrgConnection(c *v1.OrgConnection) {
	uid := uidOf(c.UID, c.Namespace, c.Name)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old := ix.connByUID[uid]; old != nil {
		// The grant first: from here no refresh or code exchange succeeds for it, then no
		// request (a token refreshed in between would be refused a moment later anyway).
		ix.grants.setConn(old, nil)
		ix.unlinkConn(old)
		ix.tallies.give(old.tally)
		delete(ix.connByUID, uid)
		ix.keyStore.grantBuckets.forget(old.uid)
	}
}

func (ix *index) unlinkConn(old *connEntry) {
	key := connKey{old.org, old.applicationID}
	list, _ := ix.conns.get(key)
	kept := without(list, old.uid)
	if len(kept) == 0 {
		ix.conns.delete(key)
		return
	}
	ix.conns.set(key, kept)
}

// without is list with the connection uid left out, in a new array (published lists are never
// changed in place).
func without(list []*connEntry, uid types.UID) []*connEntry {
	out := list[:0:0]
	for _, c := range list {
		if c.uid != uid {
			out = append(out, c)
		}
	}
	return out
}

// MetricSets.

func (ix *index) applyMetricSet(m *v1.MetricSet) {
	enabled := map[string]bool{}
	if m.DeletionTimestamp == nil {
		for _, metric := range m.Spec.Metrics {
			if metric.IsEnabled() {
				enabled[metric.Name] = true
			}
		}
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.metricUIDs[nsName{m.Namespace, m.Name}] = uidOf(m.UID, m.Namespace, m.Name)
	ix.setMetricSet(m.Namespace, m.Name, enabled)
}

func (ix *index) removeMetricSet(m *v1.MetricSet) {
	key := nsName{m.Namespace, m.Name}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if uid, ok := ix.metricUIDs[key]; !ok || uid != uidOf(m.UID, m.Namespace, m.Name) {
		return
	}
	delete(ix.metricUIDs, key)
	ix.setMetricSet(m.Namespace, m.Name, nil)
}

// setMetricSet replaces one set (nil removes it) and republishes the org's metrics.
func (ix *index) setMetricSet(org, name string, enabled map[string]bool) {
	sets := ix.metricSets[org]
	if sets == nil {
		sets = map[string]map[string]bool{}
		ix.metricSets[org] = sets
	}
	if enabled == nil {
		delete(sets, name)
	} else {
		sets[name] = enabled
	}
	if len(sets) == 0 {
		delete(ix.metricSets, org)
		ix.metrics.delete(org)
		return
	}
	pub := &orgMetrics{sets: make(map[string]map[string]bool, len(sets)), all: map[string]bool{}}
	for n, s := range sets {
		pub.sets[n] = s
		for metric := range s {
			pub.all[metric] = true
		}
	}
	ix.metrics.set(org, pub)
}

// Lookups on the request path.

// lookup is all a decision reads of the index (decide.go): read-only views of what the
// informers delivered. A keyView is a copy; an appEntry or connEntry is never changed once
// published (a change publishes a new one). *index is the only implementation; the interface
// is the boundary, so the decision cannot reach the store's slabs, locks or budgets.
type lookup interface {
	// lookupKey finds the key with keyID whose secret token matches (keystore.go).
	lookupKey(keyID, token string) (keyView, bool)
	// lookupKeyRef finds the key with keyID whose stored hash has reference ref: the key that
	// obtained an OAuth access token (jwt.go).
	lookupKeyRef(keyID string, ref keyRef) (keyView, bool)
	// application is the Application namespace/name, nil when there is none.
	application(namespace, name string) *appEntry
	// applicationByID is the Application holding an Application ID, nil when none does: the
	// client of an access token that no key obtained (grants.go).
	applicationByID(id string) *appEntry
	// connection is the OrgConnection that grants an Application a role in an org, nil when
	// none does.
	connection(org, appID, appNamespace string) *connEntry
	// metricEnabled says whether a metric is enabled for a connection limited to sets.
	metricEnabled(org string, sets []string, metric string) bool
}

var _ lookup = (*index)(nil)

func (ix *index) application(namespace, name string) *appEntry {
	app, _ := ix.apps.get(nsName{namespace, name})
	return app
}

func (ix *index) applicationByID(id string) *appEntry {
	g := &ix.grants
	g.mu.RLock()
	key, ok := g.appsByID[id]
	g.mu.RUnlock()
	if !ok {
		return nil
	}
	app, _ := ix.apps.get(key)
	return app
}

// connection is the OrgConnection that grants the application (ID appID, owned by org
// appNamespace) a role in org: Ready, not being deleted, and resolved to the key's own org, so
// an Application elsewhere that claims the same ID gains nothing. With several (the webhook
// normally prevents that), the lowest role wins.
func (ix *index) connection(org, appID, appNamespace string) *connEntry {
	list, _ := ix.conns.get(connKey{org, appID})
	var best *connEntry
	for _, c := range list {
		if !c.ready || c.deleting || c.appNamespace != appNamespace {
			continue
		}
		if best == nil || c.rank < best.rank {
			best = c
		}
	}
	return best
}

// metricEnabled reports whether metric is enabled in the org for a connection limited to sets
// (empty: every MetricSet of the org).
func (ix *index) metricEnabled(org string, sets []string, metric string) bool {
	m, ok := ix.metrics.get(org)
	if !ok {
		return false
	}
	if len(sets) == 0 {
		return m.all[metric]
	}
	for _, name := range sets {
		if m.sets[name][metric] {
			return true
		}
	}
	return false
}

func (ix *index) originKnown(origin string) bool {
	_, ok := (*ix.origins.Load())[origin]
	return ok
}
