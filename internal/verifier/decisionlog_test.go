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
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	collogpb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	logpb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	"github.com/clearance-dev/clearance/internal/keyformat"
)

// receiver is a loopback OTLP/HTTP logs endpoint that decodes each export and counts its
// records. It can be slow (every slowEvery-th export waits past the client's timeout and is
// never counted), refuse (status), or block every export until unblock is closed.
type receiver struct {
	srv       *httptest.Server
	slowEvery int64
	slow      time.Duration
	status    int
	unblock   chan struct{}
	secrets   [][]byte

	exports  atomic.Int64
	records  atomic.Int64
	leaks    atomic.Int64
	mu       sync.Mutex
	firstLog *logpb.LogRecord
}

func newReceiver(t *testing.T, configure func(*receiver)) *receiver {
	rc := &receiver{}
	if configure != nil {
		configure(rc)
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(func() {
		if rc.unblock != nil {
			select {
			case <-rc.unblock:
			default:
				close(rc.unblock)
			}
		}
		rc.srv.Close()
	})
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	n := rc.exports.Add(1)
	if rc.unblock != nil {
		select {
		case <-rc.unblock:
		case <-r.Context().Done():
			return
		}
	}
	if rc.status != 0 {
		w.WriteHeader(rc.status)
		return
	}
	if rc.slowEvery > 0 && n%rc.slowEvery == 0 {
		select {
		case <-time.After(rc.slow):
		case <-r.Context().Done():
		}
		return // the client gave up: not counted
	}
	for _, s := range rc.secrets {
		if bytes.Contains(body, s) {
			rc.leaks.Add(1)
		}
	}
	var req collogpb.ExportLogsServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var count int64
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			count += int64(len(sl.LogRecords))
			rc.mu.Lock()
			if rc.firstLog == nil && len(sl.LogRecords) > 0 {
				rc.firstLog = sl.LogRecords[0]
			}
			rc.mu.Unlock()
		}
	}
	rc.records.Add(count)
	out, _ := proto.Marshal(&collogpb.ExportLogsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// fastWriter is a ResponseWriter that keeps nothing, so a million requests cost no memory.
type fastWriter struct {
	h    http.Header
	code int
}

func (f *fastWriter) Header() http.Header         { return f.h }
func (f *fastWriter) Write(b []byte) (int, error) { return len(b), nil }
func (f *fastWriter) WriteHeader(code int)        { f.code = code }

// decisionLogWorld is the unit world with the decision log on, to rc, and its exporter running
// until stop.
type decisionLogWorld struct {
	*world
	stop func()
}

func newDecisionLogWorld(t *testing.T, rc *receiver, url string, timeout, final time.Duration) *decisionLogWorld {
	w := newWorld(t, func(o *Options) {
		// The interval ticks by the real clock; records are timed by the world's.
		o.DecisionLog = DecisionLogOptions{Endpoint: url, Timeout: timeout, Interval: 5 * time.Millisecond, Clock: clock.RealClock{}}
		o.ShutdownTimeout = final
	})
	if rc != nil {
		rc.secrets = [][]byte{[]byte(w.token.Token), []byte(w.token.Secret), []byte(keyformat.SecretKey(w.token))}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.v.RunDecisionLog(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			w.v.markServerStopped()
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return &decisionLogWorld{world: w, stop: stop}
}

// drive sends n forward-auth requests straight to the handler: a third with the world's key
// (allowed until its rate limit is spent, then rate_limited), a third with a key the verifier
// does not know (401), a third naming no org (400). It returns the slowest request.
func (w *decisionLogWorld) drive(n int) time.Duration {
	unknown := w.mint()
	reqs := []*http.Request{
		httptest.NewRequest(http.MethodGet, PathAuthorize+"?org="+grantOrg, nil),
		httptest.NewRequest(http.MethodPost, PathAuthorize+"?org="+grantOrg, nil),
		httptest.NewRequest(http.MethodGet, PathAuthorize, nil),
	}
	reqs[0].Header.Set("X-API-Key", w.token.Token)
	reqs[1].Header.Set("X-API-Key", unknown.Token)
	reqs[2].Header.Set("X-API-Key", w.token.Token)
	out := &fastWriter{h: http.Header{}}
	var slowest time.Duration
	for i := range n {
		clear(out.h)
		start := time.Now()
		w.v.ServeHTTP(out, reqs[i%len(reqs)])
		if d := time.Since(start); d > slowest {
			slowest = d
		}
	}
	return slowest
}

// accounting is the decision log's counts after it drained, and the decisions answered.
type accounting struct{ decisions, exported, dropped int64 }

func (w *decisionLogWorld) accounting(t *testing.T) accounting {
	t.Helper()
	w.stop()
	var a accounting
	for name, v := range gather(t, w.reg) {
		if strings.HasPrefix(name, "clearance_verifier_decisions_total{") {
			a.decisions += int64(v)
		}
	}
	a.exported = int64(testutil.ToFloat64(w.v.dlog.exported))
	a.dropped = int64(testutil.ToFloat64(w.v.dlog.dropped))
	t.Logf("decisions %d, exported %d, dropped %d", a.decisions, a.exported, a.dropped)
	if a.exported+a.dropped != a.decisions {
		t.Fatalf("exported %d + dropped %d = %d, want the %d decisions exactly", a.exported, a.dropped, a.exported+a.dropped, a.decisions)
	}
	return a
}

const million = 1_000_000

func TestEveryDecisionIsExportedOrCountedDroppedWhenTheReceiverIsHealthy(t *testing.T) {
	rc := newReceiver(t, nil)
	w := newDecisionLogWorld(t, rc, rc.srv.URL, 5*time.Second, 30*time.Second)
	slowest := w.drive(million)
	a := w.accounting(t)
	if a.decisions != million {
		t.Fatalf("%d decisions, want %d", a.decisions, million)
	}
	if got := rc.records.Load(); got != a.exported {
		t.Fatalf("the receiver got %d records, the verifier counts %d exported", got, a.exported)
	}
	if a.exported == 0 {
		t.Fatal("nothing exported to a healthy receiver")
	}
	if n := rc.leaks.Load(); n != 0 {
		t.Fatalf("%d exports hold key material", n)
	}
	t.Logf("%d exports; slowest request %s", rc.exports.Load(), slowest)
}

func TestNothingIsDroppedWhileTheQueueHasRoom(t *testing.T) {
	rc := newReceiver(t, nil)
	w := newDecisionLogWorld(t, rc, rc.srv.URL, 5*time.Second, 30*time.Second)
	const n = DefaultDecisionLogQueue - 1
	w.drive(n)
	a := w.accounting(t)
	if a.exported != n || a.dropped != 0 || rc.records.Load() != n {
		t.Fatalf("exported %d, dropped %d, received %d: want all %d exported and received", a.exported, a.dropped, rc.records.Load(), n)
	}
}

func TestEveryDecisionIsExportedOrCountedDroppedWhenTheReceiverIsSlow(t *testing.T) {
	const timeout = 200 * time.Millisecond
	rc := newReceiver(t, func(rc *receiver) { rc.slowEvery, rc.slow = 5, 5*timeout })
	w := newDecisionLogWorld(t, rc, rc.srv.URL, timeout, 30*time.Second)
	w.drive(million)
	a := w.accounting(t)
	// Every record counted exported was received. One counted dropped may have been received
	// too: an export the receiver answered just after the verifier gave up on it (a loaded
	// machine makes a fast export slow), which overstates the drops and loses nothing.
	if got := rc.records.Load(); got < a.exported || got > a.exported+a.dropped {
		t.Fatalf("the receiver got %d records, the verifier counts %d exported and %d dropped", got, a.exported, a.dropped)
	}
	if a.dropped == 0 || a.exported == 0 {
		t.Fatalf("exported %d, dropped %d: want some of each from a receiver that times out every fifth export", a.exported, a.dropped)
	}
	if n := rc.leaks.Load(); n != 0 {
		t.Fatalf("%d exports hold key material", n)
	}
}

func TestEveryDecisionIsCountedDroppedWhenTheReceiverIsDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"connection refused", func(t *testing.T) string {
			s := httptest.NewServer(http.NotFoundHandler())
			s.Close()
			return s.URL
		}},
		{"503", func(t *testing.T) string {
			return newReceiver(t, func(rc *receiver) { rc.status = http.StatusServiceUnavailable }).srv.URL
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newDecisionLogWorld(t, nil, tc.url(t), time.Second, 10*time.Second)
			w.drive(million)
			a := w.accounting(t)
			if a.exported != 0 || a.dropped != million {
				t.Fatalf("exported %d, dropped %d: want every one of %d dropped", a.exported, a.dropped, million)
			}
		})
	}
}

func TestNoRequestWaitsForABlockedReceiver(t *testing.T) {
	const timeout = 200 * time.Millisecond
	rc := newReceiver(t, func(rc *receiver) { rc.unblock = make(chan struct{}) })
	w := newDecisionLogWorld(t, rc, rc.srv.URL, timeout, time.Second)
	slowest := w.drive(million)
	// Every request was answered while the receiver held every export.
	if got := rc.records.Load(); got != 0 {
		t.Fatalf("a blocked receiver counted %d records", got)
	}
	a := w.accounting(t)
	close(rc.unblock)
	if a.exported != 0 || a.dropped != million {
		t.Fatalf("exported %d, dropped %d: want every one of %d dropped", a.exported, a.dropped, million)
	}
	t.Logf("slowest request %s while the receiver blocked", slowest)
}

func TestADecisionRecordHoldsTheOrgApplicationKeyIDReasonAndTheVerifiersTime(t *testing.T) {
	rc := newReceiver(t, nil)
	w := newDecisionLogWorld(t, rc, rc.srv.URL, 5*time.Second, 10*time.Second)
	expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	w.accounting(t)
	rc.mu.Lock()
	r := rc.firstLog
	rc.mu.Unlock()
	if r == nil {
		t.Fatal("no record received")
	}
	got := map[string]string{}
	for _, kv := range r.Attributes {
		got[kv.Key] = kv.Value.String()
	}
	for k, want := range map[string]string{attrOrg: grantOrg, attrApp: appID, attrKeyID: w.token.KeyID, attrReason: "ok", attrAccess: "read"} {
		if !strings.Contains(got[k], `"`+want+`"`) {
			t.Errorf("attribute %s = %s, want %q", k, got[k], want)
		}
	}
	if !strings.Contains(got[attrStatus], "200") {
		t.Errorf("attribute %s = %s, want 200", attrStatus, got[attrStatus])
	}
	if ts := time.Unix(0, int64(r.TimeUnixNano)).UTC(); !ts.Equal(epoch) {
		t.Errorf("timestamp %s, want the fake clock's %s", ts, epoch)
	}
	if n := rc.leaks.Load(); n != 0 {
		t.Fatalf("%d exports hold key material", n)
	}
}

// TestAKeySentWhereTheOrgGoesNeverReachesTheDecisionLog: the decision log keeps the org a
// request asked for, which is whatever the client or its proxy put there. A client that sends
// its key (or its secret half) where the org goes, in org=, in X-Clearance-Org, in Envoy's
// X-Clearance-Org or in keys:verify's org, is refused, and its key never reaches a record: a
// key is no namespace name (it holds an underscore), so such an org is logged as none. Cut
// to 63 bytes, a 66-byte key would still hold its whole secret.
func TestAKeySentWhereTheOrgGoesNeverReachesTheDecisionLog(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.DecisionLog = DecisionLogOptions{Endpoint: "http://127.0.0.1:1"} }) // never exported
	for i := range 200 {
		k := w.mint()
		for _, sent := range []string{k.Token, k.Secret, keyformat.SecretKey(k), " " + k.Token, grantOrg + k.Token, k.Token + grantOrg} {
			reqs := []*http.Request{
				httptest.NewRequest(http.MethodGet, PathAuthorize+"?org="+url.QueryEscape(sent), nil),
				httptest.NewRequest(http.MethodGet, PathAuthorize, nil),
				httptest.NewRequest(http.MethodGet, PathAuthorize+"/reports?org="+grantOrg, nil),
				httptest.NewRequest(http.MethodPost, PathVerify, strings.NewReader(`{"key":"`+w.token.Token+`","org":"`+sent+`"}`)),
			}
			reqs[1].Header.Set("X-Clearance-Org", sent)
			reqs[2].Header.Set("X-Clearance-Org", sent)
			for j, r := range reqs {
				if j < 3 {
					r.Header.Set("X-API-Key", []string{w.token.Token, k.Token}[i%2])
				}
				w.v.ServeHTTP(httptest.NewRecorder(), r)
				if n := len(w.v.dlog.queue); n != 1 {
					t.Fatalf("%d entries queued for one request, want 1", n)
				}
				e := <-w.v.dlog.queue
				rec := e.record()
				var logged strings.Builder
				rec.WalkAttributes(func(kv attribute.KeyValue) bool {
					logged.WriteString(kv.Value.Emit())
					logged.WriteByte('\n')
					return true
				})
				logged.WriteString(rec.Body().AsString())
				for _, secret := range []string{k.Secret[:16], k.Secret[16:32], k.Secret[27:]} {
					if strings.Contains(logged.String(), secret) {
						t.Fatalf("request %d: the decision log's record holds part of the key sent as the org (org attribute %d bytes)", j, len(e.org))
					}
				}
			}
		}
	}
}

// BenchmarkDecisionLogExport is what the exporting goroutine spends per record (SDK record,
// OTLP protobuf, one HTTP request per batch to a loopback receiver that accepts it), and
// BenchmarkDecisionLogOffer what a request spends to queue one.
func BenchmarkDecisionLogExport(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer sink.Close()
	l, err := newDecisionLog(DecisionLogOptions{Endpoint: sink.URL}, clock.RealClock{}, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]decisionEntry, DefaultDecisionLogBatch)
	for i := range buf {
		buf[i] = decisionEntry{at: epoch, org: grantOrg, app: appID, keyID: "k_0123456789abcdef", reason: rOK, access: "read"}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += len(buf) {
		l.export(context.Background(), buf)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/record")
}

func BenchmarkDecisionLogOffer(b *testing.B) {
	l, err := newDecisionLog(DecisionLogOptions{Endpoint: "http://127.0.0.1:1", Queue: 1 << 20}, clock.RealClock{}, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	e := decisionEntry{at: epoch, org: grantOrg, app: appID, keyID: "k_0123456789abcdef", reason: rOK, access: "read"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%(1<<19) == 0 {
			for len(l.queue) > 0 { // keep the queue from filling: offer's cost, not drop's
				<-l.queue
			}
		}
		l.offer(e)
	}
}

// TestAnOrgOfInvalidUTF8CostsNoOtherRecord: the org a request asks for is the client's to
// choose, and OTLP strings must be UTF-8: one ?org=%FF used to fail its whole batch, so anyone
// could have every other decision of the batch (up to 1024) dropped from the log.
func TestAnOrgOfInvalidUTF8CostsNoOtherRecord(t *testing.T) {
	rc := newReceiver(t, nil)
	w := newDecisionLogWorld(t, rc, rc.srv.URL, 5*time.Second, 10*time.Second)
	w.do(http.MethodGet, PathAuthorize+"?org=%FF", "", "X-API-Key", w.token.Token)
	w.do(http.MethodGet, PathAuthorize, "", "X-API-Key", w.token.Token, "X-Clearance-Org", "\xfe\xff")
	for range 10 {
		expect(t, w.authorize(w.token.Token, ""), http.StatusOK, "")
	}
	if a := w.accounting(t); a.dropped != 0 || a.exported != 12 {
		t.Fatalf("exported %d, dropped %d: want all 12 exported", a.exported, a.dropped)
	}
}

// TestAQueuedDecisionHoldsNoMoreOfTheRequestThanAnOrgName: an entry waits in the queue (up to
// DefaultDecisionLogQueue of them while the receiver is slow) holding the org the request asked
// for. It holds at most an org name's worth of it (63 bytes, a namespace name), never the
// request's own string: a 60 KiB org, or a short one in a 60 KiB query, would otherwise keep
// 60 KiB per entry, 4 GiB for a full queue.
func TestAQueuedDecisionHoldsNoMoreOfTheRequestThanAnOrgName(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.DecisionLog = DecisionLogOptions{Endpoint: "http://127.0.0.1:1"} }) // never exported
	big := strings.Repeat("o", 60<<10)
	unknown := w.mint().Token
	reqs := []*http.Request{
		httptest.NewRequest(http.MethodGet, PathAuthorize+"?org="+big, nil),
		httptest.NewRequest(http.MethodGet, PathAuthorize+"?org="+grantOrg+"&pad="+big, nil),
		httptest.NewRequest(http.MethodGet, PathAuthorize+"?org=initech&pad="+big, nil),
		httptest.NewRequest(http.MethodGet, PathAuthorize, nil),
		httptest.NewRequest(http.MethodPost, PathVerify, strings.NewReader(`{"key":"`+unknown+`","org":"`+big[:15<<10]+`"}`)),
		httptest.NewRequest(http.MethodGet, PathAuthorize, nil),
	}
	for i, r := range reqs {
		if r.Method == http.MethodGet {
			r.Header.Set("X-API-Key", []string{unknown, w.token.Token, unknown, unknown, "", unknown}[i])
		}
	}
	reqs[3].Header.Set("X-Clearance-Org", big)
	reqs[5].Header.Set("X-Clearance-Org", strings.Repeat("é\xff", 30)) // replacements lengthen it
	for _, r := range reqs {
		w.v.ServeHTTP(httptest.NewRecorder(), r)
	}
	if n := len(w.v.dlog.queue); n != len(reqs) {
		t.Fatalf("%d entries queued, want %d", n, len(reqs))
	}
	for i := range reqs {
		e := <-w.v.dlog.queue
		if len(e.org) > 63 || !utf8.ValidString(e.org) {
			t.Errorf("entry %d holds a %d-byte org %.20q, want at most 63 bytes of UTF-8", i, len(e.org), e.org)
		}
		if q := reqs[i].URL.RawQuery; e.org != "" && q != "" {
			p, start := uintptr(unsafe.Pointer(unsafe.StringData(e.org))), uintptr(unsafe.Pointer(unsafe.StringData(q)))
			if p >= start && p < start+uintptr(len(q)) {
				t.Errorf("entry %d: org %.20q is the request's own %d-byte query, kept while queued", i, e.org, len(q))
			}
		}
	}
}
