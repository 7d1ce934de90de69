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

package watches

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestOnlyCallsThatGotNoAnswerAreRetried(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	gr := schema.GroupResource{Group: "access.clearance.dev", Resource: "apikeys"}
	for _, tc := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"connection refused", refused, true},
		{"connection reset", &url.Error{Op: "Get", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}, true},
		{"cut mid-answer", &url.Error{Op: "Get", Err: io.ErrUnexpectedEOF}, true},
		{"closed", fmt.Errorf("watch: %w", io.EOF), true},
		{"429", apierrors.NewTooManyRequests("slow down", 1), false},
		{"500", apierrors.NewInternalError(errors.New("etcd")), false},
		{"410 Gone", apierrors.NewResourceExpired("too old resource version"), false},
		{"403", apierrors.NewForbidden(gr, "", errors.New("RBAC")), false},
		{"bad certificate", &url.Error{Op: "Get", Err: x509.UnknownAuthorityError{}}, false},
		{"cancelled", context.Canceled, false},
	} {
		if got := unreachable(tc.err); got != tc.retry {
			t.Errorf("%s (%v): retried %v, want %v", tc.name, tc.err, got, tc.retry)
		}
	}
}

func TestARetryEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := retry(ctx, clock.RealClock{}, func() (struct{}, error) {
		calls++
		if calls == 3 {
			cancel()
		}
		return struct{}{}, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	})
	if calls != 3 || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after its context ended: %d calls, error %v; want 3 calls and the last error", calls, err)
	}
}

// TestACallTheAPIServerAnsweredGoesBackToTheReflectorAtOnce: retrying inside the call is only
// for calls that got no answer. One the apiserver answered with an error goes back to the
// reflector after that one call, above all 410 Gone: the informer must list again, and retrying
// the same watch would leave it blind for good while the verifier's probe, which gets answers,
// keeps it looking fresh. A call that got no answer is retried until one comes.
func TestACallTheAPIServerAnsweredGoesBackToTheReflectorAtOnce(t *testing.T) {
	gr := schema.GroupResource{Group: "access.clearance.dev", Resource: "apikeys"}
	for _, answered := range []error{
		apierrors.NewResourceExpired("too old resource version"),
		apierrors.NewTooManyRequests("slow down", 1),
		apierrors.NewInternalError(errors.New("etcd")),
		apierrors.NewForbidden(gr, "", errors.New("RBAC")),
		&url.Error{Op: "Get", Err: x509.UnknownAuthorityError{}},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		_, err := retry(ctx, noWait{}, func() (struct{}, error) {
			calls++
			if calls == 3 {
				cancel() // ends a retry loop that should never have begun
			}
			return struct{}{}, answered
		})
		cancel()
		if calls != 1 || !errors.Is(err, answered) {
			t.Errorf("%v: %d calls, error %v; want one call and that error", answered, calls, err)
		}
	}
	calls := 0
	got, err := retry(context.Background(), noWait{}, func() (int, error) {
		if calls++; calls < 5 {
			return 0, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		return 42, nil
	})
	if calls != 5 || err != nil || got != 42 {
		t.Errorf("refused four times, then answered: %d calls, %d, %v; want 5 calls and the answer", calls, got, err)
	}
}

// noWait is a clock whose waits are over at once.
type noWait struct{ clock.RealClock }

func (noWait) After(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

// TestARetryWaitingOutItsBackoffEndsTheMomentItsContextDoes: an informer stopped while its
// call waits to try the unreachable apiserver again returns at once, without waiting out the
// wait on its clock and without another call.
func TestARetryWaitingOutItsBackoffEndsTheMomentItsContextDoes(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		_, err := retry(ctx, clk, func() (struct{}, error) {
			calls.Add(1)
			return struct{}{}, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		})
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); !clk.HasWaiters(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the retry never waited on its clock")
		}
	}
	cancel()
	select {
	case err := <-done:
		if n := calls.Load(); n != 1 || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("ended while waiting: %d calls, error %v; want the one call and its error", n, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the retry still waits on its clock after its context ended")
	}
}

// TestNoRetryWaitsLongerThanMaxRetryInterval: the waits between calls that get no answer grow
// from 100 ms and, jitter included, never exceed MaxRetryInterval: an informer retries at most
// every second (docs/reliability.md, docs/verifier.md) however long the outage.
func TestNoRetryWaitsLongerThanMaxRetryInterval(t *testing.T) {
	clk := &recordingClock{}
	calls := 0
	if _, err := retry(context.Background(), clk, func() (struct{}, error) {
		if calls++; calls <= 200 {
			return struct{}{}, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(clk.waits) != 200 || clk.waits[0] < 100*time.Millisecond || clk.waits[199] < MaxRetryInterval/2 {
		t.Errorf("%d waits, the first %s, the last %s; want 200 growing from 100 ms", len(clk.waits), clk.waits[0], clk.waits[len(clk.waits)-1])
	}
	for i, w := range clk.waits {
		if w > MaxRetryInterval {
			t.Fatalf("wait %d is %s, longer than MaxRetryInterval (%s)", i+1, w, MaxRetryInterval)
		}
	}
}

// recordingClock records the waits asked of it, each over at once.
type recordingClock struct {
	clock.RealClock
	waits []time.Duration
}

func (c *recordingClock) After(d time.Duration) <-chan time.Time {
	c.waits = append(c.waits, d)
	return noWait{}.After(d)
}
