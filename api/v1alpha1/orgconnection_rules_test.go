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

package v1alpha1

import "testing"

func TestEveryTransportIsAllowedUnlessRefused(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ct      *ConnectionTransports
		refused []Transport
	}{
		{name: "no transports field (objects from before it)", ct: nil},
		{name: "empty", ct: &ConnectionTransports{}},
		{name: "all allowed", ct: &ConnectionTransports{WebSockets: TransportAllowed, ServerSentEvents: TransportAllowed, LongPolling: TransportAllowed}},
		{name: "WebSockets refused", ct: &ConnectionTransports{WebSockets: TransportRefused}, refused: []Transport{TransportWebSockets}},
		{name: "SSE refused", ct: &ConnectionTransports{ServerSentEvents: TransportRefused}, refused: []Transport{TransportServerSentEvents}},
		{name: "long polling refused", ct: &ConnectionTransports{LongPolling: TransportRefused}, refused: []Transport{TransportLongPolling}},
		{name: "all refused", ct: &ConnectionTransports{WebSockets: TransportRefused, ServerSentEvents: TransportRefused, LongPolling: TransportRefused}, refused: Transports},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := OrgConnectionSpec{Transports: tt.ct}
			for _, tr := range Transports {
				want := true
				for _, r := range tt.refused {
					if r == tr {
						want = false
					}
				}
				if got := spec.TransportAllowed(tr); got != want {
					t.Errorf("%s allowed = %v, want %v", tr, got, want)
				}
			}
			if !spec.TransportAllowed("Carrier pigeon") {
				t.Error("an unknown transport is refused; nothing can refuse it")
			}
		})
	}
}

func TestSettingATransportPolicy(t *testing.T) {
	var ct ConnectionTransports
	for _, tr := range Transports {
		if !ct.Set(tr, TransportRefused) || ct.Policy(tr) != TransportRefused {
			t.Errorf("Set(%s, Refused) did not refuse it", tr)
		}
	}
	if ct.Set("Carrier pigeon", TransportRefused) {
		t.Error("Set accepted an unknown transport")
	}
}
