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
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/ops"
)

// TestRevokeNamesEveryKeyThatStopsWorkingWhateverItsOverlap: a key revoked in a rotation's
// overlap takes its previous keys with it, and revoke says so, however many there are; a key
// not minted yet is said to be one. No key material is printed.
func TestRevokeNamesEveryKeyThatStopsWorkingWhateverItsOverlap(t *testing.T) {
	ns := env.Namespace(t, "revoke-overlap")
	format, err := keyformat.New(keyformat.DefaultPrefix)
	must(t, err)
	for n, earlier := range []string{"", " and its previous key", " and its 2 previous keys", " and its 3 previous keys"} {
		name := fmt.Sprintf("acme-bi-%d", n)
		key, token := mintedKey(t, ns, name, "acme-bi", func(k *v1.APIKey) {
			for range n {
				prev, err := format.Generate()
				must(t, err)
				k.Status.PreviousKeys = append(k.Status.PreviousKeys, v1.PreviousKey{KeyID: prev.KeyID, Hash: keyformat.Hash(prev.Token),
					ValidUntil: metav1.NewTime(now.Add(time.Hour))})
			}
		})
		r := run(t, ns, "revoke", name).ok(t)
		want := "apikey/" + name + " revoked: key " + key.Status.Masked + earlier + " of application acme-bi stopped working and never comes back; Secret " +
			name + "-key is deleted with it\n"
		if r.stdout != want {
			t.Errorf("%d previous keys:\n got %q\nwant %q", n, r.stdout, want)
		}
		if strings.Contains(r.stdout+r.stderr, token) {
			t.Errorf("revoke printed the key")
		}
	}

	pending := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pending"}, Spec: v1.APIKeySpec{ApplicationName: "acme-bi"}}
	must(t, env.Client.Create(ctx(), pending))
	want := "apikey/pending revoked: key (not minted yet) of application acme-bi stopped working and never comes back; Secret pending-key is deleted with it\n"
	if out := run(t, ns, "revoke", "pending").ok(t).stdout; out != want {
		t.Errorf("a key not minted yet:\n got %q\nwant %q", out, want)
	}
}

// TestDisableAppNamesEveryOrgWhereItsKeysStopWorking: switching an application off refuses its
// keys in every org that connected it; disable-app names each of them before anyone wonders.
func TestDisableAppNamesEveryOrgWhereItsKeysStopWorking(t *testing.T) {
	ns := env.Namespace(t, "appswitch-orgs")
	app := application(t, ns, "acme-bi", "Acme BI export", 3)
	app.Status.ConnectedOrgs = []string{"globex", "initech"}
	must(t, env.Client.Status().Update(ctx(), app))
	out := run(t, ns, "disable-app", "acme-bi").ok(t).stdout
	want := "application/acme-bi (" + app.Status.ApplicationID + ") disabled: its 3 keys are refused in every org until " +
		"`kubectl clearance enable-app acme-bi` (connected orgs: globex, initech)\n"
	if out != want {
		t.Errorf("\n got %q\nwant %q", out, want)
	}
}

// TestSetRoleAndTransportsThatChangeNothingWriteNothing: asking for what a connection already
// has is answered "unchanged" without a write, so someone who may only read connections gets
// that answer for every role and every transport, rather than a refusal to patch (and the
// admission policies see no write that changes nothing).
func TestSetRoleAndTransportsThatChangeNothingWriteNothing(t *testing.T) {
	ns := env.Namespace(t, "unchanged")
	appID, err := keyformat.ApplicationID()
	must(t, err)
	run(t, ns, "connect", appID, "--name", "partner").ok(t)
	grantOnly(t, ns, "rita", rbacv1.PolicyRule{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgconnections"}, Verbs: []string{"get", "list"}})
	unchanged := func(args ...string) {
		t.Helper()
		var before, after v1.OrgConnection
		must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "partner"}, &before))
		r := run(t, ns, append([]string{"--as", "rita"}, args...)...).ok(t)
		if !strings.HasPrefix(r.stdout, "orgconnection/partner unchanged: ") {
			t.Errorf("%v printed %q", args, r.stdout)
		}
		must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "partner"}, &after))
		if after.ResourceVersion != before.ResourceVersion {
			t.Errorf("%v wrote the connection", args)
		}
	}
	for _, role := range v1.Roles {
		run(t, ns, "set-role", "partner", "--role", string(role)).ok(t)
		unchanged("set-role", "partner", "--role", string(role))
		unchanged("set-role", appID, "--role", string(role))
	}
	run(t, ns, "transports", "partner", "--refuse", "websockets").ok(t)
	for _, args := range [][]string{
		{"--refuse", "websockets"}, {"--allow", "sse"}, {"--allow", "long-polling,sse"},
		{"--refuse", "ws", "--allow", "ServerSentEvents,LongPolling"},
	} {
		unchanged(append([]string{"transports", "partner"}, args...)...)
	}
}

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

// TestKeyShowOfAKeyWhoseMaterialWasRemovedPrintsNothing: once a key expired the operator empties
// its Secret; key show then says so, for every field and format, and prints nothing to stdout
// (no empty line a script would take for the key).
func TestKeyShowOfAKeyWhoseMaterialWasRemovedPrintsNothing(t *testing.T) {
	ns := env.Namespace(t, "show-expired")
	mintedKey(t, ns, "acme-bi-old", "acme-bi", nil)
	var secret corev1.Secret
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi-old-key"}, &secret))
	secret.Data = nil // as the operator empties an expired key's Secret
	must(t, env.Client.Update(ctx(), &secret))
	for _, args := range [][]string{{}, {"-o", "json"}, {"-o", "yaml"}} {
		for _, field := range append([]string{""}, ops.SecretFields...) {
			a := append([]string{"key", "show", "acme-bi-old"}, args...)
			want := "token"
			if field != "" {
				a, want = append(a, "--field", field), field
			}
			r := run(t, ns, a...)
			msg := r.failed(t)
			if !strings.HasPrefix(msg, "the Secret of APIKey acme-bi-old holds no "+want+": an expired key's material is removed") || r.stdout != "" {
				t.Errorf("%v: %s, stdout %q", a, msg, r.stdout)
			}
		}
	}
}

// TestTokenRefusesANamespaceThatIsNotANamespaceName: the namespace goes into the printed
// commands, so one that is not a namespace's name is refused before anything is read or printed.
func TestTokenRefusesANamespaceThatIsNotANamespaceName(t *testing.T) {
	for _, ns := range []string{"acme;id", "Acme", "acme\nid", "$(id)", "acme_corp"} {
		r := run(t, ns, "token", "acme-bi-prod")
		if msg := r.failed(t); !strings.HasPrefix(msg, fmt.Sprintf("namespace %q is not a namespace name: ", ns)) || r.stdout != "" {
			t.Errorf("-n %q: %s, stdout %q", ns, msg, r.stdout)
		}
	}
}

// TestUsageRefusesAWindowOutsideOneSecondTo31Days: a zero, negative or longer window is refused
// naming --window before the cluster or Prometheus is asked; the edges are taken.
func TestUsageRefusesAWindowOutsideOneSecondTo31Days(t *testing.T) {
	ns := env.Namespace(t, "usage-window")
	for _, w := range []string{"0s", "-1h", "744h0m1s", "8760h"} {
		msg := run(t, ns, "usage", "--prometheus-url", "http://127.0.0.1:1", "--window="+w).failed(t)
		if !strings.HasPrefix(msg, "--window ") || !strings.Contains(msg, "must be between 1s and 744h (31 days)") {
			t.Errorf("--window %s: %s", w, msg)
		}
	}
	for _, w := range []string{"1s", "744h"} {
		if msg := run(t, ns, "usage", "--prometheus-url", "http://127.0.0.1:1", "--window="+w).failed(t); strings.Contains(msg, "--window") {
			t.Errorf("--window %s refused: %s", w, msg)
		}
	}
}

// TestUsageOfAnApplicationWithoutAnIDYetAsksPrometheusNothing: before the operator allocates an
// Application's ID there is nothing of it to count; asking Prometheus for an empty ID would
// return the answers no application got, in every org, so the command says so and stops.
func TestUsageOfAnApplicationWithoutAnIDYetAsksPrometheusNothing(t *testing.T) {
	ns := env.Namespace(t, "usage-noid")
	must(t, env.Client.Create(ctx(), &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fresh"}, Spec: v1.ApplicationSpec{Description: "Fresh"}}))
	var asked atomic.Bool
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Store(true)
		http.Error(w, "unexpected", http.StatusInternalServerError)
	}))
	defer prom.Close()
	msg := run(t, ns, "usage", "fresh", "--prometheus-url", prom.URL).failed(t)
	if msg != "application fresh has no Application ID yet, so nothing was counted for it" || asked.Load() {
		t.Errorf("got %s (Prometheus asked: %t)", msg, asked.Load())
	}
}

// TestEveryErrorGoesToStderrAndStdoutStaysTheResult: stdout is what scripts read, and what
// `eval "$(kubectl clearance token …)"` runs, so a failing command prints nothing there: its one
// sentence goes to stderr after "error: ", and the exit code is 1.
func TestEveryErrorGoesToStderrAndStdoutStaysTheResult(t *testing.T) {
	ns := env.Namespace(t, "errors-stderr")
	pending := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pending"}, Spec: v1.APIKeySpec{ApplicationName: "acme-bi"}}
	must(t, env.Client.Create(ctx(), pending))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "x;touch pwned", "token", "acme-bi-prod"}, `error: namespace "x;touch pwned" is not a namespace name`},
		{[]string{"-n", ns, "token", "missing"}, "error: APIKey missing not found in namespace " + ns},
		{[]string{"-n", ns, "key", "show", "pending"}, "error: the Secret pending-key of APIKey pending not found in namespace " + ns +
			`: the key is not minted yet (state ""); check that the Clearance operator is running`},
		{[]string{"-n", ns, "keys", "-o", "wide"}, `error: unsupported output format "wide"`},
		{[]string{"-n", ns, "rotate"}, "error: accepts 1 arg(s), received 0"},
	} {
		o, stdout, stderr := newOptions()
		code := Run(o, append([]string{"--kubeconfig", env.Kubeconfig(t)}, tc.args...))
		if code != 1 || stdout.Len() > 0 || !strings.HasPrefix(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1, nothing, %q…", tc.args, code, stdout, stderr, tc.want)
		}
	}
}
