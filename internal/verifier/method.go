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
)

// What the client's request does, from every signal of its method: the one place that decides
// it, for CORS preflights, the least role, protocol upgrades and the JSON API alike.

// Header names of the signals, canonical.
const (
	hUpgrade          = "Upgrade"
	hConnection       = "Connection"
	hWebSocketKey     = "Sec-Websocket-Key"
	hWebSocketVersion = "Sec-Websocket-Version"
)

// methodOverrides are the headers with which frameworks let a client tunnel another method
// through the one it sends (a POST or a DELETE as a GET): an upstream that honours one does
// what it names, so each is a method signal too.
var methodOverrides = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// access is what the client's request may do, least demanding first: a comparison of two
// accesses is a comparison of what they demand.
type access uint8

const (
	// accessPreflight is a CORS preflight: it carries no key, and its OPTIONS request reaches
	// the upstream without one.
	accessPreflight access = iota
	// accessRead only reads (GET, HEAD, OPTIONS): Observer may.
	accessRead
	// accessWrite may change something: any other method, an unknown one, a missing one, or a
	// protocol upgrade (a WebSocket opened with a GET carries writes afterwards).
	accessWrite
)

// signals are every place the method of the client's request may be told: the auth request's
// own method (Envoy's ext_authz and direct callers keep the client's; nginx, Caddy and
// Traefik send GET unless configured otherwise), X-Original-Method (nginx, ingress-nginx) and
// X-Forwarded-Method (Traefik, Caddy), each line of each, and the client's method overrides
// (methodOverrides), which the proxies pass on with its other headers; whether the request upgrades its
// protocol; whether it asks what a CORS preflight asks (an Origin and
// Access-Control-Request-Method); which transports it opens (transports.go).
type signals struct {
	own                 string
	original, forwarded []string
	overrides           []string
	upgrade             bool
	corsAsked           bool
	transports          transportSet
}

// requestSignals gathers the signals of a forward-auth request.
func requestSignals(r *http.Request) signals {
	h := r.Header
	upgrade, webSocket := upgrades(h)
	var overrides []string
	for _, name := range methodOverrides {
		overrides = append(overrides, h[name]...)
	}
	return signals{
		own:        r.Method,
		original:   h[hOriginalMethod],
		forwarded:  h[hForwardedMethod],
		overrides:  overrides,
		upgrade:    upgrade,
		corsAsked:  firstHeader(h, hOrigin) != "" && firstHeader(h, hACRequestMethod) != "",
		transports: requestTransports(h, webSocket),
	}
}

// access takes the most demanding of the signals, so a client that adds a method header of its
// own beside the proxy's gains nothing: any signal that is not a safe method, or an upgrade,
// makes a write; a preflight needs every signal to say OPTIONS, and the CORS headers.
func (s *signals) access() access {
	least := methodAccess(s.own)
	for _, told := range [...][]string{s.original, s.forwarded, s.overrides} {
		for _, m := range told {
			least = max(least, methodAccess(strings.TrimSpace(m)))
		}
	}
	if s.upgrade {
		least = accessWrite
	}
	if least == accessPreflight && !s.corsAsked {
		least = accessRead
	}
	return least
}

// methodAccess is what one method signal asks: OPTIONS the least (a preflight, if every other
// signal agrees), GET and HEAD a read, anything else a write. Methods are case-sensitive, so
// "get" is a write.
func methodAccess(m string) access {
	switch m {
	case http.MethodOptions:
		return accessPreflight
	case http.MethodGet, http.MethodHead:
		return accessRead
	}
	return accessWrite
}

// upgrades reports whether a request asks to switch protocols: an Upgrade header, "upgrade"
// among the Connection options, or a WebSocket handshake's own headers (a proxy may drop the
// hop-by-hop Upgrade from the auth request but passes these on); and whether the protocol is
// a WebSocket: an Upgrade naming websocket, or the handshake's headers.
func upgrades(h http.Header) (upgrade, webSocket bool) {
	if len(h[hWebSocketKey]) > 0 || len(h[hWebSocketVersion]) > 0 {
		return true, true
	}
	if u := h[hUpgrade]; len(u) > 0 {
		return true, listHas(u, isWebSocketToken)
	}
	for _, v := range h[hConnection] {
		for v != "" {
			var opt string
			opt, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(opt), "upgrade") {
				return true, false
			}
		}
	}
	return false, false
}
