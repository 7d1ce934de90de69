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
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryTestTheDocsNameExists: the docs (docs/security.md and docs/reliability.md above all)
// hold each promise to the tests that check it. A name there that no test file defines is a
// promise nobody checks.
func TestEveryTestTheDocsNameExists(t *testing.T) {
	defined := map[string]bool{}
	testFunc := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)\w+)\(`)
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "node_modules"):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, "_test.go"):
			return nil
		}
		data, err := os.ReadFile(path)
		for _, m := range testFunc.FindAllSubmatch(data, -1) {
			defined[string(m[1])] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile("`((?:Test|Fuzz|Benchmark)[A-Z]\\w*)")
	checked := 0
	for _, doc := range append(docs, "README.md", "charts/clearance/README.md") {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range named.FindAllSubmatch(data, -1) {
			checked++
			if !defined[string(m[1])] {
				t.Errorf("%s names %s, which no test defines: name the test that checks the promise, or write it", doc, m[1])
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d test names found in the docs; docs/security.md alone names more", checked)
	}
}

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
		err := validated(t, tc.args)
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

// TestTheConsolesOIDCFlagsGoTogetherAndTheSecretComesFromAFile: an issuer needs the client ID,
// the secret file and the redirect URL, and the console; a client flag without an issuer is
// refused, and so is any console flag without the console; the secret is read from its file,
// never shown in an error.
func TestTheConsolesOIDCFlagsGoTogetherAndTheSecretComesFromAFile(t *testing.T) {
	dir := t.TempDir()
	secretFile, emptyFile, notPEM := filepath.Join(dir, "secret"), filepath.Join(dir, "empty"), filepath.Join(dir, "ca.txt")
	for path, data := range map[string]string{secretFile: "s3cr3t-value\n", emptyFile: " \n", notPEM: "hunter2"} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	all := []string{"--console-bind-address=127.0.0.1:8095", "--console-oidc-issuer-url=https://dex.example.com",
		"--console-oidc-client-id=clearance-console", "--console-oidc-client-secret-file=" + secretFile,
		"--console-oidc-redirect-url=http://127.0.0.1:8095/login/oidc/callback"}
	without := func(prefix string) []string {
		var out []string
		for _, a := range all {
			if !strings.HasPrefix(a, prefix) {
				out = append(out, a)
			}
		}
		return out
	}
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{all, ""},
		{without("--console-oidc-client-id"), "needs --console-oidc-client-id"},
		{without("--console-oidc-client-secret-file"), "needs --console-oidc-client-secret-file"},
		{without("--console-oidc-redirect-url"), "needs --console-oidc-redirect-url"},
		{without("--console-bind-address"), "set --console-bind-address too"},
		{[]string{"--console-bind-address=:8095", "--console-oidc-client-id=x"}, "--console-oidc-client-id is set but --console-oidc-issuer-url is not"},
		// The console's other flags without the console would be silently ignored.
		{[]string{"--console-verifier-url=http://127.0.0.1:8090"}, "--console-verifier-url is the console's and does nothing without it: set --console-bind-address too"},
		{[]string{"--console-prometheus-url=http://127.0.0.1:9090"}, "--console-prometheus-url is the console's and does nothing without it: set --console-bind-address too"},
		{[]string{"--console-trust-auth-proxy"}, "--console-trust-auth-proxy is the console's and does nothing without it: set --console-bind-address too"},
		{[]string{"--console-bind-address=:8095", "--console-verifier-url=http://127.0.0.1:8090", "--console-prometheus-url=http://127.0.0.1:9090", "--console-trust-auth-proxy"}, ""},
	} {
		err := validated(t, tc.args)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}

	f := consoleOIDCFlags{issuerURL: "https://dex.example.com", clientID: "c", clientSecretFile: secretFile,
		redirectURL: "http://127.0.0.1:8095/login/oidc/callback", extraScopes: "openid, email,groups,"}
	o, err := f.options()
	if err != nil {
		t.Fatal(err)
	}
	if o.ClientSecret != "s3cr3t-value" || strings.Join(o.ExtraScopes, " ") != "email groups" {
		t.Errorf("read secret %q (want it trimmed) and scopes %q (want email groups)", o.ClientSecret, o.ExtraScopes)
	}
	for _, bad := range []consoleOIDCFlags{
		{issuerURL: f.issuerURL, clientSecretFile: emptyFile},
		{issuerURL: f.issuerURL, clientSecretFile: filepath.Join(dir, "missing")},
		{issuerURL: f.issuerURL, clientSecretFile: secretFile, caFile: notPEM},
	} {
		_, err := bad.options()
		if err == nil {
			t.Errorf("%+v: no error", bad)
		} else if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("the error shows a file's contents: %v", err)
		}
	}
}

// TestAZeroOrNegativeValueIsRefusedNotReplacedByADefault: the verifier takes a zero duration for
// "use the default", so a zero given on the command line would silently become the default:
// --max-staleness=0, asking never to answer from old state, would have the verifier answer from
// what it knew for 5 minutes after losing the apiserver, revoked keys included. Likewise
// controller-runtime takes --webhook-port=0 for 9443 and a negative one for no webhook server.
// Each is refused with the flag's name instead, as --rate-limit-store-timeout and
// --oauth-token-ttl are.
func TestAZeroOrNegativeValueIsRefusedNotReplacedByADefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{[]string{"--max-staleness=4s", "--usage-flush-interval=1s"}, ""},
		{[]string{"--max-staleness=0"}, "--max-staleness must be positive"},
		{[]string{"--max-staleness=-1m"}, "--max-staleness must be positive"},
		{[]string{"--usage-flush-interval=0s"}, "--usage-flush-interval must be positive"},
		{[]string{"--webhook-port=0"}, "--webhook-port must be a port between 1 and 65535"},
		{[]string{"--webhook-port=-1"}, "--webhook-port must be a port between 1 and 65535"},
		{[]string{"--webhook-port=-1", "--enable-webhooks=false"}, ""},
	} {
		err := validated(t, tc.args)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestEveryBadOrContradictoryFlagIsRefusedNamingItNeverReplacedByADefault: for every flag
// validate checks, a value out of its range (each zero and negative value of a count, a rate or
// a duration among them) and each contradictory pair is refused with an error that names the
// flag, and the value at the edge of the range is taken. client-go takes --kube-api-qps=0 and
// --kube-api-burst=0 for its defaults of 5 and 10 (and a qps below zero, NaN or infinite for no
// limit), and controller-runtime takes
// --apikey-workers=0 for 1: each would run the operator on a value nobody asked for.
func TestEveryBadOrContradictoryFlagIsRefusedNamingItNeverReplacedByADefault(t *testing.T) {
	type flagCase struct {
		args []string
		flag string // "" = valid; else the flag the refusal names
	}
	cases := []flagCase{
		{[]string{"--key-prefix=Clr_"}, "--key-prefix"},
		{[]string{"--key-prefix=clr"}, "--key-prefix"},
		{[]string{"--key-prefix=ab_"}, ""},
		{[]string{"--write-min-role=Admin"}, "--write-min-role"},
		{[]string{"--write-min-role="}, "--write-min-role"},
		{[]string{"--write-min-role=OrgAdmin"}, ""},
		{[]string{"--enable-controllers=false", "--enable-webhooks=false", "--enable-verifier=false"}, "--enable-controllers"},
		{[]string{"--enable-controllers=false", "--enable-webhooks=false", "--enable-verifier=false", "--console-bind-address=:8095"}, ""},
		{[]string{"--webhook-port=65536"}, "--webhook-port"},
		{[]string{"--webhook-port=65535"}, ""},
		{[]string{"--webhook-port=1"}, ""},
		{[]string{"--webhook-certs-external"}, "--webhook-cert-dir"},
		{[]string{"--webhook-certs-external", "--webhook-cert-dir=/certs"}, ""},
		{[]string{"--oauth-token-ttl=1h0m1s"}, "--oauth-token-ttl"},
		{[]string{"--oauth-token-ttl=1h", "--oauth-signing-key-rotation=1h0m1s"}, ""},
		{[]string{"--oauth-token-ttl=10m", "--oauth-signing-key-rotation=10m"}, "--oauth-signing-key-rotation"},
		{[]string{"--oauth-token-ttl=10m", "--oauth-signing-key-rotation=9m"}, "--oauth-signing-key-rotation"},
		{[]string{"--leader-elect", "--leader-elect-retry-period=2s", "--leader-elect-renew-deadline=10s", "--leader-elect-lease-duration=15s"}, ""},
		{[]string{"--leader-elect", "--leader-elect-retry-period=10s", "--leader-elect-renew-deadline=10s"}, "--leader-elect-retry-period"},
		{[]string{"--leader-elect", "--leader-elect-renew-deadline=15s", "--leader-elect-lease-duration=15s"}, "--leader-elect-renew-deadline"},
		{[]string{"--leader-elect", "--leader-elect-lease-duration=1s"}, "--leader-elect-lease-duration"},
		// Without leader election the periods are not used, so nothing contradicts them.
		{[]string{"--leader-elect-lease-duration=1s"}, ""},
		{[]string{"--kube-api-qps=0.5", "--kube-api-burst=1", "--apikey-workers=1", "--rate-limit-store-fallback-replicas=1"}, ""},
		{[]string{"--kube-api-qps=NaN"}, "--kube-api-qps"},
		{[]string{"--kube-api-qps=+Inf"}, "--kube-api-qps"},
		{[]string{"--metrics-cert-dir=/certs"}, "--metrics-secure"},
		{[]string{"--metrics-secure", "--metrics-bind-address=0"}, "--metrics-secure"},
		{[]string{"--metrics-secure", "--metrics-cert-dir=/certs"}, ""},
	}
	// Every count, rate and duration that must be positive, at zero and below.
	for _, f := range []struct{ flag, unit string }{
		{"--kube-api-qps", ""}, {"--kube-api-burst", ""}, {"--apikey-workers", ""},
		{"--rate-limit-store-fallback-replicas", ""}, {"--max-staleness", "s"}, {"--usage-flush-interval", "s"},
		{"--rate-limit-store-timeout", "s"}, {"--oauth-token-ttl", "s"},
	} {
		for _, v := range []string{"0", "-1", "-2147483648"} {
			cases = append(cases, flagCase{[]string{f.flag + "=" + v + f.unit}, f.flag})
		}
	}
	for _, tc := range cases {
		err := validated(t, tc.args)
		switch {
		case tc.flag == "" && err != nil:
			t.Errorf("%v: refused: %v", tc.args, err)
		case tc.flag != "" && err == nil:
			t.Errorf("%v: taken, want it refused naming %s", tc.args, tc.flag)
		case tc.flag != "" && !strings.Contains(err.Error(), tc.flag):
			t.Errorf("%v: %v, want it to name %s", tc.args, err, tc.flag)
		}
	}
}

// TestTheConsoleRunsAloneOnlyWhenNothingElseIsAskedFor: a process serves the console alone,
// without credentials of its own, only when none of the controllers, the webhooks and the
// verifier is enabled; with any of them it runs the manager too, so none is silently dropped.
func TestTheConsoleRunsAloneOnlyWhenNothingElseIsAskedFor(t *testing.T) {
	off := []string{"--enable-controllers=false", "--enable-webhooks=false", "--enable-verifier=false"}
	for _, tc := range []struct {
		args  []string
		alone bool
	}{
		{append([]string{"--console-bind-address=:8095"}, off...), true},
		{off, false},
		{[]string{"--console-bind-address=:8095", "--enable-webhooks=false", "--enable-verifier=false"}, false},
		{[]string{"--console-bind-address=:8095", "--enable-controllers=false", "--enable-verifier=false"}, false},
		{[]string{"--console-bind-address=:8095", "--enable-controllers=false", "--enable-webhooks=false"}, false},
	} {
		var o options
		fs := flag.NewFlagSet("clearance", flag.ContinueOnError)
		o.bind(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if got := o.consoleOnly(); got != tc.alone {
			t.Errorf("%v: the console alone %v, want %v", tc.args, got, tc.alone)
		}
	}
}

// validated parses args as the operator's command line and returns what validate says of them.
func validated(t *testing.T, args []string) error {
	t.Helper()
	var o options
	fs := flag.NewFlagSet("clearance", flag.ContinueOnError)
	o.bind(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o.validate()
}
