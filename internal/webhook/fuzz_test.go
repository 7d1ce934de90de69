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

package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// FuzzAdmissionRequestDecoding sends arbitrary bytes, as the apiserver (or anyone reaching the
// webhook port) could, through the same HTTP handling the webhook server uses: every answer is
// a well-formed HTTP response, never a panic or a 5xx.
func FuzzAdmissionRequestDecoding(f *testing.F) {
	review := func(op, kind, object, old string) string {
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"` + op +
			`","kind":{"group":"access.clearance.dev","version":"v1alpha1","kind":"` + kind +
			`"},"userInfo":{"username":"alice","groups":["g"],"extra":{"acr":["mfa"]}},"object":` + object + `,"oldObject":` + old + `}}`
	}
	for _, seed := range []string{
		"", "{", "null", "[]", `{"request":null}`,
		review("CREATE", "Application", `{"metadata":{"name":"a"},"spec":{"description":"x"}}`, "null"),
		review("UPDATE", "Application", `{"metadata":{"name":"a","annotations":{"access.clearance.dev/created-by":"bob"}}}`, `{"metadata":{"name":"a"}}`),
		review("DELETE", "Application", "null", `{"metadata":{"name":"a","labels":{"access.clearance.dev/protected":"true"}}}`),
		review("UPDATE", "APIKey", `{"metadata":{"name":"k"},"spec":{"applicationName":"bi","secretTemplate":{"labels":{"a b":"c"}}}}`, `{"metadata":{"name":"k"}}`),
		review("CREATE", "APIKey", `{"metadata":{"name":"k"},"spec":{"applicationName":5}}`, "null"),
		review("CREATE", "APIKey", `{"metadata":{"name":"k"},"spec":{"applicationName":"bi","rateLimits":[{"name":"g","limit":1,"period":"1x"}]}}`, "null"),
		review("CREATE", "OrgConnection", `{"metadata":{"name":"c"},"spec":{"applicationID":["x"]}}`, "null"),
		review("CREATE", "Application", `{"metadata":{"name":"a"},"spec":{"applicationID":"app_00000000000000000000000001"}}`, "null"),
		review("CONNECT", "APIKey", `"x"`, `[1]`),
	} {
		f.Add([]byte(seed))
	}
	handlers := map[string]http.Handler{
		"created-by": &admission.Webhook{Handler: createdBy{}},
	}
	// The validators look objects up: only with the package's apiserver, which fuzz workers do
	// not start (the seed corpus runs in make test, with it).
	if env != nil {
		handlers["apikey"] = &admission.Webhook{Handler: apiKeyValidator{client: env.Client}}
		handlers["application"] = &admission.Webhook{Handler: &applicationValidator{client: env.Client}}
		handlers["orgconnection"] = &admission.Webhook{Handler: &orgConnectionValidator{client: env.Client}}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for name, h := range handlers {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s answered %d to %q: %s", name, rec.Code, body, rec.Body.String())
			}
		}
	})
}
