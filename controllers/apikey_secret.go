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
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// Annotations the operator writes on a key Secret. They hold no key material: the hash lets a
// restored APIKey adopt the Secret after checking the token against it.
const (
	annotationKeyHash   = "access.clearance.dev/key-hash"
	annotationKeyID     = "access.clearance.dev/key-id"
	annotationExpiresAt = "access.clearance.dev/expires-at"
)

// keyMaterial are the data keys that carry (part of) the key; expiry removes them.
var keyMaterial = []string{v1.SecretKeyToken, v1.SecretKeyAccessKey, v1.SecretKeySecretKey, v1.SecretKeyAuthorization}

// keyData is the Secret data for a key.
func keyData(k keyformat.Key, applicationID string) map[string][]byte {
	return map[string][]byte{
		v1.SecretKeyToken:         []byte(k.Token),
		v1.SecretKeyAccessKey:     []byte(keyformat.AccessKey(k)),
		v1.SecretKeySecretKey:     []byte(keyformat.SecretKey(k)),
		v1.SecretKeyApplicationID: []byte(applicationID),
		v1.SecretKeyAuthorization: []byte("api-key " + k.Token),
	}
}

// applySecretMeta sets what the operator owns on a key Secret's metadata: the Clearance
// label, the template's labels and annotations, the owner reference and the key's public
// annotations. It never removes labels or annotations others added.
func applySecretMeta(s *corev1.Secret, key *v1.APIKey, hash, keyID string, expiresAt *metav1.Time) {
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	if t := key.Spec.SecretTemplate; t != nil {
		maps.Copy(s.Labels, t.Labels)
		maps.Copy(s.Annotations, t.Annotations)
	}
	s.Labels[v1.LabelAPIKey] = key.Name
	s.Annotations[annotationKeyHash] = hash
	s.Annotations[annotationKeyID] = keyID
	if expiresAt != nil {
		s.Annotations[annotationExpiresAt] = expiresAt.UTC().Format(time.RFC3339)
	} else {
		delete(s.Annotations, annotationExpiresAt)
	}
	s.Type = corev1.SecretTypeOpaque
	s.OwnerReferences = []metav1.OwnerReference{{
		APIVersion:         v1.GroupVersion.String(),
		Kind:               "APIKey",
		Name:               key.Name,
		UID:                key.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}}
}

// newKeySecret is the Secret a freshly minted key is delivered in.
func newKeySecret(key *v1.APIKey, k keyformat.Key, applicationID string, expiresAt *metav1.Time) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.SecretNameOrDefault(), Namespace: key.Namespace}}
	applySecretMeta(s, key, keyformat.Hash(k.Token), k.KeyID, expiresAt)
	s.Data = keyData(k, applicationID)
	return s
}

// secretToken is the token a Secret holds, or "".
func secretToken(s *corev1.Secret) string {
	if s == nil {
		return ""
	}
	return string(s.Data[v1.SecretKeyToken])
}

// adoptVerdict is what may become of the key a Secret holds when an APIKey without status
// finds the Secret under its name.
type adoptVerdict int

const (
	adoptNone      adoptVerdict = iota // no Secret
	adoptOwned                         // this very APIKey (same UID) owns it: its status was lost
	adoptRequested                     // the adopt-key-id annotation names its key: a restore
	adoptRetired                       // the key of an earlier APIKey, revoked with it
	adoptUntrusted                     // no key matching the hash recorded on it: edited
	adoptReplaced                      // this APIKey's, but minted for an Application deleted since
)

// adoptable judges the key a Secret labelled for this APIKey holds. Only a Secret whose
// controller owner is this APIKey, or whose key a person named on the APIKey, gives its key
// back: anything else would revive a key revoked when an earlier APIKey was deleted.
func adoptable(s *corev1.Secret, key *v1.APIKey, format keyformat.Format) (keyformat.Key, adoptVerdict) {
	if s == nil || s.Labels[v1.LabelAPIKey] != key.Name {
		return keyformat.Key{}, adoptNone
	}
	k, err := format.Parse(secretToken(s))
	if err != nil || !keyformat.Verify(k.Token, s.Annotations[annotationKeyHash]) {
		return keyformat.Key{}, adoptUntrusted
	}
	if owner := metav1.GetControllerOfNoCopy(s); owner != nil && owner.UID == key.UID && key.UID != "" {
		return k, adoptOwned
	}
	if want := key.Annotations[v1.AnnotationAdoptKeyID]; want != "" && want == k.KeyID {
		return k, adoptRequested
	}
	return keyformat.Key{}, adoptRetired
}
