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

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// tableNow is the fixed "now" the rule tables start from.
var tableNow = time.Date(2026, time.March, 14, 9, 26, 53, 0, time.UTC)

func tableTime(t time.Time) *metav1.Time { m := metav1.NewTime(t); return &m }

func tableDur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func tableTimeString(t *metav1.Time) string {
	if t == nil {
		return "<nil>"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func TestEnabledIsTrueUnlessSetFalse(t *testing.T) {
	for _, tt := range []struct {
		enabled *bool
		want    bool
	}{{nil, true}, {ptr.To(true), true}, {ptr.To(false), false}} {
		if got := (&APIKey{Spec: APIKeySpec{Enabled: tt.enabled}}).IsEnabled(); got != tt.want {
			t.Errorf("APIKey enabled %v: IsEnabled = %v", tt.enabled, got)
		}
		if got := (&Application{Spec: ApplicationSpec{Enabled: tt.enabled}}).IsEnabled(); got != tt.want {
			t.Errorf("Application enabled %v: IsEnabled = %v", tt.enabled, got)
		}
		if got := (Metric{Enabled: tt.enabled}).IsEnabled(); got != tt.want {
			t.Errorf("Metric enabled %v: IsEnabled = %v", tt.enabled, got)
		}
	}
}

func TestSecretNameDefaultsToKeySuffix(t *testing.T) {
	for _, tt := range []struct{ name, secretName, want string }{
		{"prod-exporter", "", "prod-exporter-key"},
		{"prod-exporter", "exporter-credentials", "exporter-credentials"},
	} {
		k := &APIKey{ObjectMeta: metav1.ObjectMeta{Name: tt.name}, Spec: APIKeySpec{SecretName: tt.secretName}}
		if got := k.SecretNameOrDefault(); got != tt.want {
			t.Errorf("%s/%q: SecretNameOrDefault = %q, want %q", tt.name, tt.secretName, got, tt.want)
		}
	}
}

func TestEffectiveExpiryIsTheEarlierOfSpecAndStatus(t *testing.T) {
	early, late := tableTime(tableNow), tableTime(tableNow.Add(time.Hour))
	for _, tt := range []struct {
		name         string
		spec, status *metav1.Time
		want         *metav1.Time
	}{
		{"none", nil, nil, nil},
		{"status only", nil, late, late},
		{"spec only (not recorded yet)", early, nil, early},
		{"a shortened spec wins before it is recorded", early, late, early},
		{"an extended spec waits until it is recorded", late, early, early},
	} {
		k := &APIKey{Spec: APIKeySpec{ExpiresAt: tt.spec}, Status: APIKeyStatus{ExpiresAt: tt.status}}
		if got := k.EffectiveExpiry(); tableTimeString(got) != tableTimeString(tt.want) {
			t.Errorf("%s: EffectiveExpiry = %s, want %s", tt.name, tableTimeString(got), tableTimeString(tt.want))
		}
	}
}

func TestExpiryIsSpecExpiresAtOrFixedTTL(t *testing.T) {
	mintedAt := tableNow.Add(123456789 * time.Nanosecond) // sub-second part must not leak into a TTL expiry
	tests := []struct {
		name string
		spec APIKeySpec
		st   APIKeyStatus
		want *metav1.Time
	}{
		{
			name: "spec.expiresAt wins over ttl and a status expiry",
			spec: APIKeySpec{ExpiresAt: tableTime(tableNow.Add(48 * time.Hour)), TTL: tableDur(time.Hour)},
			st:   APIKeyStatus{ExpiresAt: tableTime(tableNow.Add(time.Hour))},
			want: tableTime(tableNow.Add(48 * time.Hour)),
		},
		{
			name: "spec.expiresAt alone",
			spec: APIKeySpec{ExpiresAt: tableTime(tableNow.Add(time.Minute))},
			want: tableTime(tableNow.Add(time.Minute)),
		},
		{
			name: "ttl keeps the instant fixed at first mint, even after a rotation mints again",
			spec: APIKeySpec{TTL: tableDur(720 * time.Hour)},
			st:   APIKeyStatus{ExpiresAt: tableTime(tableNow.Add(-time.Hour))},
			want: tableTime(tableNow.Add(-time.Hour)),
		},
		{
			name: "ttl on a key minted now runs from mintedAt, truncated to the second",
			spec: APIKeySpec{TTL: tableDur(90 * time.Minute)},
			want: tableTime(tableNow.Add(90 * time.Minute)),
		},
		{
			name: "neither expiresAt nor ttl never expires",
			spec: APIKeySpec{},
			want: nil,
		},
		{
			name: "a status expiry without ttl or expiresAt is not kept",
			spec: APIKeySpec{},
			st:   APIKeyStatus{ExpiresAt: tableTime(tableNow)},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := &APIKey{Spec: tt.spec, Status: tt.st}
			got := key.ExpiryFor(mintedAt)
			if (got == nil) != (tt.want == nil) || (got != nil && !got.Time.Equal(tt.want.Time)) {
				t.Fatalf("ExpiryFor = %s, want %s", tableTimeString(got), tableTimeString(tt.want))
			}
			if got != nil && got.Nanosecond() != 0 {
				t.Errorf("ExpiryFor = %s has a sub-second part", tableTimeString(got))
			}
			// The result is a copy: changing it must not move the spec or status instant.
			if got != nil {
				before := tableTimeString(tt.spec.ExpiresAt) + tableTimeString(tt.st.ExpiresAt)
				got.Time = got.Add(time.Hour)
				if after := tableTimeString(key.Spec.ExpiresAt) + tableTimeString(key.Status.ExpiresAt); after != before {
					t.Errorf("ExpiryFor returned an alias of the key's own time")
				}
			}
		})
	}
}

func TestExpiryInstantItselfIsExpired(t *testing.T) {
	at := tableTime(tableNow)
	tests := []struct {
		name      string
		expiresAt *metav1.Time
		now       time.Time
		want      bool
	}{
		{"a nanosecond before expiry", at, tableNow.Add(-time.Nanosecond), false},
		{"the expiry instant itself", at, tableNow, true},
		{"after expiry", at, tableNow.Add(time.Second), true},
		{"no expiry, far future", nil, tableNow.AddDate(100, 0, 0), false},
		{"no expiry, zero time", nil, time.Time{}, false},
	}
	for _, tt := range tests {
		if got := ExpiredAt(tt.expiresAt, tt.now); got != tt.want {
			t.Errorf("%s: ExpiredAt = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPreviousKeyStopsWorkingExactlyAtValidUntil(t *testing.T) {
	prev := func(id string, until time.Time) PreviousKey {
		return PreviousKey{KeyID: id, Hash: "sha256:" + id, ValidUntil: metav1.NewTime(until)}
	}
	all := []PreviousKey{
		prev("ended", tableNow.Add(-time.Hour)),
		prev("endsnow", tableNow),
		prev("justlive", tableNow.Add(time.Nanosecond)),
		prev("live", tableNow.Add(time.Hour)),
	}
	tests := []struct {
		name string
		in   []PreviousKey
		now  time.Time
		want []string
	}{
		{"none", nil, tableNow, nil},
		{"drops ended and ending-now keys, keeps order", all, tableNow, []string{"justlive", "live"}},
		{"everything live long before", all, tableNow.Add(-2 * time.Hour), []string{"ended", "endsnow", "justlive", "live"}},
		{"everything gone long after", all, tableNow.Add(2 * time.Hour), nil},
	}
	for _, tt := range tests {
		got := (&APIKey{Status: APIKeyStatus{PreviousKeys: tt.in}}).LivePreviousKeys(tt.now)
		var ids []string
		for _, p := range got {
			ids = append(ids, p.KeyID)
		}
		if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: LivePreviousKeys = %v, want %v", tt.name, ids, tt.want)
		}
	}
	if len(all) != 4 || all[0].KeyID != "ended" {
		t.Errorf("LivePreviousKeys modified its input: %v", all)
	}
}

func TestKeyStateFollowsExpiryEnabledAndRotation(t *testing.T) {
	prev := []PreviousKey{{KeyID: "old", ValidUntil: metav1.NewTime(tableNow.Add(time.Hour))}}
	tests := []struct {
		name string
		spec APIKeySpec
		st   APIKeyStatus
		want KeyState
	}{
		{
			name: "Expired is final even if spec.expiresAt is moved later",
			spec: APIKeySpec{ExpiresAt: tableTime(tableNow.AddDate(1, 0, 0))},
			st:   APIKeyStatus{State: KeyExpired, ExpiresAt: tableTime(tableNow.Add(-time.Hour))},
			want: KeyExpired,
		},
		{
			name: "Expired is final even if status.expiresAt is later than now",
			st:   APIKeyStatus{State: KeyExpired, ExpiresAt: tableTime(tableNow.Add(time.Hour))},
			want: KeyExpired,
		},
		{
			name: "reaching status.expiresAt makes it Expired",
			st:   APIKeyStatus{State: KeyActive, ExpiresAt: tableTime(tableNow)},
			want: KeyExpired,
		},
		{
			name: "Expired wins over Disabled and Rotating",
			spec: APIKeySpec{Enabled: ptr.To(false)},
			st:   APIKeyStatus{ExpiresAt: tableTime(tableNow.Add(-time.Second)), PreviousKeys: prev},
			want: KeyExpired,
		},
		{
			name: "enabled: false is Disabled, even while rotating",
			spec: APIKeySpec{Enabled: ptr.To(false)},
			st:   APIKeyStatus{State: KeyRotating, ExpiresAt: tableTime(tableNow.Add(time.Hour)), PreviousKeys: prev},
			want: KeyDisabled,
		},
		{
			name: "previous keys still in their overlap is Rotating",
			spec: APIKeySpec{Enabled: ptr.To(true)},
			st:   APIKeyStatus{State: KeyActive, PreviousKeys: prev},
			want: KeyRotating,
		},
		{
			name: "re-enabling a Disabled key makes it Active again",
			st:   APIKeyStatus{State: KeyDisabled},
			want: KeyActive,
		},
		{
			name: "a minted key revoked with its Application stays Failed, enabled and all",
			spec: APIKeySpec{Enabled: ptr.To(true)},
			st:   APIKeyStatus{State: KeyFailed, Hash: "sha256:x", PreviousKeys: prev},
			want: KeyFailed,
		},
		{
			name: "Expired wins over Failed",
			st:   APIKeyStatus{State: KeyFailed, Hash: "sha256:x", ExpiresAt: tableTime(tableNow)},
			want: KeyExpired,
		},
		{
			name: "unset enabled with a future expiry is Active",
			st:   APIKeyStatus{ExpiresAt: tableTime(tableNow.Add(time.Nanosecond))},
			want: KeyActive,
		},
	}
	for _, tt := range tests {
		key := &APIKey{Spec: tt.spec, Status: tt.st}
		if got := key.StateAt(tableNow); got != tt.want {
			t.Errorf("%s: StateAt = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestAKeyWorksOnlyForTheApplicationObjectItWasMintedFor: the UID decides, not the name; a key
// from before the UID was recorded is taken for its Application's unless that Application was
// created after the key was minted (beyond the allowed clock skew).
func TestAKeyWorksOnlyForTheApplicationObjectItWasMintedFor(t *testing.T) {
	app := &Application{ObjectMeta: metav1.ObjectMeta{Name: "bi", UID: "uid-now", CreationTimestamp: metav1.NewTime(tableNow)}}
	for _, tt := range []struct {
		name     string
		uid      string
		mintedAt *metav1.Time
		want     bool
	}{
		{"the UID it was minted for", "uid-now", tableTime(tableNow.Add(-time.Hour)), true},
		{"another object of the same name", "uid-before", tableTime(tableNow.Add(time.Hour)), false},
		{"no UID, minted after the Application was created", "", tableTime(tableNow.Add(time.Hour)), true},
		{"no UID, minted a little before, within the clock skew", "", tableTime(tableNow.Add(-MintClockSkew)), true},
		{"no UID, minted before the Application was created", "", tableTime(tableNow.Add(-MintClockSkew - time.Second)), false},
		{"no UID, no mint time (an odd restore)", "", nil, true},
	} {
		key := &APIKey{Status: APIKeyStatus{ApplicationUID: types.UID(tt.uid), MintedAt: tt.mintedAt}}
		if got := key.MintedFor(app); got != tt.want {
			t.Errorf("%s: MintedFor = %v, want %v", tt.name, got, tt.want)
		}
	}
}
