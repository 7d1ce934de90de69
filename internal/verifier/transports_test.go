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
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// refusing is the world's connection with transports refused.
func (w *world) refusing(ts ...v1.Transport) {
	c := w.conn.DeepCopy()
	c.Spec.Transports = &v1.ConnectionTransports{}
	for _, t := range ts {
		c.Spec.Transports.Set(t, v1.TransportRefused)
	}
	w.conn = c
	w.v.Apply(c)
}

// Headers of each transport's opening request, as browsers and clients send them.
var (
	webSocketHandshake = []string{"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Version", "13"}
	eventSourceRequest = []string{"Accept", "text/event-stream", "Cache-Control", "no-cache"}
	longPollRequest    = []string{"Prefer", "wait=30"}
	plainRequest       = []string{"Accept", "application/json, text/plain;q=0.9, */*;q=0.1", "Prefer", "return=minimal"}
)

func TestTheTransportsARequestOpensAreReadFromItsHeaders(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string
		want   transportSet
	}{
		{"a plain request", plainRequest, 0},
		{"no headers", nil, 0},
		{"a WebSocket handshake", webSocketHandshake, tWebSockets},
		{"a handshake whose Upgrade the proxy dropped", []string{"Sec-WebSocket-Key", "x", "Sec-WebSocket-Version", "13"}, tWebSockets},
		{"Upgrade alone, any case", []string{"Upgrade", "WebSocket"}, tWebSockets},
		{"Upgrade listing websocket second", []string{"Upgrade", "h2c, websocket/13"}, tWebSockets},
		{"another upgrade is not a WebSocket", []string{"Upgrade", "h2c", "Connection", "Upgrade"}, 0},
		{"EventSource", eventSourceRequest, tServerSentEvents},
		{"event-stream among others, with parameters", []string{"Accept", "application/json, Text/Event-Stream; charset=utf-8"}, tServerSentEvents},
		{"event-stream on a second Accept line", []string{"Accept", "application/json", "Accept", "text/event-stream"}, tServerSentEvents},
		{"event-stream with q=0 is refused by the client itself", []string{"Accept", "text/event-stream;q=0, application/json"}, 0},
		{"event-stream with q=0.000", []string{"Accept", "text/event-stream; q=0.000"}, 0},
		{"event-stream with q=0.5", []string{"Accept", "text/event-stream; q=0.5"}, tServerSentEvents},
		{"a long poll", longPollRequest, tLongPolling},
		{"wait among other preferences", []string{"Prefer", "respond-async, Wait=10; foo=bar"}, tLongPolling},
		{"wait on a second Prefer line", []string{"Prefer", "return=minimal", "Prefer", "wait=5"}, tLongPolling},
		{"a preference that only starts with wait", []string{"Prefer", "waiting=5"}, 0},
		{"all three at once", append(append(slicesOf(webSocketHandshake), eventSourceRequest...), longPollRequest...),
			tWebSockets | tServerSentEvents | tLongPolling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, PathAuthorize, nil)
			for i := 0; i+1 < len(tc.header); i += 2 {
				r.Header.Add(tc.header[i], tc.header[i+1])
			}
			if got := requestSignals(r).transports; got != tc.want {
				t.Fatalf("transports %03b, want %03b", got, tc.want)
			}
		})
	}
}

func slicesOf(s []string) []string { return append([]string(nil), s...) }

// TestAProxyRouteDeclaresItsTransport: transport= on the auth request (or X-Clearance-Transport
// in the Envoy form) marks every request of a route, for endpoints that long-poll whatever the
// client's headers say (serveAuthorize adds what the headers say); a name that is not a
// transport is invalid_parameter.
func TestAProxyRouteDeclaresItsTransport(t *testing.T) {
	for _, tc := range []struct {
		name   string
		query  string
		header http.Header
		envoy  bool
		want   transportSet
		rs     reason
	}{
		{name: "long-polling route", query: "org=globex&transport=longPolling", want: tLongPolling},
		{name: "SSE route", query: "org=globex&transport=serverSentEvents", want: tServerSentEvents},
		{name: "envoy", envoy: true, header: http.Header{hClearanceTransport: {"webSockets"}}, want: tWebSockets},
		{name: "envoy: the client's query is not read", envoy: true, query: "transport=bogus", want: 0},
		{name: "not a transport", query: "org=globex&transport=pigeon", rs: rInvalidParameter},
		{name: "case matters, as in the API", query: "org=globex&transport=LongPolling", rs: rInvalidParameter},
		{name: "given twice", query: "org=globex&transport=longPolling&transport=longPolling", rs: rInvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.header == nil {
				tc.header = http.Header{}
			}
			req, rs := authorizeRequest(tc.header, tc.query, tc.envoy, keyformat.Format{Prefix: keyformat.DefaultPrefix})
			if rs != tc.rs || rs == rOK && req.transports != tc.want {
				t.Fatalf("reason %s, transports %03b; want %s, %03b", rs, req.transports, tc.rs, tc.want)
			}
		})
	}
}

// TestAConnectionRefusesEachTransportOnItsOwn: every transport is allowed by default; refusing
// one refuses exactly the requests that open it (403 transport_not_allowed), a plain request
// of the same key stays allowed.
func TestAConnectionRefusesEachTransportOnItsOwn(t *testing.T) {
	opening := map[v1.Transport][]string{
		v1.TransportWebSockets:       webSocketHandshake,
		v1.TransportServerSentEvents: eventSourceRequest,
		v1.TransportLongPolling:      longPollRequest,
	}
	w := newWorld(t)
	// A WebSocket is a write (the channel carries writes): the world's Analyst may open one.
	for _, hs := range opening {
		expect(t, w.authorize(w.token.Token, "", hs...), http.StatusOK, "")
	}
	expect(t, w.authorize(w.token.Token, "", plainRequest...), http.StatusOK, "")

	for refused := range opening {
		t.Run(string(refused)+" refused", func(t *testing.T) {
			w.refusing(refused)
			for tr, hs := range opening {
				if tr == refused {
					expect(t, w.authorize(w.token.Token, "", hs...), http.StatusForbidden, ReasonTransportNotAllowed)
				} else {
					expect(t, w.authorize(w.token.Token, "", hs...), http.StatusOK, "")
				}
			}
			expect(t, w.authorize(w.token.Token, "", plainRequest...), http.StatusOK, "")
			expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
		})
	}

	t.Run("a route that declares long polling", func(t *testing.T) {
		w.refusing(v1.TransportLongPolling)
		expect(t, w.authorize(w.token.Token, "transport=longPolling"), http.StatusForbidden, ReasonTransportNotAllowed)
		w.refusing()
		expect(t, w.authorize(w.token.Token, "transport=longPolling"), http.StatusOK, "")
	})

	t.Run("a route's transport and the request's headers both count", func(t *testing.T) {
		w.refusing(v1.TransportWebSockets)
		expect(t, w.authorize(w.token.Token, "transport=serverSentEvents"), http.StatusOK, "")
		expect(t, w.authorize(w.token.Token, "transport=serverSentEvents", webSocketHandshake...), http.StatusForbidden, ReasonTransportNotAllowed)
	})

	t.Run("a connection without the field, as before it existed, allows all three", func(t *testing.T) {
		c := w.conn.DeepCopy()
		c.Spec.Transports = nil
		w.v.Apply(c)
		for _, hs := range opening {
			expect(t, w.authorize(w.token.Token, "", hs...), http.StatusOK, "")
		}
	})
}

// TestTransportsAreCheckedAfterTheKeyAndTheRole: a refused transport is the connection's to
// say, so it comes after what is wrong with the key (401) and the connection itself (403
// org_not_connected, role_insufficient), and a browser's key in Sec-WebSocket-Protocol works
// as before.
func TestTransportsAreCheckedAfterTheKeyAndTheRole(t *testing.T) {
	w := newWorld(t)
	w.refusing(v1.Transports...)
	expect(t, w.authorize(w.mint().Token, "", webSocketHandshake...), http.StatusUnauthorized, ReasonKeyUnknown)
	expect(t, w.authorize(w.token.Token, "minRole=OrgAdmin", webSocketHandshake...), http.StatusForbidden, ReasonRoleInsufficient)
	rec := w.do(http.MethodGet, PathAuthorize+"?org=initech", "", append([]string{"X-API-Key", w.token.Token}, eventSourceRequest...)...)
	expect(t, rec, http.StatusForbidden, ReasonOrgNotConnected)
	browser := w.do(http.MethodGet, PathAuthorize+"?org="+grantOrg, "", append([]string{"Origin", origin,
		"Sec-WebSocket-Protocol", "clearance.v1, clearance.key." + w.token.Token}, webSocketHandshake...)...)
	expect(t, browser, http.StatusForbidden, ReasonTransportNotAllowed)
	w.refusing()
	browser = w.do(http.MethodGet, PathAuthorize+"?org="+grantOrg, "", append([]string{"Origin", origin,
		"Sec-WebSocket-Protocol", "clearance.v1, clearance.key." + w.token.Token}, webSocketHandshake...)...)
	expect(t, browser, http.StatusOK, "")
}

// TestTheJSONAPIAsksAboutATransport: keys:verify's transport field is checked as forward-auth's
// headers are; a name that is not a transport is 400 invalid_parameter.
func TestTheJSONAPIAsksAboutATransport(t *testing.T) {
	w := newWorld(t)
	w.refusing(v1.TransportServerSentEvents)
	verify := func(transport string) *httptest.ResponseRecorder {
		body, _ := json.Marshal(VerifyRequest{Key: w.token.Token, Org: grantOrg, Method: http.MethodGet, Transport: transport})
		return w.do(http.MethodPost, PathVerify, string(body), "Content-Type", "application/json")
	}
	answer := func(rec *httptest.ResponseRecorder) VerifyResponse {
		t.Helper()
		var resp VerifyResponse
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
			t.Fatalf("keys:verify: %d %s", rec.Code, rec.Body.String())
		}
		return resp
	}
	if r := answer(verify("serverSentEvents")); r.Valid || r.Reason != ReasonTransportNotAllowed {
		t.Errorf("SSE refused by the connection: %+v", r)
	}
	for _, tr := range []string{"", "webSockets", "longPolling"} {
		if r := answer(verify(tr)); !r.Valid {
			t.Errorf("transport %q: %+v", tr, r)
		}
	}
	expect(t, verify("sse"), http.StatusBadRequest, ReasonInvalidParameter)
}

// TestGrantTokensAreRefusedATransportTheirConnectionRefuses: the transports are the
// connection's, so an access token is refused one whether a key obtained it (client
// credentials) or an org admin's consent did (authorization code).
func TestGrantTokensAreRefusedATransportTheirConnectionRefuses(t *testing.T) {
	w := codeWorld(t, v1.OAuthPublic)
	status, body := w.exchange(w.consent("openid reports:read"))
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, body)
	}
	consented := body["access_token"].(string)
	obtained, _ := w.accessToken()
	for _, tok := range []string{consented, obtained} {
		sse := func() *httptest.ResponseRecorder {
			return w.do(http.MethodGet, PathAuthorize+"?org="+grantOrg, "", append([]string{"Authorization", "Bearer " + tok}, eventSourceRequest...)...)
		}
		w.refusing()
		expect(t, sse(), http.StatusOK, "")
		w.refusing(v1.TransportServerSentEvents)
		expect(t, sse(), http.StatusForbidden, ReasonTransportNotAllowed)
		expect(t, w.bearer(tok, ""), http.StatusOK, "")
	}
}

// TestReadingTheTransportsAllocatesNothing: they are read on every request.
func TestReadingTheTransportsAllocatesNothing(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, PathAuthorize+"?org="+grantOrg, nil)
	for i := 0; i+1 < len(plainRequest); i += 2 {
		r.Header.Add(plainRequest[i], plainRequest[i+1])
	}
	r.Header.Set("Connection", "keep-alive")
	var got transportSet
	if n := testing.AllocsPerRun(1000, func() { got = requestSignals(r).transports }); n != 0 {
		t.Errorf("reading the transports allocates %v times", n)
	}
	if got != 0 {
		t.Errorf("a plain request opens %03b", got)
	}
	r.Header.Set("Prefer", "wait=10")
	if n := testing.AllocsPerRun(1000, func() { got = requestSignals(r).transports }); n != 0 || got != tLongPolling {
		t.Errorf("a long poll: %03b, %v allocations", got, n)
	}
}
