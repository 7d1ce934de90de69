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
	"strings"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// Transports: which ways of holding a request open the request being authorized uses
// (WebSockets, Server-Sent Events, long polling), so decide can refuse one its connection
// refuses (OrgConnection.spec.transports). Read from headers the client must send for the
// transport to work, or declared by the route (transport=), without allocating.

// Header names of the transport signals, canonical.
const (
	hAccept             = "Accept"
	hPrefer             = "Prefer"
	hClearanceTransport = "X-Clearance-Transport"
)

// transportSet is a set of transports, one bit each.
type transportSet uint8

const (
	tWebSockets transportSet = 1 << iota
	tServerSentEvents
	tLongPolling
)

// transportNames are the transports' names in the transport= parameter and the JSON API's
// transport field: the OrgConnection's field names.
var transportNames = [...]struct {
	name string
	set  transportSet
	api  v1.Transport
}{
	{"webSockets", tWebSockets, v1.TransportWebSockets},
	{"serverSentEvents", tServerSentEvents, v1.TransportServerSentEvents},
	{"longPolling", tLongPolling, v1.TransportLongPolling},
}

// refusedTransports is the set an OrgConnection refuses.
func refusedTransports(spec *v1.OrgConnectionSpec) transportSet {
	var s transportSet
	for _, t := range transportNames {
		if !spec.TransportAllowed(t.api) {
			s |= t.set
		}
	}
	return s
}

// parseTransport reads a transport= value (or the JSON API's transport): "" is none, a name
// of transportNames is that transport, anything else is not a transport.
func parseTransport(v string) (transportSet, bool) {
	if v == "" {
		return 0, true
	}
	for _, t := range transportNames {
		if v == t.name {
			return t.set, true
		}
	}
	return 0, false
}

// requestTransports is the set of transports the client's request asks for, from its headers
// (requestSignals reads them with the method's signals):
//
//   - WebSockets: webSocket, which upgrades found (an Upgrade header naming websocket, or a
//     WebSocket handshake's Sec-WebSocket-Key or Sec-WebSocket-Version: a proxy may drop the
//     hop-by-hop Upgrade);
//   - Server-Sent Events: an Accept that lists text/event-stream (EventSource sends exactly
//     that), unless with q=0;
//   - long polling: a Prefer header with the wait preference (RFC 7240, Prefer: wait=30).
//
// A request may ask for several; each must be allowed.
func requestTransports(h http.Header, webSocket bool) transportSet {
	var s transportSet
	if webSocket {
		s |= tWebSockets
	}
	if listHas(h[hAccept], isEventStream) {
		s |= tServerSentEvents
	}
	if listHas(h[hPrefer], isWaitPreference) {
		s |= tLongPolling
	}
	return s
}

// listHas reports whether an element of a comma-separated header (all its lines) satisfies
// match, given the element trimmed.
func listHas(lines []string, match func(string) bool) bool {
	for _, v := range lines {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			if match(strings.TrimSpace(item)) {
				return true
			}
		}
	}
	return false
}

// isWebSocketToken: an Upgrade protocol websocket, with or without a version (websocket/13).
func isWebSocketToken(p string) bool {
	name, _, _ := strings.Cut(p, "/")
	return strings.EqualFold(name, "websocket")
}

// isEventStream: a media range text/event-stream whose parameters do not say q=0.
func isEventStream(mr string) bool {
	typ, rest, _ := strings.Cut(mr, ";")
	if !strings.EqualFold(strings.TrimSpace(typ), "text/event-stream") {
		return false
	}
	for rest != "" {
		var p string
		p, rest, _ = strings.Cut(rest, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") && strings.Trim(strings.TrimSpace(v), "0.") == "" {
			return false
		}
	}
	return true
}

// isWaitPreference: the preference wait (RFC 7240 section 4.3), names case-insensitive.
func isWaitPreference(pref string) bool {
	tok, _, _ := strings.Cut(pref, ";")
	name, _, _ := strings.Cut(tok, "=")
	return strings.EqualFold(strings.TrimSpace(name), "wait")
}
