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

// Package crash proves that minting survives what a real deployment meets: the operator killed
// with -9 in the middle of minting, its leader killed, and a leader paused past its lease that
// wakes up still believing it leads. Each test runs the real binary as processes of its own
// against a real kube-apiserver, watches every key Secret and APIKey for the whole run, and
// checks the end state: one valid key per APIKey, never replaced, no duplicate or orphaned
// Secret, and every key accepted by the verifier.
//
// Each test logs its measured figures on one line starting with "FIGURES", as key=value pairs.
// CLEARANCE_CRASH_SEED replays the random kill points of a run (its seed is logged).
package crash
