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

// The floors of the cluster rows: the same work done by bare code on the same apiserver in
// the same minute, interleaved with Clearance's. Their objects are BenchKeys: the APIKey CRD,
// schema and validation rules included, under a group no webhook, admission policy, controller
// or verifier of Clearance's watches, so the apiserver does for them what it does for APIKeys and nothing
// of Clearance's runs.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/controllers"
	"github.com/clearance-dev/clearance/internal/testenv"
)

const (
	floorNamespace = "bench-floor"
	floorGroup     = "bench.clearance.dev"
	// floorSecretLabel replaces v1.LabelAPIKey on the floor's Secrets, so the operator's
	// label-selected Secret cache never receives them.
	floorSecretLabel = floorGroup + "/benchkey"
	// The operator's defaults (main.go: --kube-api-qps, --kube-api-burst, --apikey-workers).
	operatorQPS   = 200
	operatorBurst = 400
	// benchClients create keys as the bench's users do, in A and in the floor alike.
	benchClients = 32
)

var benchKeyGVK = schema.GroupVersionKind{Group: floorGroup, Version: v1.GroupVersion.Version, Kind: "BenchKey"}

// floors is what the floors share.
type floors struct {
	// secretPosts counts the Secrets the floor created (tried), which the mint rows subtract
	// from the apiserver's count of POST secrets.
	secretPosts atomic.Int64
	// seen delivers the bench's own informer's events about BenchKeys (the revocation floor).
	mu      sync.Mutex
	waiters map[string]func(*unstructured.Unstructured, bool) bool
}

// setupFloors installs the BenchKey CRD, the floor's namespace, and the bench's informer of
// BenchKeys on watch.
func (b *bench) setupFloors(ctx context.Context, watch cache.Cache) error {
	data, err := os.ReadFile(filepath.Join(b.env.Root, "config", "crd", "bases", "access.clearance.dev_apikeys.yaml"))
	if err != nil {
		return err
	}
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &crd.Object); err != nil {
		return fmt.Errorf("reading the APIKey CRD: %w", err)
	}
	crd.SetName("benchkeys." + floorGroup)
	crd.SetAnnotations(nil)
	spec := crd.Object["spec"].(map[string]any)
	spec["group"] = floorGroup
	spec["names"] = map[string]any{"kind": "BenchKey", "listKind": "BenchKeyList", "plural": "benchkeys", "singular": "benchkey"}
	if err := createRetrying(ctx, b.c, crd); err != nil {
		return fmt.Errorf("installing the BenchKey CRD: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for !established(ctx, b.c, crd) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the BenchKey CRD is not established after a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The client learns the new kind's mapping on its first use of it.
	if err := ensureNamespace(ctx, b.c, floorNamespace); err != nil {
		return err
	}
	if err := floorWriterRBAC(ctx, b.c); err != nil {
		return err
	}
	b.floor = &floors{waiters: map[string]func(*unstructured.Unstructured, bool) bool{}}
	probe := &unstructured.Unstructured{}
	probe.SetGroupVersionKind(benchKeyGVK)
	inf, err := watch.GetInformer(ctx, probe)
	if err != nil {
		return err
	}
	deliver := func(o any, deleted bool) {
		if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return
		}
		b.floor.mu.Lock()
		defer b.floor.mu.Unlock()
		if w, ok := b.floor.waiters[u.GetName()]; ok && w(u, deleted) {
			delete(b.floor.waiters, u.GetName())
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { deliver(o, false) },
		UpdateFunc: func(_, o any) { deliver(o, false) },
		DeleteFunc: func(o any) { deliver(o, true) },
	})
	return err
}

func established(ctx context.Context, c client.Client, crd *unstructured.Unstructured) bool {
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(crd.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(crd), cur); err != nil {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// floorName is the BenchKey standing for an APIKey.
func floorName(k types.NamespacedName) string { return k.Namespace + "." + k.Name }

// floorJob is one key's end state, as the floor writes it.
type floorJob struct {
	key    *unstructured.Unstructured
	secret *corev1.Secret
	status map[string]any
}

// bareMint is the floor under minting keys: the best any code could do for the same end state
// on the same apiserver. The same users' creates (benchClients at once, as for the APIKeys,
// but of BenchKeys: no webhook, no admission policy), and as each create returns, the operator's two writes (the
// key's Secret, a copy of the real one, and a status patch with the real status) by a bare
// client at the operator's QPS, burst and worker count: no watch, no cache, no decision. It
// returns the time from the first create to the last write.
func (b *bench) bareMint(ctx context.Context, keys []types.NamespacedName) (time.Duration, error) {
	jobs := make([]floorJob, len(keys))
	for i, k := range keys {
		job, err := b.floorJob(ctx, k)
		if err != nil {
			return 0, err
		}
		jobs[i] = job
	}
	operator, _, err := b.env.OperatorIdentity()
	if err != nil {
		return 0, err
	}
	limited := rest.CopyConfig(operator)
	limited.QPS, limited.Burst = operatorQPS, operatorBurst
	// A client of its own per round: each kind's writer gets a full token bucket, as the
	// operator's has after the pause between rounds.
	writer, err := client.New(limited, client.Options{Scheme: b.env.Scheme})
	if err != nil {
		return 0, err
	}
	created := make(chan int, len(jobs))
	var createErr error
	start := time.Now()
	go func() {
		createErr = forEach(len(jobs), benchClients, func(i int) error {
			if err := createRetrying(ctx, b.c, jobs[i].key); err != nil {
				return err
			}
			created <- i
			return nil
		})
		close(created)
	}()
	var wg sync.WaitGroup
	var once sync.Once
	var writeErr error
	for range controllers.DefaultKeyWorkers {
		wg.Go(func() {
			for i := range created {
				if err := b.floorWrites(ctx, writer, jobs[i]); err != nil {
					once.Do(func() { writeErr = err })
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if createErr != nil {
		return 0, fmt.Errorf("the floor's creates: %w", createErr)
	}
	if writeErr != nil {
		return 0, fmt.Errorf("the floor's writes: %w", writeErr)
	}
	return took, nil
}

// floorWriterRBAC lets the operator's ServiceAccount make the floor's writes in its namespace,
// as config/rbac lets it make its own: the floor's writer writes as the operator does, so
// authorization costs both the same.
func floorWriterRBAC(ctx context.Context, c client.Client) error {
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: floorNamespace, Name: "bench-floor-writer"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
			{APIGroups: []string{floorGroup}, Resources: []string{"benchkeys/status"}, Verbs: []string{"patch"}},
			{APIGroups: []string{floorGroup}, Resources: []string{"benchkeys/finalizers"}, Verbs: []string{"update"}},
		},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: floorNamespace, Name: "bench-floor-writer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: testenv.OperatorUser}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := createRetrying(ctx, c, o); err != nil {
			return fmt.Errorf("the floor writer's RBAC: %w", err)
		}
	}
	return nil
}

// floorWrites are the operator's two writes for one minted key: its Secret, then its status.
func (b *bench) floorWrites(ctx context.Context, c client.Client, job floorJob) error {
	s := job.secret.DeepCopy()
	s.OwnerReferences = []metav1.OwnerReference{{APIVersion: benchKeyGVK.GroupVersion().String(), Kind: benchKeyGVK.Kind,
		Name: job.key.GetName(), UID: job.key.GetUID(), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	b.floor.secretPosts.Add(1)
	if err := c.Create(ctx, s); err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": job.key.GetResourceVersion()},
		"status":   job.status,
	})
	if err != nil {
		return err
	}
	return c.Status().Patch(ctx, job.key, client.RawPatch(types.MergePatchType, patch))
}

// floorJob reads an APIKey Clearance has minted and its Secret from the bench's watch, and
// turns them into the BenchKey to create and the writes to make.
func (b *bench) floorJob(ctx context.Context, k types.NamespacedName) (floorJob, error) {
	var key v1.APIKey
	if err := b.cache.Get(ctx, k, &key); err != nil {
		return floorJob{}, err
	}
	var secret corev1.Secret
	if err := b.cache.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: key.Status.SecretName}, &secret); err != nil {
		return floorJob{}, err
	}
	spec, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&key.Spec)
	if err != nil {
		return floorJob{}, err
	}
	status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&key.Status)
	if err != nil {
		return floorJob{}, err
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(benchKeyGVK)
	u.SetNamespace(floorNamespace)
	u.SetName(floorName(k))
	labels := map[string]string{}
	for l, v := range secret.Labels {
		labels[strings.Replace(l, v1.LabelAPIKey, floorSecretLabel, 1)] = v
	}
	copied := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: floorNamespace, Name: floorName(k), Labels: labels, Annotations: secret.Annotations},
		Type:       secret.Type,
		Data:       secret.Data,
	}
	return floorJob{key: u, secret: copied, status: status}, nil
}

// watchDelivery is the floor under a revocation: the time from a write of the BenchKey standing
// for key (disable, or delete) until the bench's own informer has the event, as the
// operator's informer has the APIKey's before its verifier refuses the key.
func (b *bench) watchDelivery(ctx context.Context, k types.NamespacedName, del bool) (time.Duration, error) {
	name := floorName(k)
	got := make(chan struct{})
	b.floor.mu.Lock()
	b.floor.waiters[name] = func(u *unstructured.Unstructured, deleted bool) bool {
		enabled, found, _ := unstructured.NestedBool(u.Object, "spec", "enabled")
		if deleted || (!del && found && !enabled) {
			close(got)
			return true
		}
		return false
	}
	b.floor.mu.Unlock()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(benchKeyGVK)
	u.SetNamespace(floorNamespace)
	u.SetName(name)
	start := time.Now()
	var err error
	if del {
		err = b.c.Delete(ctx, u)
	} else {
		err = b.c.Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"enabled":false}}`)))
	}
	if err != nil {
		b.floor.mu.Lock()
		delete(b.floor.waiters, name)
		b.floor.mu.Unlock()
		return 0, err
	}
	select {
	case <-got:
		return time.Since(start), nil
	case <-time.After(10 * time.Second):
		return 0, fmt.Errorf("the bench's informer did not see BenchKey %s change within 10 s", name)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
