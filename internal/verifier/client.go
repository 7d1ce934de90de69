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
	"fmt"
	"net/http"
)

// Verify asks the verifier at baseURL (e.g. http://clearance-verifier:8090) about a key through
// the JSON API, POST /v1/keys:verify, as a Go service that checks keys itself would. It returns
// the HTTP status (200 when the verifier could answer; 400 or 503 when it could not) and the
// answer; the key is sent only in the request body, never in an error.
func Verify(c *http.Client, baseURL string, req VerifyRequest) (int, VerifyResponse, error) {
	var answer VerifyResponse
	body, err := json.Marshal(req)
	if err != nil {
		return 0, answer, err
	}
	resp, err := c.Post(baseURL+PathVerify, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, answer, err
	}
	defer func() { _ = resp.Body.Close() }()
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return resp.StatusCode, answer, fmt.Errorf("HTTP %d with an unreadable body: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, answer, nil
}
