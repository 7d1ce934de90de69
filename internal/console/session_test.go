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

package console

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestASessionEndsAfterItsIdleTimeOrItsMaximumAge(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	st := newSessionStore(clock, 30*time.Minute, 8*time.Hour, 100, 10)
	s := &session{user: "alice"}
	st.add(s)
	if len(s.id) < 40 || len(s.csrf) < 40 || s.id == s.csrf {
		t.Fatalf("session ID %q and CSRF token %q are not two random 256-bit values", s.id, s.csrf)
	}
	// Used every 29 minutes, it lives until its maximum age.
	for elapsed := time.Duration(0); elapsed+29*time.Minute < 8*time.Hour; elapsed += 29 * time.Minute {
		clock.Step(29 * time.Minute)
		if st.get(s.id) == nil {
			t.Fatalf("a session used every 29 minutes ended after %s", elapsed+29*time.Minute)
		}
	}
	clock.SetTime(s.created.Add(8 * time.Hour))
	if st.get(s.id) != nil {
		t.Fatal("a session outlived its maximum age of 8h")
	}

	idle := &session{user: "bob"}
	st.add(idle)
	clock.Step(30 * time.Minute)
	if st.get(idle.id) != nil {
		t.Fatal("a session outlived 30 minutes without a request")
	}
	if st.get("") != nil || st.get("made-up") != nil {
		t.Fatal("an unknown session ID opened a session")
	}
}

func TestAFullSessionStoreDropsEndedSessionsThenTheLeastRecentlyUsed(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	st := newSessionStore(clock, 30*time.Minute, 8*time.Hour, 3, 10)
	a, b, c := &session{}, &session{}, &session{}
	st.add(a)
	clock.Step(time.Minute)
	st.add(b)
	clock.Step(time.Minute)
	st.add(c)
	st.get(a.id) // a is now the most recently used
	d := &session{}
	st.add(d)
	if st.len() != 3 || st.get(b.id) != nil || st.get(a.id) == nil || st.get(d.id) == nil {
		t.Errorf("a full store dropped the wrong session (%d left)", st.len())
	}
}

func TestCSRFTokensMustMatchTheSessionsExactly(t *testing.T) {
	s := &session{csrf: "abc"}
	for token, want := range map[string]bool{"abc": true, "": false, "ab": false, "abcd": false, "ABC": false} {
		if got := s.validCSRF(token); got != want {
			t.Errorf("validCSRF(%q) = %t, want %t", token, got, want)
		}
	}
}

// TestSigningInOverAndOverNeverEndsAnotherIdentitysSession: anyone holding any valid token can
// sign in, as often as they like. With the store one short of full of 49 people's sessions, one
// identity signs in 10,000 times: nobody else's session ends, and it keeps only its newest
// sessions, never more than its own bound.
func TestSigningInOverAndOverNeverEndsAnotherIdentitysSession(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	const limit, perIdentity = 50, 5
	st := newSessionStore(clock, 30*time.Minute, 8*time.Hour, limit, perIdentity)
	var people []*session
	for i := range limit - 1 {
		s := &session{user: fmt.Sprintf("person-%d", i)}
		st.add(s)
		people = append(people, s)
	}
	var mine []*session
	for i := range 10000 {
		clock.Step(100 * time.Millisecond)
		s := &session{user: "attacker"}
		st.add(s)
		mine = append(mine, s)
		if st.len() > limit {
			t.Fatalf("sign-in %d: %d sessions, above the limit of %d", i, st.len(), limit)
		}
		if i%97 != 0 && i != 9999 {
			continue
		}
		for _, p := range people {
			if st.get(p.id) == nil {
				t.Fatalf("sign-in %d by one identity ended %s's session", i, p.user)
			}
		}
	}
	var live int
	for i, s := range mine {
		if st.get(s.id) != nil {
			live++
			if i < len(mine)-perIdentity {
				t.Errorf("the attacker's session %d of %d lives on past newer ones", i, len(mine))
			}
		}
	}
	if live < 1 || live > perIdentity {
		t.Errorf("the attacker keeps %d live sessions, want 1 to %d", live, perIdentity)
	}
}

// TestAFullStoreEndsOnlyTheSessionsOfWhoeverHoldsTheMost: a random run of sign-ins, page views
// and time passing among eight identities, with a small store. After every sign-in: no identity
// holds more than its bound, the store no more than its limit, and every session that ended
// without its time being up belonged to the signer or to an identity holding more sessions than
// the signer did.
func TestAFullStoreEndsOnlyTheSessionsOfWhoeverHoldsTheMost(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	const limit, perIdentity, idle = 12, 4, 30 * time.Minute
	st := newSessionStore(clock, idle, 8*time.Hour, limit, perIdentity)
	rng := rand.New(rand.NewPCG(5, 25))
	var all []*session
	timeUp := func(s *session, now time.Time) bool {
		return now.Sub(s.lastSeen) >= idle || now.Sub(s.created) >= 8*time.Hour
	}
	live := func() (map[*session]bool, map[string]int) {
		set, count := map[*session]bool{}, map[string]int{}
		st.mu.Lock()
		defer st.mu.Unlock()
		for _, s := range st.sessions {
			if !timeUp(s, clock.Now()) {
				set[s] = true
				count[s.user]++
			}
		}
		return set, count
	}
	var evictions, crossIdentity int
	for step := range 20000 {
		switch r := rng.IntN(10); {
		case r < 5:
			before, count := live()
			s := &session{user: fmt.Sprintf("id-%d", rng.IntN(8))}
			st.add(s)
			all = append(all, s)
			after, countAfter := live()
			if len(st.sessions) > limit {
				t.Fatalf("step %d: %d sessions, above the limit of %d", step, len(st.sessions), limit)
			}
			for u, n := range countAfter {
				if n > perIdentity {
					t.Fatalf("step %d: %s holds %d sessions, above its bound of %d", step, u, n, perIdentity)
				}
			}
			for gone := range before {
				if after[gone] {
					continue
				}
				evictions++
				if gone.user == s.user {
					continue
				}
				crossIdentity++
				if count[gone.user] <= count[s.user] {
					t.Fatalf("step %d: %s (holding %d) signing in ended a session of %s (holding %d)",
						step, s.user, count[s.user], gone.user, count[gone.user])
				}
			}
		case r < 9 && len(all) > 0:
			st.get(all[rng.IntN(len(all))].id)
		default:
			clock.Step(time.Duration(rng.IntN(int(10 * time.Minute))))
		}
	}
	t.Logf("%d sessions ended to make room, %d of them another identity's", evictions, crossIdentity)
	if crossIdentity == 0 {
		t.Error("the run never filled the store: it tests nothing")
	}
}

func TestTheConsoleKeepsNoCredentialsOfItsOwn(t *testing.T) {
	// (The base config is what every session's config is copied from.)
	base := BaseConfig(adminConfig())
	if base.BearerToken != "" || base.BearerTokenFile != "" || base.CertData != nil || base.KeyData != nil ||
		base.CertFile != "" || base.KeyFile != "" || base.Username != "" || base.Password != "" ||
		base.Impersonate.UserName != "" || base.ExecProvider != nil || base.AuthProvider != nil {
		t.Fatalf("the console's base config carries credentials: %+v", base)
	}
	if base.Host != "https://127.0.0.1:6443" || string(base.CAData) != "CA" {
		t.Errorf("the base config lost the apiserver's address or CA: %s", base.Host)
	}
}
