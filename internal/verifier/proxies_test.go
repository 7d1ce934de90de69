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

package verifier

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"golang.org/x/net/websocket"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// The proxy configurations docs/verifier.md shows, run for real: each proxy from Debian's
// packages, on loopback, between a Go client and a small Go upstream, with the verifier (fed
// directly, as the unit tests feed it) as the auth service. The configurations are read from
// the documentation's blocks marked <!-- tested: NAME -->, with only addresses and paths
// replaced, so the documentation and what runs here cannot drift apart.

// The addresses the documented configurations use, replaced with loopback ones.
const (
	docVerifierAddr = "clearance-verifier.clearance-system.svc.cluster.local:8090"
	docUpstreamAddr = "127.0.0.1:8000"
)

// documentedProxy is one configuration of docs/verifier.md and how to run it.
type documentedProxy struct {
	name, binary string
	// prefix is the path the documented route serves; the client's requests go under it.
	prefix string
	// configure writes the documented configuration into dir, for a proxy listening on listen
	// in front of verifier and upstream, and returns the binary's arguments.
	configure func(t testing.TB, docs *docBlocks, dir, listen, verifier, upstream string) []string
	// fallback marks a configuration the documentation offers as a fallback, which does less
	// (no budget for the client, a 429 reaching it as 500): only the attacks are sent to it.
	fallback bool
	// longPollRoute is a path under prefix whose documented route declares long polling
	// (transport=longPolling), if the configuration has one.
	longPollRoute string
}

var documentedProxies = []documentedProxy{
	{name: "nginx", binary: "nginx", prefix: "/api", configure: configureNginx},
	{name: "ingress-nginx", binary: "nginx", prefix: "/reports", configure: configureIngressNginx},
	{name: "ingress-nginx-annotations-only", binary: "nginx", prefix: "/reports", configure: configureIngressNginxWithoutSnippets, fallback: true},
	{name: "caddy", binary: "caddy", prefix: "/api", configure: configureCaddy},
	{name: "haproxy", binary: "haproxy", prefix: "/api", configure: configureHAProxy, longPollRoute: "/poll"},
}

// TestProxiesInFrontOfTheVerifier runs each documented proxy configuration and sends it what
// clients send: allowed requests, forged identity headers, refusals, a WebSocket and a stream.
func TestProxiesInFrontOfTheVerifier(t *testing.T) {
	docs := readDocBlocks(t)
	for _, p := range documentedProxies {
		t.Run(p.name, func(t *testing.T) {
			e := newEdge(t)
			addr := testenv.StartProxy(t, testenv.Proxy{Name: p.name, Binary: p.binary, Configure: func(t testing.TB, dir, listen string) []string {
				return p.configure(t, docs, dir, listen, e.verifier, e.upstream)
			}}, e.secrets)
			e.attacks(t, addr, p.prefix)
			if !p.fallback {
				e.run(t, addr, p.prefix, p.longPollRoute)
			}
		})
	}
}

// TestHAProxyFailsClosedWhenItsLuaActionFails: HAProxy lets a request go on when a Lua action
// fails, so the documented haproxy.cfg refuses every request the action did not mark allowed.
// Here the documented action fails before it asks the verifier.
func TestHAProxyFailsClosedWhenItsLuaActionFails(t *testing.T) {
	docs := readDocBlocks(t)
	e := newEdge(t)
	addr := testenv.StartProxy(t, testenv.Proxy{Name: "haproxy", Binary: "haproxy", Configure: func(t testing.TB, dir, listen string) []string {
		args := configureHAProxy(t, docs, dir, listen, e.verifier, e.upstream)
		lua := filepath.Join(dir, "clearance.lua")
		script, err := os.ReadFile(lua)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, lua, fill(t, "clearance.lua", string(script), "local res = core.httpclient()", `local res = error("injected failure") or core.httpclient()`))
		return args
	}}, e.secrets)
	client := &http.Client{Timeout: 30 * time.Second}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/api/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", e.w.token.Token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if hits, _ := e.up.state(); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "verifier_unavailable") || hits != 0 {
		t.Fatalf("a failing Lua action: %d %q, upstream reached %d times; want 503 verifier_unavailable and no upstream", resp.StatusCode, body, hits)
	}
}

// TestTheDocsShowTheProxyConfigsTheTestsRun renders every documented configuration without
// running it (no proxy binary needed): each tested block is used, each placeholder found.
func TestTheDocsShowTheProxyConfigsTheTestsRun(t *testing.T) {
	docs := readDocBlocks(t)
	for _, p := range documentedProxies {
		p.configure(t, docs, t.TempDir(), "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")
	}
	for name := range docs.blocks {
		if !docs.used[name] {
			t.Errorf("docs/verifier.md marks block %q as tested, but no test runs it", name)
		}
	}
}

// docBlocks are the fenced blocks of docs/verifier.md marked <!-- tested: NAME -->.
type docBlocks struct {
	blocks map[string]string
	used   map[string]bool
}

var (
	testedBlock  = regexp.MustCompile("(?ms)^<!-- tested: ([a-z0-9-]+) -->\n```[a-z]*\n(.*?)^```$")
	testedMarker = regexp.MustCompile("(?m)^<!-- tested:")
)

func readDocBlocks(t testing.TB) *docBlocks {
	t.Helper()
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "verifier.md"))
	if err != nil {
		t.Fatal(err)
	}
	d := &docBlocks{blocks: map[string]string{}, used: map[string]bool{}}
	for _, m := range testedBlock.FindAllStringSubmatch(string(docs), -1) {
		if _, dup := d.blocks[m[1]]; dup {
			t.Fatalf("docs/verifier.md marks two blocks as tested: %s", m[1])
		}
		d.blocks[m[1]] = m[2]
	}
	if n := len(testedMarker.FindAllIndex(docs, -1)); n != len(d.blocks) {
		t.Fatalf("docs/verifier.md has %d tested markers but %d are right before a fenced block", n, len(d.blocks))
	}
	return d
}

func (d *docBlocks) get(t testing.TB, name string) string {
	t.Helper()
	b, ok := d.blocks[name]
	if !ok {
		t.Fatalf("docs/verifier.md has no block marked <!-- tested: %s --> (the test runs it)", name)
	}
	d.used[name] = true
	return b
}

// fill replaces the documented values with the test's (old, new pairs), all at once. A value
// the text does not hold fails the test: the documentation changed and the test would run
// something else than it shows.
func fill(t testing.TB, what, text string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("the documented %s no longer holds %q, which the test replaces", what, pairs[i])
		}
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

func render(t testing.TB, file string, data any) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, data); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// listen opens a listener on a free loopback port, for a server of the test (the verifier, an
// upstream) that proxies are pointed at.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// configureNginx puts the documented http and server blocks into testdata/nginx.conf.tmpl.
func configureNginx(t testing.TB, docs *docBlocks, dir, listen, verifier, upstream string) []string {
	conf := render(t, "nginx.conf.tmpl", map[string]any{
		"Dir": dir, "Listen": listen, "AsRoot": os.Geteuid() == 0,
		"HTTP":   fill(t, "nginx http block", docs.get(t, "nginx-http"), docVerifierAddr, verifier, docUpstreamAddr, upstream),
		"Server": docs.get(t, "nginx-server"),
	})
	path := writeFile(t, filepath.Join(dir, "nginx.conf"), conf)
	return []string{"-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")}
}

// ingressNginxAnnotations are the annotations configureIngressNginx renders as the controller
// does; the documented Ingress may use no others.
var ingressNginxAnnotations = []string{"auth-url", "auth-response-headers", "auth-snippet", "configuration-snippet", "server-snippet"}

// configureIngressNginx renders the documented Ingress into the nginx configuration the
// ingress-nginx controller generates for it (testdata/ingress-nginx.conf.tmpl, after the
// controller's template and its buildAuthLocation and buildAuthResponseHeaders).
func configureIngressNginx(t testing.TB, docs *docBlocks, dir, listen, verifier, upstream string) []string {
	return renderIngressNginx(t, docs, dir, listen, verifier, upstream, true)
}

// configureIngressNginxWithoutSnippets renders the documented Ingress as a controller that
// refuses snippets runs it: the documented fallback of auth-url and auth-response-headers
// alone, where the client's own method headers reach the verifier beside X-Original-Method.
func configureIngressNginxWithoutSnippets(t testing.TB, docs *docBlocks, dir, listen, verifier, upstream string) []string {
	return renderIngressNginx(t, docs, dir, listen, verifier, upstream, false)
}

func renderIngressNginx(t testing.TB, docs *docBlocks, dir, listen, verifier, upstream string, snippets bool) []string {
	var ing networkingv1.Ingress
	if err := yaml.UnmarshalStrict([]byte(docs.get(t, "ingress-nginx")), &ing); err != nil {
		t.Fatalf("the documented Ingress: %v", err)
	}
	if !snippets {
		for k := range ing.Annotations {
			if strings.HasSuffix(k, "-snippet") {
				delete(ing.Annotations, k)
			}
		}
	}
	ann := map[string]string{}
	for k, v := range ing.Annotations {
		name, ok := strings.CutPrefix(k, "nginx.ingress.kubernetes.io/")
		if !ok || !slices.Contains(ingressNginxAnnotations, name) {
			t.Fatalf("the documented Ingress has annotation %s, which the test does not render as ingress-nginx would", k)
		}
		ann[name] = v
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].HTTP == nil || len(ing.Spec.Rules[0].HTTP.Paths) != 1 {
		t.Fatal("the documented Ingress should have one rule with one path")
	}
	rule := ing.Spec.Rules[0]
	path := rule.HTTP.Paths[0]
	if path.PathType == nil || path.Backend.Service == nil {
		t.Fatal("the documented Ingress path should have a pathType and a Service backend")
	}
	authURL := fill(t, "Ingress auth-url", ann["auth-url"], docVerifierAddr, verifier)
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	var respHeaders []string
	for i, h := range strings.Split(ann["auth-response-headers"], ",") {
		h = strings.TrimSpace(h)
		respHeaders = append(respHeaders,
			fmt.Sprintf("auth_request_set $authHeader%d $upstream_http_%s;", i, strings.ReplaceAll(strings.ToLower(h), "-", "_")),
			fmt.Sprintf("proxy_set_header '%s' $authHeader%d;", h, i))
	}
	conf := render(t, "ingress-nginx.conf.tmpl", map[string]any{
		"Dir": dir, "Listen": listen, "AsRoot": os.Geteuid() == 0, "Host": rule.Host, "Upstream": upstream,
		"UpstreamName": fmt.Sprintf("%s-%s-%d", ing.Namespace, path.Backend.Service.Name, path.Backend.Service.Port.Number),
		"Path":         path.Path,
		"AuthPath":     "/_external-auth-" + base64.RawURLEncoding.EncodeToString([]byte(path.Path)) + "-" + string(*path.PathType),
		"AuthURL":      authURL, "AuthHost": u.Host, "AuthResponseHeaders": respHeaders,
		"AuthSnippet": ann["auth-snippet"], "ConfigurationSnippet": ann["configuration-snippet"], "ServerSnippet": ann["server-snippet"],
	})
	cfg := writeFile(t, filepath.Join(dir, "nginx.conf"), conf)
	return []string{"-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log")}
}

// configureCaddy runs the documented Caddyfile with the site's address replaced by a loopback
// http:// one, and two global options added for a test: no admin endpoint, a short grace
// period on stop.
func configureCaddy(t testing.TB, docs *docBlocks, dir, listen, verifier, upstream string) []string {
	caddyfile := fill(t, "Caddyfile", docs.get(t, "caddy"),
		"api.globex.example {", "http://"+listen+" {", docVerifierAddr, verifier, docUpstreamAddr, upstream)
	options, ok := strings.CutPrefix(caddyfile, "{\n")
	if !ok {
		t.Fatal("the documented Caddyfile should open with its global options block")
	}
	cfg := writeFile(t, filepath.Join(dir, "Caddyfile"), "{\n\tadmin off\n\tgrace_period 1s\n"+options)
	return []string{"run", "--config", cfg, "--adapter", "caddyfile"}
}

// configureHAProxy writes the documented haproxy.cfg and clearance.lua.
func configureHAProxy(t testing.TB, docs *docBlocks, dir, listen, verifier, upstream string) []string {
	lua := writeFile(t, filepath.Join(dir, "clearance.lua"), docs.get(t, "haproxy-lua"))
	cfg := fill(t, "haproxy.cfg", docs.get(t, "haproxy-cfg"),
		"/etc/haproxy/clearance.lua", lua, "bind :80\n", "bind "+listen+"\n", docVerifierAddr, verifier, docUpstreamAddr, upstream)
	return []string{"-db", "-f", writeFile(t, filepath.Join(dir, "haproxy.cfg"), cfg)}
}

// edge is what a proxy sits between: the verifier (its handler, fed directly, served on
// loopback behind a note of the method headers it got) and an upstream that records what
// reached it. The world's keys: its own (general: 100 per hour),
// "tight" (2 per hour), "socket" (for WebSockets, disabled during the test) and a key of an
// application in another org that globex never connected.
type edge struct {
	w                  *world
	verifier, upstream string
	stopVerifier       func()
	mu                 sync.Mutex
	methods            []string // guarded by mu: the method headers of the last authorization
	up                 *upstream
	tight, socket      keyformat.Key
	socketKey          *v1.APIKey
	stranger           keyformat.Key
	client             *http.Client // the client's side of every proxy test
}

const appLimit = 100

func newEdge(t *testing.T) *edge {
	w := newWorld(t)
	w.updateApp(func(a *v1.Application) {
		a.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: appLimit, Period: metav1.Duration{Duration: time.Hour}}}
	})
	e := &edge{w: w, client: &http.Client{Timeout: 30 * time.Second}}
	e.tight, _ = e.addKey("tight", func(k *v1.APIKey) {
		k.Spec.RateLimits = []v1.RateLimit{{Name: "general", Limit: 2, Period: metav1.Duration{Duration: time.Hour}}}
	})
	e.socket, e.socketKey = e.addKey("socket", nil)

	// An application of org umbrella that globex never connected, with a key.
	rival := w.app.DeepCopy()
	rival.Namespace, rival.Name, rival.UID, rival.Status.ApplicationID = "umbrella", "rival-bi", "uid-app-rival", otherAppID
	w.v.Apply(rival)
	e.stranger, _ = e.addKey("rival", func(k *v1.APIKey) {
		k.Namespace, k.Spec.ApplicationName, k.Status.ApplicationID, k.Status.ApplicationUID = "umbrella", "rival-bi", otherAppID, rival.UID
	})

	// The verifier's handler, behind a note of the method headers each authorization got.
	vln := listen(t)
	e.verifier = vln.Addr().String()
	vsrv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, PathAuthorize) {
			e.mu.Lock()
			e.methods = slices.Concat(r.Header.Values(hForwardedMethod), r.Header.Values(hOriginalMethod))
			e.mu.Unlock()
		}
		w.v.ServeHTTP(rw, r)
	})}
	served := make(chan error, 1)
	go func() { served <- vsrv.Serve(vln) }()
	var once sync.Once
	e.stopVerifier = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := vsrv.Shutdown(ctx); err != nil {
				t.Errorf("the verifier did not shut down: %v", err)
			}
			<-served
		})
	}
	t.Cleanup(e.stopVerifier)

	e.up = newUpstream()
	uln := listen(t)
	e.upstream = uln.Addr().String()
	srv := &http.Server{Handler: e.up, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(uln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return e
}

// addKey feeds the verifier another APIKey of the world's application (mutate may move it).
func (e *edge) addKey(name string, mutate func(*v1.APIKey)) (keyformat.Key, *v1.APIKey) {
	k := e.w.mint()
	key := e.w.key.DeepCopy()
	key.Name, key.UID = name, types.UID("uid-key-"+name)
	key.Status.KeyID, key.Status.Hash, key.Status.Masked = k.KeyID, keyformat.Hash(k.Token), keyformat.Mask(k.Token)
	if mutate != nil {
		mutate(key)
	}
	e.w.v.Apply(key)
	return k, key
}

// secrets are every key minted in the test, whole and by their secret parts.
func (e *edge) secrets() []string {
	var s []string
	for _, k := range e.w.minted {
		s = append(s, k.Token, k.Secret, keyformat.SecretKey(k))
	}
	return s
}

// authorizations counts the forward-auth requests the verifier answered.
func (e *edge) authorizations(t *testing.T) uint64 {
	t.Helper()
	families, err := e.w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "clearance_verifier_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == endpointAuthorize {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// identity are the X-Clearance-* headers the upstream must get for the world's key.
func (e *edge) identity(k keyformat.Key) http.Header {
	return http.Header{
		"X-Clearance-Application-Id": {appID}, "X-Clearance-Org": {grantOrg},
		"X-Clearance-Role": {string(v1.RoleAnalyst)}, "X-Clearance-Key-Id": {k.KeyID},
	}
}

// upstream is the API behind the proxy: it answers plain requests, echoes WebSocket messages
// (selecting the clearance.v1 subprotocol) and streams events, and records the identity
// headers of each request that reached it.
type upstream struct {
	mu   sync.Mutex
	hits int
	seen http.Header // the identity headers of the last request
	ack  chan struct{}
	ws   websocket.Server
}

const sseEvents = 3

func newUpstream() *upstream {
	u := &upstream{ack: make(chan struct{})}
	u.ws = websocket.Server{
		Handshake: func(c *websocket.Config, _ *http.Request) error {
			if !slices.Contains(c.Protocol, "clearance.v1") {
				return fmt.Errorf("the client offered %d subprotocols, none of them clearance.v1", len(c.Protocol))
			}
			c.Protocol = []string{"clearance.v1"} // never the entry that carries the key
			return nil
		},
		Handler: func(c *websocket.Conn) {
			for {
				var msg string
				if websocket.Message.Receive(c, &msg) != nil || websocket.Message.Send(c, "echo: "+msg) != nil {
					return
				}
			}
		},
	}
	return u
}

func (u *upstream) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	seen := http.Header{}
	for _, name := range []string{"X-Clearance-Application-Id", "X-Clearance-Org", "X-Clearance-Role", "X-Clearance-Key-Id"} {
		if vs := r.Header.Values(name); len(vs) > 0 {
			seen[name] = vs
		}
	}
	u.mu.Lock()
	u.hits++
	u.seen = seen
	u.mu.Unlock()
	switch {
	case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
		u.ws.ServeHTTP(rw, r)
	case strings.HasSuffix(r.URL.Path, "/events"):
		u.events(rw, r)
	default:
		rw.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(rw, "upstream reached\n")
	}
}

// events streams sseEvents events, each after the client said it saw the one before: a proxy
// that holds the stream back gets an event saying so instead of the next tick.
func (u *upstream) events(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "text/event-stream")
	rw.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(rw)
	for i := 1; i <= sseEvents; i++ {
		fmt.Fprintf(rw, "id: %d\ndata: tick %d\n\n", i, i)
		if rc.Flush() != nil || i == sseEvents {
			return
		}
		select {
		case <-u.ack:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second):
			fmt.Fprintf(rw, "data: the client did not see tick %d within 20s: the proxy holds the stream back\n\n", i)
			return
		}
	}
}

func (u *upstream) state() (int, http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits, u.seen
}

// run sends the proxy at addr what clients send, under prefix.
// send makes a request through a proxy (headers are name, value pairs) and reads at most 64 KiB
// of its answer.
func (e *edge) send(t *testing.T, method, url string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp, string(body)
}

// show renders an answer for a failure message, with every key redacted.
func (e *edge) show(resp *http.Response, body string) string {
	return testenv.Redact(fmt.Sprintf("%d %q %v", resp.StatusCode, body, resp.Header), e.secrets())
}

// attacks sends what the hostile read sent through a proxy: a fake preflight beside the
// proxy's own method, method headers claiming a read for a write, and a WebSocket opened with
// an Observer's key. Nothing may reach the upstream.
func (e *edge) attacks(t *testing.T, addr, prefix string) {
	base := "http://" + addr + prefix
	w := e.w
	send := func(t *testing.T, method string, headers ...string) (*http.Response, string) {
		t.Helper()
		return e.send(t, method, base+"/data", headers...)
	}
	show := e.show
	notThrough := func(t *testing.T, hits int, what string, resp *http.Response, body string) {
		t.Helper()
		if after, _ := e.up.state(); after != hits || resp.StatusCode/100 == 2 {
			t.Fatalf("%s reached the upstream: %s", what, show(resp, body))
		}
	}

	t.Run("a fake preflight with a forged method header never passes without a key", func(t *testing.T) {
		cors := []string{"Origin", origin, "Access-Control-Request-Method", http.MethodDelete}
		for _, method := range []string{http.MethodDelete, http.MethodPost, http.MethodGet, http.MethodPut} {
			for _, forged := range [][]string{
				{"X-Forwarded-Method", http.MethodOptions},
				{"X-Original-Method", http.MethodOptions},
				{"X-Forwarded-Method", http.MethodOptions, "X-Original-Method", http.MethodOptions},
			} {
				hits, _ := e.up.state()
				resp, body := send(t, method, append(slices.Clone(cors), forged...)...)
				notThrough(t, hits, fmt.Sprintf("a %s claiming %v", method, forged), resp, body)
			}
		}
	})

	observer := w.conn.DeepCopy()
	observer.Spec.Role = v1.RoleObserver
	t.Run("an Observer's key cannot write by claiming a read", func(t *testing.T) {
		w.v.Apply(observer)
		defer w.v.Apply(w.conn)
		for _, method := range []string{http.MethodPost, http.MethodDelete, http.MethodPatch} {
			hits, _ := e.up.state()
			resp, body := send(t, method, "X-API-Key", w.token.Token, "X-Forwarded-Method", http.MethodGet, "X-Original-Method", http.MethodGet)
			notThrough(t, hits, "an Observer's "+method, resp, body)
			// Without snippets nginx answers a 403 with its own page, not the verifier's reason.
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("an Observer's %s: %s, want 403 %s", method, show(resp, body), ReasonRoleInsufficient)
			}
		}
		// The same key still reads.
		hits, _ := e.up.state()
		if resp, body := send(t, http.MethodGet, "X-API-Key", w.token.Token); resp.StatusCode != http.StatusOK {
			t.Fatalf("an Observer's GET: %s", show(resp, body))
		}
		if after, _ := e.up.state(); after != hits+1 {
			t.Fatal("an Observer's GET did not reach the upstream")
		}
	})

	t.Run("an Observer's key cannot open a WebSocket", func(t *testing.T) {
		w.v.Apply(observer)
		defer w.v.Apply(w.conn)
		hits, _ := e.up.state()
		ws, resp := dialWebSocket(t, addr, prefix+"/socket", "clearance.v1, clearance.key."+w.token.Token, origin)
		if ws != nil {
			ws.Close()
			t.Fatal("an Observer's key opened a WebSocket")
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		notThrough(t, hits, "an Observer's WebSocket handshake", resp, string(body))
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("an Observer's WebSocket handshake: %s, want 403", show(resp, string(body)))
		}
	})
}

func (e *edge) run(t *testing.T, addr, prefix, longPollRoute string) {
	base := "http://" + addr + prefix
	client := e.client
	send := func(t *testing.T, path string, headers ...string) (*http.Response, string) {
		t.Helper()
		resp, body := e.send(t, http.MethodGet, base+path, headers...)
		noPlaceholders(t, resp)
		return resp, body
	}
	show := e.show
	// allowed checks an answer that reached the upstream with the identity of k.
	allowed := func(t *testing.T, resp *http.Response, body string, k keyformat.Key) {
		t.Helper()
		hits, seen := e.up.state()
		if resp.StatusCode != http.StatusOK || body != "upstream reached\n" {
			t.Fatalf("want 200 from the upstream, got %s", show(resp, body))
		}
		if want := e.identity(k); !equalHeaders(seen, want) {
			t.Fatalf("the upstream saw %v, want exactly %v (request %d)", seen, want, hits)
		}
	}
	// refused checks a refusal that never reached the upstream.
	refused := func(t *testing.T, hitsBefore int, resp *http.Response, body string, status int, reason string) {
		t.Helper()
		if resp.StatusCode != status || !strings.Contains(body, `"reason":"`+reason+`"`) {
			t.Fatalf("want %d %s, got %s", status, reason, show(resp, body))
		}
		wantOne(t, resp, "X-Clearance-Reason", reason)
		if status == http.StatusUnauthorized {
			wantOne(t, resp, "WWW-Authenticate", `api-key realm="clearance"`)
		}
		if hits, _ := e.up.state(); hits != hitsBefore {
			t.Fatalf("a %d reached the upstream", status)
		}
	}
	w := e.w

	t.Run("an allowed GET reaches the upstream with the identity, the client gets its budget", func(t *testing.T) {
		resp, body := send(t, "/data?year=2026", "X-API-Key", w.token.Token)
		allowed(t, resp, body, w.token)
		wantOne(t, resp, "X-RateLimit-Limit", strconv.Itoa(appLimit))
		remaining := wantNumber(t, resp, "X-RateLimit-Remaining")
		if remaining >= appLimit {
			t.Errorf("X-RateLimit-Remaining %d after a request, limit %d", remaining, appLimit)
		}
		wantNumber(t, resp, "X-RateLimit-Reset")
		if got := resp.Header.Values("RateLimit"); len(got) != 1 || !regexp.MustCompile(`^"general";r=\d+;t=\d+$`).MatchString(got[0]) {
			t.Errorf("RateLimit %q", got)
		}
		wantOne(t, resp, "RateLimit-Policy", fmt.Sprintf(`"general";q=%d;w=3600`, appLimit))
	})

	t.Run("X-Clearance headers the client sends never reach the upstream", func(t *testing.T) {
		resp, body := send(t, "/data", "Authorization", "api-key "+w.token.Token, "X-Clearance-Role", "OrgAdmin",
			"X-Clearance-Application-Id", otherAppID, "X-Clearance-Key-Id", "forged", "X-Clearance-Org", grantOrg)
		allowed(t, resp, body, w.token)
		// Another org: refused by the verifier (org_conflict), or dropped before it; never passed on.
		hits, _ := e.up.state()
		resp, body = send(t, "/data", "X-API-Key", w.token.Token, "X-Clearance-Org", "initech")
		if resp.StatusCode == http.StatusOK {
			allowed(t, resp, body, w.token)
		} else if after, _ := e.up.state(); resp.StatusCode/100 != 4 || after != hits {
			t.Fatalf("a client's X-Clearance-Org of another org: %s", show(resp, body))
		}
	})

	t.Run("a CORS preflight passes without a key, and without the identity the client forged", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodOptions, base+"/data", nil)
		if err != nil {
			t.Fatal(err)
		}
		forged := []string{"OrgAdmin", otherAppID, "forged"}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		req.Header.Set("X-Clearance-Role", forged[0])
		req.Header.Set("X-Clearance-Application-Id", forged[1])
		req.Header.Set("X-Clearance-Key-Id", forged[2])
		hits, _ := e.up.state()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		noPlaceholders(t, resp)
		after, seen := e.up.state()
		if resp.StatusCode != http.StatusOK || after != hits+1 {
			t.Fatalf("a preflight should reach the upstream: %s", show(resp, string(body)))
		}
		for name, vs := range seen {
			if slices.ContainsFunc(vs, func(v string) bool { return slices.Contains(forged, v) }) {
				t.Errorf("the upstream got the client's %s: %q", name, vs)
			}
		}
	})

	t.Run("the verifier sees the request's own method, whatever method headers the client sends", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, base+"/data", strings.NewReader(`{"report":"occupancy"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", w.token.Token)
		req.Header.Set("X-Forwarded-Method", http.MethodGet)
		req.Header.Set("X-Original-Method", http.MethodGet)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		allowed(t, resp, string(body), w.token) // an Analyst may POST
		e.mu.Lock()
		methods := e.methods
		e.mu.Unlock()
		if len(methods) == 0 || slices.ContainsFunc(methods, func(m string) bool { return m != http.MethodPost }) {
			t.Fatalf("the verifier was told the method is %q, want POST", methods)
		}
	})

	t.Run("refusals reach the client with the verifier's status and reason, not the upstream", func(t *testing.T) {
		hits, _ := e.up.state()
		resp, body := send(t, "/data")
		refused(t, hits, resp, body, http.StatusUnauthorized, ReasonKeyMissing)
		resp, body = send(t, "/data", "X-API-Key", w.mint().Token)
		refused(t, hits, resp, body, http.StatusUnauthorized, ReasonKeyUnknown)
		resp, body = send(t, "/data", "X-API-Key", e.stranger.Token)
		refused(t, hits, resp, body, http.StatusForbidden, ReasonOrgNotConnected)
		resp, body = send(t, "/data", "X-API-Key", w.token.Token, "Origin", "https://evil.example")
		refused(t, hits, resp, body, http.StatusForbidden, ReasonOriginNotAllowed)
	})

	t.Run("over its budget a key gets 429 with Retry-After", func(t *testing.T) {
		for i := range 2 {
			resp, body := send(t, "/data", "X-API-Key", e.tight.Token)
			allowed(t, resp, body, e.tight)
			wantOne(t, resp, "X-RateLimit-Remaining", strconv.Itoa(1-i))
		}
		hits, _ := e.up.state()
		resp, body := send(t, "/data", "X-API-Key", e.tight.Token)
		refused(t, hits, resp, body, http.StatusTooManyRequests, ReasonRateLimited)
		if retry := wantNumber(t, resp, "Retry-After"); retry <= 0 {
			t.Errorf("Retry-After %d", retry)
		}
		wantOne(t, resp, "X-RateLimit-Limit", "2")
		wantOne(t, resp, "X-RateLimit-Remaining", "0")
		wantNumber(t, resp, "X-RateLimit-Reset")
	})

	t.Run("a WebSocket with the key in Sec-WebSocket-Protocol is upgraded, and refused once the key is disabled", func(t *testing.T) {
		protocols := "clearance.v1, clearance.key." + e.socket.Token
		ws, resp := dialWebSocket(t, addr, prefix+"/socket", protocols, origin)
		if ws == nil {
			t.Fatalf("handshake: want 101, got %s", show(resp, ""))
		}
		defer ws.Close()
		wantOne(t, resp, "Sec-WebSocket-Protocol", "clearance.v1")
		if _, seen := e.up.state(); !equalHeaders(seen, e.identity(e.socket)) {
			t.Fatalf("the upstream saw %v on the handshake", seen)
		}
		for _, msg := range []string{"hello", "again"} {
			if got := ws.echo(t, msg); got != "echo: "+msg {
				t.Fatalf("sent %q, got %q", msg, got)
			}
		}

		disabled := e.socketKey.DeepCopy()
		disabled.Spec.Enabled = ptr(false)
		w.v.Apply(disabled)
		hits, _ := e.up.state()
		again, resp := dialWebSocket(t, addr, prefix+"/socket", protocols, origin)
		if again != nil {
			again.Close()
			t.Fatal("a disabled key opened a WebSocket")
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		refused(t, hits, resp, string(body), http.StatusUnauthorized, ReasonKeyDisabled)
	})

	t.Run("a stream of Server-Sent Events passes unbuffered on one authorization", func(t *testing.T) {
		before := e.authorizations(t)
		req, err := http.NewRequest(http.MethodGet, base+"/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-API-Key", w.token.Token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("want a 200 event stream, got %s", show(resp, ""))
		}
		events := bufio.NewReader(resp.Body)
		for i := 1; i <= sseEvents; i++ {
			if got, want := readEvent(t, events), fmt.Sprintf("tick %d", i); got != want {
				t.Fatalf("event %d: %q, want %q", i, got, want)
			}
			if i < sseEvents {
				select {
				case e.up.ack <- struct{}{}:
				case <-time.After(20 * time.Second):
					t.Fatalf("the upstream stopped streaming after event %d", i)
				}
			}
		}
		if n := e.authorizations(t) - before; n != 1 {
			t.Errorf("the stream cost %d authorizations, want 1", n)
		}
	})

	t.Run("each transport passes by default and is refused with its own reason when the connection refuses it", func(t *testing.T) {
		defer w.v.Apply(w.conn)
		protocols := "clearance.v1, clearance.key." + w.token.Token
		sse := []string{"X-API-Key", w.token.Token, "Accept", "text/event-stream"}
		longPoll := []string{"X-API-Key", w.token.Token, "Prefer", "wait=5"}
		for _, refuse := range []v1.Transport{"", v1.TransportWebSockets, v1.TransportServerSentEvents, v1.TransportLongPolling} {
			conn := w.conn.DeepCopy()
			conn.Spec.Transports = &v1.ConnectionTransports{}
			conn.Spec.Transports.Set(refuse, v1.TransportRefused)
			w.v.Apply(conn)

			hits, _ := e.up.state()
			ws, resp := dialWebSocket(t, addr, prefix+"/socket", protocols, origin)
			switch {
			case refuse == v1.TransportWebSockets && ws != nil:
				ws.Close()
				t.Fatal("a WebSocket opened through a connection that refuses WebSockets")
			case refuse == v1.TransportWebSockets:
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				_ = resp.Body.Close()
				refused(t, hits, resp, string(body), http.StatusForbidden, ReasonTransportNotAllowed)
			case ws == nil:
				t.Fatalf("with %q refused, a WebSocket handshake: want 101, got %s", refuse, show(resp, ""))
			default:
				if got := ws.echo(t, "hello"); got != "echo: hello" {
					t.Fatalf("sent hello, got %q", got)
				}
				ws.Close()
			}

			for _, c := range []struct {
				transport v1.Transport
				headers   []string
			}{{v1.TransportServerSentEvents, sse}, {v1.TransportLongPolling, longPoll}} {
				hits, _ := e.up.state()
				resp, body := send(t, "/data", c.headers...)
				if refuse == c.transport {
					refused(t, hits, resp, body, http.StatusForbidden, ReasonTransportNotAllowed)
				} else {
					allowed(t, resp, body, w.token)
				}
			}
			if longPollRoute != "" {
				// The route says it long-polls: no Prefer header needed.
				hits, _ := e.up.state()
				resp, body := send(t, longPollRoute, "X-API-Key", w.token.Token)
				if refuse == v1.TransportLongPolling {
					refused(t, hits, resp, body, http.StatusForbidden, ReasonTransportNotAllowed)
				} else {
					allowed(t, resp, body, w.token)
				}
			}
			resp, body := send(t, "/data", "X-API-Key", w.token.Token)
			allowed(t, resp, body, w.token)
		}
	})

	t.Run("with the verifier down nothing reaches the upstream", func(t *testing.T) {
		e.stopVerifier()
		hits, _ := e.up.state()
		resp, body := send(t, "/data", "X-API-Key", w.token.Token)
		if after, _ := e.up.state(); resp.StatusCode < 500 || after != hits {
			t.Fatalf("with the verifier down: %s, upstream reached %d times", show(resp, body), after-hits)
		}
	})
}

// noPlaceholders fails on a response header that holds a proxy's placeholder instead of a value
// (Caddy writes an unknown placeholder as it is).
func noPlaceholders(t *testing.T, resp *http.Response) {
	t.Helper()
	for name, vs := range resp.Header {
		if slices.ContainsFunc(vs, func(v string) bool { return strings.Contains(v, "{http.") }) {
			t.Errorf("%d: %s = %q", resp.StatusCode, name, vs)
		}
	}
}

// equalHeaders compares two sets of header values, names canonical.
func equalHeaders(got, want http.Header) bool {
	if len(got) != len(want) {
		return false
	}
	for name, vs := range want {
		if !slices.Equal(got[name], vs) {
			return false
		}
	}
	return true
}

func wantOne(t *testing.T, resp *http.Response, name, want string) {
	t.Helper()
	if got := resp.Header.Values(name); len(got) != 1 || got[0] != want {
		t.Errorf("%d: %s = %q, want exactly %q", resp.StatusCode, name, got, want)
	}
}

// wantNumber checks the header is there once, a whole number, and returns it.
func wantNumber(t *testing.T, resp *http.Response, name string) int64 {
	t.Helper()
	got := resp.Header.Values(name)
	if len(got) != 1 {
		t.Errorf("%d: %s = %q, want one number", resp.StatusCode, name, got)
		return -1
	}
	n, err := strconv.ParseInt(got[0], 10, 64)
	if err != nil || n < 0 {
		t.Errorf("%d: %s = %q, want a whole number", resp.StatusCode, name, got[0])
		return -1
	}
	return n
}

// readEvent reads one Server-Sent Event and returns its data.
func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event stream: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" && len(data) > 0 {
			return strings.Join(data, "\n")
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data = append(data, d)
		}
	}
}

// wsConn is the client side of a WebSocket (RFC 6455), just enough to send text and read the
// echo: the proxies are what is tested, so the client is written out here rather than taken
// from the library the upstream uses.
type wsConn struct {
	net.Conn
	r *bufio.Reader
}

// dialWebSocket opens a WebSocket to path through the proxy at addr, offering protocols from
// origin. On 101 it returns the connection; otherwise nil and the refusal (body unread).
func dialWebSocket(t *testing.T, addr, path, protocols, origin string) (*wsConn, *http.Response) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Protocol", protocols)
	req.Header.Set("Origin", origin)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, req)
	if err != nil {
		_ = conn.Close()
		t.Fatalf("reading the handshake's answer: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Cleanup(func() { _ = conn.Close() })
		return nil, resp
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		_ = conn.Close()
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	return &wsConn{Conn: conn, r: r}, resp
}

// echo sends msg in a masked text frame and returns the text of the frame that comes back.
func (c *wsConn) echo(t *testing.T, msg string) string {
	t.Helper()
	if len(msg) > 125 {
		t.Fatal("echo sends short messages only")
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	frame := append([]byte{0x81, 0x80 | byte(len(msg))}, mask[:]...)
	for i := range len(msg) {
		frame = append(frame, msg[i]^mask[i%4])
	}
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	var head [2]byte
	if _, err := io.ReadFull(c.r, head[:]); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if head[0] != 0x81 || head[1]&0x80 != 0 || head[1]&0x7f > 125 {
		t.Fatalf("want a short unmasked text frame, got header %x", head)
	}
	payload := make([]byte, head[1]&0x7f)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	return string(payload)
}
