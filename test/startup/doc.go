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

// Package startup proves that ready means ready: the operator, started as make run starts it
// (webhooks registered at a loopback URL, certificate issued by its own rotator) on a control
// plane that has never seen it, on a certificate directory an earlier run left behind, admits
// the first object applied the instant /readyz answers OK, and logs no error while it starts.
package startup
