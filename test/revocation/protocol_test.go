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

package revocation

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// judge asks a verifier of its own, fed with the live objects of the key's org and its own
// clock at now, whether token is good: the verifier's decision on exactly what the apiserver
// holds at this instant, with no informer lag.
func judge(t *testing.T, ns string, key *v1.APIKey, token string, now time.Time) verifier.VerifyResponse {
	t.Helper()
	answer, err := judgeNow(ns, key, token, now)
	if err != nil {
		t.Fatal(err)
	}
	return answer
}

// judgeNow is judge for the operator's goroutine: it returns its error.
func judgeNow(ns string, key *v1.APIKey, token string, now time.Time) (verifier.VerifyResponse, error) {
	v, err := verifier.New(verifier.Options{Clock: clocktesting.NewFakeClock(now), Format: format, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return verifier.VerifyResponse{}, err
	}
	app := &v1.Application{}
	conn := &v1.OrgConnection{}
	if err := env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "bi"}, app); err != nil {
		return verifier.VerifyResponse{}, err
	}
	if err := env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "bi"}, conn); err != nil {
		return verifier.VerifyResponse{}, err
	}
	v.Apply(app)
	v.Apply(conn)
	v.Apply(key)
	srv := httptest.NewServer(v.Handler())
	defer srv.Close()
	_, answer, err := verifier.Verify(http.DefaultClient, srv.URL, verifier.VerifyRequest{Key: token, Org: ns, Method: http.MethodGet})
	return answer, err
}

// writeLog is what the operator wrote in one org during a row: after every write it applied,
// whether the Secret held a key the verifier accepted, and every key the Secret held.
type writeLog struct {
	mu         sync.Mutex
	bad        []string
	delivered  map[string]bool // hashes of the keys the Secret held after a write
	recorded   map[string]bool // hashes status recorded as the current key after a write
	requireKey bool            // a Secret without a key is a violation too (after the first mint)
}

func observe(t *testing.T, ns, name string, requireKey bool) *writeLog {
	t.Helper()
	l := &writeLog{delivered: map[string]bool{}, recorded: map[string]bool{}, requireKey: requireKey}
	faults.watch(t, ns, func(op string) {
		key := &v1.APIKey{}
		if err := env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, key); err != nil {
			l.add(op+": reading the APIKey: "+err.Error(), "", "")
			return
		}
		token, err := readToken(key)
		if err != nil {
			l.add(op+": reading the Secret: "+err.Error(), "", "")
			return
		}
		if token == "" {
			if l.requireKey {
				l.add(op+": the Secret holds no key", "", key.Status.Hash)
			} else {
				l.add("", "", key.Status.Hash)
			}
			return
		}
		if key.Status.Hash == "" {
			// The first key is delivered before it is recorded; nobody holds a key yet.
			l.add("", keyformat.Hash(token), "")
			return
		}
		answer, err := judgeNow(ns, key, token, clk.Now())
		if err != nil {
			l.add(op+": asking the verifier: "+err.Error(), "", "")
			return
		}
		if !answer.Valid {
			l.add(op+": the Secret holds a key the verifier refuses ("+answer.Reason+")", keyformat.Hash(token), key.Status.Hash)
			return
		}
		l.requireKey = true
		l.add("", keyformat.Hash(token), key.Status.Hash)
	})
	return l
}

func (l *writeLog) add(bad, delivered, recorded string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if bad != "" {
		l.bad = append(l.bad, bad)
	}
	if delivered != "" {
		l.delivered[delivered] = true
	}
	if recorded != "" {
		l.recorded[recorded] = true
	}
}

// waitSeen waits until the observer, which runs after the write it observes returned in the
// operator, has seen the Secret hold token and status record it.
func (l *writeLog) waitSeen(t *testing.T, token string) {
	t.Helper()
	hash := keyformat.Hash(token)
	eventually(t, "the observer to see the last write", func() (bool, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.delivered[hash] && l.recorded[hash], nil
	})
}

func (l *writeLog) report() (bad []string, delivered, recorded map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.bad...), l.delivered, l.recorded
}

// newKeys counts the hashes in set other than those of the keys before.
func newKeys(set map[string]bool, before ...string) int {
	n := len(set)
	for _, h := range before {
		if set[h] {
			n--
		}
	}
	return n
}

// TestRotationKeepsTheWorkloadsKeyGoodThroughEveryFailure rotates a key with an overlap while
// one write of the operator fails, at each point of the write protocol (status first, then the
// Secret). For every row: after every write the operator applied, the Secret holds a key the
// verifier accepts; the previous key stays valid for exactly its overlap, from the rotation; and
// one new key at most is recorded and delivered.
func TestRotationKeepsTheWorkloadsKeyGoodThroughEveryFailure(t *testing.T) {
	rows := []struct {
		name  string
		fault fault
	}{
		{"no failure", fault{}},
		{"the status write is refused (500)", fault{op: "status", err: errInternal}},
		{"the status write conflicts (409)", fault{op: "status", err: errConflict}},
		{"the status write is applied but its answer lost", fault{op: "status", after: true, err: errInternal}},
		{"between status and Secret: the Secret write is refused (500)", fault{op: "patch", err: errInternal}},
		{"between status and Secret: the Secret write conflicts (409)", fault{op: "patch", err: errConflict}},
		{"after the Secret: its write is applied but its answer lost", fault{op: "patch", after: true, err: errInternal}},
		{"the Secret write is refused three times in a row", fault{op: "patch", err: errInternal, times: 3}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			ns := org(t, "rotate")
			key := newKey(ns, "k", withOverlap)
			must(t, env.Client.Create(ctx(), key))
			before, oldToken := settled(t, key, "the first key")
			oldHash := before.Status.Hash

			log := observe(t, ns, "k", true)
			if row.fault.op != "" {
				row.fault.namespace = ns
				if row.fault.times == 0 {
					row.fault.times = 1
				}
				faults.arm(t, row.fault)
			}
			rotatedAt := clk.Now()
			patch := client.MergeFrom(before.DeepCopy())
			metav1.SetMetaDataAnnotation(&before.ObjectMeta, v1.AnnotationRotateRequestedAt, "now") // beside the recorded creator
			must(t, env.Client.Patch(ctx(), before, patch))
			after, newToken := settled(t, key, "the rotation", func(k *v1.APIKey) bool {
				return k.Status.LastRotationRequest == "now" && k.Status.Hash != oldHash
			})
			log.waitSeen(t, newToken)

			bad, delivered, recorded := log.report()
			for _, b := range bad {
				t.Errorf("the workload's Secret held a refused key: %s", b)
			}
			if n := newKeys(delivered, oldHash); n != 1 {
				t.Errorf("the Secret held %d new keys during the rotation, want 1", n)
			}
			if n := newKeys(recorded, oldHash); n != 1 {
				t.Errorf("status recorded %d new keys during the rotation, want 1", n)
			}
			if len(after.Status.PreviousKeys) != 1 || after.Status.PreviousKeys[0].Hash != oldHash {
				t.Fatalf("previous keys %+v, want the rotated-out key", after.Status.PreviousKeys)
			}
			until := after.Status.PreviousKeys[0].ValidUntil.Time
			if want := rotatedAt.Add(time.Hour).Truncate(time.Second); !until.Equal(want) {
				t.Errorf("the previous key is valid until %s, want exactly its overlap from the rotation: %s", until, want)
			}
			if a := judge(t, ns, after, oldToken, until.Add(-time.Nanosecond)); !a.Valid {
				t.Errorf("the previous key is refused (%s) before its overlap ends", a.Reason)
			}
			if a := judge(t, ns, after, oldToken, until); a.Valid || a.Reason != verifier.ReasonKeyRotated {
				t.Errorf("the previous key at the end of its overlap: valid=%v reason=%s, want key_rotated", a.Valid, a.Reason)
			}
			if a := judge(t, ns, after, newToken, clk.Now()); !a.Valid {
				t.Errorf("the new key is refused: %s", a.Reason)
			}
		})
	}
}

// TestMintAndRepairKeepOneKeyThroughEveryFailure: the first key is delivered, then recorded;
// the repair of a deleted Secret is recorded, then delivered. With a write failing at each
// point, the key ends delivered, accepted, and the only one recorded and delivered.
func TestMintAndRepairKeepOneKeyThroughEveryFailure(t *testing.T) {
	rows := []struct {
		name   string
		repair bool
		fault  fault
	}{
		{"mint: the Secret create is refused (500)", false, fault{op: "create", err: errInternal}},
		{"mint: the Secret create is applied but its answer lost", false, fault{op: "create", after: true, err: errInternal}},
		{"mint: between Secret and status, the status write is refused (500)", false, fault{op: "status", err: errInternal}},
		{"mint: between Secret and status, the status write conflicts (409)", false, fault{op: "status", err: errConflict}},
		{"mint: the status write is applied but its answer lost", false, fault{op: "status", after: true, err: errInternal}},
		{"repair: the status write is refused (500)", true, fault{op: "status", err: errInternal}},
		{"repair: between status and Secret, the create is refused (500)", true, fault{op: "create", err: errInternal}},
		{"repair: after the Secret, the create's answer is lost", true, fault{op: "create", after: true, err: errInternal}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			ns := org(t, "mint")
			key := newKey(ns, "k")
			row.fault.namespace, row.fault.times = ns, 1
			var known []string
			if row.repair {
				must(t, env.Client.Create(ctx(), key))
				k, _ := settled(t, key, "the first key")
				known = append(known, k.Status.Hash)
			}
			log := observe(t, ns, "k", false)
			faults.arm(t, row.fault)
			if row.repair {
				must(t, env.Client.Delete(ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "k-key"}}))
			} else {
				must(t, env.Client.Create(ctx(), key))
			}
			got, token := settled(t, key, "the key delivered", func(k *v1.APIKey) bool {
				return len(known) == 0 || k.Status.Hash != known[0]
			})
			log.waitSeen(t, token)
			bad, delivered, recorded := log.report()
			for _, b := range bad {
				t.Errorf("after a write: %s", b)
			}
			if n := newKeys(delivered, known...); n != 1 {
				t.Errorf("the Secret held %d new keys, want 1", n)
			}
			if n := newKeys(recorded, known...); n != 1 {
				t.Errorf("status recorded %d new keys, want 1", n)
			}
			if a := judge(t, ns, got, token, clk.Now()); !a.Valid {
				t.Errorf("the delivered key is refused: %s", a.Reason)
			}
			if row.repair && !strings.Contains(strings.Join(events(t, ns, v1.ReasonSecretReplaced), "\n"), "was deleted") {
				t.Error("no Warning says the Secret was deleted")
			}
		})
	}
}
