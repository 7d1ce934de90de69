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
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

func TestFetchAndFetchLive(t *testing.T) {
	ns := env.Namespace(t, "fetch")
	live := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "live"}, Spec: v1.ApplicationSpec{Description: "live"}}
	going := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "going", Finalizers: []string{"test.clearance.dev/hold"}},
		Spec: v1.ApplicationSpec{Description: "going"}}
	create(t, live)
	create(t, going)
	if err := env.Client.Delete(context.Background(), going); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		_ = env.Client.Patch(context.Background(), going, client.RawPatch(types.MergePatchType, patch))
	})
	broken := errors.New("cache unavailable")
	real, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	c := interceptor.NewClient(real, interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if key.Name == "broken" {
			return broken
		}
		return c.Get(ctx, key, obj, opts...)
	}})
	req := func(name string) ctrl.Request {
		return ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		fetch    func(context.Context, client.Reader, ctrl.Request) (*v1.Application, error)
		obj      string
		wantName string
		wantErr  error
	}{
		{"fetch: found", fetch[v1.Application], "live", "live", nil},
		{"fetch: being deleted, still there", fetch[v1.Application], "going", "going", nil},
		{"fetch: gone", fetch[v1.Application], "gone", "", nil},
		{"fetch: read failed", fetch[v1.Application], "broken", "", broken},
		{"fetchLive: found", fetchLive[v1.Application], "live", "live", nil},
		{"fetchLive: being deleted", fetchLive[v1.Application], "going", "", nil},
		{"fetchLive: gone", fetchLive[v1.Application], "gone", "", nil},
		{"fetchLive: read failed", fetchLive[v1.Application], "broken", "", broken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.fetch(ctx, c, req(tc.obj))
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			switch {
			case tc.wantName == "" && got != nil:
				t.Errorf("got %s, want nothing to reconcile", got.Name)
			case tc.wantName != "" && (got == nil || got.Name != tc.wantName):
				t.Errorf("got %v, want %s", got, tc.wantName)
			}
		})
	}
}

func TestRequestsFor(t *testing.T) {
	sets := []v1.MetricSet{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "acme", Name: "a"}, Spec: v1.MetricSetSpec{CatalogRef: &v1.CatalogReference{Name: "catalog"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "acme", Name: "b"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "globex", Name: "c"}, Spec: v1.MetricSetSpec{CatalogRef: &v1.CatalogReference{Name: "catalog"}}},
	}
	names := func(reqs []reconcile.Request) []string {
		var out []string
		for _, r := range reqs {
			out = append(out, r.String())
		}
		return out
	}
	for _, tc := range []struct {
		name string
		keep func(*v1.MetricSet) bool
		want []string
	}{
		{"all", nil, []string{"acme/a", "acme/b", "globex/c"}},
		{"some", func(ms *v1.MetricSet) bool { return ms.Spec.CatalogRef != nil }, []string{"acme/a", "globex/c"}},
		{"none", func(*v1.MetricSet) bool { return false }, nil},
	} {
		if got := names(requestsFor(sets, tc.keep)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := requestsFor[v1.MetricSet](nil, nil); got != nil {
		t.Errorf("no objects: got %v, want none", got)
	}
}

// TestPatchStatusWritesOnlyAChangeHeldToTheVersionRead: patchStatus sends nothing when the status
// is unchanged, sends numbers exactly as they are (a count past 2^53 included), removes what the
// new status drops, leaves the written copy at the version its write made, and is refused with a
// conflict when the object changed since the copy it diffs against was read.
func TestPatchStatusWritesOnlyAChangeHeldToTheVersionRead(t *testing.T) {
	ns := env.Namespace(t, "patch-status")
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "k"}, Spec: v1.APIKeySpec{ApplicationName: "absent"}}
	create(t, key)
	ctx := context.Background()
	// The operator's pass (the application is missing) writes its status once; then it is quiet.
	eventually(t, "the operator's first status", func() (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), key)
		return len(key.Status.Conditions) > 0, err
	})
	b := &reconcilerBase{client: env.Client}

	read := key.DeepCopy()
	if err := b.patchStatus(ctx, read, read.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	unchanged := &v1.APIKey{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), unchanged); err != nil {
		t.Fatal(err)
	}
	if unchanged.ResourceVersion != read.ResourceVersion {
		t.Errorf("an unchanged status was written: resourceVersion %s, then %s", read.ResourceVersion, unchanged.ResourceVersion)
	}

	const past53 = int64(1)<<53 + 1
	changed := read.DeepCopy()
	changed.Status.UsageCount = past53
	if err := b.patchStatus(ctx, read, changed); err != nil {
		t.Fatal(err)
	}
	got := &v1.APIKey{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.UsageCount != past53 {
		t.Errorf("status.usageCount is %d, want %d", got.Status.UsageCount, past53)
	}
	// The written copy carries the version the write made, so the next write of the same pass
	// (a delete held to it, a second patch) is not refused as stale.
	if changed.ResourceVersion != got.ResourceVersion {
		t.Errorf("after the write the copy has resourceVersion %s, the apiserver %s", changed.ResourceVersion, got.ResourceVersion)
	}

	// A field the new status drops is removed, not left as it was; the rest stays.
	cleared := got.DeepCopy()
	cleared.Status.UsageCount = 0
	if err := b.patchStatus(ctx, got, cleared); err != nil {
		t.Fatal(err)
	}
	after := &v1.APIKey{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), after); err != nil {
		t.Fatal(err)
	}
	if after.Status.UsageCount != 0 || len(after.Status.Conditions) != len(got.Status.Conditions) {
		t.Errorf("after dropping usageCount: usageCount %d, %d conditions; want 0 and %d", after.Status.UsageCount, len(after.Status.Conditions), len(got.Status.Conditions))
	}

	stale := read.DeepCopy() // read before the writes above
	changed = stale.DeepCopy()
	changed.Status.UsageCount = 7
	if err := b.patchStatus(ctx, stale, changed); !apierrors.IsConflict(err) {
		t.Errorf("a status patch against a copy read before another write: %v, want a conflict", err)
	}
	noVersion := read.DeepCopy()
	noVersion.ResourceVersion = ""
	if err := b.patchStatus(ctx, noVersion, changed); err == nil {
		t.Error("a status patch without a resourceVersion to hold it to was sent")
	}
}

// TestRoutineErrorsAreRetriedQuietlyAndOthersReturned: a reconciler run through quietConflicts
// comes back at once after a conflict or an object that already exists (another writer was
// first, or the cache was behind), is not retried for a write into a namespace being deleted
// (what it writes goes with the namespace), and hands every other error back, so the controller
// retries it with backoff and logs it; a pass without error keeps its result.
func TestRoutineErrorsAreRetriedQuietlyAndOthersReturned(t *testing.T) {
	gr := v1.GroupVersion.WithResource("apikeys").GroupResource()
	terminating := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "k-key",
		errors.New("unable to create new content in namespace acme because it is being terminated"))
	terminating.ErrStatus.Details.Causes = append(terminating.ErrStatus.Details.Causes,
		metav1.StatusCause{Type: corev1.NamespaceTerminatingCause, Message: "namespace acme is being terminated", Field: "metadata.namespace"})
	broken := errors.New("etcdserver: request timed out")
	for _, tc := range []struct {
		name    string
		res     ctrl.Result
		err     error
		want    ctrl.Result
		wantErr error
	}{
		{"a conflict", ctrl.Result{}, apierrors.NewConflict(gr, "k", errors.New("the object has been modified")), ctrl.Result{Requeue: true}, nil},
		{"already exists", ctrl.Result{}, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, "k-key"), ctrl.Result{Requeue: true}, nil},
		{"a write into a namespace being deleted", ctrl.Result{}, terminating, ctrl.Result{}, nil},
		{"an APIKey being deleted that the cache still showed", ctrl.Result{}, errNotLive, ctrl.Result{Requeue: true}, nil},
		{"anything else", ctrl.Result{}, broken, ctrl.Result{}, broken},
		{"a forbidden write", ctrl.Result{}, apierrors.NewForbidden(gr, "k", errors.New("no")), ctrl.Result{}, apierrors.NewForbidden(gr, "k", errors.New("no"))},
		{"no error", ctrl.Result{RequeueAfter: time.Minute}, nil, ctrl.Result{RequeueAfter: time.Minute}, nil},
	} {
		r := quietConflicts(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) { return tc.res, tc.err }))
		res, err := r.Reconcile(context.Background(), reconcile.Request{})
		if res != tc.want || (err == nil) != (tc.wantErr == nil) || err != nil && err.Error() != tc.wantErr.Error() {
			t.Errorf("%s: %+v, %v; want %+v, %v", tc.name, res, err, tc.want, tc.wantErr)
		}
	}
}
