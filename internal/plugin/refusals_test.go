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

package plugin

import (
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// TestKeyNewRefusesBadFlagsBeforeCreatingAnything: a missing --app and a --ttl that is not a
// lifetime (a word, zero, below zero) are refused naming the flag, and nothing is created: in
// particular --ttl 0s never becomes a key that does not expire.
func TestKeyNewRefusesBadFlagsBeforeCreatingAnything(t *testing.T) {
	ns := env.Namespace(t, "keynew-bad")
	application(t, ns, "acme-bi", "Acme BI export", 0)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--app is required: name the Application the key is for (see `kubectl clearance apps`)"},
		{[]string{"--app", "acme-bi", "--ttl", "soon"}, `--ttl "soon" is not a duration: write it like 720h or 90m`},
		{[]string{"--app", "acme-bi", "--ttl", "0s"}, `--ttl "0s" is no lifetime: write at least 1m, like 720h, or leave --ttl out for a key that does not expire`},
		{[]string{"--app", "acme-bi", "--ttl", "0"}, `--ttl "0" is no lifetime`},
		{[]string{"--app", "acme-bi", "--ttl", "-720h"}, `--ttl "-720h" is no lifetime`},
	} {
		args := append([]string{"key", "new", "--name", "k", "--timeout", "1s"}, tc.args...)
		r := run(t, ns, args...)
		if msg := r.failed(t); !strings.HasPrefix(msg, tc.want) {
			t.Errorf("%v:\n got %s\nwant %s…", tc.args, msg, tc.want)
		}
		var keys v1.APIKeyList
		must(t, env.Client.List(ctx(), &keys, client.InNamespace(ns)))
		if len(keys.Items) > 0 {
			t.Fatalf("%v created APIKey %s (spec %+v)", tc.args, keys.Items[0].Name, keys.Items[0].Spec)
		}
	}
}
