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
	"syscall"
	"testing"
	"time"

	"github.com/clearance-dev/clearance/internal/testenv"
)

// failoverLimit bounds how long after the leader dies a follower holds the Lease: the lease
// runs out at most leaseDuration after the follower last saw it renewed, and the follower
// notices at its next try, which client-go jitters up to 2.2 retry periods apart; a busy
// machine adds some seconds.
const failoverLimit = leaseDuration + retryPeriod*22/10 + 5*time.Second

// replicas starts two operators electing a leader through a Lease in a namespace of the test's
// own, and returns the leader and the follower.
func replicas(t *testing.T) (leaseNS string, lead, follow *testenv.Operator) {
	t.Helper()
	leaseNS = env.Namespace(t, "crash-lease")
	a := startOperator(t, "replica-a", leaderArgs(leaseNS)...)
	b := startOperator(t, "replica-b", leaderArgs(leaseNS)...)
	lead = waitLeader(t, time.Minute, a, b)
	follow = b
	if lead == b {
		follow = a
	}
	return leaseNS, lead, follow
}

// TestLeaderKilledMidMintIsReplacedWithinTheLease runs two replicas, kills the leader with -9
// a third of the way through minting 200 keys, and measures how long the follower takes to
// hold the Lease: no longer than the lease duration and the follower's next try, plus slack for
// a busy machine (failoverLimit). The new leader finishes every key, and nothing the old one
// wrote is replaced.
func TestLeaderKilledMidMintIsReplacedWithinTheLease(t *testing.T) {
	const keys = 200
	start := time.Now()
	leaseNS, lead, follow := replicas(t)
	f := newFixture(t, "failover", 4, keys)
	f.createApplications(t)
	applied := f.applyKeys()

	f.waitMinted(t, keys/3, 2*time.Minute)
	holder, err := leaseHolder(leaseNS)
	if err != nil {
		t.Fatal(err)
	}
	written := f.rec.written()
	killed := time.Now()
	lead.Kill()
	if written >= keys {
		t.Fatalf("the leader finished minting before it could be killed: the test proves nothing")
	}
	t.Logf("killed the leader %s (lease holder %s) with -9 after %d of %d key Secrets were written", lead.Name, holder, written, keys)
	newHolder := waitNewHolder(t, leaseNS, holder, time.Minute)
	failover := time.Since(killed)
	t.Logf("lease holder %s after %s", newHolder, failover)
	if l := waitLeader(t, 30*time.Second, follow); l != follow {
		t.Fatalf("%s holds the Lease but does not report leading", follow.Name)
	}
	if failover > failoverLimit {
		t.Errorf("the follower took the Lease %s after the leader died; want at most %s", failover, failoverLimit)
	}
	within(t, time.Minute, 10*time.Millisecond, "the new leader to write a key Secret", func() (bool, error) {
		return f.rec.written() > written || written == keys, nil
	})
	firstWrite := time.Since(killed)

	applied(t)
	f.waitAllActive(t, 3*time.Minute)
	st := f.check(t, follow.VerifierURL)
	figures(t, "leader_failover",
		"keys", st.keys, "written_before_kill", written, "failover_ms", failover.Milliseconds(),
		"first_write_after_kill_ms", firstWrite.Milliseconds(), "lease_ms", leaseDuration.Milliseconds(),
		"verified", st.verified, "adopted_after_failover", st.adoptEvents, "secret_data_changes", st.dataChanges,
		"key_hash_changes", st.hashChanges, "secret_deletions", st.secretDeletions, "duplicate_secrets", st.duplicates,
		"orphaned_secrets", st.orphans, "replaced_events", st.replacedEvents, "duration_ms", time.Since(start).Milliseconds())
}

// TestPausedLeaderThatWakesUpCannotReplaceOrDuplicateKeys stops the leader (SIGSTOP) in the
// middle of minting for longer than its lease, lets the follower take over and mint, then
// continues the old leader while the new one is still minting. Leader election does not
// fence: for a moment both act, the old one from a stale cache, with writes it started before
// the pause. Every write being conditional, no key is minted twice, none is replaced, no
// Secret is duplicated, every key verifies, and the old leader steps down and exits.
func TestPausedLeaderThatWakesUpCannotReplaceOrDuplicateKeys(t *testing.T) {
	const keys = 200
	start := time.Now()
	leaseNS, lead, follow := replicas(t)
	f := newFixture(t, "fencing", 4, keys)
	f.createApplications(t)
	applied := f.applyKeys()

	f.waitMinted(t, keys/3, 2*time.Minute)
	holder, err := leaseHolder(leaseNS)
	if err != nil {
		t.Fatal(err)
	}
	before, err := scrape(lead)
	if err != nil {
		t.Fatal(err)
	}
	if err := lead.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	writtenAtStop := f.rec.written()
	if writtenAtStop >= keys {
		t.Fatalf("the leader finished minting before it could be stopped: the test proves nothing")
	}
	t.Logf("stopped the leader %s after %d of %d key Secrets were written", lead.Name, writtenAtStop, keys)
	waitNewHolder(t, leaseNS, holder, time.Minute)
	takeover := time.Since(stopped)
	if l := waitLeader(t, 30*time.Second, follow); l != follow {
		t.Fatalf("%s holds the Lease but does not report leading", follow.Name)
	}
	// Continue the old leader once the new one has minted some keys, while it still mints others.
	writtenAtTakeover := f.rec.written()
	within(t, time.Minute, 5*time.Millisecond, "the new leader to mint", func() (bool, error) {
		return f.rec.written() >= min(keys, writtenAtTakeover+keys/10), nil
	})
	if pause := leaseDuration - time.Since(stopped); pause > 0 {
		time.Sleep(pause) // the old leader stays stopped past its whole lease
	}
	writtenAtCont := f.rec.written()
	if err := lead.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	continued := time.Now()
	paused := continued.Sub(stopped)
	t.Logf("continued %s after %s: %d of %d key Secrets written", lead.Name, paused, writtenAtCont, keys)
	// Until it exits, read what the old leader did after it woke: reconciles it ran and the
	// writes the apiserver refused with 409 (a create of an existing Secret, or a stale
	// resourceVersion), which is the fencing at work. The last reading before it exits is a
	// lower bound.
	after := before
	within(t, time.Minute, 20*time.Millisecond, "the old leader to step down and exit", func() (bool, error) {
		if m, err := scrape(lead); err == nil {
			after = m
		}
		return lead.Exited(), nil
	})
	stepDown := time.Since(continued)
	reconciles := sum(after, "controller_runtime_reconcile_total", `controller="apikey"`) - sum(before, "controller_runtime_reconcile_total", `controller="apikey"`)
	refused := sum(after, "rest_client_requests_total", `code="409"`) - sum(before, "rest_client_requests_total", `code="409"`)

	applied(t)
	f.waitAllActive(t, 3*time.Minute)
	st := f.check(t, follow.VerifierURL)
	figures(t, "paused_leader",
		"keys", st.keys, "written_at_stop", writtenAtStop, "written_at_cont", writtenAtCont,
		"paused_ms", paused.Milliseconds(), "takeover_ms", takeover.Milliseconds(), "old_leader_exit_ms", stepDown.Milliseconds(),
		"old_leader_reconciles_after_wake", reconciles, "old_leader_409_after_wake", refused,
		"verified", st.verified, "adopted", st.adoptEvents, "secret_data_changes", st.dataChanges,
		"key_hash_changes", st.hashChanges, "secret_deletions", st.secretDeletions, "duplicate_secrets", st.duplicates,
		"orphaned_secrets", st.orphans, "replaced_events", st.replacedEvents, "duration_ms", time.Since(start).Milliseconds())
}
