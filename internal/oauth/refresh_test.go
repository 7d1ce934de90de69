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

package oauth

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	clocktesting "k8s.io/utils/clock/testing"
)

// tokens runs the flow to a first refresh token.
func (e *env) firstRefreshToken() string {
	e.t.Helper()
	c := e.config(confID, redirect)
	code, verifier := e.code(c)
	tok, err := e.exchange(c, code, verifier)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok.RefreshToken
}

// mustRefresh refreshes and returns the next refresh token.
func (e *env) mustRefresh(rt string) string {
	e.t.Helper()
	status, body := e.refresh(rt)
	next, _ := body["refresh_token"].(string)
	if status != http.StatusOK || next == "" {
		e.t.Fatalf("refresh: %d %v", status, body)
	}
	return next
}

func (e *env) wantRefreshRefused(rt, why string) {
	e.t.Helper()
	if status, body := e.refresh(rt); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		e.t.Fatalf("%s: %d %v, want invalid_grant", why, status, body)
	}
}

func TestRefreshTokenRotatesAndAJustRotatedOneGetsTheSameNextToken(t *testing.T) {
	e := newEnv(t)
	rt0 := e.firstRefreshToken()
	rt1 := e.mustRefresh(rt0)
	if rt1 == rt0 {
		t.Fatal("refresh token did not rotate")
	}
	e.clock.Step(5 * time.Second)
	if again := e.mustRefresh(rt0); again != rt1 {
		t.Fatalf("previous token within the leeway gave %q, want the same next token %q", again, rt1)
	}
	rt2 := e.mustRefresh(rt1)
	if rt2 == rt1 || rt2 == rt0 {
		t.Fatal("second rotation gave an old token")
	}
}

func TestConcurrentRefreshesWithOneTokenGetOneNextToken(t *testing.T) {
	e := newEnv(t)
	e.wantOneNextToken(e.firstRefreshToken())
}

// wantOneNextToken refreshes with rt from 100 goroutines at once: every answer is 200 and
// names the same next token.
func (e *env) wantOneNextToken(rt string) {
	e.t.Helper()
	var (
		mu     sync.Mutex
		nexts  = map[string]int{}
		status = map[int]int{}
		wg     sync.WaitGroup
	)
	for range 100 {
		wg.Go(func() {
			s, body := e.refresh(rt)
			mu.Lock()
			defer mu.Unlock()
			status[s]++
			if next, ok := body["refresh_token"].(string); ok {
				nexts[next]++
			}
		})
	}
	wg.Wait()
	if status[http.StatusOK] != 100 || len(nexts) != 1 {
		e.t.Fatalf("statuses %v, %d distinct next tokens; want 100 × 200 and one token", status, len(nexts))
	}
}

func TestPreviousRefreshTokenAfterTheLeewayRevokesTheFamily(t *testing.T) {
	e := newEnv(t)
	rt0 := e.firstRefreshToken()
	rt1 := e.mustRefresh(rt0)
	e.clock.Step(11 * time.Second)
	e.wantRefreshRefused(rt0, "previous token after the leeway")
	e.wantRefreshRefused(rt1, "current token of a revoked family")
}

func TestOlderRefreshTokenRevokesTheFamily(t *testing.T) {
	e := newEnv(t)
	rt0 := e.firstRefreshToken()
	rt1 := e.mustRefresh(rt0)
	rt2 := e.mustRefresh(rt1)
	e.wantRefreshRefused(rt0, "a token two generations old")
	e.wantRefreshRefused(rt2, "current token of a revoked family")
}

func TestRefreshIsRefusedOnceTheGrantIsNoLongerInForce(t *testing.T) {
	e := newEnv(t)
	rt0 := e.firstRefreshToken()
	e.withdraw()
	e.wantRefreshRefused(rt0, "connection deleted")
}

func TestForgedOrForeignRefreshTokenIsRefusedWithoutRevoking(t *testing.T) {
	e := newEnv(t)
	rt0 := e.firstRefreshToken()
	dot := strings.LastIndexByte(rt0, '.') + 1 // the mac's first character, changed
	forged := rt0[:dot] + map[bool]string{true: "B", false: "A"}[rt0[dot] == 'A'] + rt0[dot+1:]
	e.wantRefreshRefused(forged, "forged mac")
	// The same mac spelled with the last character's unused bits set decodes to the same bytes
	// when decoding is lenient: refused too.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, rt0[len(rt0)-1])
	e.wantRefreshRefused(rt0[:len(rt0)-1]+string(alphabet[last|1]), "a second spelling of the mac")
	status, body := e.post(map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {rt0}, "client_id": {publicID}}, "", "")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("another client's token: %d %v", status, body)
	}
	e.mustRefresh(rt0)
}

func TestRefreshRuleRotatesRepeatsWithinTheLeewayAndRevokesReuse(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := Family{Generation: 5, RotatedAt: at}
	for _, c := range []struct {
		name  string
		gen   uint64
		after time.Duration
		want  refreshStep
	}{
		{"current", 5, time.Hour, stepRotate},
		{"previous within leeway", 4, 10 * time.Second, stepRepeat},
		{"previous after leeway", 4, 11 * time.Second, stepRevoke},
		{"older", 3, 0, stepRevoke},
		{"future", 6, 0, stepRevoke},
	} {
		if got := decideRefresh(f, c.gen, at.Add(c.after), 10*time.Second); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
}

// TestARefreshFamilyEndsAtItsLifetimeHoweverOftenItIsUsed: a family refreshed every day still
// ends RefreshMaxLifetime after its code was exchanged; the application must ask for consent
// again.
func TestARefreshFamilyEndsAtItsLifetimeHoweverOftenItIsUsed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefreshMaxLifetime = 72 * time.Hour })
	rt := e.firstRefreshToken()
	for range 2 {
		e.clock.Step(24 * time.Hour)
		rt = e.mustRefresh(rt)
	}
	e.clock.Step(24 * time.Hour)
	e.wantRefreshRefused(rt, "past the family's lifetime")
}

func (e *env) setRole(role string) {
	e.dir.mu.Lock()
	defer e.dir.mu.Unlock()
	for id, g := range e.dir.consents {
		g.Role = role
		e.dir.consents[id] = g
	}
}

func TestARefreshNeverWidensTheScopesItsConsentGranted(t *testing.T) {
	rec := &recordingIssuer{}
	e := newEnv(t, func(c *Config) { c.Tokens = rec })
	c := e.config(confID, redirect)
	c.Scopes = []string{"offline_access", "reports:read", "reports:export"}
	code, verifier := e.code(c)
	tok, err := e.exchange(c, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	rt := tok.RefreshToken
	for _, scope := range []string{"reports:write", "reports:read reports:write", "openid", "offline_access openid",
		"REPORTS:READ", "reports:*", "reports", "reports:read,reports:export", "reports:readx",
		"offline_access", " "} { // no permission scope: a token good for every permission of the role
		before, _, _ := rec.last()
		status, body := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {scope}}, confID, goodSecret)
		if n, _, _ := rec.last(); status != http.StatusBadRequest || body["error"] != "invalid_scope" || n != before {
			t.Errorf("refresh asking for %q beyond %v: %d %v, %d tokens minted; want invalid_scope and none", scope, c.Scopes, status, body["error"], n-before)
		}
	}
	for _, scope := range []string{"reports:export reports:read", "reports:read", "offline_access reports:export"} {
		status, body := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {scope}}, confID, goodSecret)
		next, _ := body["refresh_token"].(string)
		if status != http.StatusOK || body["scope"] != scope || next == "" {
			t.Fatalf("refresh narrowed to %q: %d scope %v, want it granted", scope, status, body["scope"])
		}
		if _, _, minted := rec.last(); !slices.Equal(minted, strings.Fields(scope)) {
			t.Fatalf("refresh narrowed to %q minted a token for %v", scope, minted)
		}
		rt = next
	}
}

func TestEveryAccessTokenIsMintedForTheConnectionsRoleNow(t *testing.T) {
	rec := &recordingIssuer{}
	e := newEnv(t, func(c *Config) { c.Tokens = rec })
	c := e.config(confID, redirect)
	code, verifier := e.code(c) // consented as Viewer
	e.setRole("Observer")
	tok, err := e.exchange(c, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if _, g, _ := rec.last(); g.Role != "Observer" {
		t.Fatalf("exchange minted for role %q, want the connection's role now, Observer", g.Role)
	}
	rt := tok.RefreshToken
	for _, role := range []string{"Analyst", "Viewer", "Observer"} {
		e.setRole(role)
		rt = e.mustRefresh(rt)
		if _, g, _ := rec.last(); g.Role != role {
			t.Fatalf("refresh minted for role %q, want the connection's role now, %s", g.Role, role)
		}
	}
}

// TestARefreshFamilyLivesThirtyDaysUnusedAndEachRefreshRenewsThat: with the defaults, a family
// left unused for 30 days, from its exchange or its last refresh, is gone (the application asks
// for consent again), and one refreshed every 29 days keeps working until then.
func TestARefreshFamilyLivesThirtyDaysUnusedAndEachRefreshRenewsThat(t *testing.T) {
	const month = 30 * 24 * time.Hour
	e := newEnv(t)
	unused, rt := e.firstRefreshToken(), e.firstRefreshToken()
	e.clock.Step(month - time.Second)
	rt = e.mustRefresh(rt)
	e.clock.Step(time.Second)
	e.wantRefreshRefused(unused, "a family unused for 30 days since its exchange")
	e.clock.Step(month - 2*time.Second)
	rt = e.mustRefresh(rt)
	e.clock.Step(month)
	e.wantRefreshRefused(rt, "a family unused for 30 days since its last refresh")
}

// TestByDefaultARefreshFamilyEndsNinetyDaysAfterItsCodeWasExchanged: used every 20 days, a
// family still ends 90 days after the exchange, not a moment later.
func TestByDefaultARefreshFamilyEndsNinetyDaysAfterItsCodeWasExchanged(t *testing.T) {
	e := newEnv(t)
	rt := e.firstRefreshToken()
	for range 4 {
		e.clock.Step(20 * 24 * time.Hour)
		rt = e.mustRefresh(rt)
	}
	e.clock.Step(10 * 24 * time.Hour)
	e.wantRefreshRefused(rt, "90 days after the exchange")
}

// TestARefreshRefusedOnceItsGrantLeftForceStaysRefusedWhenItComesBack: a refresh while the
// Application is switched off (or the connection not ready) revokes the family, so switching it
// on again revives no refresh token: the application asks for consent again.
func TestARefreshRefusedOnceItsGrantLeftForceStaysRefusedWhenItComesBack(t *testing.T) {
	e := newEnv(t)
	rt := e.firstRefreshToken()
	e.withdraw()
	e.wantRefreshRefused(rt, "grant out of force")
	e.dir.mu.Lock()
	clear(e.dir.revoked)
	e.dir.mu.Unlock()
	e.wantRefreshRefused(rt, "grant in force again")
}

// TestAMalformedRefreshTokenIsInvalidGrant: a refresh token not of the form
// <family>.<generation>.<mac> is refused as any unknown token, and the real one still works.
func TestAMalformedRefreshTokenIsInvalidGrant(t *testing.T) {
	e := newEnv(t)
	rt := e.firstRefreshToken()
	parts := strings.Split(rt, ".")
	for _, bad := range []string{"", ".", "..", "...", parts[0], parts[0] + "." + parts[1], rt + ".x", parts[0] + ".x." + parts[2], "." + rt} {
		e.wantRefreshRefused(bad, "a malformed refresh token")
	}
	e.mustRefresh(rt)
}

// TestARefreshRetriedDaysIntoItsFamilyStillGetsTheSameNextToken: the leeway counts from the
// token's rotation, not from the family's beginning: a refresh retried 5 s after a rotation two
// days after the exchange gets the same next token, in memory and in Redis.
func TestARefreshRetriedDaysIntoItsFamilyStillGetsTheSameNextToken(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			var m *miniredis.Miniredis
			e := newEnv(t, func(c *Config) {
				if store == "redis" {
					c.Store, m = redisStore(t, c.Clock.(*clocktesting.FakeClock))
				}
			})
			step := func(d time.Duration) {
				e.clock.Step(d)
				if m != nil {
					m.FastForward(d)
				}
			}
			rt0 := e.firstRefreshToken()
			step(2 * 24 * time.Hour)
			rt1 := e.mustRefresh(rt0)
			step(5 * time.Second)
			if again := e.mustRefresh(rt0); again != rt1 {
				t.Fatal("a refresh retried within the leeway got another next token")
			}
		})
	}
}
