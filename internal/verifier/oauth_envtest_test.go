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
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/clearance-dev/clearance/controllers"
	fieldindex "github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/keyformat"
	controllermetrics "github.com/clearance-dev/clearance/internal/metrics"
	"github.com/clearance-dev/clearance/internal/signingkey"
	"github.com/clearance-dev/clearance/internal/testenv"
	"github.com/clearance-dev/clearance/internal/wiring"
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

// accessToken gets an access token from the live verifier with the key's client credentials.
func (lk *liveKey) accessToken(t *testing.T) string {
	t.Helper()
	status, _, refusal, tok := lk.askToken(t)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("token endpoint: %d %s", status, refusal.Error)
	}
	return tok
}

// askToken asks the token endpoint for a token with the key's client credentials and returns
// the status, Retry-After, the error answered and the token (if one was issued), which is
// remembered for the leak check.
func (lk *liveKey) askToken(t *testing.T) (int, string, OAuthError, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {keyformat.AccessKey(lk.token)},
		"client_secret": {keyformat.SecretKey(lk.token)}}
	resp, err := http.PostForm("http://"+live.Addr()+PathToken, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		OAuthError
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token endpoint: %s, a body that does not decode: %v", resp.Status, err)
	}
	liveIssued.Add("access token of the verifier tests", body.AccessToken)
	return resp.StatusCode, resp.Header.Get("Retry-After"), body.OAuthError, body.AccessToken
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

// TestDeletingTheSigningKeysSecretRefusesEveryEarlierTokenWhileKeysKeepWorking holds the
// emergency stop of docs/security.md: deleting the signing keys Secret has a new set written
// at once, every access token signed before is refused, and keys keep working. The new sets
// are written by the operator's own signing-key controller (controllers.Setup, wired as in
// main.go; see startLiveOperator), not by the test. First the Secret is deleted before the
// operator runs, which holds open the moment between the delete and a new set; then the
// operator starts and writes a set; then the Secret is deleted under the running operator, as
// the emergency stop is used.
func TestDeletingTheSigningKeysSecretRefusesEveryEarlierTokenWhileKeysKeepWorking(t *testing.T) {
	liveSigningKeys(t)
	lk := newLiveKey(t)
	before := lk.accessToken(t)
	lk.waitForBearer(t, before, "the token to be accepted", http.StatusOK, "")

	// Deleted, and no set yet: nothing can be checked or issued, and the key keeps working.
	first := deleteLiveSigningKeys(t)
	lk.waitForBearer(t, before, "the token to be refused while no signing keys are loaded",
		http.StatusServiceUnavailable, ReasonSigningKeysUnavailable)
	lk.waitFor(t, "the key to keep working while no signing keys are loaded", http.StatusOK, "")
	status, retryAfter, refusal, _ := lk.askToken(t)
	if status != http.StatusServiceUnavailable || retryAfter == "" || refusal.Error != errUnavailable ||
		!strings.Contains(refusal.Description, ReasonSigningKeysUnavailable) {
		t.Fatalf("the token endpoint without signing keys: %d (Retry-After %q) %+v; want 503 %s naming %s",
			status, retryAfter, refusal, errUnavailable, ReasonSigningKeysUnavailable)
	}

	// The operator writes a new set: the token signed before is refused for good, the key works,
	// and a new token, signed by the new set, is accepted.
	startLiveOperator(t)
	second := waitForNewLiveSigningKeys(t, first)
	between := lk.refusedAfterANewSet(t, first, second, before)

	// The emergency stop as it is used: deleted under the running operator, which writes a new
	// set at once; both earlier tokens are refused, the key and a new token work.
	deleteLiveSigningKeys(t)
	third := waitForNewLiveSigningKeys(t, second)
	lk.refusedAfterANewSet(t, second, third, between)
	lk.waitForBearer(t, before, "the token from before the first delete to stay refused", http.StatusUnauthorized, ReasonTokenInvalid)
}

// refusedAfterANewSet checks what follows the set gone replaced by set now: the verifier
// publishes now's keys and none of gone's, refuses old (signed by gone) as a token it did not
// sign, accepts the key still, and issues a token signed by now's current key, which it
// accepts; that token is returned.
func (lk *liveKey) refusedAfterANewSet(t *testing.T, gone, now signingkey.Set, old string) string {
	t.Helper()
	if kid := signedBy(t, old); kid != gone.Current.KeyID {
		t.Fatalf("the earlier token is signed by %s, not by the deleted set's current key %s", kid, gone.Current.KeyID)
	}
	waitForJWKS(t, now.Current.KeyID, now.Next.KeyID)
	published, err := liveJWKS()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range gone.Published() {
		if slices.Contains(published, k.KeyID) {
			t.Errorf("the deleted set's key %s is still published: %v", k.KeyID, published)
		}
	}
	lk.waitForBearer(t, old, "the token signed before the delete to be refused", http.StatusUnauthorized, ReasonTokenInvalid)
	t.Logf("new set %s: the token signed by %s is refused (401 %s)", now.Current.KeyID, gone.Current.KeyID, ReasonTokenInvalid)
	lk.waitFor(t, "the key to keep working with the new set", http.StatusOK, "")
	tok := lk.accessToken(t)
	if kid := signedBy(t, tok); kid != now.Current.KeyID {
		t.Fatalf("a token issued after the new set is signed by %s, want %s", kid, now.Current.KeyID)
	}
	lk.waitForBearer(t, tok, "a token issued after the new set to be accepted", http.StatusOK, "")
	return tok
}

// deleteLiveSigningKeys deletes the live signing keys Secret, on the condition that it is the
// one just read, and returns the set it held. Its private keys are remembered for the leak
// check, which otherwise only knows the sets of the Secrets there at the end.
func deleteLiveSigningKeys(t *testing.T) signingkey.Set {
	t.Helper()
	ctx := context.Background()
	var sec corev1.Secret
	if err := env.Client.Get(ctx, liveSigningSecret, &sec); err != nil {
		t.Fatal(err)
	}
	set, err := signingkey.FromSecret(&sec)
	if err != nil {
		t.Fatalf("the signing keys Secret holds no valid set: %v", err)
	}
	rememberSigningKeys(set)
	if err := env.Client.Delete(ctx, &sec, client.Preconditions{UID: &sec.UID}); err != nil {
		t.Fatal(err)
	}
	return set
}

// waitForNewLiveSigningKeys waits until the operator has written a new set into a new signing
// keys Secret (labelled as the operator's, which writeLiveSigningKeys does not), none of whose
// keys is one of gone's, and returns it.
func waitForNewLiveSigningKeys(t *testing.T, gone signingkey.Set) signingkey.Set {
	t.Helper()
	var set signingkey.Set
	testenv.Within(t, revocationCeiling, "the operator to write a new set of signing keys", func() error {
		var sec corev1.Secret
		if err := env.Client.Get(context.Background(), liveSigningSecret, &sec); err != nil {
			return err
		}
		if by := sec.Labels["app.kubernetes.io/managed-by"]; by != "clearance" {
			return fmt.Errorf("a Secret managed by %q", by)
		}
		s, err := signingkey.FromSecret(&sec)
		if err != nil {
			return err
		}
		for _, k := range s.Published() {
			for _, g := range gone.Published() {
				if k.KeyID == g.KeyID {
					return fmt.Errorf("still holds key %s of the deleted set", k.KeyID)
				}
			}
		}
		set = s
		return nil
	})
	rememberSigningKeys(set)
	return set
}

// rememberSigningKeys has the leak check search every text for the private keys of set.
func rememberSigningKeys(set signingkey.Set) {
	for _, k := range set.Published() {
		if priv, ok := k.Key.(*ecdsa.PrivateKey); ok {
			if d, err := priv.Bytes(); err == nil {
				liveIssued.Add("private signing key "+k.KeyID, base64.RawURLEncoding.EncodeToString(d))
			}
		}
	}
}

// signedBy is the kid an access token names (a public key's thumbprint).
func signedBy(t *testing.T, tok string) string {
	t.Helper()
	parsed, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(parsed.Signatures) != 1 {
		t.Fatalf("an access token that does not parse (%d bytes): %v", len(tok), err)
	}
	return parsed.Signatures[0].Header.KeyID
}

// startLiveOperator runs the operator's controllers as main.go wires them (controllers.Setup),
// with the signing-key controller over the live signing keys Secret, until the test ends. Its
// manager's cache is confined to the operator's namespace, where the verifier tests put nothing
// but that Secret: the other reconcilers see none of the objects the tests write in their own
// namespaces as the operator would, and so write nothing.
func startLiveOperator(t *testing.T) {
	t.Helper()
	cacheOpts := wiring.CacheOptions(clock.RealClock{})
	cacheOpts.DefaultNamespaces = map[string]cache.Config{liveSigningSecret.Namespace: {}}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cacheOpts,
		// Its log joins the verifier's, which the leak check searches.
		Logger: funcr.New(liveLog.Write, funcr.Options{Verbosity: 10}).WithName("operator"),
		// -count=N starts it again in this process, with the same controller names.
		Controller: config.Controller{SkipNameValidation: ptr(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := fieldindex.Register(ctx, mgr.GetFieldIndexer()); err != nil {
		cancel()
		t.Fatal(err)
	}
	m, err := controllermetrics.NewControllers(prometheus.NewRegistry(), controllers.KeyStateCounter(mgr.GetCache()))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{Clock: liveClock, KeyFormat: live.rules.format, Metrics: m,
		SigningKeys: controllers.SigningKeyOptions{Secret: liveSigningSecret}}); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the operator stopped with: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("the operator did not stop within a minute")
		}
	})
}
