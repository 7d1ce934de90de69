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
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// session is one signed-in person. Their token lives here, in memory only: never in a cookie,
// a URL, a page or a log line. The cookie holds only the session's random ID.
type session struct {
	id   string
	csrf string
	// token is the person's bearer token, sent to the apiserver with every call; empty for a
	// sign-in with the OIDC provider, whose tokens oidc holds and renews.
	token string
	oidc  *oidcTokens
	// tokenSum identifies the token without holding it twice, to tell whether the token an
	// auth proxy forwards is still the one this session was made for.
	tokenSum [sha256.Size]byte
	// fromProxy: the token came in an Authorization header (an auth proxy in front), so there
	// is no sign-out: the proxy owns the login.
	fromProxy bool
	user      string
	client    client.WithWatch

	created time.Time

	mu       sync.Mutex
	lastSeen time.Time
	org      string
	flashes  []flash
}

// flash is a one-shot message shown on the next page, after a redirect.
type flash struct {
	Kind string // "ok", "warning" or "error"
	Text string
}

func (s *session) setOrg(org string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.org = org
}

func (s *session) currentOrg() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.org
}

func (s *session) addFlash(kind string, texts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range texts {
		s.flashes = append(s.flashes, flash{Kind: kind, Text: t})
	}
}

func (s *session) takeFlashes() []flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flashes
	s.flashes = nil
	return f
}

// validCSRF compares a form's token with the session's in constant time.
func (s *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

// sessionStore keeps sessions in memory, keyed by their random ID. A session ends after
// idle time without a request, or at maxAge whatever happens; both are read from the
// injected clock when a session is looked up, and ended sessions are swept when a new one is
// made, so nothing runs in the background.
//
// Anyone holding any valid token can start sessions, so the bounds are per identity first: one
// identity keeps at most perIdentity sessions (a new one ends its own least recently used), and
// when the whole store is full the session to end is taken from the identity holding the most,
// the newcomer's own on a tie. Signing in again and again therefore only ever ends the signer's
// own sessions, or those of an identity holding more than it does.
type sessionStore struct {
	clock       clock.PassiveClock
	idle        time.Duration
	maxAge      time.Duration
	limit       int
	perIdentity int

	mu       sync.Mutex
	sessions map[string]*session
	// byUser holds the same sessions by the username the apiserver gave them.
	byUser map[string]map[string]*session
}

func newSessionStore(c clock.PassiveClock, idle, maxAge time.Duration, limit, perIdentity int) *sessionStore {
	return &sessionStore{clock: c, idle: idle, maxAge: maxAge, limit: max(limit, 1), perIdentity: max(perIdentity, 1),
		sessions: map[string]*session{}, byUser: map[string]map[string]*session{}}
}

// get returns the live session with this ID and marks it used, or nil.
func (st *sessionStore) get(id string) *session {
	if id == "" {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.sessions[id]
	if s == nil {
		return nil
	}
	now := st.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.ended(s, now) {
		st.drop(s)
		return nil
	}
	s.lastSeen = now
	return s
}

// ended says whether s is past its idle time or its maximum age; s.mu is held.
func (st *sessionStore) ended(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) >= st.idle || now.Sub(s.created) >= st.maxAge
}

// add stores a new session for a signed-in person, with a fresh ID and CSRF token, first making
// room: within the person's own sessions, then in the whole store (see sessionStore).
func (st *sessionStore) add(s *session) {
	s.id, s.csrf = randomToken(), randomToken()
	now := st.clock.Now()
	s.created, s.lastSeen = now, now
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.byUser[s.user]) >= st.perIdentity {
		st.sweep(st.byUser[s.user], now)
		if own := st.byUser[s.user]; len(own) >= st.perIdentity {
			st.drop(st.leastRecentlyUsed(own))
		}
	}
	if len(st.sessions) >= st.limit {
		st.sweep(st.sessions, now)
		if len(st.sessions) >= st.limit {
			st.drop(st.leastRecentlyUsed(st.byUser[st.heaviest(s.user)]))
		}
	}
	st.sessions[s.id] = s
	if st.byUser[s.user] == nil {
		st.byUser[s.user] = map[string]*session{}
	}
	st.byUser[s.user][s.id] = s
}

// sweep drops the ended sessions among these; st.mu is held.
func (st *sessionStore) sweep(sessions map[string]*session, now time.Time) {
	for _, s := range sessions {
		s.mu.Lock()
		ended := st.ended(s, now)
		s.mu.Unlock()
		if ended {
			st.drop(s) // deleting from the map being ranged over is allowed
		}
	}
}

// heaviest is the identity holding the most sessions, newcomer's own on a tie; st.mu is held.
func (st *sessionStore) heaviest(newcomer string) string {
	user, most := newcomer, len(st.byUser[newcomer])
	for u, own := range st.byUser {
		if len(own) > most {
			user, most = u, len(own)
		}
	}
	return user
}

// leastRecentlyUsed is the session among these used longest ago; st.mu is held.
func (st *sessionStore) leastRecentlyUsed(sessions map[string]*session) *session {
	var oldest *session
	var oldestSeen time.Time
	for _, s := range sessions {
		s.mu.Lock()
		last := s.lastSeen
		s.mu.Unlock()
		if oldest == nil || last.Before(oldestSeen) {
			oldest, oldestSeen = s, last
		}
	}
	return oldest
}

// drop forgets s; st.mu is held.
func (st *sessionStore) drop(s *session) {
	if s == nil {
		return
	}
	delete(st.sessions, s.id)
	if own := st.byUser[s.user]; own != nil {
		delete(own, s.id)
		if len(own) == 0 {
			delete(st.byUser, s.user)
		}
	}
}

func (st *sessionStore) remove(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s := st.sessions[id]; s != nil {
		st.drop(s)
	}
}

func (st *sessionStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.sessions)
}

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loginCSRF binds the sign-in form to the browser that fetched it before any session exists
// (a double-submit cookie, signed so the value in the form cannot be made up).
func loginCSRF(key []byte, cookie string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("clearance-console-login\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
