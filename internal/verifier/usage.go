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
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

const (
	// flushWorkers bounds concurrent usage patches; the client's QPS limit bounds them further.
	flushWorkers = 4
	// flushAttempts bounds optimistic-lock retries for one key in one flush; what is left over
	// goes out with the next flush.
	flushAttempts = 5
)

// errGone means the APIKey the usage belongs to no longer exists (deleted, or replaced by a
// new object of the same name): its usage is dropped, not retried.
var errGone = errors.New("the APIKey no longer exists")

// Flush writes the usage counted since the last flush to APIKey status: one merge patch per
// used key, adding the delta to the usageCount it reads and moving lastUsedAt forward, with a
// resourceVersion precondition so replicas that flush at the same time add up instead of
// overwriting each other. Counts that cannot be written are kept for the next flush. The
// flusher calls it every FlushInterval and on shutdown; tests call it to flush deterministically.
func (v *Verifier) Flush(ctx context.Context) error {
	batch := v.usage.take()
	if len(batch) == 0 {
		return nil
	}
	if v.client == nil {
		for _, ref := range batch {
			if u := v.index.usageOf(ref); u != nil {
				v.usage.giveBack(ref, u, u.pending.Swap(0))
			}
		}
		return errors.New("verifier: no client to write usage with (SetupWithManager was not called)")
	}
	work := make(chan ownerRef)
	var mu sync.Mutex
	var failed int
	var firstErr error
	var wg sync.WaitGroup
	for range min(flushWorkers, len(batch)) {
		wg.Go(func() {
			for ref := range work {
				if err := v.flushOne(ctx, ref); err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, ref := range batch {
		work <- ref
	}
	close(work)
	wg.Wait()
	if failed > 0 {
		return fmt.Errorf("verifier: usage of %d of %d APIKeys not written, kept for the next flush: %w", failed, len(batch), firstErr)
	}
	return nil
}

func (v *Verifier) flushOne(ctx context.Context, ref ownerRef) error {
	u := v.index.usageOf(ref)
	uid, namespace, name, ok := v.index.identity(ref)
	if u == nil || !ok {
		return nil // the APIKey went away; its usage with it
	}
	delta := u.pending.Swap(0)
	if delta == 0 {
		return nil
	}
	key := usageKey{uid: uid, namespace: namespace, name: name}
	err := v.patchUsage(ctx, key, delta, u.lastUsed.Load())
	switch {
	case err == nil:
		v.metrics.flushes.WithLabelValues("ok").Inc()
		return nil
	case errors.Is(err, errGone):
		v.metrics.flushes.WithLabelValues("gone").Inc()
		return nil
	case apierrors.IsConflict(err):
		v.metrics.flushes.WithLabelValues("conflict").Inc()
	default:
		v.metrics.flushes.WithLabelValues("error").Inc()
	}
	v.usage.giveBack(ref, u, delta)
	return fmt.Errorf("APIKey %s/%s: %w", namespace, name, err)
}

// usageKey is the APIKey whose usage is written.
type usageKey struct {
	uid             types.UID
	namespace, name string
}

// patchUsage adds delta to the APIKey's usageCount and sets lastUsedAt (unix seconds) if later.
// The first read comes from the informer cache; after a conflict, from the apiserver.
func (v *Verifier) patchUsage(ctx context.Context, u usageKey, delta, lastUsed int64) error {
	var err error
	for attempt := range flushAttempts {
		reader := client.Reader(v.client)
		if attempt > 0 {
			reader = v.apiReader
		}
		key := &v1.APIKey{}
		if err = reader.Get(ctx, client.ObjectKey{Namespace: u.namespace, Name: u.name}, key); err != nil {
			if apierrors.IsNotFound(err) {
				return errGone
			}
			return err
		}
		if key.UID != u.uid {
			return errGone
		}
		orig := key.DeepCopy()
		key.Status.UsageCount += delta
		if last := metav1.NewTime(time.Unix(lastUsed, 0).UTC()); lastUsed > 0 &&
			(key.Status.LastUsedAt == nil || key.Status.LastUsedAt.Before(&last)) {
			key.Status.LastUsedAt = &last
		}
		err = v.client.Status().Patch(ctx, key, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		if err == nil {
			return nil
		}
		if apierrors.IsNotFound(err) {
			return errGone
		}
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}
