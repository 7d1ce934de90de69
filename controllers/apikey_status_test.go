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

package controllers

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// tableNow is the fixed "now" most status tests start from.
var tableNow = time.Date(2026, time.March, 14, 9, 26, 53, 0, time.UTC)

func tableTime(t time.Time) *metav1.Time { m := metav1.NewTime(t); return &m }

func tableDur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func tableTimeString(t *metav1.Time) string {
	if t == nil {
		return "<nil>"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func TestRotationIsDueOnANewRequestOrWhenTheScheduleComes(t *testing.T) {
	minted := tableNow
	every := 720 * time.Hour
	withSchedule := v1.APIKeySpec{Rotation: &v1.KeyRotation{Every: metav1.Duration{Duration: every}}}
	tests := []struct {
		name          string
		annotation    string
		lastHandled   string
		spec          v1.APIKeySpec
		mintedAt      *metav1.Time
		now           time.Time
		wantRequested bool
		wantDue       bool
		wantWhy       string // substring of the reason
	}{
		{
			name:          "a new rotate-now request",
			annotation:    "2026-03-14T10:00:00Z",
			mintedAt:      tableTime(minted),
			now:           minted.Add(time.Minute),
			wantRequested: true, wantDue: true, wantWhy: v1.AnnotationRotateRequestedAt,
		},
		{
			name:        "a request already handled (recorded in status.lastRotationRequest)",
			annotation:  "2026-03-14T10:00:00Z",
			lastHandled: "2026-03-14T10:00:00Z",
			mintedAt:    tableTime(minted),
			now:         minted.Add(time.Minute),
		},
		{
			name:          "a second request after one was handled",
			annotation:    "2026-03-15T10:00:00Z",
			lastHandled:   "2026-03-14T10:00:00Z",
			mintedAt:      tableTime(minted),
			now:           minted.Add(time.Minute),
			wantRequested: true, wantDue: true, wantWhy: v1.AnnotationRotateRequestedAt,
		},
		{
			name:     "no annotation, no schedule",
			mintedAt: tableTime(minted),
			now:      minted.AddDate(10, 0, 0),
		},
		{
			name:     "schedule not yet due a nanosecond before mintedAt+every",
			spec:     withSchedule,
			mintedAt: tableTime(minted),
			now:      minted.Add(every - time.Nanosecond),
		},
		{
			name:     "schedule due exactly at mintedAt+every",
			spec:     withSchedule,
			mintedAt: tableTime(minted),
			now:      minted.Add(every),
			wantDue:  true, wantWhy: "rotation.every (720h0m0s)",
		},
		{
			name:     "schedule overdue",
			spec:     withSchedule,
			mintedAt: tableTime(minted),
			now:      minted.Add(3 * every),
			wantDue:  true, wantWhy: "has passed since the key was minted",
		},
		{
			name: "schedule on a key never minted",
			spec: withSchedule,
			now:  minted.Add(3 * every),
		},
		{
			name:          "a request and a due schedule: the request is the reason",
			annotation:    "now",
			spec:          withSchedule,
			mintedAt:      tableTime(minted),
			now:           minted.Add(every),
			wantRequested: true, wantDue: true, wantWhy: "annotation",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := &v1.APIKey{Spec: tt.spec, Status: v1.APIKeyStatus{MintedAt: tt.mintedAt, LastRotationRequest: tt.lastHandled}}
			if tt.annotation != "" {
				key.Annotations = map[string]string{v1.AnnotationRotateRequestedAt: tt.annotation}
			}
			if got := rotationRequested(key); got != tt.wantRequested {
				t.Errorf("rotationRequested = %v, want %v", got, tt.wantRequested)
			}
			due, why := rotationDue(key, tt.now)
			if due != tt.wantDue {
				t.Fatalf("rotationDue = %v (%q), want %v", due, why, tt.wantDue)
			}
			if !due && why != "" {
				t.Errorf("rotationDue gave a reason %q while not due", why)
			}
			if due && !strings.Contains(why, tt.wantWhy) {
				t.Errorf("rotationDue reason = %q, want it to mention %q", why, tt.wantWhy)
			}
		})
	}
}

func TestOverlapIsZeroUnlessConfigured(t *testing.T) {
	tests := []struct {
		name string
		rot  *v1.KeyRotation
		want time.Duration
	}{
		{"no rotation", nil, 0},
		{"rotation without overlap", &v1.KeyRotation{Every: metav1.Duration{Duration: time.Hour}}, 0},
		{"rotation with a 24h overlap", &v1.KeyRotation{Every: metav1.Duration{Duration: time.Hour}, Overlap: tableDur(24 * time.Hour)}, 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := overlapOf(&v1.APIKey{Spec: v1.APIKeySpec{Rotation: tt.rot}}); got != tt.want {
			t.Errorf("%s: overlapOf = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRequeueAtTheSoonestScheduledChange(t *testing.T) {
	minted := tableNow.Add(-10 * time.Hour)
	rotation := &v1.KeyRotation{Every: metav1.Duration{Duration: 24 * time.Hour}}
	prev := func(until time.Time) []v1.PreviousKey {
		return []v1.PreviousKey{{KeyID: "old", ValidUntil: metav1.NewTime(until)}}
	}
	tests := []struct {
		name string
		spec v1.APIKeySpec
		st   v1.APIKeyStatus
		want time.Duration
	}{
		{
			name: "nothing scheduled",
			st:   v1.APIKeyStatus{State: v1.KeyActive, MintedAt: tableTime(minted)},
			want: 0,
		},
		{
			name: "already Expired, even with a rotation and an overlap pending",
			spec: v1.APIKeySpec{Rotation: rotation},
			st:   v1.APIKeyStatus{State: v1.KeyExpired, MintedAt: tableTime(minted), ExpiresAt: tableTime(tableNow.Add(time.Hour)), PreviousKeys: prev(tableNow.Add(time.Minute))},
			want: 0,
		},
		{
			name: "only the expiry",
			st:   v1.APIKeyStatus{State: v1.KeyActive, MintedAt: tableTime(minted), ExpiresAt: tableTime(tableNow.Add(3 * time.Hour))},
			want: 3 * time.Hour,
		},
		{
			name: "only the next rotation (mintedAt+every)",
			spec: v1.APIKeySpec{Rotation: rotation},
			st:   v1.APIKeyStatus{State: v1.KeyActive, MintedAt: tableTime(minted)},
			want: 14 * time.Hour,
		},
		{
			name: "the end of an overlap is soonest",
			spec: v1.APIKeySpec{Rotation: rotation},
			st: v1.APIKeyStatus{State: v1.KeyRotating, MintedAt: tableTime(minted), ExpiresAt: tableTime(tableNow.Add(3 * time.Hour)),
				PreviousKeys: []v1.PreviousKey{
					{KeyID: "a", ValidUntil: metav1.NewTime(tableNow.Add(2 * time.Hour))},
					{KeyID: "b", ValidUntil: metav1.NewTime(tableNow.Add(90 * time.Minute))},
				}},
			want: 90 * time.Minute,
		},
		{
			name: "the expiry is soonest",
			spec: v1.APIKeySpec{Rotation: rotation},
			st:   v1.APIKeyStatus{State: v1.KeyRotating, MintedAt: tableTime(minted), ExpiresAt: tableTime(tableNow.Add(time.Minute)), PreviousKeys: prev(tableNow.Add(time.Hour))},
			want: time.Minute,
		},
		{
			name: "the rotation is soonest",
			spec: v1.APIKeySpec{Rotation: rotation},
			st:   v1.APIKeyStatus{State: v1.KeyRotating, MintedAt: tableTime(minted), ExpiresAt: tableTime(tableNow.Add(100 * time.Hour)), PreviousKeys: prev(tableNow.Add(20 * time.Hour))},
			want: 14 * time.Hour,
		},
		{
			name: "an expiry already past gives a tiny positive duration",
			st:   v1.APIKeyStatus{State: v1.KeyActive, MintedAt: tableTime(minted), ExpiresAt: tableTime(tableNow.Add(-time.Hour))},
			want: time.Nanosecond,
		},
		{
			name: "an overdue rotation gives a tiny positive duration",
			spec: v1.APIKeySpec{Rotation: &v1.KeyRotation{Every: metav1.Duration{Duration: time.Hour}}},
			st:   v1.APIKeyStatus{State: v1.KeyActive, MintedAt: tableTime(minted), ExpiresAt: tableTime(tableNow.Add(time.Hour))},
			want: time.Nanosecond,
		},
		{
			name: "an instant equal to now gives a tiny positive duration",
			st:   v1.APIKeyStatus{State: v1.KeyRotating, MintedAt: tableTime(minted), PreviousKeys: prev(tableNow)},
			want: time.Nanosecond,
		},
	}
	for _, tt := range tests {
		key := &v1.APIKey{Spec: tt.spec, Status: tt.st}
		if got := requeueAfter(key, tableNow); got != tt.want {
			t.Errorf("%s: requeueAfter = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestReadyConditionExplainsEveryState(t *testing.T) {
	mintedStatus := func(state v1.KeyState) v1.APIKeyStatus {
		return v1.APIKeyStatus{
			KeyID: "AbCdEfGhIjKl", Masked: "clr_AbCd…wxyz", Hash: "sha256:00", State: state,
			MintedAt: tableTime(tableNow.Add(-time.Hour)), ExpiresAt: tableTime(time.Date(2026, 3, 14, 8, 0, 0, 0, time.FixedZone("CET", 3600))),
			SecretName: "exporter-key",
		}
	}
	rotating := mintedStatus(v1.KeyRotating)
	rotating.PreviousKeys = []v1.PreviousKey{
		{KeyID: "first0000000", ValidUntil: metav1.NewTime(tableNow.Add(time.Hour))},
		{KeyID: "last00000000", ValidUntil: metav1.NewTime(time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC))},
	}
	notReady := &outcome{v1.ReasonApplicationNotFound, "Application \"acme\" was not found"}
	failed := &outcome{v1.ReasonFailed, "the Secret name is taken"}

	tests := []struct {
		name         string
		st           v1.APIKeyStatus
		enabled      *bool
		notReady     *outcome
		failed       *outcome
		wantStatus   metav1.ConditionStatus
		wantReason   string
		wantContains []string
	}{
		{
			name: "a failure wins over everything", st: mintedStatus(v1.KeyActive), notReady: notReady, failed: failed,
			wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonFailed, wantContains: []string{failed.message},
		},
		{
			name: "a pending key says why it is not minted yet", st: v1.APIKeyStatus{State: v1.KeyPending}, notReady: notReady,
			wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonApplicationNotFound, wantContains: []string{notReady.message},
		},
		{
			name: "an expired key never becomes valid again, even with the application gone", st: mintedStatus(v1.KeyExpired), notReady: notReady,
			wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonExpired,
			wantContains: []string{"expired at 2026-03-14T07:00:00Z", "never becomes valid again", "create a new APIKey"},
		},
		{
			name: "a minted key whose application went missing is not ready", st: mintedStatus(v1.KeyActive), notReady: notReady,
			wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonApplicationNotFound, wantContains: []string{notReady.message},
		},
		{
			name: "a disabled key says how to restore it", st: mintedStatus(v1.KeyDisabled), enabled: ptr.To(false),
			wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonDisabled,
			wantContains: []string{"spec.enabled is false", "clr_AbCd…wxyz", "set it to true to restore the same key"},
		},
		{
			name: "a rotating key is ready and names the last previous key", st: rotating,
			wantStatus: metav1.ConditionTrue, wantReason: v1.ReasonRotating,
			wantContains: []string{"clr_AbCd…wxyz is active", "last00000000", "2026-03-15T00:00:00Z"},
		},
		{
			name: "an active key is ready and names its Secret", st: mintedStatus(v1.KeyActive),
			wantStatus: metav1.ConditionTrue, wantReason: v1.ReasonMinted,
			wantContains: []string{"clr_AbCd…wxyz is active", "Secret exporter-key"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := &v1.APIKey{Spec: v1.APIKeySpec{Enabled: tt.enabled}, Status: tt.st}
			status, reason, message := keyCondition(key, tt.notReady, tt.failed)
			if status != tt.wantStatus || reason != tt.wantReason {
				t.Fatalf("keyCondition = %s/%s (%q), want %s/%s", status, reason, message, tt.wantStatus, tt.wantReason)
			}
			for _, s := range tt.wantContains {
				if !strings.Contains(message, s) {
					t.Errorf("message %q does not mention %q", message, s)
				}
			}
			if strings.Contains(message, "first0000000") {
				t.Errorf("message %q names an older previous key instead of the last", message)
			}
		})
	}
}

func TestOddStatusFromARestoreOrAnOldCRDNeverPanicsOrLoops(t *testing.T) {
	created := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	restored := &v1.APIKey{
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1.APIKeySpec{Rotation: &v1.KeyRotation{Every: metav1.Duration{}}},
		Status:     v1.APIKeyStatus{Hash: "sha256:00", State: v1.KeyExpired},
	}
	if got := mintedAt(restored); !got.Equal(created) {
		t.Errorf("a status without mintedAt counts from creation: %s", got)
	}
	restored.Status.MintedAt = &metav1.Time{Time: created}
	if due, _ := rotationDue(restored, created.Add(time.Hour)); due {
		t.Error("a zero rotation period must not rotate on every pass")
	}
	status, reason, msg := keyCondition(restored, nil, nil)
	if status != metav1.ConditionFalse || reason != v1.ReasonExpired || msg != "the key expired and never becomes valid again: create a new APIKey for a new key" {
		t.Errorf("an Expired key without expiresAt: %s %s %q", status, reason, msg)
	}
}

// TestAKeyWhoseApplicationIsGoneIsRevokedForGood: a minted key is lost with the Application
// object it was minted for (deleted, being deleted, or replaced by another of the same name),
// stays lost whatever is applied later, and a key never minted or already expired is not judged.
func TestAKeyWhoseApplicationIsGoneIsRevokedForGood(t *testing.T) {
	app := func(uid string, mutate ...func(*v1.Application)) *v1.Application {
		a := &v1.Application{ObjectMeta: metav1.ObjectMeta{Name: "bi", UID: types.UID(uid), CreationTimestamp: metav1.NewTime(tableNow)}}
		for _, m := range mutate {
			m(a)
		}
		return a
	}
	deleting := func(a *v1.Application) { a.DeletionTimestamp = tableTime(tableNow) }
	minted := func(uid string, state v1.KeyState) *v1.APIKey {
		return &v1.APIKey{Spec: v1.APIKeySpec{ApplicationName: "bi"}, Status: v1.APIKeyStatus{
			Hash: "sha256:00", State: state, ApplicationUID: types.UID(uid), MintedAt: tableTime(tableNow.Add(time.Hour))}}
	}
	for _, tt := range []struct {
		name string
		key  *v1.APIKey
		app  *v1.Application
		want string
	}{
		{"its very Application", minted("uid-a", v1.KeyActive), app("uid-a"), ""},
		{"no Application", minted("uid-a", v1.KeyActive), nil, v1.ReasonApplicationDeleted},
		{"its Application being deleted", minted("uid-a", v1.KeyRotating), app("uid-a", deleting), v1.ReasonApplicationDeleted},
		{"another Application of the same name", minted("uid-a", v1.KeyActive), app("uid-b"), v1.ReasonApplicationReplaced},
		{"disabled, another Application of the same name", minted("uid-a", v1.KeyDisabled), app("uid-b"), v1.ReasonApplicationReplaced},
		{"revoked once, whatever is there now", minted("", v1.KeyFailed), app("uid-b"), v1.ReasonApplicationReplaced},
		{"no UID recorded, minted after the Application", minted("", v1.KeyActive), app("uid-b"), ""},
		{"no UID recorded, the Application created after the key", func() *v1.APIKey {
			k := minted("", v1.KeyActive)
			k.Status.MintedAt = tableTime(tableNow.Add(-time.Hour))
			return k
		}(), app("uid-b"), v1.ReasonApplicationReplaced},
		{"never minted", &v1.APIKey{Status: v1.APIKeyStatus{State: v1.KeyPending}}, nil, ""},
		{"expired already: stays Expired", minted("uid-a", v1.KeyExpired), nil, ""},
	} {
		if got := applicationLost(tt.key, tt.app); got != tt.want {
			t.Errorf("%s: applicationLost = %q, want %q", tt.name, got, tt.want)
		}
	}
	msg := applicationLostMessage(minted("uid-a", v1.KeyActive), v1.ReasonApplicationReplaced)
	for _, want := range []string{`Application "bi" (UID uid-a)`, "created since", "revoked for good", "delete this APIKey and apply it again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
}
