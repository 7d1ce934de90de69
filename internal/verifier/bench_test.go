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
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

// benchKeys is the index size of the throughput target (docs/performance.md).
const benchKeys = 100_000

// populate adds n more APIKeys of the world's application to its index and returns their tokens.
func populate(b *testing.B, w *world, n int) []string {
	b.Helper()
	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 1_000_000_000, Period: metav1.Duration{Duration: time.Second}}}
	})
	tokens := make([]string, n)
	for i := range n {
		k, err := w.format.Generate()
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = k.Token
		w.v.Apply(&v1.APIKey{
			ObjectMeta: metav1.ObjectMeta{Namespace: ownerOrg, Name: fmt.Sprintf("k%d", i), UID: types.UID(fmt.Sprintf("uid-k%d", i))},
			Spec:       v1.APIKeySpec{ApplicationName: appName},
			Status:     v1.APIKeyStatus{KeyID: k.KeyID, Hash: keyformat.Hash(k.Token), State: v1.KeyActive, ApplicationUID: w.app.UID},
		})
	}
	return tokens
}

// BenchmarkAuthorizeHandler is the handler alone: decision, headers, metrics.
func BenchmarkAuthorizeHandler(b *testing.B) {
	w := newWorld(b)
	tokens := populate(b, w, benchKeys)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, PathAuthorize+"?org="+grantOrg+"&minRole=Observer&scope=reports:read", nil)
		i := 0
		for pb.Next() {
			r.Header = http.Header{"X-Api-Key": {tokens[i%len(tokens)]}}
			rec := httptest.NewRecorder()
			w.v.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			i += 7919
		}
	})
}

// BenchmarkLoopback compares the verifier with a bare net/http handler over keep-alive HTTP on
// loopback, the throughput measure of docs/performance.md (target: ≥ 0.7 × bare).
func BenchmarkLoopback(b *testing.B) {
	w := newWorld(b)
	tokens := populate(b, w, benchKeys)
	bare := http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write(okBody)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"verifier", w.v}} {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &http.Server{Handler: tc.h, ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = srv.Serve(ln) }()
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
			url := "http://" + ln.Addr().String() + PathAuthorize + "?org=" + grantOrg
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header["X-Api-Key"] = []string{tokens[i%len(tokens)]}
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatalf("status %d", resp.StatusCode)
					}
					i += 7919
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
