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
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"k8s.io/utils/clock"
)

// The decision log (docs/metrics.md): with --decision-log-otlp-endpoint, every answer counted
// in clearance_verifier_decisions_total also becomes one OpenTelemetry log record, sent with
// OTLP/HTTP. The request path only offers a small entry to a bounded queue and never waits: a
// full queue drops the entry and counts it. One goroutine takes entries off the queue in
// batches, turns them into SDK log records and calls the OTLP exporter's Export directly, with
// a timeout and no retries; a batch that fails counts all its records as dropped. So
//
//	exported + dropped == decisions
//
// exactly, once the queue has drained; on shutdown the queue is drained within
// Options.ShutdownTimeout and whatever is left counts as dropped. The SDK's BatchProcessor is
// not used: it drops silently when its queue is full. The exporter never talks to the
// apiserver.

// DecisionLogRecordsMetric is the name of the decision log's counter of records, by result.
const DecisionLogRecordsMetric = "clearance_verifier_decision_log_records_total"

// Defaults of the decision log's Options.
const (
	// DefaultDecisionLogQueue is how many records may wait to be exported: its entries hold
	// strings the index already holds and at most 63 bytes copied from the request (the org,
	// loggedOrg), so the queue is a few MiB at most.
	DefaultDecisionLogQueue = 1 << 16
	// DefaultDecisionLogBatch is the most records one export sends.
	DefaultDecisionLogBatch = 1024
	// DefaultDecisionLogTimeout bounds one export.
	DefaultDecisionLogTimeout = 5 * time.Second
	// DefaultDecisionLogInterval is how often the exporter sends what is queued: at most a
	// queue's worth arrives between two (327,680 records a second, far above what a replica
	// answers).
	DefaultDecisionLogInterval = 200 * time.Millisecond
)

// logScope is the instrumentation scope of the decision records.
const logScope = "github.com/clearance-dev/clearance/internal/verifier"

// Attributes of a decision record. Never the key, its secret or an access token: the key id
// is the public half a key is listed by.
const (
	attrOrg     = "clearance.org"
	attrApp     = "clearance.application_id"
	attrKeyID   = "clearance.key_id"
	attrReason  = "clearance.reason"
	attrStatus  = "http.response.status_code"
	attrAccess  = "clearance.access"
	recordEvent = "clearance.verifier.decision"
)

// decisionEntry is what the request path queues: strings the index or the request already
// holds, a reason and the decision's time; nothing is formatted until the exporter runs.
type decisionEntry struct {
	at     time.Time
	org    string // the org the request asked for ("" when it named none), as loggedOrg keeps it
	app    string // the Application ID the key or token led to ("" when none)
	keyID  string // the key id ("" for no key, an access token, or an unknown key)
	reason reason
	access string // read, write, preflight, or "" before the method was read
}

// decisionLog queues decision entries and exports them (see above).
type decisionLog struct {
	queue    chan decisionEntry
	exporter sdklog.Exporter
	logger   otellog.Logger
	batch    *collectProcessor
	max      int
	timeout  time.Duration
	interval time.Duration
	clock    clock.WithTicker
	exported prometheus.Counter
	dropped  prometheus.Counter
}

// DecisionLogOptions configure the decision log; main.go sets Endpoint only.
type DecisionLogOptions struct {
	// Endpoint is the OTLP/HTTP endpoint: a URL (http or https); with no path, /v1/logs
	// (--decision-log-otlp-endpoint). Empty: no decision log.
	Endpoint string
	// Queue is how many records may wait for the exporter. Default: DefaultDecisionLogQueue.
	Queue int
	// Batch is the most records one export sends. Default: DefaultDecisionLogBatch.
	Batch int
	// Timeout bounds one export. Default: DefaultDecisionLogTimeout.
	Timeout time.Duration
	// Interval is how often the exporter wakes to send what is queued, in batches: the
	// goroutine sleeps between, so a request never wakes it. Default:
	// DefaultDecisionLogInterval.
	Interval time.Duration
	// Clock ticks the interval. Default: Options.Clock. (Records are timed by Options.Clock.)
	Clock clock.WithTicker
	// HTTPClient sends the exports; nil: the exporter's own.
	HTTPClient *http.Client
}

// newDecisionLog builds the decision log of o, or nil when o.Endpoint is empty, and registers
// its counter on reg.
func newDecisionLog(o DecisionLogOptions, clk clock.WithTicker, reg prometheus.Registerer) (*decisionLog, error) {
	if o.Endpoint == "" {
		return nil, nil
	}
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("verifier: decision log endpoint %q is not an http or https URL", o.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/logs"
	}
	if o.Queue == 0 {
		o.Queue = DefaultDecisionLogQueue
	}
	if o.Batch == 0 {
		o.Batch = DefaultDecisionLogBatch
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultDecisionLogTimeout
	}
	if o.Clock != nil {
		clk = o.Clock
	}
	if o.Interval == 0 {
		o.Interval = DefaultDecisionLogInterval
	}
	if o.Queue < 0 || o.Batch < 0 || o.Timeout < 0 || o.Interval < 0 {
		return nil, errors.New("verifier: decision log queue, batch, timeout and interval must be positive")
	}
	opts := []otlploghttp.Option{
		otlploghttp.WithEndpointURL(u.String()),
		otlploghttp.WithTimeout(o.Timeout),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
	}
	if o.HTTPClient != nil {
		opts = append(opts, otlploghttp.WithHTTPClient(o.HTTPClient))
	}
	exp, err := otlploghttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("verifier: decision log exporter: %w", err)
	}
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: DecisionLogRecordsMetric,
		Help: "Decision log records by result: exported (the OTLP endpoint accepted the batch), dropped (the queue was full, the batch failed or timed out, or shutdown left it). exported + dropped = the sum of clearance_verifier_decisions_total once the queue has drained.",
	}, []string{"result"})
	if err := reg.Register(records); err != nil {
		return nil, err
	}
	batch := &collectProcessor{}
	// The attribute keys are distinct constants: the SDK need not look for duplicates.
	provider := sdklog.NewLoggerProvider(sdklog.WithProcessor(batch), sdklog.WithAllowKeyDuplication(),
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", "clearance-verifier"))))
	return &decisionLog{
		queue:    make(chan decisionEntry, o.Queue),
		exporter: exp,
		logger:   provider.Logger(logScope),
		batch:    batch,
		max:      o.Batch,
		timeout:  o.Timeout,
		interval: o.Interval,
		clock:    clk,
		exported: records.WithLabelValues("exported"),
		dropped:  records.WithLabelValues("dropped"),
	}, nil
}

// offer queues e without waiting; a full queue drops it, counted.
func (l *decisionLog) offer(e decisionEntry) {
	select {
	case l.queue <- e:
	default:
		l.dropped.Inc()
	}
}

// run exports until ctx ends, then drains what is queued once stopped is closed (the HTTP
// server has stopped answering) or final ends, whichever is first; whatever is left then
// counts as dropped.
func (l *decisionLog) run(ctx context.Context, stopped <-chan struct{}, final time.Duration) {
	buf := make([]decisionEntry, 0, l.max)
	// An export under way when ctx ends finishes (within the timeout): its records count as
	// what the endpoint said, not as dropped by a cancel after they were sent.
	sending := context.WithoutCancel(ctx)
	t := l.clock.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C():
			for ctx.Err() == nil {
				if buf = l.fill(buf[:0]); len(buf) == 0 {
					break
				}
				l.export(sending, buf)
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), final)
			defer cancel()
			select {
			case <-stopped:
			case <-fctx.Done():
			}
			l.drain(fctx, buf)
			_ = l.exporter.Shutdown(fctx)
			return
		}
	}
}

// drain exports what is queued until the queue is empty or ctx ends; what is queued then
// counts as dropped. A server that still answers past ctx (it did not stop in time) keeps
// offering: drain takes what is queued once and returns, so it ends whatever the requests do.
func (l *decisionLog) drain(ctx context.Context, buf []decisionEntry) {
	for ctx.Err() == nil {
		buf = l.fill(buf[:0])
		if len(buf) == 0 {
			return
		}
		l.export(ctx, buf)
	}
	for range len(l.queue) {
		select {
		case <-l.queue:
			l.dropped.Inc()
		default:
			return
		}
	}
}

// fill adds queued entries to buf, without waiting, up to a batch.
func (l *decisionLog) fill(buf []decisionEntry) []decisionEntry {
	for len(buf) < l.max {
		select {
		case e := <-l.queue:
			buf = append(buf, e)
		default:
			return buf
		}
	}
	return buf
}

// export sends one batch, within the timeout, and counts it: exported when the endpoint
// accepted it, dropped otherwise.
func (l *decisionLog) export(ctx context.Context, buf []decisionEntry) {
	l.batch.records = l.batch.records[:0]
	for i := range buf {
		l.logger.Emit(ctx, buf[i].record())
	}
	ectx, cancel := context.WithTimeout(ctx, l.timeout)
	err := l.exporter.Export(ectx, l.batch.records)
	cancel()
	n := float64(len(l.batch.records))
	if lost := len(buf) - len(l.batch.records); lost > 0 {
		l.dropped.Add(float64(lost)) // the SDK refused some (it never does while the provider is open)
	}
	if err != nil {
		l.dropped.Add(n)
	} else {
		l.exported.Add(n)
	}
	clear(l.batch.records) // drop references to the batch's strings
}

// record is the log record of a decision: the event name, the decision's time, severity INFO
// for an allowed request and WARN for a refusal, the reason as the body, and the attributes.
func (e *decisionEntry) record() otellog.Record {
	var r otellog.Record
	r.SetEventName(recordEvent)
	r.SetTimestamp(e.at)
	r.SetObservedTimestamp(e.at)
	sev, text := otellog.SeverityInfo, "INFO"
	if e.reason != rOK {
		sev, text = otellog.SeverityWarn, "WARN"
	}
	r.SetSeverity(sev)
	r.SetSeverityText(text)
	name := e.reason.String()
	r.SetBody(attribute.StringValue(name))
	r.AddAttributes(
		attribute.String(attrOrg, e.org),
		attribute.String(attrApp, e.app),
		attribute.String(attrKeyID, e.keyID),
		attribute.String(attrReason, name),
		attribute.Int(attrStatus, e.reason.status()),
		attribute.String(attrAccess, e.access),
	)
	return r
}

// collectProcessor keeps what the logger emits, for decisionLog.export to pass to the
// exporter in one call. The logger and it are used by the exporting goroutine only.
type collectProcessor struct{ records []sdklog.Record }

// Enabled is sdklog.Processor's: every record is wanted.
func (p *collectProcessor) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }

// OnEmit is sdklog.Processor's: a copy, as the SDK reuses the record it passes.
func (p *collectProcessor) OnEmit(_ context.Context, r *sdklog.Record) error {
	p.records = append(p.records, r.Clone())
	return nil
}

// Shutdown is sdklog.Processor's; there is nothing to stop.
func (p *collectProcessor) Shutdown(context.Context) error { return nil }

// ForceFlush is sdklog.Processor's; decisionLog.export sends what it collected.
func (p *collectProcessor) ForceFlush(context.Context) error { return nil }

// String names what a request may do, for the decision log.
func (a access) String() string {
	switch a {
	case accessPreflight:
		return "preflight"
	case accessRead:
		return "read"
	}
	return "write"
}

// decisionLogRunner drains the decision log as a manager Runnable, in every replica.
type decisionLogRunner struct{ v *Verifier }

func (d *decisionLogRunner) NeedLeaderElection() bool { return false }

func (d *decisionLogRunner) Start(ctx context.Context) error {
	d.v.RunDecisionLog(ctx)
	return nil
}

// RunDecisionLog exports the decision log until ctx ends, then drains it for up to
// Options.ShutdownTimeout once the HTTP server has stopped (Serve returned); returns at once
// when the decision log is off. SetupWithManager runs it; embedders that call Serve themselves
// run it beside Serve.
func (v *Verifier) RunDecisionLog(ctx context.Context) {
	if v.dlog != nil {
		v.dlog.run(ctx, v.serverStopped, v.opts.ShutdownTimeout)
	}
}
