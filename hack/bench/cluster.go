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

package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// tracker follows APIKeys and key Secrets through a watch of the bench's own, so "all Ready
// with Secrets" is seen as it happens without listing thousands of objects in a loop.
type tracker struct {
	mu      sync.Mutex
	ready   map[types.NamespacedName]string // APIKey → its Secret's name, once Active and Ready
	secrets map[types.NamespacedName]bool   // key Secrets that exist
	counts  map[types.NamespacedName]int32  // Application → its status.keyCount
	changed chan struct{}
}

func newTracker(ctx context.Context, c cache.Cache) (*tracker, error) {
	t := &tracker{ready: map[types.NamespacedName]string{}, secrets: map[types.NamespacedName]bool{},
		counts: map[types.NamespacedName]int32{}, changed: make(chan struct{}, 1)}
	keys, err := c.GetInformer(ctx, &v1.APIKey{})
	if err != nil {
		return nil, err
	}
	if _, err := keys.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.key(o, false) },
		UpdateFunc: func(_, o any) { t.key(o, false) },
		DeleteFunc: func(o any) { t.key(o, true) },
	}); err != nil {
		return nil, err
	}
	apps, err := c.GetInformer(ctx, &v1.Application{})
	if err != nil {
		return nil, err
	}
	count := func(o any) {
		if a, ok := o.(*v1.Application); ok {
			t.mu.Lock()
			t.counts[types.NamespacedName{Namespace: a.Namespace, Name: a.Name}] = a.Status.KeyCount
			t.mu.Unlock()
			t.signal()
		}
	}
	if _, err := apps.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    count,
		UpdateFunc: func(_, o any) { count(o) },
	}); err != nil {
		return nil, err
	}
	secrets, err := c.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return nil, err
	}
	if _, err := secrets.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.secret(o, false) },
		UpdateFunc: func(_, o any) { t.secret(o, false) },
		DeleteFunc: func(o any) { t.secret(o, true) },
	}); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *tracker) key(o any, deleted bool) {
	k, ok := o.(*v1.APIKey)
	if !ok {
		return
	}
	name := types.NamespacedName{Namespace: k.Namespace, Name: k.Name}
	t.mu.Lock()
	if !deleted && k.Status.State == v1.KeyActive && k.Status.SecretName != "" && meta.IsStatusConditionTrue(k.Status.Conditions, v1.ConditionReady) {
		t.ready[name] = k.Status.SecretName
	} else {
		delete(t.ready, name)
	}
	t.mu.Unlock()
	t.signal()
}

func (t *tracker) secret(o any, deleted bool) {
	s, ok := o.(*corev1.Secret)
	if !ok {
		return
	}
	name := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	t.mu.Lock()
	if deleted {
		delete(t.secrets, name)
	} else {
		t.secrets[name] = true
	}
	t.mu.Unlock()
	t.signal()
}

func (t *tracker) signal() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// done counts the keys of want that are Ready with their Secret in place.
func (t *tracker) done(want []types.NamespacedName) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, k := range want {
		if s, ok := t.ready[k]; ok && t.secrets[types.NamespacedName{Namespace: k.Namespace, Name: s}] {
			n++
		}
	}
	return n
}

// waitAll blocks until every key of want is Ready with its Secret, or the deadline passes.
func (t *tracker) waitAll(ctx context.Context, want []types.NamespacedName, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if n := t.done(want); n == len(want) {
			return nil
		} else {
			select {
			case <-t.changed:
			case <-deadline.C:
				return fmt.Errorf("%d of %d keys Ready with Secrets after %s", n, len(want), timeout)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// waitCounts blocks until every Application in want shows its key count in status: the
// operator's batched count writes for the keys just minted are done.
func (t *tracker) waitCounts(ctx context.Context, want map[types.NamespacedName]int32, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		t.mu.Lock()
		behind := 0
		for app, n := range want {
			if t.counts[app] != n {
				behind++
			}
		}
		t.mu.Unlock()
		if behind == 0 {
			return nil
		}
		select {
		case <-t.changed:
		case <-deadline.C:
			return fmt.Errorf("%d Applications do not show their key count after %s", behind, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// keyWatchCache is a cache of APIKeys and of key Secrets only (label-selected, as the
// operator's own), for the tracker.
func keyWatchCache(b *bench) (cache.Cache, error) {
	sel, err := labels.Parse(v1.LabelAPIKey)
	if err != nil {
		return nil, err
	}
	return cache.New(b.env.Config, cache.Options{Scheme: b.env.Scheme, ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: sel},
	}})
}

// forEach runs fn over 0..n-1 with workers goroutines and returns the first error.
func forEach(n, workers int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// createRetrying creates obj, retrying briefly when the apiserver sheds load (429) or times out.
func createRetrying(ctx context.Context, c client.Client, obj client.Object) error {
	var err error
	for attempt := range 5 {
		if err = c.Create(ctx, obj); err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if !apierrors.IsTooManyRequests(err) && !apierrors.IsServerTimeout(err) && !apierrors.IsTimeout(err) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	return err
}

// ensureNamespace creates a namespace if it does not exist.
func ensureNamespace(ctx context.Context, c client.Client, name string) error {
	return createRetrying(ctx, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

// orgAdmin binds user to the org-admin people role in ns, so the bench's role assignments go
// through the role-assignment policy's authorizer check as an org admin's would.
func orgAdmin(ctx context.Context, c client.Client, ns, user string) error {
	return createRetrying(ctx, c, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-org-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "clearance-org-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	})
}

// verify asks the verifier at url whether token is good for org, and returns its reason
// ("" when valid).
func verify(hc *http.Client, url, token, org string) (string, error) {
	code, out, err := verifier.Verify(hc, url, verifier.VerifyRequest{Key: token, Org: org, Method: http.MethodGet})
	switch {
	case err != nil:
		return "", err
	case out.Valid:
		return "", nil
	case out.Reason == "":
		return fmt.Sprintf("HTTP %d", code), nil
	}
	return out.Reason, nil
}

// keyToken reads a key's token from its Secret (the bench is an admin, as a workload
// mounting the Secret would read it).
func keyToken(ctx context.Context, c client.Client, k types.NamespacedName, secretName string) (string, error) {
	var s corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: secretName}, &s); err != nil {
		return "", err
	}
	return string(s.Data[v1.SecretKeyToken]), nil
}

func apiKey(ns, name, app string) *v1.APIKey {
	return &v1.APIKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.APIKeySpec{ApplicationName: app, Description: "bench key", TTL: &metav1.Duration{Duration: 720 * time.Hour},
			Scopes: []string{"reports:read"}},
	}
}

func application(ns, name string) *v1.Application {
	return &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.ApplicationSpec{Description: "bench application " + name},
	}
}

func connection(ns, name, appID string, role v1.Role) *v1.OrgConnection {
	return &v1.OrgConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.OrgConnectionSpec{ApplicationID: appID, Role: role},
	}
}

// connectorOnly lets user create OrgConnections in ns and nothing else: no bind on any orgrole,
// so the role-assignment policy refuses every connection user makes where it applies.
func connectorOnly(ctx context.Context, c client.Client, ns, user string) error {
	if err := createRetrying(ctx, c, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-connector"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgconnections"}, Verbs: []string{"create"}}},
	}); err != nil {
		return err
	}
	return createRetrying(ctx, c, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-connector"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "bench-connector"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	})
}
