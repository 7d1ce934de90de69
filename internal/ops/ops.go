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

// Package ops holds what people do to Clearance objects: create, rename and switch an
// application; create, rotate, disable and revoke a key, invalidate every key of an
// application, read a key from its Secret and wait for it to be minted; connect an
// application, set a connection's role and disconnect it; switch a metric. The kubectl plugin
// and the console both call it, so both do each thing the same way, with the caller's own
// client and so the caller's own RBAC: the console passes the signed-in person's client and
// holds no power of its own. Callers word the errors for their users.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// SecretFields are the data keys of a key Secret, the whole token first.
var SecretFields = []string{v1.SecretKeyToken, v1.SecretKeyAccessKey, v1.SecretKeySecretKey, v1.SecretKeyAuthorization, v1.SecretKeyApplicationID}

// KeyMaterial returns the data of a key Secret by field. The values are key material: they go
// to the person who asked for them and nowhere else.
func KeyMaterial(secret *corev1.Secret) map[string]string {
	values := make(map[string]string, len(SecretFields))
	for _, f := range SecretFields {
		values[f] = string(secret.Data[f])
	}
	return values
}

// KeyOptions are the choices of a new key beyond its application.
type KeyOptions struct {
	// Name is the APIKey's name; empty is the application's name, "-" and a generated tail.
	Name string
	// Description says what the key is for, e.g. prod exporter.
	Description string
	// Scopes narrow what the application's role allows the key to do, e.g. reports:read: names
	// from the permission catalog (ReadPermissions), as the admission policy
	// clearance-permissions requires; none leaves the role whole.
	Scopes []string
	// RequireScopes refuses a key without scopes (ErrNoPermissions) instead of giving it the
	// application's whole role: the console's rule, where no permission ticked is refused, not
	// everything.
	RequireScopes bool
	// TTL is the key's lifetime from minting; zero is no expiry.
	TTL time.Duration
}

// CreateKey creates an APIKey of application app in org ns; the operator then mints it into
// its Secret (WaitForKey waits for that). It returns the key as created, or as asked for when
// it or the apiserver refused it.
func CreateKey(ctx context.Context, c client.Client, ns, app string, opts KeyOptions) (*v1.APIKey, error) {
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: opts.Name},
		Spec: v1.APIKeySpec{ApplicationName: app, Description: strings.TrimSpace(opts.Description), Scopes: opts.Scopes}}
	if opts.RequireScopes && len(opts.Scopes) == 0 {
		return key, ErrNoPermissions
	}
	if key.Name == "" {
		key.GenerateName = app + "-"
	}
	if opts.TTL != 0 {
		key.Spec.TTL = &metav1.Duration{Duration: opts.TTL}
	}
	return key, c.Create(ctx, key)
}

// KeySecretName is the Secret the key was delivered in, or will be.
func KeySecretName(key *v1.APIKey) string {
	if key.Status.SecretName != "" {
		return key.Status.SecretName
	}
	return key.SecretNameOrDefault()
}

// RequestRotation asks the operator to replace the key now by setting the rotation trigger
// annotation to at: the previous key stays valid for spec.rotation.overlap, or, when
// immediate ("invalidate keys and secrets"), stops as soon as the new key is minted, with any
// earlier key still in its overlap. key is updated from the answer.
func RequestRotation(ctx context.Context, c client.Client, key *v1.APIKey, at time.Time, immediate bool) error {
	annotation := v1.AnnotationRotateRequestedAt
	if immediate {
		annotation = v1.AnnotationInvalidateRequestedAt
	}
	return mergePatch(ctx, c, key, map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		annotation: at.UTC().Format(time.RFC3339Nano)}}})
}

// KeysOf lists the APIKeys of application app in org ns, oldest first.
func KeysOf(ctx context.Context, c client.Client, ns, app string) ([]v1.APIKey, error) {
	var list v1.APIKeyList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	keys := slices.DeleteFunc(list.Items, func(k v1.APIKey) bool { return k.Spec.ApplicationName != app })
	slices.SortFunc(keys, func(a, b v1.APIKey) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return keys, nil
}

// InvalidateKeys is "invalidate keys and secrets" for a whole application: it asks for an
// immediate rotation (RequestRotation with immediate) of each key of application app in org ns,
// so every key it has now, with any earlier key still in its overlap, stops working as soon as
// its replacement is minted. Expired keys and keys being deleted have nothing left to end and
// are skipped. It returns the keys asked, and the errors of those it could not ask, joined.
func InvalidateKeys(ctx context.Context, c client.Client, ns, app string, at time.Time) ([]v1.APIKey, error) {
	keys, err := KeysOf(ctx, c, ns, app)
	if err != nil {
		return nil, err
	}
	var asked []v1.APIKey
	var errs []error
	for i := range keys {
		key := &keys[i]
		if key.Status.State == v1.KeyExpired || key.DeletionTimestamp != nil {
			continue
		}
		if err := RequestRotation(ctx, c, key, at, true); err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", key.Name, err))
			continue
		}
		asked = append(asked, *key)
	}
	return asked, errors.Join(errs...)
}

// SetKeyEnabled switches spec.enabled: a disabled key keeps its Secret and the same key, and
// is refused until enabled again. key is updated from the answer.
func SetKeyEnabled(ctx context.Context, c client.Client, key *v1.APIKey, on bool) error {
	return mergePatch(ctx, c, key, map[string]any{"spec": map[string]any{"enabled": on}})
}

// Revoke deletes the APIKey (only the very object read, by UID): the verifier refuses its key
// at once and the garbage collector deletes its Secret.
func Revoke(ctx context.Context, c client.Client, key *v1.APIKey) error {
	return c.Delete(ctx, key, client.Preconditions{UID: &key.UID})
}

// mergePatch changes only the fields named, so it never undoes what the operator or another
// person wrote meanwhile.
func mergePatch(ctx context.Context, c client.Client, obj client.Object, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, data))
}

// KeySettled reports whether waiting for a new key is over (done) and whether the key is
// usable: it is minted, or in a state only a person can get it out of.
func KeySettled(key *v1.APIKey) (done, usable bool) {
	switch key.Status.State {
	case v1.KeyActive, v1.KeyRotating:
		return true, true
	case v1.KeyFailed, v1.KeyExpired, v1.KeyDisabled:
		return true, false
	}
	return false, false
}

// ErrKeyDeleted: the key was deleted while waiting for it.
var ErrKeyDeleted = errors.New("the APIKey was deleted while waiting for it to be minted")

// pollInterval paces re-reads when a watch cannot be used or ends early.
const pollInterval = 500 * time.Millisecond

// WaitForKey waits, at most timeout, until KeySettled says the key is done, watching it from
// the version it has, and returns it as last seen. When time runs out it returns the key as it
// is, without an error: the caller tells the person what state it is in.
func WaitForKey(ctx context.Context, c client.WithWatch, key *v1.APIKey, timeout time.Duration) (*v1.APIKey, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if done, _ := KeySettled(key); done {
			return key, nil
		}
		next, err := nextKeyVersion(ctx, c, key)
		if ctx.Err() != nil {
			return key, nil
		}
		if err != nil {
			return key, err
		}
		key = next
	}
}

// nextKeyVersion returns the key after its next change. When the watch is not allowed or ends
// without a change it reads the key again after a pause.
func nextKeyVersion(ctx context.Context, c client.WithWatch, key *v1.APIKey) (*v1.APIKey, error) {
	w, err := c.Watch(ctx, &v1.APIKeyList{}, &client.ListOptions{
		Namespace:     key.Namespace,
		FieldSelector: fields.OneTermEqualSelector("metadata.name", key.Name),
		Raw:           &metav1.ListOptions{ResourceVersion: key.ResourceVersion},
	})
	if err == nil {
		defer w.Stop()
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Added, watch.Modified:
				if k, ok := ev.Object.(*v1.APIKey); ok {
					return k, nil
				}
			case watch.Deleted:
				return nil, ErrKeyDeleted
			}
		}
	} else if !apierrors.IsForbidden(err) {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return key, nil
	case <-time.After(pollInterval):
	}
	var fresh v1.APIKey
	if err := c.Get(ctx, client.ObjectKeyFromObject(key), &fresh); err != nil {
		if ctx.Err() != nil {
			return key, nil
		}
		return nil, err
	}
	return &fresh, nil
}

// SetMetric switches a metric on or off in a MetricSet's spec, adding it when enabling a
// metric that is not listed. It reports whether anything changed.
func SetMetric(spec *v1.MetricSetSpec, name string, on bool) bool {
	i := slices.IndexFunc(spec.Metrics, func(m v1.Metric) bool { return m.Name == name })
	switch {
	case i < 0 && !on:
		return false // not listed is off already
	case i < 0:
		spec.Metrics = append(spec.Metrics, v1.Metric{Name: name, Enabled: ptr.To(true)})
		return true
	case spec.Metrics[i].IsEnabled() == on:
		return false
	}
	spec.Metrics[i].Enabled = ptr.To(on)
	return true
}

// ToggleMetric switches one metric of MetricSet ns/set with an update on the version just
// read: if someone else changed the set meanwhile, it reads it again and re-applies only this
// one switch. ms is the set as written (or as read, when nothing changed).
func ToggleMetric(ctx context.Context, c client.Client, ns, set, metric string, on bool) (ms *v1.MetricSet, changed bool, err error) {
	ms = &v1.MetricSet{}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: set}, ms); err != nil {
			return err
		}
		if changed = SetMetric(&ms.Spec, metric, on); !changed {
			return nil
		}
		return c.Update(ctx, ms)
	})
	return ms, changed, err
}

// EnabledCount counts the enabled metrics in spec, which is what the cap is checked against,
// so it is right even before the operator has updated status.
func EnabledCount(spec *v1.MetricSetSpec) int {
	n := 0
	for _, m := range spec.Metrics {
		if m.IsEnabled() {
			n++
		}
	}
	return n
}

// Earlier names the previous keys still in their overlap that stop with the current one.
func Earlier(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return " and its previous key"
	}
	return fmt.Sprintf(" and its %d previous keys", n)
}
