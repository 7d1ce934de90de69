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
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// The method of the client's request is decided in one place (method.go) from every signal;
// these tests hold it to "never less than the strictest signal", over every combination of
// signals, and the handler to "no 2xx without a key in force for that org and role".

// Values each method header may take: absent, a safe method, OPTIONS, an unsafe one, an empty
// line, a list in one line, two lines, and a lower-case method.
var methodHeaderValues = [][]string{
	nil, {"GET"}, {"HEAD"}, {"OPTIONS"}, {"DELETE"}, {""}, {"OPTIONS, DELETE"}, {"OPTIONS", "POST"}, {"options"}, {" OPTIONS "},
}

var ownMethods = []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPost, http.MethodDelete, "PROPFIND", "get"}

// upgradeHeaders are the ways a request may ask to switch protocols, and none.
var upgradeHeaders = [][]string{
	nil,
	{"Upgrade", "websocket", "Connection", "Upgrade"},
	{"Upgrade", "h2c"},
	{"Connection", "keep-alive, Upgrade"},
	{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
	{"Sec-WebSocket-Version", "13"},
	{"Connection", "keep-alive"}, // not an upgrade
}

var corsHeaders = [][]string{
	nil,
	{"Origin", origin},
	{"Access-Control-Request-Method", "DELETE"},
	{"Origin", origin, "Access-Control-Request-Method", "DELETE"},
	{"Origin", origin, "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "x-api-key"},
}

// eachSignalCombination calls f with a request for every combination of the auth request's own
// method, X-Original-Method, X-Forwarded-Method, upgrade headers and CORS headers, and what a
// single signal of it demands on its own (the strictest of those is the least the request
// may be given).
func eachSignalCombination(f func(r *http.Request, strictest access, allOptions bool)) {
	for _, own := range ownMethods {
		for _, orig := range methodHeaderValues {
			for _, fwd := range methodHeaderValues {
				for _, up := range upgradeHeaders {
					for _, cors := range corsHeaders {
						r := httptest.NewRequest(own, PathAuthorize+"?org="+grantOrg, nil)
						for _, v := range orig {
							r.Header.Add("X-Original-Method", v)
						}
						for _, v := range fwd {
							r.Header.Add("X-Forwarded-Method", v)
						}
						for i := 0; i+1 < len(up); i += 2 {
							r.Header.Add(up[i], up[i+1])
						}
						for i := 0; i+1 < len(cors); i += 2 {
							r.Header.Add(cors[i], cors[i+1])
						}
						strictest, allOptions := strictestSignal(own, orig, fwd, up)
						f(r, strictest, allOptions)
					}
				}
			}
		}
	}
}

// strictestSignal is the test's own reading of the signals, written without method.go: each
// method alone is a read (GET, HEAD), OPTIONS, or a write (anything else, exactly as sent after
// trimming spaces); an upgrade header other than "Connection: keep-alive" is a write.
func strictestSignal(own string, orig, fwd, up []string) (access, bool) {
	alone := func(m string) access {
		switch strings.TrimSpace(m) {
		case "GET", "HEAD":
			return accessRead
		case "OPTIONS":
			return accessPreflight
		}
		return accessWrite
	}
	strictest := alone(own)
	for _, m := range append(append([]string{}, orig...), fwd...) {
		strictest = max(strictest, alone(m))
	}
	allOptions := strictest == accessPreflight
	if len(up) > 0 && up[1] != "keep-alive" {
		strictest = accessWrite
		allOptions = false
	}
	return strictest, allOptions
}

func TestNoCombinationOfMethodSignalsGetsLessThanItsStrictestSignal(t *testing.T) {
	n := 0
	eachSignalCombination(func(r *http.Request, strictest access, allOptions bool) {
		n++
		sig := requestSignals(r)
		got := sig.access()
		corsAsked := r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
		want := strictest
		if want == accessPreflight && !corsAsked {
			want = accessRead // OPTIONS without the CORS headers is an ordinary read
		}
		if got != want {
			t.Errorf("%s %v: access %d, want %d", r.Method, r.Header, got, want)
		}
		if got == accessPreflight && !(allOptions && corsAsked) {
			t.Errorf("%s %v: a preflight although not every signal says OPTIONS", r.Method, r.Header)
		}
	})
	t.Logf("%d combinations", n)
}

// TestNoTwoHundredWithoutAKeyInForceForTheOrgAndRole sends every combination of method
// signals, with no key, an Observer's key and an Analyst's key, through the whole handler: a
// 2xx is either a preflight whose every signal said OPTIONS (no identity given), or carries a
// key whose connection's role is at least what the strictest signal needs.
func TestNoTwoHundredWithoutAKeyInForceForTheOrgAndRole(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) { a.Spec.RateLimits = nil })
	for _, role := range []v1.Role{v1.RoleObserver, v1.RoleAnalyst} {
		conn := w.conn.DeepCopy()
		conn.Spec.Role = role
		w.v.Apply(conn)
		for _, token := range []string{"", w.token.Token, w.wrongSecret()} {
			eachSignalCombination(func(r *http.Request, strictest access, allOptions bool) {
				if token != "" {
					r.Header.Set("X-API-Key", token)
				}
				rec := httptest.NewRecorder()
				w.v.ServeHTTP(rec, r)
				checkInvariant(t, r, rec, token == w.token.Token, role, strictest, allOptions)
			})
		}
	}
}

// checkInvariant fails unless a 2xx answer is a keyless preflight all of whose signals said
// OPTIONS, or the answer for a key in force whose role may do what the strictest signal asks.
func checkInvariant(t *testing.T, r *http.Request, rec *httptest.ResponseRecorder, keyInForce bool, role v1.Role, strictest access, allOptions bool) {
	t.Helper()
	if rec.Code < 200 || rec.Code > 299 {
		return
	}
	if rec.Code == http.StatusNoContent {
		if !allOptions || rec.Header().Get(hRole) != "" {
			t.Fatalf("%s %v: 204 (preflight) although not every signal said OPTIONS", r.Method, r.Header)
		}
		return
	}
	if !keyInForce {
		t.Fatalf("%s %v: %d without a key in force", r.Method, r.Header, rec.Code)
	}
	need := v1.RoleObserver
	if strictest == accessWrite {
		need = v1.RoleAnalyst
	}
	if q := r.URL.Query().Get("minRole"); q != "" {
		need = v1.Role(q)
	}
	if role.Rank() < need.Rank() {
		t.Fatalf("%s %v: %d for a %s, though the request needs %s", r.Method, r.Header, rec.Code, role, need)
	}
}

func TestAForgedPreflightBesideTheProxysMethodIsNoPreflight(t *testing.T) {
	w := newWorld(t)
	// The request from the hostile read: the proxy set X-Original-Method, the client added the
	// rest. Before the fix: 204 without a key, and the DELETE reached the upstream.
	rec := w.do(http.MethodGet, PathAuthorize+"?org="+grantOrg, "",
		"X-Original-Method", "DELETE", "X-Forwarded-Method", "OPTIONS", "Origin", origin, "Access-Control-Request-Method", "DELETE")
	expect(t, rec, http.StatusUnauthorized, ReasonKeyMissing)
	// The same with the methods the other way round, and with the auth request's own method.
	rec = w.do(http.MethodGet, PathAuthorize+"?org="+grantOrg, "",
		"X-Forwarded-Method", "DELETE", "X-Original-Method", "OPTIONS", "Origin", origin, "Access-Control-Request-Method", "DELETE")
	expect(t, rec, http.StatusUnauthorized, ReasonKeyMissing)
	rec = w.do(http.MethodDelete, PathAuthorize+"?org="+grantOrg, "",
		"X-Forwarded-Method", "OPTIONS", "X-Original-Method", "OPTIONS", "Origin", origin, "Access-Control-Request-Method", "DELETE")
	expect(t, rec, http.StatusUnauthorized, ReasonKeyMissing)
}

func TestAProtocolUpgradeNeedsTheWriteRole(t *testing.T) {
	w := newWorld(t)
	observer := w.conn.DeepCopy()
	observer.Spec.Role = v1.RoleObserver
	w.v.Apply(observer)
	handshake := []string{"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Protocol", "clearance.v1, clearance.key." + w.token.Token}
	target := PathAuthorize + "?org=" + grantOrg
	// A WebSocket handshake is a GET, but the channel it opens carries writes.
	expect(t, w.do(http.MethodGet, target, "", handshake...), http.StatusForbidden, ReasonRoleInsufficient)
	// nginx drops the hop-by-hop Upgrade from its auth request unless told otherwise; the
	// handshake's own headers still say what it is.
	expect(t, w.do(http.MethodGet, target, "", handshake[4:]...), http.StatusForbidden, ReasonRoleInsufficient)
	// A route that means its channel for Observers says so.
	expect(t, w.do(http.MethodGet, target+"&minRole=Observer", "", handshake...), http.StatusOK, "")
	// An Analyst may open it.
	w.v.Apply(w.conn)
	expect(t, w.do(http.MethodGet, target, "", handshake...), http.StatusOK, "")
}

func TestTheJSONAPIReadsTheMethodThroughTheSameRule(t *testing.T) {
	for _, tc := range []struct {
		method string
		want   access
	}{
		{"GET", accessRead}, {"HEAD", accessRead}, {"OPTIONS", accessRead}, {" GET ", accessRead},
		{"POST", accessWrite}, {"", accessWrite}, {"get", accessWrite}, {"GET, DELETE", accessWrite},
	} {
		req, _ := verifyRequest(&VerifyRequest{Key: "k", Org: grantOrg, Method: tc.method})
		if got := req.write; got != (tc.want == accessWrite) {
			t.Errorf("keys:verify method %q: write %v, want %v", tc.method, got, tc.want == accessWrite)
		}
	}
}

// FuzzAuthorizeNeverAllowsWithoutAKeyInForce sends requests with arbitrary methods, method
// headers, upgrade and CORS headers and query through the whole handler, with no key, a wrong
// secret or the real key of an Observer or an Analyst: no 2xx leaves it unless the request is a
// preflight that every signal calls one, or the key is in force with a role the strictest
// signal allows.
func FuzzAuthorizeNeverAllowsWithoutAKeyInForce(f *testing.F) {
	f.Add("GET", "DELETE", "OPTIONS", "", "", origin, "DELETE", uint8(0), "")
	f.Add("OPTIONS", "OPTIONS", "OPTIONS", "", "", origin, "GET", uint8(0), "")
	f.Add("GET", "", "", "websocket", "Upgrade", "", "", uint8(1), "")
	f.Add("GET", "GET", "GET", "", "keep-alive, upgrade", "", "", uint8(1), "minRole=Observer")
	f.Add("POST", "", "GET", "", "", origin, "", uint8(3), "scope=reports:read")
	f.Add("get", "\tOPTIONS", "OPTIONS,", "", "", origin, "PUT", uint8(2), "minRole=Analyst&minRole=Observer")
	w := newWorld(f)
	w.updateApp(func(a *v1.Application) { a.Spec.RateLimits = nil })
	wrong := w.wrongSecret()
	f.Fuzz(func(t *testing.T, own, orig, fwd, upgrade, connection, originHeader, acrm string, keyChoice uint8, query string) {
		if !validMethod(own) {
			return // net/http refuses such a request line before any handler sees it
		}
		role := v1.RoleObserver
		if keyChoice&2 != 0 {
			role = v1.RoleAnalyst
		}
		conn := w.conn.DeepCopy()
		conn.Spec.Role = role
		w.v.Apply(conn)
		r := httptest.NewRequest(http.MethodGet, PathAuthorize, nil)
		r.Method = own
		r.URL.RawQuery = "org=" + grantOrg
		if query != "" {
			r.URL.RawQuery += "&" + query
		}
		var origL, fwdL, up []string
		set := func(name, v string) {
			if v != "" {
				r.Header[name] = strings.Split(v, "\n")
			}
		}
		set("X-Original-Method", orig)
		set("X-Forwarded-Method", fwd)
		set("Upgrade", upgrade)
		set("Connection", connection)
		set("Origin", originHeader)
		set("Access-Control-Request-Method", acrm)
		origL, fwdL = r.Header["X-Original-Method"], r.Header["X-Forwarded-Method"]
		if upgrade != "" || connectionUpgrades(connection) {
			up = []string{"Upgrade", "x"}
		}
		key := ""
		switch keyChoice & 5 {
		case 1:
			key = w.token.Token
		case 4, 5:
			key = wrong
		}
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		rec := httptest.NewRecorder()
		w.v.ServeHTTP(rec, r)
		strictest, allOptions := strictestSignal(own, origL, fwdL, up)
		checkInvariant(t, r, rec, key == w.token.Token, role, strictest, allOptions)
	})
}

// validMethod reports whether m is an HTTP token, as a request line's method must be.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func connectionUpgrades(v string) bool {
	for _, line := range strings.Split(v, "\n") {
		for _, opt := range strings.Split(line, ",") {
			if strings.EqualFold(strings.TrimSpace(opt), "upgrade") {
				return true
			}
		}
	}
	return false
}

// TestReadingTheMethodAllocatesNothing: the method is read on every request.
func TestReadingTheMethodAllocatesNothing(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, PathAuthorize+"?org="+grantOrg, nil)
	r.Header.Set("X-Original-Method", "GET")
	r.Header.Set("X-Forwarded-Method", "GET")
	r.Header.Set("Connection", "keep-alive, Upgrade")
	r.Header.Set("Origin", origin)
	var got access
	if n := testing.AllocsPerRun(1000, func() {
		sig := requestSignals(r)
		got = sig.access()
	}); n != 0 {
		t.Errorf("reading the method allocates %v times", n)
	}
	if got != accessWrite {
		t.Errorf("access %d, want a write (an upgrade)", got)
	}
}

// TestAMethodOverrideHeaderIsAMethodSignalToo: an upstream that honours X-HTTP-Method-Override
// (or X-HTTP-Method, X-Method-Override) does what the header names, so an Observer's key that
// sends a GET naming DELETE there is refused as a write, whatever the header's case or how many
// lines it has; a GET naming GET or HEAD stays a read, and no override makes a preflight.
func TestAMethodOverrideHeaderIsAMethodSignalToo(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) { a.Spec.RateLimits = nil })
	conn := w.conn.DeepCopy()
	conn.Spec.Role = v1.RoleObserver
	w.v.Apply(conn)
	target := PathAuthorize + "?org=" + grantOrg
	for _, name := range []string{"X-HTTP-Method-Override", "x-http-method-override", "X-HTTP-Method", "X-Method-Override", "x-method-override"} {
		for _, value := range []string{"DELETE", "POST", "PUT", "PATCH", " POST ", "delete", "CONNECT", ""} {
			rec := w.do(http.MethodGet, target, "", "X-API-Key", w.token.Token, name, value)
			expect(t, rec, http.StatusForbidden, ReasonRoleInsufficient)
			rec = w.do(http.MethodGet, target, "", "X-API-Key", w.token.Token, name, "GET", name, value)
			expect(t, rec, http.StatusForbidden, ReasonRoleInsufficient)
			rec = w.do(http.MethodOptions, target, "", "Origin", "https://app.example", "Access-Control-Request-Method", "GET", name, value)
			if rec.Code == http.StatusNoContent {
				t.Errorf("a preflight naming %s: %q got 204", name, value)
			}
		}
		for _, value := range []string{"GET", "HEAD", " GET "} {
			expect(t, w.do(http.MethodGet, target, "", "X-API-Key", w.token.Token, name, value), http.StatusOK, "")
		}
	}
}
