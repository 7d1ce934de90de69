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

package console

import (
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTheDocumentIsReadWithEveryReferenceReasonAndTesterRoute: the verifier's document parses
// whole: every route has responses, every reason a status and a meaning, every response's
// reasons are reasons, and the tester's routes and roles are there.
func TestTheDocumentIsReadWithEveryReferenceReasonAndTesterRoute(t *testing.T) {
	doc, err := verifierAPI()
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Reasons) == 0 {
		t.Fatal("no reasons read")
	}
	for _, r := range doc.Reasons {
		if r.Status == "" || r.Meaning == "" {
			t.Errorf("reason %s: status %q, meaning %q", r.Reason, r.Status, r.Meaning)
		}
	}
	n := 0
	for _, g := range doc.Groups {
		for _, r := range g.Routes {
			n++
			if len(r.Responses) == 0 || r.Summary == "" {
				t.Errorf("%s %s: %d responses, summary %q", r.Method, r.Path, len(r.Responses), r.Summary)
			}
			for _, p := range r.Params {
				if p.Name == "" || p.In == "" {
					t.Errorf("%s %s: a parameter without name or place: %+v", r.Method, r.Path, p)
				}
			}
		}
	}
	if n != len(doc.byID) || n < 10 {
		t.Errorf("%d routes in groups, %d by ID", n, len(doc.byID))
	}
	for _, id := range testerRoutes {
		if doc.byID[id] == nil {
			t.Errorf("the tester's route %s is not in the document", id)
		}
	}
	if got := doc.roles(); !slices.Equal(got, []string{"Observer", "Analyst", "Technician", "OrgAdmin"}) {
		t.Errorf("roles %v", got)
	}
	var unauthorized []string
	for _, resp := range doc.byID["authorizeGet"].Responses {
		if resp.Status == "401" {
			unauthorized = resp.Reasons
		}
	}
	if !slices.Contains(unauthorized, "key_unknown") || slices.Contains(unauthorized, "rate_limited") {
		t.Errorf("GET /v1/authorize's 401 names the reasons %v", unauthorized)
	}
}

// TestEveryExampleIsAProgramThatBuildsAndACommandAShellReads: each route's Go example is
// gofmt-clean and builds (go vet over all of them, as a partner pasting one would compile it);
// each curl example is a command bash reads; none holds anything but a placeholder for a key.
func TestEveryExampleIsAProgramThatBuildsAndACommandAShellReads(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	doc, err := verifierAPI()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module examples\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, g := range doc.Groups {
		for _, r := range g.Routes {
			ex := exampleOf(r)
			src := goExample("https://verifier.example.com", ex)
			if formatted, err := format.Source([]byte(src)); err != nil || string(formatted) != src {
				t.Errorf("%s %s: the Go example is not gofmt-clean (%v):\n%s", r.Method, r.Path, err, src)
			}
			if err := os.MkdirAll(filepath.Join(dir, r.ID), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, r.ID, "main.go"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			curl := curlExample("https://verifier.example.com", ex)
			if out, err := exec.Command("bash", "-n", "-c", curl).CombinedOutput(); err != nil {
				t.Errorf("%s %s: bash cannot read the curl example (%v: %s):\n%s", r.Method, r.Path, err, out, curl)
			}
			if r.security != nil && !strings.Contains(curl+src, "CLEARANCE_") {
				t.Errorf("%s %s: the examples do not read the credentials from the environment:\n%s\n%s", r.Method, r.Path, curl, src)
			}
		}
	}
	cmd := exec.Command(goTool, "vet", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the Go examples do not build: %v\n%s", err, out)
	}
}

// TestTheTesterRefusesAFormItCannotSendInOneSentence: what the tester checks before it sends
// anything, and the sentence it answers with.
func TestTheTesterRefusesAFormItCannotSendInOneSentence(t *testing.T) {
	roles := []string{"Observer", "Analyst", "Technician", "OrgAdmin"}
	good := testerForm{Route: "authorizeGet", Org: "globex", Method: "GET"}
	for _, tc := range []struct {
		name string
		key  string
		edit func(*testerForm)
		want string
	}{
		{"a good form", "clr_abc", func(*testerForm) {}, ""},
		{"a role and a scope", "clr_abc", func(f *testerForm) { f.MinRole, f.Scope, f.Metric = "Analyst", "reports:read", "occupancy.current" }, ""},
		{"no key", "", func(*testerForm) {}, "Paste the key"},
		{"two lines", "clr_a\nclr_b", func(*testerForm) {}, "not a key"},
		{"a key with spaces", "clr_a clr_b", func(*testerForm) {}, "not a key"},
		{"a key too long", strings.Repeat("k", maxTesterKey+1), func(*testerForm) {}, "not a key"},
		{"no org", "clr_abc", func(f *testerForm) { f.Org = "" }, "Type the org"},
		{"an org that is no namespace", "clr_abc", func(f *testerForm) { f.Org = "Globex Inc" }, "Type the org"},
		{"an unknown role", "clr_abc", func(f *testerForm) { f.MinRole = "Root" }, "least role"},
		{"an unknown method", "clr_abc", func(f *testerForm) { f.Method = "BREW" }, "method"},
		{"a scope with a space", "clr_abc", func(f *testerForm) { f.Scope = "a b" }, "scope or metric"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := good
			tc.edit(&f)
			got := f.check(tc.key, roles)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("check: %q, want %q", got, tc.want)
			}
			if tc.key != "" && strings.Contains(got, tc.key) {
				t.Errorf("the sentence holds the key: %q", got)
			}
		})
	}
}
