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
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// TestOperatorKilledMidMintLeavesEveryKeyActiveWithItsFirstKey applies 200 APIKeys and kills
// the operator with -9 five times while it mints them, each time when a random number of keys
// has been written. Every other kill is aimed at the window a restart must get right: the
// operator is frozen as a Secret appears and killed if, by the apiserver, that key has its
// Secret but no status yet (the restart must adopt it, not mint another key); the others land
// a random few milliseconds later. After the last restart every APIKey is Active with exactly
// one valid key that matches its Secret, no key was replaced once its Secret was written, no
// Secret is orphaned or duplicated, and the verifier accepts every key.
func TestOperatorKilledMidMintLeavesEveryKeyActiveWithItsFirstKey(t *testing.T) {
	const keys, kills = 200, 5
	start := time.Now()
	rng := seededRand(t)
	op := startOperator(t, "crash")
	f := newFixture(t, "crash", 4, keys)
	f.createApplications(t)
	applied := f.applyKeys()

	// Each kill comes when the (restarted) operator has written a random number of further key
	// Secrets, spread so the kills cover the whole run.
	midMint, inWindow, written := 0, 0, 0
	var restarts time.Duration
	for i := range kills {
		gap := max(1, (keys-written)/(kills-i+1))
		f.waitMinted(t, min(keys, written+1+rng.IntN(gap)), 2*time.Minute)
		var awaiting int
		if i%2 == 0 {
			awaiting = f.freezeBetweenSecretAndStatus(t, op)
		} else {
			time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
			awaiting = f.freeze(t, op)
		}
		written = f.rec.written()
		kill9(t, op)
		if written < keys {
			midMint++
		}
		if awaiting > 0 {
			inWindow++
		}
		t.Logf("kill %d: -9 after %d of %d key Secrets were written, %d of them with no status yet", i+1, written, keys, awaiting)
		began := time.Now()
		if err := op.Start(); err != nil {
			t.Fatal(redact(err.Error()))
		}
		restarts += time.Since(began)
	}
	applied(t)
	if midMint == 0 {
		t.Errorf("no kill landed while keys were still being minted")
	}

	f.waitAllActive(t, 3*time.Minute)
	st := f.check(t, op.VerifierURL)
	figures(t, "crash_mid_mint",
		"keys", st.keys, "kills", kills, "kills_mid_mint", midMint, "kills_secret_before_status", inWindow, "secrets", st.secrets, "verified", st.verified,
		"adopted_after_crash", st.adoptEvents, "secret_data_changes", st.dataChanges, "key_hash_changes", st.hashChanges,
		"secret_deletions", st.secretDeletions, "duplicate_secrets", st.duplicates, "orphaned_secrets", st.orphans,
		"replaced_events", st.replacedEvents, "restart_ms_avg", (restarts / kills).Milliseconds(),
		"duration_ms", time.Since(start).Milliseconds())
}

// freeze stops the operator (SIGSTOP), lets requests already sent land, and returns how many
// APIKeys have a key Secret but no hash in status, as the apiserver has them.
func (f *fixture) freeze(t *testing.T, op *testenv.Operator) int {
	t.Helper()
	if err := op.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	ctx := context.Background()
	var keys v1.APIKeyList
	var secrets corev1.SecretList
	if err := env.Client.List(ctx, &keys, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.List(ctx, &secrets, client.InNamespace(f.ns), client.HasLabels{v1.LabelAPIKey}); err != nil {
		t.Fatal(err)
	}
	hashed := map[string]bool{}
	for _, k := range keys.Items {
		hashed[k.Name] = k.Status.Hash != ""
	}
	n := 0
	for _, s := range secrets.Items {
		if !hashed[s.Labels[v1.LabelAPIKey]] {
			n++
		}
	}
	return n
}

// freezeBetweenSecretAndStatus freezes the operator as a key Secret appears, until it catches
// one whose status is not written yet (a few tries, each on the next Secret), and returns how
// many keys are in that state. It leaves the operator stopped.
func (f *fixture) freezeBetweenSecretAndStatus(t *testing.T, op *testenv.Operator) int {
	t.Helper()
	for range 20 {
		if n := f.freeze(t, op); n > 0 {
			return n
		}
		seen := f.rec.written()
		if err := op.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		if seen == len(f.keys) {
			break
		}
		f.waitMinted(t, seen+1, time.Minute)
	}
	return f.freeze(t, op)
}

// kill9 sends SIGKILL to the (possibly stopped) operator and reaps it; the harness's Kill would
// continue a stopped process first and let it run for a moment.
func kill9(t *testing.T, op *testenv.Operator) {
	t.Helper()
	if err := syscall.Kill(op.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	op.Kill()
}
