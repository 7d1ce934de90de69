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

package walkthrough

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// docCommand is one shell command of a ```sh block of a doc page: a line, or a line with its
// here-document.
type docCommand struct {
	section string // the ## heading above it
	text    string // exactly as on the page, comments included
}

// code is the command without a trailing comment on its first line, which is how the test
// names it.
func (c docCommand) code() string {
	first, _, _ := strings.Cut(c.text, "\n")
	return stripComment(first)
}

// readDocCommands returns the commands of every ```sh block of a Markdown page, in order.
func readDocCommands(t *testing.T, path string) []docCommand {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []docCommand
	section, inBlock := "", false
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case !inBlock && strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		case !inBlock && strings.TrimSpace(line) == "```sh":
			inBlock = true
		case inBlock && strings.TrimSpace(line) == "```":
			inBlock = false
		case inBlock && (strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#")):
			// blank or comment-only line
		case inBlock:
			text := line
			for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
				i++
				text += "\n" + lines[i]
			}
			if m := heredoc.FindStringSubmatch(stripComment(text)); m != nil {
				for i+1 < len(lines) {
					i++
					text += "\n" + lines[i]
					if strings.TrimSpace(lines[i]) == m[1] {
						break
					}
				}
			}
			cmds = append(cmds, docCommand{section: section, text: text})
		}
	}
	if len(cmds) == 0 {
		t.Fatalf("%s has no ```sh commands", path)
	}
	return cmds
}

// heredoc finds a here-document's delimiter: <<WORD, <<'WORD', <<"WORD", <<-WORD.
var heredoc = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_]+)['"]?`)

// stripComment cuts a shell comment off a line: a # that starts a word outside quotes.
func stripComment(line string) string {
	var quote rune
	prev := ' '
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return strings.TrimSpace(line[:i])
		}
		prev = r
	}
	return strings.TrimSpace(line)
}

// walk runs a doc page's commands in one shell, in the page's order. The test names every
// command by its code (the first line without its comment), so the test reads like the page
// and fails when the page changes under it; commands that need a piece envtest lacks are
// played instead, with the reason logged; at the end, every command of the page was run or
// played.
type walk struct {
	page     string
	cmds     []docCommand
	next     int
	sh       *shell
	rewrites []rewrite
}

type rewrite struct{ from, to, why string }

func newWalk(t *testing.T, page string, sh *shell) *walk {
	return &walk{page: page, cmds: readDocCommands(t, filepath.Join(env.Root, page)), sh: sh}
}

// take returns the page's next command, which must be the one the test names.
func (w *walk) take(t *testing.T, code string) docCommand {
	t.Helper()
	if w.next >= len(w.cmds) {
		t.Fatalf("the test runs %q, but %s has no more commands", code, w.page)
	}
	c := w.cmds[w.next]
	if c.code() != code {
		t.Fatalf("%s, section %q: the next command is\n\t%s\nbut the test runs\n\t%s\n(keep the test and the page in step)", w.page, c.section, c.code(), code)
	}
	w.next++
	return c
}

// script is what the shell runs for c, after the rewrites that stand in for missing pieces.
func (w *walk) script(t *testing.T, c docCommand) string {
	text := c.text
	for _, r := range w.rewrites {
		if strings.Contains(text, r.from) {
			text = strings.ReplaceAll(text, r.from, r.to)
			t.Logf("  (%s → %s: %s)", r.from, r.to, r.why)
		}
	}
	return text
}

// run runs the page's next command, which must succeed, and returns its stdout and stderr.
func (w *walk) run(t *testing.T, code string) (stdout, stderr string) {
	t.Helper()
	c := w.take(t, code)
	t.Logf("$ %s", c.text)
	res := w.sh.run(t, w.script(t, c), commandTimeout)
	t.Logf("%s%s", indent(res.stdout), indent(res.stderr))
	if res.code != 0 {
		t.Fatalf("%s, section %q: %q exited %d:\n%s%s", w.page, c.section, code, res.code, res.stdout, res.stderr)
	}
	return res.stdout, res.stderr
}

// runUntil runs the page's next command, a read such as kubectl get, again until ok accepts
// what it printed (a user who runs it a little later), at most until timeout.
func (w *walk) runUntil(t *testing.T, code string, timeout time.Duration, ok func(stdout, stderr string) error) (stdout, stderr string) {
	t.Helper()
	c := w.take(t, code)
	t.Logf("$ %s", c.text)
	script := w.script(t, c)
	start := time.Now()
	deadline := start.Add(timeout)
	for attempt := 1; ; attempt++ {
		res := w.sh.run(t, script, commandTimeout)
		var err error
		if res.code != 0 {
			err = fmt.Errorf("exited %d", res.code)
		} else {
			err = ok(res.stdout, res.stderr)
		}
		if err == nil {
			t.Logf("%s%s  (attempt %d, after %s)", indent(res.stdout), indent(res.stderr), attempt, time.Since(start).Round(time.Millisecond))
			return res.stdout, res.stderr
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s, section %q: after %s and %d attempts %q still shows what the page does not promise: %v\n%s%s",
				w.page, c.section, timeout, attempt, code, err, res.stdout, res.stderr)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// play consumes the page's next command without running it: the test does what it would
// have done, by other means, because envtest lacks the piece it needs.
func (w *walk) play(t *testing.T, code, why string) {
	t.Helper()
	c := w.take(t, code)
	t.Logf("$ %s\n  (played, not run: %s)", c.text, why)
}

// rewrite replaces from with to in every later command, as a stand-in for a missing piece.
func (w *walk) rewrite(from, to, why string) {
	w.rewrites = append(w.rewrites, rewrite{from: from, to: to, why: why})
}

// finish checks that every command of the page was run or played.
func (w *walk) finish(t *testing.T) {
	t.Helper()
	if w.next < len(w.cmds) {
		var left []string
		for _, c := range w.cmds[w.next:] {
			left = append(left, c.code())
		}
		t.Fatalf("%s has commands the walkthrough never ran:\n\t%s", w.page, strings.Join(left, "\n\t"))
	}
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n"
}

// shell is one long-lived bash, as a user's terminal: variables set by one command (TOKEN=…)
// are there for the next. Each command is sourced from a file with its output redirected to
// files, and a marker on the shell's own stdout says it finished.
type shell struct {
	dir   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan string // the shell's stdout lines: the markers
	exit  chan struct{}
	n     int

	mu         sync.Mutex
	transcript strings.Builder // every command's output, for the leak check
}

type result struct {
	stdout, stderr string
	code           int
}

// startShell starts bash in the repository root (the docs' commands use paths of a checkout)
// with the kubectl built with the apiserver first on PATH and an admin kubeconfig.
func startShell(t *testing.T) *shell {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = env.Root
	cmd.Env = []string{
		"PATH=" + env.Assets + string(os.PathListSeparator) + os.Getenv("PATH"),
		"KUBECONFIG=" + env.Kubeconfig(t),
		"HOME=" + dir, // kubectl's discovery cache, not the real user's
		"LANG=C.UTF-8",
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so its children die with it
	// In a terminal curl shows no progress meter; here its stderr is a file.
	if err := os.WriteFile(filepath.Join(dir, ".curlrc"), []byte("silent\nshow-error\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &shell{dir: dir, cmd: cmd, stdin: stdin, done: make(chan string, 16), exit: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.done <- sc.Text()
		}
		_ = cmd.Wait()
		close(s.exit)
	}()
	t.Cleanup(s.kill)
	return s
}

func (s *shell) kill() {
	_ = s.stdin.Close()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exit:
	case <-time.After(10 * time.Second):
	}
}

// run runs script in the shell and waits for it at most timeout; a command that hangs ends
// the shell and the test.
func (s *shell) run(t *testing.T, script string, timeout time.Duration) result {
	t.Helper()
	s.n++
	base := filepath.Join(s.dir, fmt.Sprintf("cmd-%03d", s.n))
	if err := os.WriteFile(base+".sh", []byte(script+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("__walkthrough_done_%d__", s.n)
	line := fmt.Sprintf("source %q >%q 2>%q </dev/null; echo %s $?\n", base+".sh", base+".out", base+".err", marker)
	if _, err := io.WriteString(s.stdin, line); err != nil {
		t.Fatalf("the shell is gone: %v", err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case got := <-s.done:
			rest, ok := strings.CutPrefix(got, marker+" ")
			if !ok {
				continue
			}
			code, _ := strconv.Atoi(rest)
			stdout, _ := os.ReadFile(base + ".out")
			stderr, _ := os.ReadFile(base + ".err")
			s.mu.Lock()
			s.transcript.Write(stdout)
			s.transcript.Write(stderr)
			s.mu.Unlock()
			return result{stdout: string(stdout), stderr: string(stderr), code: code}
		case <-s.exit:
			t.Fatalf("the shell exited while running:\n%s", script)
		case <-timer.C:
			s.kill()
			t.Fatalf("still running after %s, killed:\n%s", timeout, script)
		}
	}
}

// Transcript is everything the shell's commands printed.
func (s *shell) Transcript() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transcript.String()
}

// table is one table kubectl get printed: its header and rows, by column name.
type table struct {
	header []string
	rows   []map[string]string
}

// parseTables reads kubectl get's output (one table per kind, separated by blank lines). Cells
// are cut at the header's column starts, counted in runes as kubectl's tabwriter does, so
// empty cells and cells with spaces (a description) read right.
func parseTables(out string) []table {
	var tables []table
	var cur *table
	var starts []int
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			cur = nil
			continue
		}
		r := []rune(line)
		if cur == nil {
			tables = append(tables, table{})
			cur = &tables[len(tables)-1]
			starts = nil
			for i := range r {
				if r[i] != ' ' && (i == 0 || r[i-1] == ' ') {
					starts = append(starts, i)
				}
			}
			for i, s := range starts {
				cur.header = append(cur.header, strings.TrimSpace(string(cell(r, s, i, starts))))
			}
			continue
		}
		row := map[string]string{}
		for i, s := range starts {
			row[cur.header[i]] = strings.TrimSpace(string(cell(r, s, i, starts)))
		}
		cur.rows = append(cur.rows, row)
	}
	return tables
}

func cell(r []rune, start, i int, starts []int) []rune {
	if start >= len(r) {
		return nil
	}
	if i+1 < len(starts) && starts[i+1] <= len(r) {
		return r[start:starts[i+1]]
	}
	return r[start:]
}

// row finds the row whose NAME is name (or ends in /name, as in kubectl get a,b) in out's
// tables.
func row(out, name string) (map[string]string, error) {
	for _, tb := range parseTables(out) {
		for _, r := range tb.rows {
			if n := r["NAME"]; n == name || strings.HasSuffix(n, "/"+name) {
				return r, nil
			}
		}
	}
	return nil, fmt.Errorf("no row %q", name)
}

// expect checks a row's columns: want maps a column to its value, or to a regular expression
// between slashes.
func expect(r map[string]string, want map[string]string) error {
	for col, w := range want {
		got, ok := r[col]
		if !ok {
			return fmt.Errorf("no column %s", col)
		}
		if strings.HasPrefix(w, "/") && strings.HasSuffix(w, "/") && len(w) > 1 {
			if !regexp.MustCompile("^" + w[1:len(w)-1] + "$").MatchString(got) {
				return fmt.Errorf("column %s is %q, want %s", col, got, w)
			}
			continue
		}
		if got != w {
			return fmt.Errorf("column %s is %q, want %q", col, got, w)
		}
	}
	return nil
}

// rowIs is runUntil's check that a row shows want.
func rowIs(name string, want map[string]string) func(stdout, _ string) error {
	return func(stdout, _ string) error {
		r, err := row(stdout, name)
		if err != nil {
			return err
		}
		return expect(r, want)
	}
}
