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

package crash

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/verifier"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// The recorder's watches log through controller-runtime; the operators log to their own files.
	ctrllog.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	testenv.Main(m, &env)
}

const (
	// leaseName is the leader-election Lease main.go names.
	leaseName = "clearance.access.clearance.dev"
	// Short leader-election timings, so a failover fits in a test.
	leaseDuration = 4 * time.Second
	renewDeadline = 3 * time.Second
	retryPeriod   = 1 * time.Second
)

// throttle slows every operator's API client, so minting 200 keys takes several seconds and
// kills and pauses land in the middle of it, often between the two writes of one key (Secret
// created, status not yet), rather than after it.
var throttle = []string{"--kube-api-qps=50", "--kube-api-burst=50"}

// leaderArgs are the flags of a replica electing its leader through a Lease in leaseNS.
func leaderArgs(leaseNS string) []string {
	return []string{
		"--leader-elect",
		"--leader-election-namespace=" + leaseNS,
		"--leader-elect-lease-duration=" + leaseDuration.String(),
		"--leader-elect-renew-deadline=" + renewDeadline.String(),
		"--leader-elect-retry-period=" + retryPeriod.String(),
	}
}

// startOperator starts an operator process that the test's cleanup kills; when the test failed,
// the end of its log (key material redacted) is printed first.
func startOperator(t *testing.T, name string, args ...string) *testenv.Operator {
	t.Helper()
	op, err := env.StartOperator(testenv.OperatorOptions{Name: name, Args: append(slices.Clone(throttle), args...)})
	if err != nil {
		t.Fatal(redact(err.Error()))
	}
	t.Cleanup(op.Cleanup)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of the log of %s:\n%s", op.Name, redact(lastLines(op.Log(), 40)))
		}
	})
	return op
}

// seededRand is the run's randomness; CLEARANCE_CRASH_SEED replays a run.
func seededRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CLEARANCE_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CLEARANCE_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed=%d (CLEARANCE_CRASH_SEED=%d replays it)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// figures logs measured figures on one parseable line: FIGURES test=NAME k=v k=v ...
func figures(t *testing.T, name string, kv ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("FIGURES test=" + name)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	t.Log(b.String())
}

// within polls cond every interval until it holds, and fails the test after timeout.
func within(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, err)
		}
		time.Sleep(interval)
	}
}

// fixture is one org (namespace) with a few Applications, an OrgConnection granting each to the
// org itself (so the verifier accepts their keys there), and n APIKeys spread over them.
type fixture struct {
	ns   string
	apps []string
	keys []string
	rec  *recorder
}

// newFixture makes the namespace and starts recording its key Secrets and APIKeys.
func newFixture(t *testing.T, prefix string, apps, keys int) *fixture {
	t.Helper()
	f := &fixture{ns: env.Namespace(t, prefix)}
	for i := range apps {
		f.apps = append(f.apps, fmt.Sprintf("app-%d", i))
	}
	for i := range keys {
		f.keys = append(f.keys, fmt.Sprintf("key-%03d", i))
	}
	f.rec = record(t, f.ns)
	return f
}

// createApplications creates the Applications, waits for their IDs (which needs a running
// leader) and connects each to the org.
func (f *fixture) createApplications(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, name := range f.apps {
		app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Spec: v1.ApplicationSpec{Description: "crash test " + name}}
		if err := env.Client.Create(ctx, app); err != nil {
			t.Fatalf("creating Application %s: %v", name, err)
		}
	}
	for _, name := range f.apps {
		app := &v1.Application{}
		within(t, 2*time.Minute, 50*time.Millisecond, "the ID of Application "+name, func() (bool, error) {
			err := env.Client.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: name}, app)
			return err == nil && app.Status.ApplicationID != "", err
		})
		conn := &v1.OrgConnection{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
			Spec:       v1.OrgConnectionSpec{ApplicationID: app.Status.ApplicationID, Role: v1.RoleObserver},
		}
		if err := env.Client.Create(ctx, conn); err != nil {
			t.Fatalf("creating OrgConnection %s: %v", name, err)
		}
	}
}

// applyKeys starts applying every APIKey at once, from a few concurrent writers, as kubectl
// apply of a large directory or a GitOps sync would, and returns a function that waits until
// they are all created. The operator mints while they arrive.
func (f *fixture) applyKeys() (wait func(*testing.T)) {
	var wg sync.WaitGroup
	errs := make(chan error, len(f.keys))
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				k := &v1.APIKey{
					ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.keys[i]},
					Spec:       v1.APIKeySpec{ApplicationName: f.apps[i%len(f.apps)], Description: "crash test"},
				}
				if err := env.Client.Create(context.Background(), k); err != nil {
					errs <- fmt.Errorf("creating APIKey %s: %w", k.Name, err)
				}
			}
		})
	}
	go func() {
		for i := range f.keys {
			next <- i
		}
		close(next)
		wg.Wait()
		close(errs)
	}()
	return func(t *testing.T) {
		t.Helper()
		select {
		case err, ok := <-errs:
			if ok {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("creating the APIKeys took longer than 2m")
		}
	}
}

// waitMinted waits until the recorder has seen at least n key Secrets written.
func (f *fixture) waitMinted(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	within(t, timeout, 5*time.Millisecond, fmt.Sprintf("%d key Secrets written", n), func() (bool, error) {
		return f.rec.written() >= n, nil
	})
}

// waitAllActive waits until every APIKey is Active (with a hash) at its current generation.
func (f *fixture) waitAllActive(t *testing.T, timeout time.Duration) {
	t.Helper()
	var pending []string
	deadline := time.Now().Add(timeout)
	for {
		var list v1.APIKeyList
		err := env.Client.List(context.Background(), &list, client.InNamespace(f.ns))
		pending = pending[:0]
		for _, k := range list.Items {
			if k.Status.State != v1.KeyActive || k.Status.Hash == "" || k.Status.ObservedGeneration != k.Generation {
				pending = append(pending, fmt.Sprintf("%s (state %q)", k.Name, k.Status.State))
			}
		}
		if err == nil && len(list.Items) == len(f.keys) && len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d APIKeys are not Active (error: %v): %s", timeout, len(pending), len(f.keys), err,
				strings.Join(pending[:min(len(pending), 10)], ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// endState is what check found.
type endState struct {
	keys, secrets, verified                   int
	orphans, duplicates, mismatched           int
	dataChanges, hashChanges, secretDeletions int
	replacedEvents, adoptEvents               int
}

// check proves the end state once every key is Active: each APIKey has exactly one Secret,
// labelled and owned by it, whose token matches status.hash; no Secret belongs to no APIKey;
// no Secret's key data and no key's hash ever changed, and no key Secret was deleted, during
// the whole run; no key was replaced; and the verifier at verifierURL accepts every key.
// Failures name keys and Secrets, never tokens.
func (f *fixture) check(t *testing.T, verifierURL string) endState {
	t.Helper()
	ctx := context.Background()
	var st endState
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var keys v1.APIKeyList
	if err := env.Client.List(ctx, &keys, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	byName := map[string]*v1.APIKey{}
	for i := range keys.Items {
		byName[keys.Items[i].Name] = &keys.Items[i]
	}
	st.keys = len(keys.Items)
	if st.keys != len(f.keys) {
		t.Errorf("%d APIKeys, want %d", st.keys, len(f.keys))
	}

	var secrets corev1.SecretList
	if err := env.Client.List(ctx, &secrets, client.InNamespace(f.ns), client.HasLabels{v1.LabelAPIKey}); err != nil {
		t.Fatal(err)
	}
	st.secrets = len(secrets.Items)
	tokens := map[string]string{} // APIKey name -> token; never printed
	perKey := map[string]int{}
	for _, s := range secrets.Items {
		owner := s.Labels[v1.LabelAPIKey]
		k, ok := byName[owner]
		if !ok {
			st.orphans++
			t.Errorf("orphaned Secret %s: labelled for APIKey %q, which does not exist", s.Name, owner)
			continue
		}
		perKey[owner]++
		if s.Name != k.Status.SecretName || s.Name != k.Name+"-key" {
			st.orphans++
			t.Errorf("Secret %s is labelled for APIKey %s, whose Secret is %q", s.Name, k.Name, k.Status.SecretName)
			continue
		}
		if refs := s.OwnerReferences; len(refs) != 1 || refs[0].UID != k.UID || refs[0].Kind != "APIKey" {
			t.Errorf("Secret %s is not owned by APIKey %s (owner references %v)", s.Name, k.Name, refs)
		}
		tokens[owner] = string(s.Data[v1.SecretKeyToken])
	}
	for _, k := range keys.Items {
		switch n := perKey[k.Name]; {
		case n == 0:
			t.Errorf("APIKey %s has no Secret", k.Name)
		case n > 1:
			st.duplicates += n - 1
			t.Errorf("APIKey %s has %d Secrets", k.Name, n)
		}
		if k.Status.State != v1.KeyActive || !readyTrue(k.Status.Conditions) {
			t.Errorf("APIKey %s is %q, Ready %v; want Active and Ready", k.Name, k.Status.State, readyTrue(k.Status.Conditions))
		}
		if !strings.HasPrefix(k.Status.Hash, "sha256:") || len(k.Status.PreviousKeys) != 0 {
			t.Errorf("APIKey %s: status.hash %q and %d previous keys; want one sha256 hash and no other key", k.Name, k.Status.Hash, len(k.Status.PreviousKeys))
		}
		token, ok := tokens[k.Name]
		if !ok {
			continue
		}
		parsed, err := format.Parse(token)
		if err != nil || !keyformat.Verify(token, k.Status.Hash) || parsed.KeyID != k.Status.KeyID {
			st.mismatched++
			t.Errorf("APIKey %s (key ID %s): the token in its Secret does not match status.hash and keyID", k.Name, k.Status.KeyID)
		}
	}

	r := f.rec.snapshot()
	st.dataChanges, st.hashChanges, st.secretDeletions = len(r.dataChanges), len(r.hashChanges), len(r.deletions)
	if len(r.dataChanges) > 0 {
		t.Errorf("the key data of %d Secrets changed after it was first written: %s", len(r.dataChanges), strings.Join(r.dataChanges, ", "))
	}
	if len(r.hashChanges) > 0 {
		t.Errorf("status.hash of %d APIKeys changed after it was first recorded: %s", len(r.hashChanges), strings.Join(r.hashChanges, ", "))
	}
	if len(r.deletions) > 0 {
		t.Errorf("%d key Secrets were deleted during the run: %s", len(r.deletions), strings.Join(r.deletions, ", "))
	}
	for owner, n := range r.secretsPerKey {
		if n > 1 {
			st.duplicates += n - 1
			t.Errorf("APIKey %s had %d different Secrets during the run", owner, n)
		}
	}

	var events eventsv1.EventList
	if err := env.Client.List(ctx, &events, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		switch {
		case e.Reason == v1.ReasonSecretReplaced:
			st.replacedEvents++
			t.Errorf("APIKey %s: event %s %q", e.Regarding.Name, e.Reason, e.Action)
		case e.Action == "Adopt":
			st.adoptEvents++
		}
	}

	st.verified = verifyAll(t, verifierURL, f.ns, tokens, byName)
	return st
}

func readyTrue(conds []metav1.Condition) bool {
	for _, c := range conds {
		if c.Type == v1.ConditionReady {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// verifyAll asks the verifier about every key, in the org the fixture connected its
// Applications to, and returns how many it accepted. The verifier's index follows the
// apiserver through informers, so a refusal is retried until a shared deadline.
func verifyAll(t *testing.T, verifierURL, org string, tokens map[string]string, keys map[string]*v1.APIKey) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(time.Minute)
	names := make([]string, 0, len(tokens))
	for name := range tokens {
		names = append(names, name)
	}
	slices.Sort(names)
	verified := 0
	for _, name := range names {
		var answer verifier.VerifyResponse
		var err error
		for {
			_, answer, err = verifier.Verify(c, verifierURL, verifier.VerifyRequest{Key: tokens[name], Org: org, Method: http.MethodGet})
			if (err == nil && answer.Valid) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		switch {
		case err != nil:
			t.Errorf("verifying APIKey %s (key ID %s): %v", name, keys[name].Status.KeyID, err)
		case !answer.Valid:
			t.Errorf("the verifier refuses APIKey %s (key ID %s): %s", name, keys[name].Status.KeyID, answer.Reason)
		case answer.KeyID != keys[name].Status.KeyID:
			t.Errorf("the verifier accepted APIKey %s as key ID %s, want %s", name, answer.KeyID, keys[name].Status.KeyID)
		default:
			verified++
		}
	}
	return verified
}

// recorder watches one namespace's key Secrets and APIKeys for the whole run and remembers
// what each first held, by UID, so any later change is seen even across a watch's relist.
// It keeps fingerprints and hashes of key material, never the material.
type recorder struct {
	mu            sync.Mutex
	secrets       map[types.UID]*seenSecret
	owners        map[string]map[types.UID]bool // APIKey name -> every Secret UID labelled for it
	hashes        map[types.UID]string          // APIKey UID -> status.hash first recorded
	hashed        map[string]bool               // APIKey names whose status.hash was seen
	dataChanges   []string
	hashChanges   []string
	deletions     []string
	writtenSecret int
}

type seenSecret struct{ name, fingerprint string }

// recorded is a copy of what the recorder found.
type recorded struct {
	dataChanges, hashChanges, deletions []string
	secretsPerKey                       map[string]int
}

func record(t *testing.T, ns string) *recorder {
	t.Helper()
	r := &recorder{secrets: map[types.UID]*seenSecret{}, owners: map[string]map[types.UID]bool{}, hashes: map[types.UID]string{}, hashed: map[string]bool{}}
	labelled, err := labels.NewRequirement(v1.LabelAPIKey, selection.Exists, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ctrlcache.New(env.Config, ctrlcache.Options{
		Scheme:            env.Scheme,
		DefaultNamespaces: map[string]ctrlcache.Config{ns: {}},
		ByObject:          map[client.Object]ctrlcache.ByObject{&corev1.Secret{}: {Label: labels.NewSelector().Add(*labelled)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	secrets, err := c.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    r.secret,
		UpdateFunc: func(_, obj any) { r.secret(obj) },
		DeleteFunc: r.secretDeleted,
	}); err != nil {
		t.Fatal(err)
	}
	keys, err := c.GetInformer(ctx, &v1.APIKey{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    r.key,
		UpdateFunc: func(_, obj any) { r.key(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	go func() { defer close(done); _ = c.Start(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, time.Minute)
	defer syncCancel()
	if !c.WaitForCacheSync(syncCtx) {
		t.Fatal("the recorder's watches did not sync")
	}
	return r
}

// fingerprint is a digest of a Secret's key material, "" when it holds none.
func fingerprint(s *corev1.Secret) string {
	h := sha256.New()
	empty := true
	for _, d := range []string{v1.SecretKeyToken, v1.SecretKeyAccessKey, v1.SecretKeySecretKey, v1.SecretKeyAuthorization} {
		empty = empty && len(s.Data[d]) == 0
		h.Write(s.Data[d])
		h.Write([]byte{0})
	}
	if empty {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (r *recorder) secret(obj any) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	fp := fingerprint(s)
	owner := s.Labels[v1.LabelAPIKey]
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.owners[owner] == nil {
		r.owners[owner] = map[types.UID]bool{}
	}
	r.owners[owner][s.UID] = true
	seen := r.secrets[s.UID]
	switch {
	case seen == nil:
		r.secrets[s.UID] = &seenSecret{name: s.Name, fingerprint: fp}
		if fp != "" {
			r.writtenSecret++
		}
	case seen.fingerprint == "" && fp != "":
		seen.fingerprint = fp
		r.writtenSecret++
	case fp != seen.fingerprint:
		r.dataChanges = append(r.dataChanges, s.Name)
		seen.fingerprint = fp
	}
}

func (r *recorder) secretDeleted(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if s, ok := obj.(*corev1.Secret); ok {
		r.mu.Lock()
		r.deletions = append(r.deletions, s.Name)
		r.mu.Unlock()
	}
}

func (r *recorder) key(obj any) {
	k, ok := obj.(*v1.APIKey)
	if !ok || k.Status.Hash == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hashed[k.Name] = true
	switch first := r.hashes[k.UID]; {
	case first == "":
		r.hashes[k.UID] = k.Status.Hash
	case first != k.Status.Hash:
		r.hashChanges = append(r.hashChanges, k.Name)
		r.hashes[k.UID] = k.Status.Hash
	}
}

// written is how many key Secrets holding a key the recorder has seen.
func (r *recorder) written() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writtenSecret
}

// awaitingStatus is how many APIKeys have a key Secret but, as far as the recorder has seen
// yet, no hash in status: a kill now lands between the two writes of minting for those.
func (r *recorder) awaitingStatus() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for owner := range r.owners {
		if !r.hashed[owner] {
			n++
		}
	}
	return n
}

func (r *recorder) snapshot() recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := recorded{
		dataChanges:   slices.Clone(r.dataChanges),
		hashChanges:   slices.Clone(r.hashChanges),
		deletions:     slices.Clone(r.deletions),
		secretsPerKey: map[string]int{},
	}
	for owner, uids := range r.owners {
		out.secretsPerKey[owner] = len(uids)
	}
	return out
}

// leader returns which of ops reports leading (leader_election_master_status 1) on its
// metrics endpoint; a stopped or dead process does not answer and does not lead.
func leader(ops ...*testenv.Operator) *testenv.Operator {
	for _, op := range ops {
		if op.Exited() {
			continue
		}
		if m, err := scrape(op); err == nil && sum(m, "leader_election_master_status", `name="`+leaseName+`"`) == 1 {
			return op
		}
	}
	return nil
}

// scrape reads an operator's metrics endpoint.
func scrape(op *testenv.Operator) (string, error) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(op.MetricsURL + "/metrics")
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// sum adds up the samples of metric whose labels contain every one of match.
func sum(metrics, metric string, match ...string) float64 {
	total := 0.0
	for _, line := range strings.Split(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, metric+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || slices.ContainsFunc(match, func(m string) bool { return !strings.Contains(labels, m) }) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			total += v
		}
	}
	return total
}

// waitLeader waits until one of ops leads.
func waitLeader(t *testing.T, timeout time.Duration, ops ...*testenv.Operator) *testenv.Operator {
	t.Helper()
	var found *testenv.Operator
	within(t, timeout, 50*time.Millisecond, "a leader", func() (bool, error) {
		found = leader(ops...)
		return found != nil, nil
	})
	return found
}

// leaseHolder is the holderIdentity of the leader-election Lease in ns, "" when none.
func leaseHolder(ns string) (string, error) {
	var lease coordinationv1.Lease
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: leaseName}, &lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// waitNewHolder waits until the Lease in ns is held by someone other than old, and returns it.
func waitNewHolder(t *testing.T, ns, old string, timeout time.Duration) string {
	t.Helper()
	var holder string
	within(t, timeout, 20*time.Millisecond, "another replica to take the Lease", func() (bool, error) {
		var err error
		holder, err = leaseHolder(ns)
		return err == nil && holder != "" && holder != old, err
	})
	return holder
}

// keyMaterial matches anything that could be a key or a part of one (long base62 runs).
var keyMaterial = regexp.MustCompile(`[0-9A-Za-z_]{40,}`)

// redact removes key material from text before it is printed.
func redact(text string) string { return keyMaterial.ReplaceAllString(text, "<redacted>") }

func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
