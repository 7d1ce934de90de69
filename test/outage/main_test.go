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

// Package outage holds reliability tests: the real operator binary, as a process of its own,
// against a real kube-apiserver that the tests kill and bring back, and an operator that they
// kill -9 and restart. Every check goes through the verifier over HTTP, as a proxy would.
package outage

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
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// Deadlines are generous: the machine is shared and has two cores. They bound waits; the
// figures the tests log are what was measured.
const (
	// settleTimeout bounds the operator's routine work: an Application ID, a minted key.
	settleTimeout = 90 * time.Second
	// revocationTimeout bounds how long a disable or delete may take to reach the verifier
	// (the design target, p99 ≤ 250 ms, is measured by make bench).
	revocationTimeout = 30 * time.Second
	// recoveryTimeout bounds how long after the apiserver's return the operator follows it
	// again: its informers retry at most every second (package watches), and a restarted
	// apiserver serves the CRDs' resources a few seconds after it is healthy.
	recoveryTimeout = 30 * time.Second
	// revocationAfterRecovery bounds the same once the verifier answers again after an outage:
	// it must be watching again by then.
	revocationAfterRecovery = 5 * time.Second
	// pollInterval is the pause between two polls over HTTP or the apiserver.
	pollInterval = 50 * time.Millisecond
)

// token is a key's plaintext. It prints masked, so no test log can hold key material.
type token string

func (k token) String() string   { return keyformat.Mask(string(k)) }
func (k token) GoString() string { return k.String() }

// startOperator runs the operator binary (controllers and verifier, no webhooks) with extra
// flags, and kills it when the test ends. A failed test gets the tail of its log.
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
			t.Logf("operator %s log (tail):\n%s", name, log)
		}
		op.Cleanup()
	})
	return op
}

// eventually polls cond until it holds or timeout passes, and returns how long it took. cond
// says what it saw last, for the failure message.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, last := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("waited %s for %s; last: %s", timeout, what, last)
		}
		time.Sleep(pollInterval)
	}
}

// cutAPIServer kills kube-apiserver (etcd keeps running) and returns the function that brings
// it back and returns when it did. The test's cleanup brings it back too, so a failed test
// never leaves the next one without a control plane.
func cutAPIServer(t *testing.T) (restore func() time.Time) {
	t.Helper()
	if err := env.StopAPIServer(); err != nil {
		t.Fatalf("stopping kube-apiserver: %v", err)
	}
	var once sync.Once
	var back time.Time
	restore = func() time.Time {
		once.Do(func() {
			if err := env.StartAPIServer(); err != nil {
				t.Errorf("starting kube-apiserver again: %v", err)
			}
			back = time.Now()
		})
		return back
	}
	t.Cleanup(func() { restore() })
	return restore
}

// org is an owning org with Application "bi", and another org that connected it as Observer.
type org struct {
	owner, grant, appID string
}

func newOrg(t *testing.T, prefix string) org {
	t.Helper()
	ctx := context.Background()
	o := org{owner: env.Namespace(t, prefix+"-owner"), grant: env.Namespace(t, prefix+"-grant")}
	app := &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.owner, Name: "bi"},
		Spec:       v1.ApplicationSpec{Description: "BI export"},
	}
	mustCreate(t, app)
	eventually(t, settleTimeout, "the Application ID", func() (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app)
		return err == nil && app.Status.ApplicationID != "", fmt.Sprintf("err %v", err)
	})
	o.appID = app.Status.ApplicationID
	conn := &v1.OrgConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.grant, Name: "bi"},
		Spec:       v1.OrgConnectionSpec{ApplicationID: o.appID, Role: v1.RoleObserver},
	}
	mustCreate(t, conn)
	eventually(t, settleTimeout, "the OrgConnection to be Ready", func() (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(conn), conn)
		return err == nil && meta.IsStatusConditionTrue(conn.Status.Conditions, v1.ConditionReady),
			fmt.Sprintf("err %v, conditions %v", err, conn.Status.Conditions)
	})
	return o
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func newKey(ns, name string, mutate ...func(*v1.APIKey)) *v1.APIKey {
	k := &v1.APIKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.APIKeySpec{ApplicationName: "bi", Description: "outage test " + name},
	}
	for _, m := range mutate {
		m(k)
	}
	return k
}

func getKey(t *testing.T, key *v1.APIKey) *v1.APIKey {
	t.Helper()
	got := &v1.APIKey{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(key), got); err != nil {
		t.Fatalf("reading APIKey %s: %v", key.Name, err)
	}
	return got
}

// waitKey waits until the operator has observed the key's generation and cond holds.
func waitKey(t *testing.T, key *v1.APIKey, what string, cond func(*v1.APIKey) bool) *v1.APIKey {
	t.Helper()
	got := &v1.APIKey{}
	eventually(t, settleTimeout, "APIKey "+key.Name+" "+what, func() (bool, string) {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(key), got)
		return err == nil && got.Status.ObservedGeneration == got.Generation && cond(got),
			fmt.Sprintf("err %v, state %q, generation %d observed %d", err, got.Status.State, got.Generation, got.Status.ObservedGeneration)
	})
	return got
}

func inState(state v1.KeyState) func(*v1.APIKey) bool {
	return func(k *v1.APIKey) bool { return k.Status.State == state }
}

func secretName(key *v1.APIKey) string {
	if key.Spec.SecretName != "" {
		return key.Spec.SecretName
	}
	return key.Name + "-key"
}

// secretToken reads the token a key's Secret holds ("" when there is none).
func secretToken(key *v1.APIKey) (token, error) {
	s := &corev1.Secret{}
	err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: key.Namespace, Name: secretName(key)}, s)
	return token(s.Data[v1.SecretKeyToken]), err
}

// tokenOf waits until the key's Secret holds the key whose hash status records, and returns it.
func tokenOf(t *testing.T, key *v1.APIKey) token {
	t.Helper()
	var tok token
	eventually(t, settleTimeout, "the Secret of "+key.Name+" to hold the key recorded in status", func() (bool, string) {
		k := getKey(t, key)
		var err error
		tok, err = secretToken(k)
		return err == nil && k.Status.Hash != "" && keyformat.Verify(string(tok), k.Status.Hash), fmt.Sprintf("err %v", err)
	})
	return tok
}

// answer is the verifier's answer to one forward-auth request.
type answer struct {
	code   int
	reason string // X-Clearance-Reason
	body   string
	ctype  string
}

func (a answer) String() string { return fmt.Sprintf("%d %q", a.code, a.reason) }

// httpClient opens a connection per request: the operator is killed and restarted under it.
var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// authorize asks the verifier about a key for org, as ingress-nginx's auth-url would.
func authorize(verifierURL, org string, key token) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, verifierURL+verifier.PathAuthorize+"?org="+org, nil)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "api-key "+string(key))
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, reason: resp.Header.Get("X-Clearance-Reason"), body: string(body),
		ctype: resp.Header.Get("Content-Type")}, err
}

// waitAnswer asks until the verifier answers code (and reason, when not empty).
func waitAnswer(t *testing.T, op *testenv.Operator, org string, key token, timeout time.Duration, what string, code int, reason string) time.Duration {
	t.Helper()
	return eventually(t, timeout, what, func() (bool, string) {
		a, err := authorize(op.VerifierURL, org, key)
		if err != nil {
			return false, err.Error()
		}
		return a.code == code && (reason == "" || a.reason == reason), a.String()
	})
}

// mustAnswer asks once and fails unless the verifier answers code with one of reasons (any
// reason when none is given).
func mustAnswer(t *testing.T, op *testenv.Operator, org string, key token, what string, code int, reasons ...string) answer {
	t.Helper()
	a, err := authorize(op.VerifierURL, org, key)
	if err != nil {
		t.Fatalf("%s: asking the verifier: %v", what, err)
	}
	if a.code != code || (len(reasons) > 0 && !contains(reasons, a.reason)) {
		t.Fatalf("%s: the verifier answered %s, want %d %v", what, a, code, reasons)
	}
	return a
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// stalenessMetric is the verifier's clearance_verifier_staleness_seconds: how long since it
// last heard from the apiserver.
func stalenessMetric(op *testenv.Operator) (float64, error) {
	resp, err := httpClient.Get(op.MetricsURL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	const name = "clearance_verifier_staleness_seconds"
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no " + name + " in /metrics")
}

// noKeyInLog fails when the operator's log holds the secret part of any of the keys.
func noKeyInLog(t *testing.T, op *testenv.Operator, keys ...token) {
	t.Helper()
	format, _ := keyformat.New(keyformat.DefaultPrefix)
	log := op.Log()
	for _, k := range keys {
		parsed, err := format.Parse(string(k))
		if err != nil {
			continue // an emptied Secret's ""
		}
		if strings.Contains(log, parsed.Secret) {
			t.Errorf("the operator's log holds the key %s", k)
		}
	}
}
