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
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// TestThirtySecondsWithoutTheAPIServerWhileKeysAreMintedConverges: kube-apiserver dies for 30 s
// while a client is applying APIKeys. The operator and its verifier keep running; the verifier
// keeps accepting the keys it knew (max-staleness is longer than the outage) and its
// staleness metric says how old its view is; once the apiserver is back every key is minted,
// Active and accepted, without restarting anything.
func TestThirtySecondsWithoutTheAPIServerWhileKeysAreMintedConverges(t *testing.T) {
	const (
		maxStaleness = 3 * time.Minute
		outageFor    = 30 * time.Second
		before       = 5  // keys minted before the outage
		burst        = 10 // keys applied just before the outage
		total        = 25 // keys in the end
		convergeIn   = 3 * time.Minute
	)
	ctx := context.Background()
	op := startOperator(t, "outage", "--max-staleness="+maxStaleness.String())
	o := newOrg(t, "outage")

	known := make([]token, 0, before)
	for i := range before {
		key := newKey(o.owner, fmt.Sprintf("before-%d", i))
		mustCreate(t, key)
		key = waitKey(t, key, "Active", inState(v1.KeyActive))
		known = append(known, tokenOf(t, key))
	}
	for _, k := range known {
		waitAnswer(t, op, o.grant, k, settleTimeout, "the verifier to accept a key minted before the outage", http.StatusOK, "")
	}

	// A burst of keys is applied and the apiserver dies right after, while the operator mints
	// them; a client then applies the rest one after another across the outage, retrying what
	// fails while the apiserver is away, as a GitOps controller would.
	for i := before; i < before+burst; i++ {
		mustCreate(t, newKey(o.owner, fmt.Sprintf("burst-%d", i)))
	}
	inFlight := unmintedKeys(t, o.owner)
	pid := op.Pid()
	restore := cutAPIServer(t)
	cut := time.Now()

	var created, failedCreates atomic.Int32
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		giveUp := time.Now().Add(convergeIn + outageFor)
		for i := before + burst; i < total; i++ {
			key := newKey(o.owner, fmt.Sprintf("during-%d", i))
			for {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := env.Client.Create(cctx, key.DeepCopy())
				cancel()
				if err == nil || apierrors.IsAlreadyExists(err) { // a create cut short may have landed
					created.Add(1)
					break
				}
				failedCreates.Add(1)
				if time.Now().After(giveUp) {
					return
				}
				time.Sleep(250 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	answered, peak := 0, 0.0
	for time.Since(cut) < outageFor {
		if op.Exited() {
			t.Fatalf("the operator exited %s into the outage", time.Since(cut).Round(time.Second))
		}
		for _, k := range known {
			mustAnswer(t, op, o.grant, k, "during the outage, a key the verifier knew", http.StatusOK)
			answered++
		}
		// Nothing reaches the verifier after the cut: its view is about this old (events
		// received just before the cut may be handled a moment after).
		atLeast := time.Since(cut) - 2*time.Second
		s, err := stalenessMetric(op)
		if err != nil {
			t.Fatalf("reading the staleness metric during the outage: %v", err)
		}
		if s < atLeast.Seconds() {
			t.Fatalf("clearance_verifier_staleness_seconds is %.1fs %s into the outage", s, atLeast.Round(100*time.Millisecond))
		}
		peak = max(peak, s)
		time.Sleep(500 * time.Millisecond)
	}
	back := restore()
	serving := back.Sub(cut)

	// Fresh again: the metric falls back once every informer watches again.
	freshAfter := eventually(t, recoveryTimeout, "the staleness metric to fall back after the outage", func() (bool, string) {
		s, err := stalenessMetric(op)
		return err == nil && s < 5, fmt.Sprintf("%.1fs, %v", s, err)
	})

	// Converged: every key applied, minted, Active, delivered, and accepted by the verifier.
	select {
	case <-applied:
	case <-time.After(convergeIn):
		t.Fatalf("the client applied %d of %d keys in %s", created.Load(), total-before-burst, convergeIn)
	}
	if n := created.Load(); n != total-before-burst {
		t.Fatalf("the client applied %d of %d keys", n, total-before-burst)
	}
	var all []token
	converged := eventually(t, convergeIn, "every key to be Active and accepted", func() (bool, string) {
		var list v1.APIKeyList
		if err := env.Client.List(ctx, &list, client.InNamespace(o.owner)); err != nil {
			return false, err.Error()
		}
		if len(list.Items) != total {
			return false, fmt.Sprintf("%d APIKeys", len(list.Items))
		}
		all = all[:0]
		for i := range list.Items {
			k := &list.Items[i]
			if k.Status.State != v1.KeyActive || k.Status.ObservedGeneration != k.Generation {
				return false, fmt.Sprintf("%s is %q", k.Name, k.Status.State)
			}
			tok, err := secretToken(k)
			if err != nil || !keyformat.Verify(string(tok), k.Status.Hash) {
				return false, fmt.Sprintf("the Secret of %s does not hold its key yet (%v)", k.Name, err)
			}
			all = append(all, tok)
		}
		for _, tok := range all {
			a, err := authorize(op.VerifierURL, o.grant, tok)
			if err != nil || a.code != http.StatusOK {
				return false, fmt.Sprintf("the verifier answered %s, %v", a, err)
			}
		}
		return true, ""
	})
	converged = time.Since(back)
	if op.Exited() || op.Pid() != pid {
		t.Fatalf("the operator was restarted or exited (pid %d, was %d, exited %v)", op.Pid(), pid, op.Exited())
	}
	noKeyInLog(t, op, all...)

	t.Logf("apiserver stopped %.1fs, serving again after %.1fs; %d of a burst of %d keys not yet minted at the cut, %d creates refused during the outage; "+
		"verifier: %d/%d answers 200 from its last view, staleness metric peaked at %.1fs, fresh %d ms after the return; "+
		"all %d keys Active and accepted %d ms after the return",
		outageFor.Seconds(), serving.Seconds(), inFlight, burst, failedCreates.Load(), answered, answered, peak,
		freshAfter.Milliseconds(), total, converged.Milliseconds())
}

// unmintedKeys counts the APIKeys of a namespace the operator has not minted yet.
func unmintedKeys(t *testing.T, ns string) int {
	t.Helper()
	var list v1.APIKeyList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range list.Items {
		if k.Status.Hash == "" {
			n++
		}
	}
	return n
}
