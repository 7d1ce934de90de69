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

// Command leakcheck is make test's suite-wide leak check: no key minted while the tests ran
// may appear, whole or by its secret part, in any text the test binaries collected (logs,
// Events, Clearance objects, ConfigMaps, metrics, answers registered by tests). Each test
// binary leaves NAME.tokens and NAME.texts.jsonl in the directory (see internal/testenv's
// leaks.go). It prints one summary line and exits 1 on a leak, naming the file, the source and
// the key ID, never the key. Other secrets (OAuth access tokens, private token signing keys) come
// in NAME.secrets, one "label<TAB>value" a line, and are searched verbatim; a leak names the label.
//
//	go run ./hack/leakcheck bin/leaks
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/clearance-dev/clearance/internal/keyformat"
)

const (
	tokensSuffix  = ".tokens"
	textsSuffix   = ".texts.jsonl"
	secretsSuffix = ".secrets"
)

// record is one line of a texts file.
type record struct {
	Source string `json:"source"`
	Text   string `json:"text"`
	Error  string `json:"error"`
}

// key is a minted key as the search needs it.
type key struct{ token, keyID, secret string }

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: leakcheck DIR (the CLEARANCE_LEAK_DIR the tests wrote into)")
		return 2
	}
	dir := args[0]
	tokenFiles, _ := filepath.Glob(filepath.Join(dir, "*"+tokensSuffix))
	textFiles, _ := filepath.Glob(filepath.Join(dir, "*"+textsSuffix))
	if len(textFiles) == 0 {
		fmt.Fprintf(stderr, "leak check: no test binary wrote into %s: was CLEARANCE_LEAK_DIR set for go test (and were results not cached)?\n", dir)
		return 1
	}
	keys, unparsed, verbatim, err := readKeys(tokenFiles)
	if err != nil {
		fmt.Fprintf(stderr, "leak check: %v\n", err)
		return 1
	}
	secretFiles, _ := filepath.Glob(filepath.Join(dir, "*"+secretsSuffix))
	others, err := readSecrets(secretFiles)
	if err != nil {
		fmt.Fprintf(stderr, "leak check: %v\n", err)
		return 1
	}
	others = append(others, verbatim...)
	bySecret := map[string]*key{}
	lengths := map[int]bool{}
	for i := range keys {
		bySecret[keys[i].secret] = &keys[i]
		lengths[len(keys[i].secret)] = true
	}

	var leaks, unread []string
	var texts int
	var bytes int64
	for _, path := range textFiles {
		err := eachRecord(path, func(r record) {
			if r.Error != "" {
				unread = append(unread, fmt.Sprintf("%s: %s could not be read: %s", filepath.Base(path), r.Source, r.Error))
				return
			}
			texts++
			bytes += int64(len(r.Text))
			found := map[string]bool{}
			for n := range lengths {
				search(r.Text, n, bySecret, func(k *key) {
					if found[k.keyID] {
						return
					}
					found[k.keyID] = true
					what := "its secret part"
					if strings.Contains(r.Text, k.token) {
						what = "the whole key"
					}
					leaks = append(leaks, fmt.Sprintf("%s: %s holds %s of key ID %s", filepath.Base(path), r.Source, what, k.keyID))
				})
			}
			for _, o := range others {
				if strings.Contains(r.Text, o.value) {
					leaks = append(leaks, fmt.Sprintf("%s: %s holds the %s", filepath.Base(path), r.Source, o.label))
				}
			}
		})
		if err != nil {
			fmt.Fprintf(stderr, "leak check: %v\n", err)
			return 1
		}
	}

	sort.Strings(leaks)
	for _, l := range leaks {
		fmt.Fprintln(stderr, "leak check: LEAK: "+l)
	}
	for _, u := range unread {
		fmt.Fprintln(stderr, "leak check: NOT SEARCHED: "+u)
	}
	note := ""
	if unparsed > 0 {
		note = fmt.Sprintf(" (%d Secret tokens that are no key ignored)", unparsed)
	}
	if len(others) > 0 {
		note += fmt.Sprintf(", %d other secrets (access tokens, signing keys)", len(others))
	}
	fmt.Fprintf(stdout, "leak check: %d minted keys%s, %d test binaries, %d texts, %d bytes searched (%.1f MiB): found %d\n",
		len(keys), note, len(textFiles), texts, bytes, float64(bytes)/(1<<20), len(leaks))
	if len(leaks) > 0 || len(unread) > 0 {
		return 1
	}
	return 0
}

// readKeys parses every token of every tokens file, each with its own prefix (tests may
// configure another). Tokens that do not parse are no minted key: a short one (a test's
// tampered Secret, "not a key") is ignored, since searching it would find ordinary words; a long
// one without spaces (a bearer token, an access token a test registered among its keys) is
// searched verbatim with the other secrets.
func readKeys(paths []string) (keys []key, unparsed int, verbatim []secret, err error) {
	seen := map[string]bool{}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			token := strings.TrimSpace(sc.Text())
			if token == "" || seen[token] {
				continue
			}
			seen[token] = true
			k, ok := parse(token)
			if !ok {
				if len(token) >= minVerbatim && !strings.ContainsAny(token, " \t") {
					verbatim = append(verbatim, secret{label: "registered token that is no key (" + filepath.Base(path) + ")", value: token})
					continue
				}
				unparsed++
				continue
			}
			keys = append(keys, k)
		}
		err = sc.Err()
		_ = f.Close()
		if err != nil {
			return nil, 0, nil, fmt.Errorf("reading %s: %w", filepath.Base(path), err)
		}
	}
	return keys, unparsed, verbatim, nil
}

// minVerbatim is the least length of a registered token that is no key to be searched as it is.
const minVerbatim = 32

// secret is an OAuth access token or a private signing key, searched verbatim.
type secret struct{ label, value string }

// readSecrets reads the "label<TAB>value" lines of every secrets file.
func readSecrets(paths []string) ([]secret, error) {
	seen := map[string]bool{}
	var out []secret
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			label, value, ok := strings.Cut(line, "\t")
			if !ok || len(value) < 16 || seen[value] {
				continue
			}
			seen[value] = true
			out = append(out, secret{label: label, value: value})
		}
	}
	return out, nil
}

func parse(token string) (key, bool) {
	end := strings.IndexByte(token, '_')
	if end < 0 {
		return key{}, false
	}
	format, err := keyformat.New(token[:end+1])
	if err != nil {
		return key{}, false
	}
	k, err := format.Parse(token)
	if err != nil {
		return key{}, false
	}
	return key{token: k.Token, keyID: k.KeyID, secret: k.Secret}, true
}

// eachRecord streams the records of a texts file.
func eachRecord(path string, fn func(record)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	for {
		var r record
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading %s: %w", filepath.Base(path), err)
		}
		fn(r)
	}
}

// search calls hit for every secret of length n found in text. A secret is base62, so it can
// only sit inside a run of base62 characters: only those runs are looked at, window by window.
func search(text string, n int, secrets map[string]*key, hit func(*key)) {
	for i := 0; i < len(text); {
		if !isBase62(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isBase62(text[j]) {
			j++
		}
		for s := i; s+n <= j; s++ {
			if k, ok := secrets[text[s:s+n]]; ok {
				hit(k)
			}
		}
		i = j
	}
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}
