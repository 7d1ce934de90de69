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

// Package watches makes the manager's informers resume their watches as soon as the apiserver
// answers again after an outage, and lets their readers tell whether they are watching now.
//
// client-go's reflector backs off between failed watches, growing to 30 s and, with its
// jitter, up to 60 s; after an outage of tens of seconds an informer stays blind that long
// after the apiserver is back. The controllers converge late and the verifier, which must not
// answer from a view that misses revocations, stays stale. Here a List or Watch that fails for
// want of a connection is retried inside the call, at most every MaxRetryInterval, so the
// reflector's own backoff never grows during an outage. Answers from the apiserver (429, 500,
// 410 Gone and the rest) are returned to the reflector untouched, and so is its backoff for
// them.
package watches

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// MaxRetryInterval is the longest wait between two attempts to reach an unreachable apiserver;
// the first retry comes after 100 ms.
const MaxRetryInterval = time.Second

// NewInformerFunc returns a constructor for controller-runtime's cache.Options.NewInformer that
// builds Informers, waiting between retries on clk.
func NewInformerFunc(clk clock.Clock) func(toolscache.ListerWatcher, runtime.Object, time.Duration, toolscache.Indexers) toolscache.SharedIndexInformer {
	return func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
		r := &retrying{lw: toolscache.ToListerWatcherWithContext(lw), clock: clk}
		return &Informer{SharedIndexInformer: toolscache.NewSharedIndexInformer(r, obj, resync, indexers), lw: r}
	}
}

// Health is what an informer tells its readers about its link to the apiserver: how many
// watches it has had accepted so far and whether one is open now (Informer.Watching). A
// reader that must not answer from a view missing changes (the verifier) asks the manager's
// informers for it.
type Health interface {
	Watching() (opened uint64, open bool)
}

// Informer is a SharedIndexInformer whose list and watch calls retry while the apiserver
// cannot be reached, and which counts its watches.
type Informer struct {
	toolscache.SharedIndexInformer
	lw *retrying
}

var _ Health = (*Informer)(nil)

// Watching says how many watches the informer has had accepted by the apiserver so far, and
// whether one is open now. A watch accepted after some instant, and still open, delivers every
// change made since the informer's last synced resource version: the informer follows the
// apiserver again.
func (i *Informer) Watching() (opened uint64, open bool) {
	return i.lw.opened.Load(), i.lw.open.Load() > 0
}

// retrying is a ListerWatcher that retries calls failed for want of a connection.
type retrying struct {
	lw     toolscache.ListerWatcherWithContext
	clock  clock.Clock
	opened atomic.Uint64
	open   atomic.Int64
}

func (r *retrying) List(options metav1.ListOptions) (runtime.Object, error) {
	return r.ListWithContext(context.Background(), options)
}

func (r *retrying) Watch(options metav1.ListOptions) (watch.Interface, error) {
	return r.WatchWithContext(context.Background(), options)
}

func (r *retrying) ListWithContext(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
	return retry(ctx, r.clock, func() (runtime.Object, error) { return r.lw.ListWithContext(ctx, options) })
}

func (r *retrying) WatchWithContext(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
	w, err := retry(ctx, r.clock, func() (watch.Interface, error) { return r.lw.WatchWithContext(ctx, options) })
	if err != nil {
		return nil, err
	}
	r.opened.Add(1)
	r.open.Add(1)
	return &counted{Interface: w, closed: func() { r.open.Add(-1) }}, nil
}

// counted is a watch that says when it is stopped: the reflector stops every watch it has
// done with, whether it timed out, broke or was abandoned.
type counted struct {
	watch.Interface
	stopped atomic.Bool
	closed  func()
}

func (c *counted) Stop() {
	if c.stopped.CompareAndSwap(false, true) {
		c.closed()
	}
	c.Interface.Stop()
}

// retry calls call until it succeeds, fails with something other than a lost connection, or
// ctx ends (returning the last error).
func retry[T any](ctx context.Context, clk clock.Clock, call func() (T, error)) (T, error) {
	// The jitter (up to a fifth more) is added after the cap: capped at five sixths, no wait
	// exceeds MaxRetryInterval.
	backoff := wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: math.MaxInt32, Cap: MaxRetryInterval * 5 / 6}
	logged := false
	for {
		v, err := call()
		if err == nil || !unreachable(err) || ctx.Err() != nil {
			return v, err
		}
		if !logged {
			log.FromContext(ctx).Info("apiserver unreachable; retrying until it answers", "maxInterval", MaxRetryInterval.String(), "error", err.Error())
			logged = true
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-clk.After(backoff.Step()):
		}
	}
}

// unreachable says whether err means the call never got an answer from the apiserver: a
// refused, reset or cut connection, or one that timed out.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
