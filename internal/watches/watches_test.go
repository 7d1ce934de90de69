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
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
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
