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

package testenv

import (
	"fmt"
	"strings"
	"sync"
)

// LogText collects the log lines of in-process components from every goroutine (Write is a
// funcr.New output function), for the leak check and a test's own assertions.
type LogText struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends one line: funcr's prefix and its formatted arguments.
func (l *LogText) Write(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(prefix + " " + args + "\n")
}

// String is everything written so far.
func (l *LogText) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// SecretLog remembers every secret a package's tests got (tokens, codes, keys that are no
// minted key), each with a label that names it without revealing it, for
// CollectSecretsForLeakCheck and the tests' own checks.
type SecretLog struct {
	mu   sync.Mutex
	list []LeakSecret
}

// Add remembers value (nothing when empty), labelled label and its number.
func (s *SecretLog) Add(label, value string) {
	if value == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, LeakSecret{Label: fmt.Sprintf("%s (#%d)", label, len(s.list)+1), Value: value})
}

// All is every secret remembered so far.
func (s *SecretLog) All() []LeakSecret {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LeakSecret(nil), s.list...)
}

// Values are the secrets themselves.
func (s *SecretLog) Values() []string {
	var out []string
	for _, x := range s.All() {
		out = append(out, x.Value)
	}
	return out
}
