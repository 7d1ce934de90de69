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

// Package ratelimit tests shared rate limits end to end: two verifier processes (the operator
// binary in verifier-only mode) sharing Debian's redis-server through --rate-limit-store, a
// third process running the controllers, all against a real kube-apiserver; the test kills
// redis-server under load and starts it again.
package ratelimit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/ratestore"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const (
	// limit per hour of bucket general: a token comes back every 72 s, far longer than a burst.
	limit = 50
	// settle bounds the operator's routine work and the verifiers' following it.
	settle = 90 * time.Second
	// storePassword is redis-server's --requirepass, given to the verifiers as the chart does:
	// in the environment, not in the URL.
	storePassword = "rl-test-password-7c1f"
)

// token is a key's plaintext. It prints masked, so no test log can hold key material.
type token string

func (k token) String() string   { return keyformat.Mask(string(k)) }
func (k token) GoString() string { return k.String() }

// TestTwoVerifiersSharingRedisAllowEachKeyItsLimitOnce: two verifier replicas sharing
// redis-server allow a key exactly its limit between them (not once each), under concurrent
// load. When redis-server is killed under load nothing answers 5xx: each replica limits keys to
// its half of the limit in memory, unknown keys are still refused, and the store metric says
// the store is down. Once redis-server is back on its port, the replicas share limits again.
func TestTwoVerifiersSharingRedisAllowEachKeyItsLimitOnce(t *testing.T) {
	if testenv.RedisServer() == "" {
		t.Skip("redis-server is not installed (apt-get install redis-server; .ci/run installs it)")
	}
	store, err := testenv.StartRedis(t.TempDir(), "--requirepass", storePassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Kill)
	t.Setenv(ratestore.PasswordEnv, storePassword) // the processes inherit it

	startOperator(t, "controllers", "--enable-verifier=false")
	storeArgs := []string{"--enable-controllers=false", "--enable-verifier",
		"--rate-limit-store=" + store.URL, "--rate-limit-store-fallback-replicas=2"}
	replicas := []*testenv.Operator{startOperator(t, "verifier-a", storeArgs...), startOperator(t, "verifier-b", storeArgs...)}

	o := newOrg(t)
	shared, fallback := newKey(t, o, "shared"), newKey(t, o, "fallback")
	for _, r := range replicas {
		for _, k := range []token{shared, fallback} {
			waitKnown(t, r, o, k)
		}
		if up, err := storeUp(r); err != nil || up != 1 {
			t.Fatalf("%s: rate-limit store up %v (%v) before any outage", r.Name, up, err)
		}
	}

	// 200 requests from 8 clients, 4 on each replica: exactly the limit gets through.
	got := load(t, replicas, o, shared, 200, nil)
	t.Logf("with the store: %s", got)
	if got.allowed != limit || got.limited != 200-limit || got.other != 0 {
		t.Fatalf("with the store: %s; want exactly %d allowed and the rest 429 with Retry-After", got, limit)
	}

	// redis-server dies after the first 40 of 200 requests (the key's budget in it is spent):
	// every answer is still 200 or 429, and the replicas go on with their halves in memory.
	got = load(t, replicas, o, shared, 200, func(sent int) {
		if sent == 40 {
			store.Kill()
		}
	})
	t.Logf("store killed under load: %s", got)
	if got.allowed != limit || got.other != 0 {
		t.Fatalf("store killed under load: %s; want only 200 and 429, and 25 + 25 allowed from memory", got)
	}

	// Without the store each replica allows its half: 25 + 25 of a key's 50, from full.
	got = load(t, replicas, o, fallback, 80, nil)
	t.Logf("store down: %s", got)
	if got.allowed != limit || got.other != 0 {
		t.Fatalf("store down: %s; want each replica's share, 25 + 25, and no other status", got)
	}
	for _, r := range replicas {
		unknown := token(mint(t))
		if a := authorize(t, r, o, unknown, ""); a.code != http.StatusUnauthorized {
			t.Fatalf("%s with the store down: an unknown key got %d, want 401", r.Name, a.code)
		}
		if up, err := storeUp(r); err != nil || up != 0 {
			t.Fatalf("%s: rate-limit store up %v (%v) with redis-server killed, want 0", r.Name, up, err)
		}
		if ready, err := http.Get(r.HealthURL + "/readyz"); err != nil || ready.StatusCode != http.StatusOK {
			t.Fatalf("%s: /readyz with the store down: %v %v; authorization works, so it stays ready", r.Name, ready, err)
		} else {
			ready.Body.Close()
		}
	}

	// Back on the same port (empty: nothing persisted): after the back-off one request of each
	// replica finds it, and limits are shared again.
	if err := store.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, r := range replicas {
		testenv.Within(t, settle, r.Name+" to use the store again", func() error {
			// bucket probe has a large limit: asking spends nothing that matters.
			if a := authorize(t, r, o, shared, "probe"); a.code != http.StatusOK {
				return fmt.Errorf("asking with bucket probe: %d", a.code)
			}
			if up, err := storeUp(r); err != nil || up != 1 {
				return fmt.Errorf("store up %v (%v)", up, err)
			}
			return nil
		})
	}
	t.Logf("both replicas used the store again %s after it was back", time.Since(start).Round(time.Millisecond))
	got = load(t, replicas, o, shared, 200, nil)
	t.Logf("store back: %s", got)
	if got.allowed != limit || got.limited != 200-limit || got.other != 0 {
		t.Fatalf("store back: %s; want exactly %d allowed again (the restarted store holds no bucket)", got, limit)
	}

	for _, r := range replicas {
		log := r.Log()
		for _, want := range []string{"rate-limit store unreachable", "rate-limit store answers again", "redis://127.0.0.1:"} {
			if !strings.Contains(log, want) {
				t.Errorf("%s's log lacks %q", r.Name, want)
			}
		}
		for _, secret := range []string{storePassword, secretOf(t, shared), secretOf(t, fallback)} {
			if strings.Contains(log, secret) {
				t.Errorf("%s's log holds a secret (the store's password or a key)", r.Name)
			}
		}
	}
}

// outcome counts a load's answers.
type outcome struct{ allowed, limited, other int }

func (o outcome) String() string {
	return fmt.Sprintf("%d allowed, %d rate-limited, %d other", o.allowed, o.limited, o.other)
}

// load sends n requests for key from 8 clients, 4 asking each replica, and counts the answers;
// a 429 without Retry-After counts as other. each, when set, is called with the number of
// requests sent so far before each one, while no other client sends.
func load(t *testing.T, replicas []*testenv.Operator, o org, key token, n int, each func(sent int)) outcome {
	t.Helper()
	const clients = 8
	var mu sync.Mutex
	var out outcome
	var sent int
	var failures []string
	var wg sync.WaitGroup
	for c := range clients {
		r := replicas[c%len(replicas)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / clients {
				if each != nil {
					mu.Lock() // no client sends while each runs
					sent++
					each(sent)
					mu.Unlock()
				}
				a := authorize(t, r, o, key, "")
				mu.Lock()
				switch {
				case a.code == http.StatusOK:
					out.allowed++
				case a.code == http.StatusTooManyRequests && a.retryAfter > 0:
					out.limited++
				default:
					out.other++
					failures = append(failures, fmt.Sprintf("%s: %d %s", r.Name, a.code, a.reason))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Logf("unexpected answers (first of %d): %s", len(failures), failures[0])
	}
	return out
}

// answer is a verifier's answer to one forward-auth request.
type answer struct {
	code       int
	reason     string
	retryAfter int
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// authorize asks replica r about key for the org that connected the Application, in bucket
// (general when empty). A transport error is an answer of code 0.
func authorize(t *testing.T, r *testenv.Operator, o org, key token, bucket string) answer {
	t.Helper()
	url := r.VerifierURL + verifier.PathAuthorize + "?org=" + o.grant
	if bucket != "" {
		url += "&bucket=" + bucket
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", string(key))
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{reason: err.Error()}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return answer{code: resp.StatusCode, reason: resp.Header.Get("X-Clearance-Reason"), retryAfter: retry}
}

// waitKnown waits until replica r knows the key (asking in bucket unlimited, which the
// Application does not define: no budget is spent).
func waitKnown(t *testing.T, r *testenv.Operator, o org, key token) {
	t.Helper()
	testenv.Within(t, settle, r.Name+" to know key "+key.String(), func() error {
		if a := authorize(t, r, o, key, "unlimited"); a.code != http.StatusOK {
			return fmt.Errorf("answered %d %s", a.code, a.reason)
		}
		return nil
	})
}

// storeUp reads clearance_verifier_rate_limit_store_up from the replica's /metrics.
func storeUp(r *testenv.Operator) (float64, error) {
	resp, err := httpClient.Get(r.MetricsURL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	const name = "clearance_verifier_rate_limit_store_up "
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, errors.New("no " + strings.TrimSpace(name) + " in /metrics")
}

// startOperator runs the operator binary with args, and stops it when the test ends; a failed
// test gets the tail of its log.
func startOperator(t *testing.T, name string, args ...string) *testenv.Operator {
	t.Helper()
	op, err := env.StartOperator(testenv.OperatorOptions{Name: name, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			log := op.Log()
			if len(log) > 6000 {
				log = "..." + log[len(log)-6000:]
			}
			t.Logf("%s log (tail):\n%s", name, log)
		}
		op.Cleanup()
	})
	return op
}

// org is an owning org with Application "bi" (50 per hour in bucket general, a large limit in
// bucket probe), and another org that connected it.
type org struct{ owner, grant string }

func newOrg(t *testing.T) org {
	t.Helper()
	ctx := context.Background()
	o := org{owner: env.Namespace(t, "rl-owner"), grant: env.Namespace(t, "rl-grant")}
	app := &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.owner, Name: "bi"},
		Spec: v1.ApplicationSpec{Description: "shared limits", RateLimits: []v1.RateLimit{
			{Name: "general", Limit: limit, Period: metav1.Duration{Duration: time.Hour}},
			{Name: "probe", Limit: 1_000_000, Period: metav1.Duration{Duration: time.Hour}},
		}},
	}
	create(t, app)
	testenv.Within(t, settle, "the Application ID", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil || app.Status.ApplicationID == "" {
			return fmt.Errorf("no ID yet (%v)", err)
		}
		return nil
	})
	conn := &v1.OrgConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.grant, Name: "bi"},
		Spec:       v1.OrgConnectionSpec{ApplicationID: app.Status.ApplicationID, Role: v1.RoleObserver},
	}
	create(t, conn)
	testenv.Within(t, settle, "the OrgConnection to be Ready", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn); err != nil || !meta.IsStatusConditionTrue(conn.Status.Conditions, v1.ConditionReady) {
			return fmt.Errorf("not Ready (%v): %v", err, conn.Status.Conditions)
		}
		return nil
	})
	return o
}

// newKey creates an APIKey of the org's Application and returns its plaintext, from its Secret
// once it holds the key status records.
func newKey(t *testing.T, o org, name string) token {
	t.Helper()
	key := &v1.APIKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.owner, Name: name},
		Spec:       v1.APIKeySpec{ApplicationName: "bi", Description: "shared limits " + name},
	}
	create(t, key)
	var tok token
	testenv.Within(t, settle, "the Secret of "+name, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(key), key); err != nil {
			return err
		}
		s := &corev1.Secret{}
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: o.owner, Name: name + "-key"}, s); err != nil {
			return err
		}
		tok = token(s.Data[v1.SecretKeyToken])
		if key.Status.Hash == "" || !keyformat.Verify(string(tok), key.Status.Hash) {
			return errors.New("the Secret does not hold the key in status yet")
		}
		return nil
	})
	return tok
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// mint is a well-formed key no APIKey has.
func mint(t *testing.T) string {
	t.Helper()
	format, _ := keyformat.New(keyformat.DefaultPrefix)
	k, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Token
}

// secretOf is the secret part of a key, to look for in logs.
func secretOf(t *testing.T, k token) string {
	t.Helper()
	format, _ := keyformat.New(keyformat.DefaultPrefix)
	parsed, err := format.Parse(string(k))
	if err != nil {
		t.Fatalf("parsing key %s: %v", k, err)
	}
	return parsed.Secret
}
