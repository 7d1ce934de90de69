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
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestASessionEndsAfterItsIdleTimeOrItsMaximumAge(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	st := newSessionStore(clock, 30*time.Minute, 8*time.Hour, 100)
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
	st := newSessionStore(clock, 30*time.Minute, 8*time.Hour, 3)
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
