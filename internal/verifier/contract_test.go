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
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// TestTheDocsListEveryReason: docs/verifier.md's table has every reason. The proxy
// configurations it shows are checked by TestTheDocsShowTheProxyConfigsTheTestsRun and run by
// TestProxiesInFrontOfTheVerifier.
func TestTheDocsListEveryReason(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "verifier.md"))
	if err != nil {
		t.Fatal(err)
	}
	for r := reason(1); r < numReasons; r++ {
		if !strings.Contains(string(docs), "| `"+r.String()+"` |") {
			t.Errorf("docs/verifier.md does not list reason %s", r)
		}
	}
}

func TestCanonicalHeaderNamesAreUsedAsMapKeys(t *testing.T) {
	for _, h := range []string{hAuthorization, hXAPIKey, hAccessKey, hSecretKey, hWebSocketProtocol, hOrigin, hClearanceOrg,
		hClearanceMinRole, hClearanceScope, hClearanceMetric, hClearanceBucket, hOriginalMethod, hForwardedMethod, hACRequestMethod,
		hContentType, hCacheControl, hWWWAuthenticate, hRetryAfter, hReason, hApplicationID, hRole, hKeyID, hRateLimitLimit,
		hRateLimitRemain, hRateLimitReset, hRateLimitPolicy, hRateLimit, hAllow, hVary, hACAllowOrigin, hACAllowMethods,
		hACAllowHeaders, hACExposeHeaders, hACMaxAge, hACRequestHeaders} {
		if c := http.CanonicalHeaderKey(h); c != h {
			t.Errorf("%q is not canonical (%q): lookups would miss it", h, c)
		}
	}
}

// Run with -race: requests keep being answered correctly while informers rewrite the index.
func TestRequestsAreAnsweredWhileInformersRewriteTheIndex(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) { a.Spec.RateLimits = nil })
	others := make([]keyformat.Key, 50)
	for i := range others {
		others[i] = w.mint()
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := others[i%len(others)]
			key := w.key.DeepCopy()
			key.Name, key.UID = "other", "uid-other"
			key.Status.KeyID, key.Status.Hash = k.KeyID, keyformat.Hash(k.Token)
			w.v.Apply(key)
			conn := w.conn.DeepCopy()
			conn.Spec.Role = v1.Roles[i%len(v1.Roles)]
			w.v.Apply(conn)
			w.v.Apply(w.app.DeepCopy())
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 300 {
				rec := w.do(http.MethodGet, PathAuthorize+"?org="+grantOrg, "", "X-API-Key", w.token.Token)
				if rec.Code != http.StatusOK {
					t.Errorf("status %d while the index was rewritten: %s", rec.Code, rec.Body.String())
					return
				}
			}
		})
	}
	for range 300 {
		w.do(http.MethodGet, PathAuthorize+"?org="+grantOrg, "", "X-API-Key", w.token.Token)
	}
	close(stop)
	wg.Wait()
}

func TestNoAnswerOrLogLineEverHoldsTheKey(t *testing.T) {
	w := newWorld(t)
	var logs strings.Builder
	var logMu sync.Mutex
	logger := funcr.New(func(prefix, args string) {
		logMu.Lock()
		defer logMu.Unlock()
		logs.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
	w.v.log, w.v.index.log = logger, logger

	k := w.token
	w.authorize(k.Token, "")
	w.authorize(k.Token, "minRole=OrgAdmin")
	w.authorize(k.Token, "scope=x:y", "Origin", "https://evil.example")
	w.authorize("", "", "Authorization", "api-key "+k.Token+"x")
	w.authorize("", "", "accessKey", keyformat.AccessKey(k), "secretKey", keyformat.SecretKey(k)+"!")
	w.authorize("", "", "Sec-WebSocket-Protocol", "clearance.key."+k.Token+", clearance.key."+k.Token)
	w.do(http.MethodPost, PathVerify, `{"key":"`+k.Token+`","org":"globex"}`)
	w.do(http.MethodPost, PathVerify, `{"key":"`+k.Token+`","org":"initech"}`)
	w.do(http.MethodPost, PathVerify, `{"key":"`+k.Token+`"`)
	// Things that log: a key id claimed twice, a flush without a client.
	dup := w.key.DeepCopy()
	dup.Name, dup.UID = "dup", "uid-dup"
	w.v.Apply(dup)
	w.authorize(k.Token, "")
	if err := w.v.Flush(t.Context()); err != nil {
		logger.Error(err, "flush")
	}
	logMu.Lock()
	defer logMu.Unlock()
	if logs.Len() == 0 {
		t.Fatal("expected log lines to check")
	}
	for _, s := range []string{k.Token, k.Secret, keyformat.SecretKey(k)} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("a log line holds key material:\n%s", logs.String())
		}
	}
	// The responses are checked by the world's cleanup, as in every test.
}

func TestAKeyOfAnApplicationWithoutAnIDYetIsInactive(t *testing.T) {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) { a.Status.ApplicationID = "" })
	expect(t, w.authorize(w.token.Token, ""), http.StatusUnauthorized, ReasonKeyInactive)
}
