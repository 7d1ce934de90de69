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
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	accessv1alpha1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/signingkey"
)

// The suite-wide leak check. When LeakDirEnv is set (make test sets it), every test binary
// that runs a control plane writes, just before stopping it, the tokens of every key Secret and
// every text a key must never reach (Events, Clearance objects, ConfigMaps, the apiserver's
// metrics, and what the package registered: operator logs, verifier answers, ...) into that
// directory. hack/leakcheck then searches all texts of all binaries for all tokens.

// LeakDirEnv names the directory the leak check collects into. A relative path is taken from
// the repository root.
const LeakDirEnv = "CLEARANCE_LEAK_DIR"

// Each test binary writes two files under one unique name: NAME.tokens, one token a line
// (mode 0600), and NAME.texts.jsonl, one leakRecord a line. hack/leakcheck reads them.
const (
	leakTokensSuffix  = ".tokens"
	leakTextsSuffix   = ".texts.jsonl"
	leakSecretsSuffix = ".secrets"
)

// leakRecord is a text to search, or why a source could not be read (the check then fails:
// a source nobody searched is not a source without leaks).
type leakRecord struct {
	Source string `json:"source"`
	Text   string `json:"text,omitempty"`
	Error  string `json:"error,omitempty"`
}

// The package registrations; a test binary has one control plane, so they are process-wide.
var leakSources struct {
	mu     sync.Mutex
	texts  []leakText
	files  []leakFile
	tokens []func() []string
	// secrets are other secrets than keys: OAuth access tokens, private signing keys.
	secrets []func() []LeakSecret
	links   string // private directory of hard links to registered files
}

// LeakSecret is a secret other than a key that must never appear in a text, with a label that
// names it without revealing it (an access token's jti, a signing key's kid).
type LeakSecret struct {
	Label, Value string
}

type leakText struct {
	name string
	read func() string
}

type leakFile struct{ name, path, link string }

func leakCheckOn() bool { return os.Getenv(LeakDirEnv) != "" }

// CollectForLeakCheck registers a text in which no minted key may appear (logs kept in
// memory, answers a test received), read after the package's tests, before the control plane
// stops. It does nothing unless the leak check is on.
func CollectForLeakCheck(name string, text func() string) {
	if !leakCheckOn() {
		return
	}
	leakSources.mu.Lock()
	defer leakSources.mu.Unlock()
	leakSources.texts = append(leakSources.texts, leakText{name: name, read: text})
}

// CollectFileForLeakCheck registers a file (a process's log) to search. The file is created
// if it does not exist yet and hard-linked at once, so its contents survive its owner removing
// it (Operator.Cleanup does) while whatever keeps writing to it still counts.
func CollectFileForLeakCheck(name, path string) {
	if !leakCheckOn() {
		return
	}
	leakSources.mu.Lock()
	defer leakSources.mu.Unlock()
	f := leakFile{name: name + " (" + path + ")", path: path}
	if fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		_ = fh.Close()
	}
	if leakSources.links == "" {
		if dir, err := os.MkdirTemp("", "clearance-leak-links-"); err == nil {
			leakSources.links = dir
		}
	}
	if leakSources.links != "" {
		link := filepath.Join(leakSources.links, fmt.Sprintf("%d.log", len(leakSources.files)))
		if err := os.Link(path, link); err == nil {
			f.link = link
		}
	}
	leakSources.files = append(leakSources.files, f)
}

// CollectTokensForLeakCheck registers keys a package saw minted, in addition to those the key
// Secrets hold at the end: keys rotated out or expired before then still must not leak.
func CollectTokensForLeakCheck(tokens func() []string) {
	if !leakCheckOn() {
		return
	}
	leakSources.mu.Lock()
	defer leakSources.mu.Unlock()
	leakSources.tokens = append(leakSources.tokens, tokens)
}

// CollectSecretsForLeakCheck registers secrets other than keys that a package saw (OAuth access
// tokens it was issued), searched verbatim in every text. The private signing keys of every
// OAuth signing keys Secret at the end are added without registering.
func CollectSecretsForLeakCheck(secrets func() []LeakSecret) {
	if !leakCheckOn() {
		return
	}
	leakSources.mu.Lock()
	defer leakSources.mu.Unlock()
	leakSources.secrets = append(leakSources.secrets, secrets)
}

// writeLeakEvidence writes this binary's tokens and texts into the leak directory, when the
// leak check is on. A source that cannot be read is recorded for hack/leakcheck to fail on;
// only failing to write the files is an error here.
func (e *Env) writeLeakEvidence() error {
	dir := os.Getenv(LeakDirEnv)
	if dir == "" {
		return nil
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(e.Root, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	stem := filepath.Join(dir, fmt.Sprintf("%s-%d-%s", strings.TrimSuffix(filepath.Base(os.Args[0]), ".test"), os.Getpid(), hex.EncodeToString(suffix)))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tokens, tokensErr := e.keyTokens(ctx)
	if err := writeLines(stem+leakTokensSuffix, tokens); err != nil {
		return err
	}

	secrets, secretsErr := e.otherSecrets(ctx)
	if err := writeLines(stem+leakSecretsSuffix, secrets); err != nil {
		return err
	}

	out, err := os.OpenFile(stem+leakTextsSuffix, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	var writeErr error
	emit := func(source, text string, err error) {
		rec := leakRecord{Source: source, Text: text}
		if err != nil {
			rec = leakRecord{Source: source, Error: err.Error()}
		}
		if err := enc.Encode(rec); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	if tokensErr != nil {
		emit("key Secrets", "", tokensErr)
	}
	if secretsErr != nil {
		emit("OAuth signing keys Secrets", "", secretsErr)
	}
	for _, src := range e.clusterTexts(ctx) {
		emit(src.name, src.text, src.err)
	}
	leakSources.mu.Lock()
	texts, files, links := slices.Clone(leakSources.texts), slices.Clone(leakSources.files), leakSources.links
	leakSources.mu.Unlock()
	for _, t := range texts {
		emit(t.name, t.read(), nil)
	}
	for _, f := range files {
		text, err := readLeakFile(f)
		emit(f.name, text, err)
	}
	if links != "" {
		_ = os.RemoveAll(links)
	}
	if err := w.Flush(); err != nil && writeErr == nil {
		writeErr = err
	}
	if err := out.Close(); err != nil && writeErr == nil {
		writeErr = err
	}
	return writeErr
}

// keyTokens are the tokens of every key Secret now, and those the package registered.
func (e *Env) keyTokens(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var secrets corev1.SecretList
	err := e.Client.List(ctx, &secrets, client.HasLabels{accessv1alpha1.LabelAPIKey})
	for _, s := range secrets.Items {
		if t := string(s.Data[accessv1alpha1.SecretKeyToken]); t != "" {
			seen[t] = true
		}
	}
	leakSources.mu.Lock()
	sources := slices.Clone(leakSources.tokens)
	leakSources.mu.Unlock()
	for _, f := range sources {
		for _, t := range f() {
			if t != "" {
				seen[t] = true
			}
		}
	}
	tokens := make([]string, 0, len(seen))
	for t := range seen {
		tokens = append(tokens, t)
	}
	slices.Sort(tokens)
	return tokens, err
}

// otherSecrets are the registered secrets and the private signing keys of every OAuth signing
// keys Secret now, as "label<TAB>value" lines.
func (e *Env) otherSecrets(ctx context.Context) ([]string, error) {
	var all []LeakSecret
	var secrets corev1.SecretList
	err := e.Client.List(ctx, &secrets, client.HasLabels{signingkey.Label})
	for i := range secrets.Items {
		set, perr := signingkey.FromSecret(&secrets.Items[i])
		if perr != nil {
			continue // a test's broken Secret holds nothing to find
		}
		for _, k := range set.Published() {
			if priv, ok := k.Key.(*ecdsa.PrivateKey); ok {
				if d, berr := priv.Bytes(); berr == nil {
					all = append(all, LeakSecret{Label: "private signing key " + k.KeyID, Value: base64.RawURLEncoding.EncodeToString(d)})
				}
			}
		}
	}
	leakSources.mu.Lock()
	sources := slices.Clone(leakSources.secrets)
	leakSources.mu.Unlock()
	for _, f := range sources {
		all = append(all, f()...)
	}
	seen := map[string]bool{}
	var lines []string
	for _, s := range all {
		if s.Value == "" || seen[s.Value] || strings.ContainsAny(s.Label+s.Value, "\t\n") {
			continue
		}
		seen[s.Value] = true
		lines = append(lines, s.Label+"\t"+s.Value)
	}
	slices.Sort(lines)
	return lines, err
}

type clusterText struct {
	name, text string
	err        error
}

// systemNamespaces hold no Clearance data; their ConfigMaps are the control plane's.
var systemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// clusterTexts are what the apiserver holds that a key must never reach.
func (e *Env) clusterTexts(ctx context.Context) []clusterText {
	var out []clusterText
	asJSON := func(name string, list client.ObjectList, keep func(client.ObjectList)) {
		if err := e.Client.List(ctx, list); err != nil {
			out = append(out, clusterText{name: name, err: err})
			return
		}
		if keep != nil {
			keep(list)
		}
		data, err := json.Marshal(list)
		out = append(out, clusterText{name: name, text: string(data), err: err})
	}
	asJSON("Events", &corev1.EventList{}, nil)
	asJSON("Applications", &accessv1alpha1.ApplicationList{}, nil)
	asJSON("APIKeys", &accessv1alpha1.APIKeyList{}, nil)
	asJSON("OrgConnections", &accessv1alpha1.OrgConnectionList{}, nil)
	asJSON("MetricSets", &accessv1alpha1.MetricSetList{}, nil)
	asJSON("ConfigMaps", &corev1.ConfigMapList{}, func(l client.ObjectList) {
		cms := l.(*corev1.ConfigMapList)
		cms.Items = slices.DeleteFunc(cms.Items, func(cm corev1.ConfigMap) bool { return slices.Contains(systemNamespaces, cm.Namespace) })
	})
	metrics, err := e.apiserverMetrics(ctx)
	out = append(out, clusterText{name: "kube-apiserver /metrics", text: metrics, err: err})
	return out
}

func (e *Env) apiserverMetrics(ctx context.Context) (string, error) {
	hc, err := rest.HTTPClientFor(e.Config)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(e.Config.Host, "/")+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(data), err
}

// readLeakFile reads a registered file through its hard link, or by its path if none was made.
func readLeakFile(f leakFile) (string, error) {
	path := f.link
	if path == "" {
		path = f.path
	}
	data, err := os.ReadFile(path)
	return string(data), err
}

// writeLines writes one line per entry, readable by the owner only (it holds live keys).
func writeLines(path string, lines []string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, l := range lines {
		_, _ = w.WriteString(l)
		_ = w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
