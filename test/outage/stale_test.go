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

package outage

import (
	"context"
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// TestAVerifierCutOffLongerThanMaxStalenessAnswersStaleThenRecoversByItself: with its watches
// cut for longer than --max-staleness the verifier stops trusting what it knows and answers
// 503 stale; when the apiserver returns it answers again, and follows revocations again,
// without anyone restarting it. Before the cut, an idle but connected verifier stays fresh.
func TestAVerifierCutOffLongerThanMaxStalenessAnswersStaleThenRecoversByItself(t *testing.T) {
	const maxStaleness = 4 * time.Second
	// staysStaleFor is how long the test keeps the apiserver away once the verifier is stale.
	const staysStaleFor = 2 * time.Second
	op := startOperator(t, "stale", "--max-staleness="+maxStaleness.String())
	o := newOrg(t, "stale")
	key := newKey(o.owner, "prod")
	mustCreate(t, key)
	key = waitKey(t, key, "Active", inState(v1.KeyActive))
	tok := tokenOf(t, key)
	waitAnswer(t, op, o.grant, tok, settleTimeout, "the verifier to accept the new key", http.StatusOK, "")

	// Connected and idle (no informer event) for twice --max-staleness: never stale.
	idleUntil := time.Now().Add(2 * maxStaleness)
	idleChecks := 0
	for time.Now().Before(idleUntil) {
		mustAnswer(t, op, o.grant, tok, "an idle verifier connected to the apiserver", http.StatusOK)
		if s, err := stalenessMetric(op); err != nil || s > maxStaleness.Seconds() {
			t.Fatalf("an idle verifier connected to the apiserver reports staleness %.1fs (max %s), %v", s, maxStaleness, err)
		}
		idleChecks++
		time.Sleep(200 * time.Millisecond)
	}

	pid := op.Pid()
	restore := cutAPIServer(t)
	cut := time.Now()
	// Below --max-staleness it answers from what it knows.
	mustAnswer(t, op, o.grant, tok, "just after the apiserver stopped", http.StatusOK)

	var stale answer
	eventually(t, maxStaleness+30*time.Second, "the verifier to answer 503 stale", func() (bool, string) {
		a, err := authorize(op.VerifierURL, o.grant, tok)
		if err != nil {
			return false, err.Error()
		}
		stale = a
		return a.code == http.StatusServiceUnavailable, a.String()
	})
	staleAfter := time.Since(cut)
	if staleAfter < maxStaleness/2 {
		t.Errorf("the verifier went stale %s after the cut, well before --max-staleness (%s)", staleAfter, maxStaleness)
	}
	// The contract: 503, a short JSON body with the machine-readable reason, X-Clearance-Reason.
	if want := `{"valid":false,"reason":"stale"}`; stale.reason != verifier.ReasonStale || stale.body != want || stale.ctype != "application/json" {
		t.Errorf("stale answer: reason header %q, content type %q, body %s; want %q, application/json, %s",
			stale.reason, stale.ctype, stale.body, verifier.ReasonStale, want)
	}
	code, resp, err := verifier.Verify(httpClient, op.VerifierURL, verifier.VerifyRequest{Key: string(tok), Org: o.grant, Method: http.MethodGet})
	if err != nil || code != http.StatusServiceUnavailable || resp.Valid || resp.Reason != verifier.ReasonStale {
		t.Errorf("keys:verify while stale: %d %+v, %v; want 503 with reason stale", code, resp, err)
	}
	if s, err := stalenessMetric(op); err != nil || s <= maxStaleness.Seconds() {
		t.Errorf("clearance_verifier_staleness_seconds while stale: %.1f, %v; want more than %s", s, err, maxStaleness)
	}

	// It stays stale as long as the apiserver is away: no answer from an old view.
	staleChecks := 0
	for staleUntil := time.Now().Add(staysStaleFor); time.Now().Before(staleUntil); {
		mustAnswer(t, op, o.grant, tok, "while the apiserver is still away", http.StatusServiceUnavailable, verifier.ReasonStale)
		staleChecks++
		time.Sleep(200 * time.Millisecond)
	}

	back := restore()
	outage := back.Sub(cut)
	recovered := waitAnswer(t, op, o.grant, tok, recoveryTimeout, "the verifier to accept the key again after the apiserver returned", http.StatusOK, "")
	if op.Exited() || op.Pid() != pid {
		t.Fatalf("the operator was restarted or exited during the outage (pid %d, was %d, exited %v)", op.Pid(), pid, op.Exited())
	}

	// Fresh again means following the apiserver again: a disable made now is refused.
	disabled := time.Now()
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"enabled":false}}`))
	if err := env.Client.Patch(context.Background(), key, patch); err != nil {
		t.Fatal(err)
	}
	// A verifier that answers again must see revocations again (it once trusted a probe while
	// its informers were still in their reconnect backoff, blind for tens of seconds).
	waitAnswer(t, op, o.grant, tok, revocationAfterRecovery, "a key disabled after the recovery to be refused", http.StatusUnauthorized, verifier.ReasonKeyDisabled)
	revoked := time.Since(disabled)
	noKeyInLog(t, op, tok)

	t.Logf("max-staleness %s; idle and connected: %d checks fresh; outage %.1fs: stale %.1fs after the cut, %d checks stayed 503 stale; "+
		"accepted again %d ms after the apiserver returned; a disable after that refused in %d ms",
		maxStaleness, idleChecks, outage.Seconds(), staleAfter.Seconds(), staleChecks, recovered.Milliseconds(), revoked.Milliseconds())
}
