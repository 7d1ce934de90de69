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
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
)

func TestTokenPrintsTheClientCredentialsCommandsWithoutTheKey(t *testing.T) {
	ns := env.Namespace(t, "token")
	_, token := mintedKey(t, ns, "acme-bi-prod", "acme-bi", nil)
	out := run(t, ns, "token", "acme-bi-prod", "--issuer", "https://api.acme.example/", "--scope", "reports:read dashboards:sales",
		"--org", "globex").ok(t).stdout
	for _, want := range []string{
		"kubectl get secret acme-bi-prod-key -n " + ns + " -o jsonpath='{.data.access-key}' | base64 -d",
		"kubectl get secret acme-bi-prod-key -n " + ns + " -o jsonpath='{.data.secret-key}' | base64 -d",
		`curl -sf -u "$ACCESS:$SECRET" -d grant_type=client_credentials --data-urlencode 'scope=reports:read dashboards:sales' -d org=globex https://api.acme.example/oauth2/token`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	k, err := keyformat.New(keyformat.DefaultPrefix)
	must(t, err)
	parsed, err := k.Parse(token)
	must(t, err)
	if strings.Contains(out, parsed.Secret) {
		t.Error("token printed key material")
	}
	for _, bad := range [][]string{{"--org", "x;rm"}, {"--issuer", "https://x/$(id)"}, {"--scope", "a\"b"}, {"--scope", "a\nb"}} {
		if msg := run(t, ns, "token", "acme-bi-prod", bad[0], bad[1]).failed(t); !strings.Contains(msg, bad[0]) {
			t.Errorf("a shell-unsafe %s: %s", bad[0], msg)
		}
	}
	if msg := run(t, ns, "token", "nope").failed(t); !strings.Contains(msg, "APIKey nope not found") {
		t.Errorf("missing key: %s", msg)
	}
}

// hostile are values that would run `touch pwned` if a shell read them unquoted, or that try to
// pass an option, end a comment, or move the terminal's cursor.
var hostile = []string{
	"$(touch pwned)", "`touch pwned`", "x;touch pwned", "x' ; touch pwned ; '", `x" ; touch pwned ; "`,
	"x\ntouch pwned", "x\ntouch pwned #", "x\r\ntouch pwned", "x && touch pwned", "x | touch pwned", "$(touch${IFS}pwned)",
	"x\\\ntouch pwned", `x'"'"'$(touch pwned)`, "\x1b]0;x\x07\ntouch pwned", "x\u2028touch pwned",
	"x\u0085touch pwned", "--kubeconfig=/dev/null", "-o", "~root", "=touch", "*", "$HOME", "${PATH}",
	"'", "\"", "\\", "", " ", "a b", "x#y", "x\x00y",
}

// TestTokenPrintsCommandsAShellRunsAsWrittenWhateverTheStatusSays: the commands `token` prints
// are meant for eval, and the Secret's name and the comment's values come from a status that
// anyone allowed to write apikeys/status may fill. For every hostile value in status.secretName,
// status.applicationID, status.masked, -n, --scope, --org and --issuer, the command either
// refuses with nothing printed, or prints five lines that, evaluated by sh and bash with
// kubectl, base64, curl and jq stubbed, run those four tools and nothing else (no pwned file
// appears), with every value reaching its argument exactly as given.
func TestTokenPrintsCommandsAShellRunsAsWrittenWhateverTheStatusSays(t *testing.T) {
	ns := env.Namespace(t, "token-shell")
	key, _ := mintedKey(t, ns, "acme-bi-prod", "acme-bi", nil)
	sh := newShellHarness(t)

	type tokenCase struct {
		field, value string
		args         []string // flags after NAME
		status       func(*v1.APIKey)
	}
	var cases []tokenCase
	values := slices.Clone(hostile)
	values = append(values, randomWords(rand.New(rand.NewPCG(25, 6)), "abc$`'\"\\;&|()<>{}[]*?~!#=%\n\r\t -x\x1b", 16, 12)...)
	for _, v := range values {
		cases = append(cases,
			tokenCase{field: "status.secretName", value: v, status: func(k *v1.APIKey) { k.Status.SecretName = v }},
			tokenCase{field: "status.applicationID", value: v, status: func(k *v1.APIKey) { k.Status.ApplicationID = v }},
			tokenCase{field: "status.masked", value: v, status: func(k *v1.APIKey) { k.Status.Masked = v }},
			tokenCase{field: "-n", value: v},
			tokenCase{field: "--scope", value: v, args: []string{"--scope", v}},
			tokenCase{field: "--org", value: v, args: []string{"--org", v}},
			tokenCase{field: "--issuer", value: "https://api.acme.example/" + v, args: []string{"--issuer", "https://api.acme.example/" + v}},
		)
	}
	var printed, refused int
	for _, c := range cases {
		namespace := ns
		if c.field == "-n" {
			namespace = c.value
		}
		if c.status != nil {
			var k v1.APIKey
			must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(key), &k))
			c.status(&k)
			if err := env.Client.Status().Update(ctx(), &k); err != nil {
				continue // the apiserver refuses it (a NUL, invalid UTF-8): it cannot reach the plugin
			}
		}
		res := run(t, namespace, append([]string{"token", "acme-bi-prod"}, c.args...)...)
		if c.status != nil {
			var k v1.APIKey
			must(t, env.Client.Get(ctx(), client.ObjectKeyFromObject(key), &k))
			k.Status = key.Status
			must(t, env.Client.Status().Update(ctx(), &k))
		}
		what := fmt.Sprintf("%s %q", c.field, c.value)
		calls := sh.eval(t, what, res.stdout)
		if res.err != nil {
			refused++
			if res.stdout != "" {
				t.Errorf("%s: refused (%v) but printed %q", what, res.err, res.stdout)
			}
			continue
		}
		printed++
		if n := strings.Count(res.stdout, "\n"); n != 5 || !strings.HasSuffix(res.stdout, "\n") {
			t.Errorf("%s: printed %d lines, want 5:\n%s", what, n, res.stdout)
		}
		secret := "acme-bi-prod-key"
		if c.field == "status.secretName" && c.value != "" {
			secret = c.value
		}
		curl := []string{"curl", "-sf", "-u", "half:half", "-d", "grant_type=client_credentials"}
		issuer := "http://clearance-verifier.clearance-system.svc:8090"
		switch c.field {
		case "--scope":
			if c.value != "" {
				curl = append(curl, "--data-urlencode", "scope="+c.value)
			}
		case "--org":
			if c.value != "" {
				curl = append(curl, "-d", "org="+c.value)
			}
		case "--issuer":
			issuer = strings.TrimSuffix(c.value, "/")
		}
		want := [][]string{
			{"kubectl", "get", "secret", secret, "-n", namespace, "-o", "jsonpath={.data.access-key}"},
			{"base64", "-d"},
			{"kubectl", "get", "secret", secret, "-n", namespace, "-o", "jsonpath={.data.secret-key}"},
			{"base64", "-d"},
			append(curl, issuer+"/oauth2/token"),
			{"jq", "-r", ".access_token"},
		}
		for shell, got := range calls {
			if !slices.EqualFunc(sortedCalls(got), sortedCalls(want), slices.Equal) {
				t.Errorf("%s: %s ran\n%q\nwant\n%q\nfrom:\n%s", what, shell, got, want, res.stdout)
			}
		}
	}
	t.Logf("%d hostile values: %d printed and ran as written, %d refused with nothing printed", len(cases), printed, refused)
	if printed == 0 || refused == 0 {
		t.Errorf("printed %d, refused %d: the cases should exercise both", printed, refused)
	}
}

// shellHarness evaluates printed commands as `eval "$(kubectl clearance token …)"` would, in sh
// and bash, in a directory of their own, with kubectl, base64, curl and jq replaced by stubs that
// record their arguments; everything else on PATH is real, so an injected `touch pwned` runs and
// leaves a file there.
type shellHarness struct {
	bin    string
	shells []string
}

func newShellHarness(t *testing.T) *shellHarness {
	t.Helper()
	h := &shellHarness{bin: t.TempDir()}
	for _, shell := range []string{"sh", "bash"} {
		if _, err := exec.LookPath(shell); err == nil {
			h.shells = append(h.shells, shell)
		}
	}
	if len(h.shells) == 0 {
		t.Skip("no sh to evaluate the printed commands with")
	}
	stub := func(name, out string) {
		// One file per call, named by the stub's process ID: the two ends of a pipeline run at
		// once.
		script := "#!/bin/sh\nprintf '%s\\0' \"${0##*/}\" \"$@\" > \"$CALLS/$$\"\n" + out + "\n"
		must(t, os.WriteFile(filepath.Join(h.bin, name), []byte(script), 0o755))
	}
	stub("kubectl", "printf aGFsZg==")
	stub("base64", "cat >/dev/null; printf half")
	stub("curl", `printf '{"access_token":"tok"}'`)
	stub("jq", "cat >/dev/null; printf tok")

	// The harness itself: an unquoted injection does run, and is seen.
	calls := h.run(t, "kubectl x; touch pwned")
	if !calls.pwned {
		t.Fatal("the harness does not see an injected command run")
	}
	return h
}

type shellRun struct {
	calls [][]string
	vars  string
	pwned bool
}

// run evaluates script in one shell and returns what the stubs recorded.
func (h *shellHarness) run(t *testing.T, script string, shell ...string) shellRun {
	t.Helper()
	if len(shell) == 0 {
		shell = h.shells[:1]
	}
	dir := t.TempDir()
	cmd := exec.Command(shell[0], "-c", `eval "$1"; printf '%s|%s|%s' "$ACCESS" "$SECRET" "$TOKEN"`, shell[0], script)
	cmd.Dir = dir
	must(t, os.Mkdir(filepath.Join(dir, "calls"), 0o700))
	cmd.Env = []string{"PATH=" + h.bin + string(os.PathListSeparator) + os.Getenv("PATH"), "CALLS=" + filepath.Join(dir, "calls"), "HOME=" + dir}
	out, _ := cmd.Output()
	var r shellRun
	r.vars = string(out)
	// Anything in the directory but the stubs' records was made by an injected command (touch
	// pwned, or pwned, when the rest of a line followed it).
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range entries {
		if e.Name() != "calls" {
			r.pwned = true
		}
	}
	files, err := os.ReadDir(filepath.Join(dir, "calls"))
	must(t, err)
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(dir, "calls", f.Name()))
		must(t, err)
		r.calls = append(r.calls, strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00"))
	}
	return r
}

// eval runs the printed output in every shell, fails the test if anything but the stubs ran or
// the variables are not what the stubs returned, and returns each shell's calls.
func (h *shellHarness) eval(t *testing.T, what, printed string) map[string][][]string {
	t.Helper()
	calls := map[string][][]string{}
	if printed == "" {
		return calls // nothing to run
	}
	for _, shell := range h.shells {
		r := h.run(t, printed, shell)
		if r.pwned {
			t.Errorf("%s: evaluating the output in %s ran an injected command:\n%s", what, shell, printed)
		}
		if r.vars != "half|half|tok" {
			t.Errorf("%s: after eval in %s ACCESS|SECRET|TOKEN = %q, want half|half|tok", what, shell, r.vars)
		}
		calls[shell] = r.calls
	}
	return calls
}

// sortedCalls is calls in a fixed order: which stub of a pipeline starts first is up to the shell.
func sortedCalls(calls [][]string) [][]string {
	calls = slices.Clone(calls)
	slices.SortFunc(calls, func(a, b []string) int { return strings.Compare(strings.Join(a, "\x00"), strings.Join(b, "\x00")) })
	return calls
}

// TestShellQuoteIsReadBackExactlyByEveryShell: whatever a value holds (a quote, a $, a leading
// ~ or =, a glob, a newline), sh and bash read shellQuote's word back as exactly that value, one
// argument, with nothing expanded: the guarantee the printed commands rest on, checked on the
// function itself and not only through the values that reach it today.
func TestShellQuoteIsReadBackExactlyByEveryShell(t *testing.T) {
	values := slices.Clone(hostile)
	values = append(values, "~", "~/x", "=x", "a=b", "-", "x~", "''", "a'b", "%s", "@", "x:y,z")
	values = append(values, randomWords(rand.New(rand.NewPCG(3, 17)), "ab~=$`'\"\\;&|()<>{}[]*?!#%\n\t -/:@,+_.x", 64, 8)...)
	for _, shell := range []string{"sh", "bash"} {
		if _, err := exec.LookPath(shell); err != nil {
			continue
		}
		for _, v := range values {
			if strings.ContainsRune(v, 0) {
				continue // no shell argument holds a NUL
			}
			dir := t.TempDir()
			must(t, os.WriteFile(filepath.Join(dir, "a-file"), nil, 0o600)) // something for a glob to match
			cmd := exec.Command(shell, "-c", `printf '%s\0' `+shellQuote(v))
			cmd.Dir = dir
			cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
			out, err := cmd.Output()
			if err != nil || string(out) != v+"\x00" {
				t.Errorf("%s read shellQuote(%q) = %s back as %q (%v)", shell, v, shellQuote(v), out, err)
			}
		}
	}
}

// randomWords draws n words of 1 to maxLen bytes from alphabet.
func randomWords(rng *rand.Rand, alphabet string, n, maxLen int) []string {
	words := make([]string, n)
	for w := range words {
		b := make([]byte, 1+rng.IntN(maxLen))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		words[w] = string(b)
	}
	return words
}
