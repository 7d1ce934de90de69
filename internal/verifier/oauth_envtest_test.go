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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/signingkey"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// liveSigningSecret is where the live verifier watches its token signing keys, as the chart
// has it: one Secret in the operator's namespace, followed by a cache selected by its name.
var liveSigningSecret = types.NamespacedName{Namespace: "clearance-system", Name: signingkey.DefaultSecretName}

// liveLog is the live verifier's log; liveIssued the access tokens it issued to the tests.
var (
	liveLog    testenv.LogText
	liveIssued testenv.SecretLog
)

// writeLiveSigningKeys writes set into the live verifier's signing keys Secret, as the
// signing-key controller would, creating it the first time.
func writeLiveSigningKeys(t *testing.T, set signingkey.Set) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: liveSigningSecret.Namespace}}
	if err := env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	data, ann, err := set.Data()
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: liveSigningSecret.Namespace, Name: liveSigningSecret.Name,
		Labels: map[string]string{signingkey.Label: "true"}}}
	err = env.Client.Get(ctx, liveSigningSecret, sec)
	sec.Data, sec.Annotations = data, ann
	switch {
	case apierrors.IsNotFound(err):
		err = env.Client.Create(ctx, sec)
	case err == nil:
		err = env.Client.Update(ctx, sec)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// liveSigningKeys makes sure the live verifier has loaded a set from its Secret, and returns it.
func liveSigningKeys(t *testing.T) signingkey.Set {
	t.Helper()
	needAPIServer(t)
	var sec corev1.Secret
	if err := env.Client.Get(context.Background(), liveSigningSecret, &sec); err == nil {
		if set, err := signingkey.FromSecret(&sec); err == nil {
			waitForJWKS(t, set.Current.KeyID)
			return set
		}
	}
	set, err := signingkey.NewSet(liveClock.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeLiveSigningKeys(t, set)
	waitForJWKS(t, set.Current.KeyID)
	return set
}

// waitForJWKS waits until the live verifier publishes the keys kids, read from its Secret.
func waitForJWKS(t *testing.T, kids ...string) {
	t.Helper()
	testenv.Within(t, revocationCeiling, fmt.Sprintf("the verifier to publish keys %v", kids), func() error {
		got, err := liveJWKS()
		if err != nil {
			return err
		}
		for _, k := range kids {
			if !slices.Contains(got, k) {
				return fmt.Errorf("published %v", got)
			}
		}
		return nil
	})
}

func liveJWKS() ([]string, error) {
	resp, err := http.Get("http://" + live.Addr() + PathJWKS)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Status, err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids, nil
}

// token gets an access token from the live verifier with the key's client credentials.
func (lk *liveKey) accessToken(t *testing.T) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {keyformat.AccessKey(lk.token)},
		"client_secret": {keyformat.SecretKey(lk.token)}}
	resp, err := http.PostForm("http://"+live.Addr()+PathToken, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint: %s (%v)", resp.Status, err)
	}
	liveIssued.Add("access token of the verifier tests", body.AccessToken)
	return body.AccessToken
}

// waitForBearer asks with an access token until the verifier answers status and reason.
func (lk *liveKey) waitForBearer(t *testing.T, tok, what string, status int, reason string) time.Duration {
	t.Helper()
	start := time.Now()
	testenv.Within(t, revocationCeiling, what, func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+live.Addr()+PathAuthorize+"?org="+lk.grant, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if got := resp.Header.Get("X-Clearance-Reason"); resp.StatusCode != status || got != reason {
			return fmt.Errorf("%d %q", resp.StatusCode, got)
		}
		return nil
	})
	return time.Since(start)
}

func TestALiveAccessTokenIsRefusedWithinTheBoundWhenItsKeyIsDisabledOrDeleted(t *testing.T) {
	liveSigningKeys(t)
	lk := newLiveKey(t)
	tok := lk.accessToken(t)
	lk.waitForBearer(t, tok, "the token to be accepted", http.StatusOK, "")

	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"enabled":false}}`))
	if err := env.Client.Patch(context.Background(), lk.key, patch); err != nil {
		t.Fatal(err)
	}
	t.Logf("disable → token refused in %s", lk.waitForBearer(t, tok, "the disabled key's token to be refused", http.StatusUnauthorized, ReasonKeyDisabled))
	reenable := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"enabled":true}}`))
	if err := env.Client.Patch(context.Background(), lk.key, reenable); err != nil {
		t.Fatal(err)
	}
	lk.waitForBearer(t, tok, "the re-enabled key's token to work again", http.StatusOK, "")

	if err := env.Client.Delete(context.Background(), lk.key); err != nil {
		t.Fatal(err)
	}
	t.Logf("delete APIKey → token refused in %s", lk.waitForBearer(t, tok, "the deleted key's token to be refused", http.StatusUnauthorized, ReasonKeyRevoked))
}

func TestALiveSigningKeyRotationKeepsIssuedTokensValid(t *testing.T) {
	set := liveSigningKeys(t)
	lk := newLiveKey(t)
	before := lk.accessToken(t)

	rotated, err := set.Rotate(liveClock.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeLiveSigningKeys(t, rotated)
	waitForJWKS(t, set.Current.KeyID, rotated.Current.KeyID, rotated.Next.KeyID)
	testenv.Within(t, revocationCeiling, "tokens to be signed by the new current key", func() error {
		tok := lk.accessToken(t)
		parsed, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			return err
		}
		if kid := parsed.Signatures[0].Header.KeyID; kid != rotated.Current.KeyID {
			return errors.New("still signed by " + kid)
		}
		lk.waitForBearer(t, tok, "the new token to be accepted", http.StatusOK, "")
		return nil
	})
	lk.waitForBearer(t, before, "the token from before the rotation to be accepted still", http.StatusOK, "")
}
