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
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/signingkey"
	"github.com/clearance-dev/clearance/internal/verifier"
)

// OAuth rows (docs/oauth.md): how fast the token endpoint issues tokens, and what checking an
// access token costs over checking a key, both in-process on the verifier's handler (no HTTP),
// before the cluster starts so the machine is quiet.
const (
	oauthKeys     = 1000
	oauthIssued   = 3000
	oauthVerifies = 5000
	// Targets: a token per key per 5 minutes is a few per second for thousands of partners; an
	// ES256 signature check is tens of microseconds against a hash lookup's few.
	oauthIssueTarget = 1000
	oauthRatioTarget = 50
	oauthAppID       = "app_0123456789abcdefghijklmn"
)

func measureOAuth(res *Results) error {
	fmt.Fprintln(os.Stderr, "bench: phase OAuth tokens")
	format, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		return err
	}
	v, err := verifier.New(verifier.Options{Clock: clock.RealClock{}, Format: format, Registerer: prometheus.NewRegistry(),
		OAuth: verifier.OAuthOptions{ConsentURL: benchConsentURL}})
	if err != nil {
		return err
	}
	set, err := signingkey.NewSet(time.Now())
	if err != nil {
		return err
	}
	data, ann, err := set.Data()
	if err != nil {
		return err
	}
	if err := v.SetSigningKeys(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: ann}, Data: data}); err != nil {
		return err
	}
	v.Apply(&v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "acme", Name: "bi", UID: "uid-app"},
		Spec: v1.ApplicationSpec{Description: "bench", RateLimits: []v1.RateLimit{{Name: "general", Limit: 1 << 40, Period: metav1.Duration{Duration: time.Second}}},
			OAuth: &v1.OAuthClient{ClientType: v1.OAuthPublic, RedirectURIs: []string{benchRedirect}}},
		Status: v1.ApplicationStatus{ApplicationID: oauthAppID}})
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "globex", Name: "bi", UID: "uid-conn"},
		Spec: v1.OrgConnectionSpec{ApplicationID: oauthAppID, Role: v1.RoleAnalyst},
		Status: v1.OrgConnectionStatus{ApplicationNamespace: "acme", Conditions: []metav1.Condition{{Type: v1.ConditionReady,
			Status: metav1.ConditionTrue, Reason: v1.ReasonConnected, LastTransitionTime: metav1.Now()}}}}
	v.Apply(conn)
	keys := make([]keyformat.Key, oauthKeys)
	for i := range keys {
		if keys[i], err = format.Generate(); err != nil {
			return err
		}
		v.Apply(&v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: "acme", Name: fmt.Sprintf("k%d", i), UID: types.UID(fmt.Sprintf("uid-k%d", i))},
			Spec:   v1.APIKeySpec{ApplicationName: "bi"},
			Status: v1.APIKeyStatus{KeyID: keys[i].KeyID, Hash: keyformat.Hash(keys[i].Token), State: v1.KeyActive}})
	}
	h := v.Handler()
	serve := func(r *http.Request) (*httptest.ResponseRecorder, time.Duration) {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, r)
		return rec, time.Since(start)
	}

	// Issuance.
	jwts := make([]string, len(keys))
	var issuing time.Duration
	for i := range oauthIssued {
		k := keys[i%len(keys)]
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {keyformat.AccessKey(k)}, "client_secret": {keyformat.SecretKey(k)}}
		r := httptest.NewRequest(http.MethodPost, verifier.PathToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec, d := serve(r)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("token endpoint: %d %s", rec.Code, rec.Body.String())
		}
		issuing += d
		body := rec.Body.String()
		start := strings.Index(body, `"access_token":"`) + len(`"access_token":"`)
		jwts[i%len(keys)] = body[start : start+strings.IndexByte(body[start:], '"')]
	}
	perSecond := float64(oauthIssued) / issuing.Seconds()

	// Verification, interleaved so both see the same machine.
	var byKey, byJWT time.Duration
	for i := range oauthVerifies {
		j := (i * 7) % len(keys)
		for _, tc := range []struct {
			header, value string
			total         *time.Duration
		}{{"X-Api-Key", keys[j].Token, &byKey}, {"Authorization", "Bearer " + jwts[j], &byJWT}} {
			r := httptest.NewRequest(http.MethodGet, verifier.PathAuthorize+"?org=globex", nil)
			r.Header.Set(tc.header, tc.value)
			rec, d := serve(r)
			if rec.Code != http.StatusOK {
				return fmt.Errorf("authorize with %s: %d %s", tc.header, rec.Code, rec.Body.String())
			}
			*tc.total += d
		}
	}
	res.AtLeast("oauth: token issuance, one core", perSecond, "tokens/s", oauthIssueTarget,
		fmt.Sprintf("%d tokens for %d keys through the handler, %.0f µs each (ES256)", oauthIssued, oauthKeys, issuing.Seconds()*1e6/oauthIssued))
	if err := measureCodeGrant(res, v, oauthAppID, conn, issuing.Seconds()*1e6/oauthIssued); err != nil {
		return err
	}
	res.RatioAtMost("oauth: verify an access token", byJWT.Seconds()*1e6/oauthVerifies, byKey.Seconds()*1e6/oauthVerifies, "µs", oauthRatioTarget,
		fmt.Sprintf("forward-auth in the handler; floor: the same request with the key that obtained the token, %d each interleaved", oauthVerifies))
	return nil
}
