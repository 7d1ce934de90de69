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

// Package docs holds documents that the binary serves as they are committed here, so there is
// one copy: the verifier serves OpenAPI at /openapi.json.
package docs

import _ "embed"

// OpenAPI is the OpenAPI 3.1 description of the verifier's HTTP API (docs/openapi.json).
//
//go:embed openapi.json
var OpenAPI []byte
