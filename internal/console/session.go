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
	// token is the person's bearer token, sent to the apiserver with every call.
	token string
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
type sessionStore struct {
	clock  clock.PassiveClock
	idle   time.Duration
	maxAge time.Duration
	limit  int

	mu       sync.Mutex
	sessions map[string]*session
}

func newSessionStore(c clock.PassiveClock, idle, maxAge time.Duration, limit int) *sessionStore {
	return &sessionStore{clock: c, idle: idle, maxAge: maxAge, limit: limit, sessions: map[string]*session{}}
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
		delete(st.sessions, id)
		return nil
	}
	s.lastSeen = now
	return s
}

// ended says whether s is past its idle time or its maximum age; s.mu is held.
func (st *sessionStore) ended(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) >= st.idle || now.Sub(s.created) >= st.maxAge
}

// add stores a new session for a signed-in person, with a fresh ID and CSRF token. When the
// store is full after sweeping ended sessions, the least recently used one is dropped.
func (st *sessionStore) add(s *session) {
	s.id, s.csrf = randomToken(), randomToken()
	now := st.clock.Now()
	s.created, s.lastSeen = now, now
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.sessions) >= st.limit {
		st.sweep(now)
	}
	st.sessions[s.id] = s
}

// sweep drops ended sessions and, if the store is still full, the least recently used.
func (st *sessionStore) sweep(now time.Time) {
	var oldest *session
	var oldestSeen time.Time
	for id, s := range st.sessions {
		s.mu.Lock()
		ended, last := st.ended(s, now), s.lastSeen
		s.mu.Unlock()
		if ended {
			delete(st.sessions, id)
			continue
		}
		if oldest == nil || last.Before(oldestSeen) {
			oldest, oldestSeen = s, last
		}
	}
	if len(st.sessions) >= st.limit && oldest != nil {
		delete(st.sessions, oldest.id)
	}
}

func (st *sessionStore) remove(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.sessions, id)
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
