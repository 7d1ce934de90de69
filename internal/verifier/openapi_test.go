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
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/oauth"
)

// TestTheOpenAPIDocumentDescribesEveryRouteReasonAndHeader keeps docs/openapi.json, which the
// verifier serves at /openapi.json, in step with the handlers: every path they route, every
// reason of reasons.go, every header they read or write.
func TestTheOpenAPIDocumentDescribesEveryRouteReasonAndHeader(t *testing.T) {
	w := codeWorld(t, v1.OAuthPublic) // the authorization code grant's paths served too
	rec := w.do(http.MethodGet, PathOpenAPI, "")
	onDisk, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), onDisk) {
		t.Fatalf("/openapi.json (%d) is not docs/openapi.json", rec.Code)
	}
	var doc struct {
		OpenAPI    string                     `json:"openapi"`
		Paths      map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas struct {
				Reason struct {
					Enum []string `json:"enum"`
				} `json:"Reason"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(onDisk, &doc); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	for _, p := range []string{PathAuthorize, PathAuthorize + "/{clientPath}", PathVerify, PathPreflight, PathToken, PathRevoke, PathIntrospect,
		PathJWKS, PathMetadata, PathOpenAPI, oauth.AuthorizePath, oauth.AuthorizeDonePath, oauth.AuthorizeRequestsPath + "{id}", PathOpenIDConfiguration} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("docs/openapi.json has no path %s", p)
		}
		// Every documented path is served: nothing answers not_found.
		if rec := w.do(http.MethodGet, strings.NewReplacer("{clientPath}", "x", "{id}", "x").Replace(p), ""); rec.Header().Get("X-Clearance-Reason") == ReasonNotFound {
			t.Errorf("%s is documented but not served", p)
		}
	}
	for r := reason(1); r < numReasons; r++ {
		if !slices.Contains(doc.Components.Schemas.Reason.Enum, r.String()) {
			t.Errorf("docs/openapi.json's Reason does not list %s", r)
		}
	}
	if len(doc.Components.Schemas.Reason.Enum) != int(numReasons)-1 {
		t.Errorf("docs/openapi.json lists %d reasons, the handlers have %d", len(doc.Components.Schemas.Reason.Enum), numReasons-1)
	}
	text := strings.ToLower(string(onDisk))
	for _, h := range []string{hAuthorization, hXAPIKey, hAccessKey, hSecretKey, hWebSocketProtocol, hOrigin, hClearanceOrg,
		hClearanceMinRole, hClearanceScope, hClearanceMetric, hClearanceBucket, hOriginalMethod, hForwardedMethod, hACRequestMethod,
		hCacheControl, hWWWAuthenticate, hRetryAfter, hReason, hApplicationID, hRole, hKeyID, hRateLimitLimit,
		hRateLimitRemain, hRateLimitReset, hRateLimitPolicy, hRateLimit, hAllow, hVary, hACAllowOrigin, hACAllowMethods,
		hACAllowHeaders, hACExposeHeaders, hACMaxAge, hACRequestHeaders, hPragma,
		hClearanceTransport, hAccept, hPrefer, hUpgrade, hWebSocketKey, hWebSocketVersion} {
		if !strings.Contains(text, `"`+strings.ToLower(h)+`"`) {
			t.Errorf("docs/openapi.json does not describe header %s", h)
		}
	}
}
