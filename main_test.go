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

package main

import (
	"flag"
	"strings"
	"testing"
)

// TestABadRateLimitStoreIsRefusedWithoutItsPassword: the store's flags are checked before
// anything starts, with one sentence that names the flag and never the password.
func TestABadRateLimitStoreIsRefusedWithoutItsPassword(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{[]string{"--rate-limit-store=redis://:hunter2@redis:6379/0"}, ""},
		{[]string{"--rate-limit-store=rediss://clearance:hunter2@redis.example:6380/1"}, ""},
		{[]string{"--rate-limit-store=redis://:hunter2@redis:port/0"}, `--rate-limit-store: not a URL (invalid port ":port" after host); want redis://`},
		{[]string{"--rate-limit-store=http://:hunter2@redis:6379/0"}, `scheme "http" is not supported`},
		{[]string{"--rate-limit-store=redis://:hunter2@redis:6379/x"}, "invalid database number"},
		{[]string{"--rate-limit-store=redis://redis:6379/0", "--enable-verifier=false"}, "set it on the replicas that run with --enable-verifier"},
		{[]string{"--rate-limit-store-timeout=0s"}, "--rate-limit-store-timeout must be positive"},
		{[]string{"--rate-limit-store-fallback-replicas=0"}, "--rate-limit-store-fallback-replicas must be at least 1"},
	} {
		var o options
		fs := flag.NewFlagSet("clearance", flag.ContinueOnError)
		o.bind(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := o.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%v: the error shows the password: %v", tc.args, err)
		}
	}
}
