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

// Package verifier answers "is this key good for this org, this role, this metric?" for the
// APIs that Clearance keys unlock. It runs in every replica of the operator binary (or as its
// own Deployment) and serves:
//
//   - GET|POST /v1/authorize: forward-auth for ingress-nginx auth-url, nginx auth_request,
//     Traefik ForwardAuth and Envoy ext_authz (HTTP). The answer is the status code and the
//     X-Clearance-* and rate-limit headers; the body is a short JSON object with a reason.
//   - POST /v1/keys:verify: a JSON API for services that check keys themselves.
//
// Decisions come from an in-memory index that informers over APIKeys, Applications,
// OrgConnections and MetricSets keep current. The verifier never reads Secrets: it holds key
// hashes only, compares them in constant time, and checks expiry against the injected clock at
// request time, so a key is refused at the exact instant it expires.
//
// Accepted requests are counted in memory and flushed to APIKey status (usageCount, lastUsedAt)
// in batches with optimistic-lock merge patches, so counts from several replicas add up.
//
// A request passes through layers, each a file with one job and its own tests:
//
//   - staleness.go: can the verifier answer at all (503 not_ready, 503 stale)?
//     staleness.unavailable.
//   - credentials.go, the HTTP edge's reading: the key and the parameters from headers, query
//     or body. authorizeRequest, verifyRequest → request.
//   - decide.go, the decision: a pure function of the request, a read-only lookup of the index
//     and the time, to a reason (400, then 401, then 403, in that order) and, for an allowed
//     request, the rate-limit bucket that applies. It spends and records nothing. decide.
//   - admit.go, the side effects: spend one token of an allowed request's bucket (none left:
//     429 rate_limited), count a use of a request finally allowed. admit → answer.
//   - http.go, the HTTP edge's writing: routing, status, headers, bodies and the decisions
//     metric, in one place. writeAuthorize, writeVerify, refuse.
//
// Under them the index (index.go, keystore.go, shardmap.go) holds what the informers delivered
// in a form the collector need not walk, and answers the decision's lookups (the lookup
// interface) with read-only views; usage.go writes the counted usage to APIKey status.
//
// See docs/verifier.md for the contract, the reasons and proxy configuration.
package verifier
