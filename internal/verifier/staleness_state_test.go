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
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestStalenessAnswersNotReadyThenStaleByItself: the staleness state alone, without a Verifier:
// not_ready until every registration has synced (then never again), stale once contact is older
// than the bound (the bound itself still answers), and contact makes it fresh again.
func TestStalenessAnswersNotReadyThenStaleByItself(t *testing.T) {
	clk := clocktesting.NewFakeClock(epoch)
	s := &staleness{clock: clk, maxStaleness: 30 * time.Second}
	s.recordContact()
	reg := &fakeRegistration{} // verifier_test.go
	s.regs = append(s.regs, reg)
	if got := s.unavailable(clk.Now()); got != rNotReady {
		t.Fatalf("before the list: %s, want not_ready", got)
	}
	clk.Step(time.Minute)
	if got := s.unavailable(clk.Now()); got != rNotReady {
		t.Fatalf("before the list, a minute without contact: %s, want not_ready (it comes first)", got)
	}
	reg.synced = true
	s.recordContact()
	if got := s.unavailable(clk.Now()); got != rOK {
		t.Fatalf("after the list: %s", got)
	}
	reg.synced = false // a registration never un-syncs; the verifier does not ask again
	clk.Step(30 * time.Second)
	if got := s.unavailable(clk.Now()); got != rOK {
		t.Fatalf("at the bound: %s, want ok", got)
	}
	clk.Step(time.Nanosecond)
	if got := s.unavailable(clk.Now()); got != rStale {
		t.Fatalf("past the bound: %s, want stale", got)
	}
	s.heardFrom(&watched{})
	if got := s.unavailable(clk.Now()); got != rOK {
		t.Fatalf("after an event: %s", got)
	}
}
