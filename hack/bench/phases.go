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
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dto "github.com/prometheus/client_model/go"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/webhook"
)

const (
	orgs        = 10 // namespaces owning applications
	appsPerOrg  = 10 // 100 applications in all
	grantOrgs   = 5  // namespaces connecting applications, for the webhook and revocation rows
	mintTimeout = 5 * time.Minute
)

func orgName(i int) string   { return fmt.Sprintf("bench-org-%d", i) }
func grantName(i int) string { return fmt.Sprintf("bench-grant-%d", i) }
func appName(i int) string   { return fmt.Sprintf("app-%d", i) }

// appOf is the Application (namespace, name) the i-th key belongs to: keys spread evenly.
func appOf(i int) types.NamespacedName {
	a := i % (orgs * appsPerOrg)
	return types.NamespacedName{Namespace: orgName(a / appsPerOrg), Name: appName(a % appsPerOrg)}
}

// mint creates the applications, then keys in batches up to each total of the scale model,
// timing each batch until all its keys are Ready with Secrets and counting the operator's
// API writes from the apiserver's own request counter.
func (b *bench) mint(ctx context.Context) error {
	for o := range orgs {
		if err := ensureNamespace(ctx, b.c, orgName(o)); err != nil {
			return err
		}
		for a := range appsPerOrg {
			if err := createRetrying(ctx, b.c, application(orgName(o), appName(a))); err != nil {
				return err
			}
		}
	}
	if _, err := b.appIDs(ctx); err != nil {
		return err
	}
	if b.cfg.warmup > 0 {
		warm := make([]types.NamespacedName, b.cfg.warmup)
		if err := forEach(len(warm), 32, func(i int) error {
			app := appOf(i)
			warm[i] = types.NamespacedName{Namespace: app.Namespace, Name: fmt.Sprintf("warmup-%05d", i)}
			return createRetrying(ctx, b.c, apiKey(app.Namespace, warm[i].Name, app.Name))
		}); err != nil {
			return fmt.Errorf("creating warm-up keys: %w", err)
		}
		if err := b.tr.waitAll(ctx, warm, mintTimeout); err != nil {
			return err
		}
		if _, err := b.settledWrites(ctx); err != nil {
			return err
		}
	}
	have := 0
	for step, total := range b.cfg.steps {
		batch := total - have
		want := make([]types.NamespacedName, batch)
		for i := range batch {
			app := appOf(have + i)
			want[i] = types.NamespacedName{Namespace: app.Namespace, Name: fmt.Sprintf("key-%05d", have+i)}
		}
		before, err := b.apiWrites(ctx)
		if err != nil {
			return err
		}
		cpu := cpuTimes()
		var profiled chan error
		if step == 0 && b.cfg.apiProfile != "" {
			profiled = make(chan error, 1)
			go func() { profiled <- b.apiserverProfile(ctx, b.cfg.apiProfile, 8) }()
		}
		start := time.Now()
		if err := forEach(batch, 32, func(i int) error {
			return createRetrying(ctx, b.c, apiKey(want[i].Namespace, want[i].Name, appOf(have+i).Name))
		}); err != nil {
			return fmt.Errorf("creating keys: %w", err)
		}
		applied := time.Since(start)
		if err := b.tr.waitAll(ctx, want, mintTimeout); err != nil {
			return err
		}
		took := time.Since(start)
		if profiled != nil {
			if err := <-profiled; err != nil {
				return err
			}
		}
		after, err := b.settledWrites(ctx)
		if err != nil {
			return err
		}
		n, breakdown := operatorWrites(before, after, map[string]float64{"POST apikeys": float64(batch)})
		rss, err := b.rss(3)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: %d keys (total %d) Ready with Secrets in %s (applying them took %s); operator writes %g: %s; CPU: %s\n",
			batch, total, took.Round(time.Millisecond), applied.Round(time.Millisecond), n, breakdown, cpuSince(cpu))
		b.scale = append(b.scale, scalePoint{keys: total, batch: batch, seconds: took.Seconds(), writesPerKey: n / float64(batch), rssMiB: rss})
		have = total
		target := 10 * float64(batch) / 1000 // 10 s per 1,000 keys (docs/performance.md)
		if step == 0 {
			b.res.AtMost(fmt.Sprintf("mint %d keys: all Ready with Secrets", batch), took.Seconds(), "s", target,
				fmt.Sprintf("%d APIKeys over %d Applications, applied by 32 clients; clock from the first create", batch, orgs*appsPerOrg))
			b.res.AtMost(fmt.Sprintf("mint %d keys: API writes per key", batch), n/float64(batch), "writes", 3,
				"apiserver_request_total, operator's resources, events included: "+breakdown)
		} else {
			b.res.AtMost(fmt.Sprintf("scale: mint %d more keys (to %d)", batch, total), took.Seconds(), "s", target, "10 s per 1,000 keys, as the mint row")
			b.res.AtMost(fmt.Sprintf("scale: API writes per key (to %d)", total), n/float64(batch), "writes", 3, breakdown)
		}
		b.res.AtMost(fmt.Sprintf("scale: operator RSS with %d keys", total), rss, "MiB", 150, "VmRSS, highest of 3 readings 1 s apart")
	}
	return nil
}

// apiserverProfile writes a CPU profile of kube-apiserver over seconds (its /debug/pprof).
func (b *bench) apiserverProfile(ctx context.Context, path string, seconds int) error {
	data, err := b.cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", strconv.Itoa(seconds)).Timeout(time.Duration(seconds+30) * time.Second).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("profiling kube-apiserver: %w", err)
	}
	return os.WriteFile(path, data, 0o644)
}

// appIDs waits until every Application has its generated ID and returns them.
func (b *bench) appIDs(ctx context.Context) (map[types.NamespacedName]string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ids := map[types.NamespacedName]string{}
		for o := range orgs {
			var list v1.ApplicationList
			if err := b.c.List(ctx, &list, client.InNamespace(orgName(o))); err != nil {
				return nil, err
			}
			for _, a := range list.Items {
				if a.Status.ApplicationID != "" {
					ids[types.NamespacedName{Namespace: a.Namespace, Name: a.Name}] = a.Status.ApplicationID
				}
			}
		}
		if len(ids) == orgs*appsPerOrg {
			return ids, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d Applications have an ID after 2 minutes", len(ids), orgs*appsPerOrg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *bench) apiWrites(ctx context.Context) (writeCounts, error) {
	f, err := scrapeAPIServer(ctx, b.cs)
	if err != nil {
		return nil, err
	}
	return writes(f), nil
}

// settledWrites reads the write counters once they stop moving (events are sent after the
// work they report, and application counts are batched), for at most 20 s.
func (b *bench) settledWrites(ctx context.Context) (writeCounts, error) {
	prev, err := b.apiWrites(ctx)
	if err != nil {
		return nil, err
	}
	for range 20 {
		time.Sleep(time.Second)
		cur, err := b.apiWrites(ctx)
		if err != nil {
			return nil, err
		}
		if n, _ := operatorWrites(prev, cur, nil); n == 0 {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// rss is the operator's highest resident set size over n readings a second apart, in MiB.
func (b *bench) rss(n int) (float64, error) {
	high := 0.0
	for i := range n {
		if i > 0 {
			time.Sleep(time.Second)
		}
		v, err := b.op.RSSBytes()
		if err != nil {
			return 0, err
		}
		high = math.Max(high, float64(v)/(1<<20))
	}
	return high, nil
}

// idleWrites counts the operator's writes while nothing changes.
func (b *bench) idleWrites(ctx context.Context) error {
	before, err := b.settledWrites(ctx)
	if err != nil {
		return err
	}
	time.Sleep(b.cfg.idle)
	after, err := b.apiWrites(ctx)
	if err != nil {
		return err
	}
	n, breakdown := operatorWrites(before, after, nil)
	total := b.cfg.steps[len(b.cfg.steps)-1]
	note := fmt.Sprintf("%d settled keys watched for %s; apiserver_request_total", total, b.cfg.idle)
	if breakdown != "" {
		note += ": " + breakdown
	}
	b.res.AtMost(fmt.Sprintf("idle: %d keys, %s: API writes", total, b.cfg.idle), n, "writes", 0, note)
	return nil
}

// foreignSecrets adds Secrets the operator must not hold in memory and compares its RSS.
func (b *bench) foreignSecrets(ctx context.Context) error {
	before, err := b.rss(5)
	if err != nil {
		return err
	}
	if err := ensureNamespace(ctx, b.c, "bench-foreign"); err != nil {
		return err
	}
	data := make([]byte, b.cfg.foreignSize)
	_, _ = rand.Read(data)
	start := time.Now()
	if err := forEach(b.cfg.foreign, 16, func(i int) error {
		return createRetrying(ctx, b.c, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench-foreign", Name: fmt.Sprintf("foreign-%05d", i)},
			Data:       map[string][]byte{"blob": data},
		})
	}); err != nil {
		return fmt.Errorf("creating foreign Secrets: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: %d foreign Secrets of %d KiB created in %s\n", b.cfg.foreign, b.cfg.foreignSize>>10, time.Since(start).Round(time.Millisecond))
	time.Sleep(5 * time.Second) // let any watch that would carry them arrive
	after, err := b.rss(5)
	if err != nil {
		return err
	}
	total := b.cfg.steps[len(b.cfg.steps)-1]
	if len(b.scale) > 0 {
		b.scale[len(b.scale)-1].foreignRSSMiB = after
	}
	b.res.AtMost(fmt.Sprintf("memory: operator RSS, %d keys + %d foreign Secrets", total, b.cfg.foreign), after, "MiB", 150,
		fmt.Sprintf("VmRSS, highest of 5 readings; %.1f MiB before the foreign Secrets", before))
	b.res.AtMost("memory: RSS with / without foreign Secrets", after/before, "ratio", 1.1,
		fmt.Sprintf("%.1f MiB / %.1f MiB", after, before))
	return nil
}

// webhook times OrgConnection role assignments by an org admin: each connection is created
// as Observer and raised to Analyst, Technician and OrgAdmin, every step a SubjectAccessReview.
func (b *bench) webhook(ctx context.Context) error {
	ids, err := b.appIDs(ctx)
	if err != nil {
		return err
	}
	if err := b.kubectl("apply", "-f", filepath.Join(b.env.Root, "config", "rbac", "people_roles.yaml")); err != nil {
		return err
	}
	const user = "bench-admin@example.com"
	groups := []string{"bench-org-admins", "system:authenticated"}
	extra := map[string][]string{"acr": {"mfa"}}
	for g := range grantOrgs {
		if err := ensureNamespace(ctx, b.c, grantName(g)); err != nil {
			return err
		}
		if err := orgAdmin(ctx, b.c, grantName(g), user); err != nil {
			return err
		}
	}
	cfg := b.env.As(user, groups, extra)
	cfg.QPS, cfg.Burst = 2000, 4000
	admin, err := client.New(cfg, client.Options{Scheme: b.env.Scheme})
	if err != nil {
		return err
	}
	roles := []v1.Role{v1.RoleObserver, v1.RoleAnalyst, v1.RoleTechnician, v1.RoleOrgAdmin}
	conns := (b.cfg.assignments + len(roles) - 1) / len(roles)
	webhookBefore, err := scrapeOperator(b.op.MetricsURL)
	if err != nil {
		return err
	}
	apiBefore, err := scrapeAPIServer(ctx, b.cs)
	if err != nil {
		return err
	}
	// The floor under every figure below: the same SubjectAccessReview the webhook sends, asked
	// by the bench itself, one after another, with no webhook and no write around it.
	bare, err := bareReviews(ctx, b.cs, grantName(0), user, groups, extra, b.cfg.assignments)
	if err != nil {
		return err
	}
	var rtt []time.Duration
	cpu, began := cpuTimes(), time.Now()
	b.grants = map[types.NamespacedName]string{}
	// One admin assigning roles one after another (latency, not the apiserver's throughput),
	// in rounds: every connection as Observer, then every one raised to Analyst, and so on, as
	// a change rolled out over many connections is. Raising the same connection again at once
	// would race the status the operator writes after each change, and the apiserver would
	// retry the patch, calling the webhook again: the bench's own doing, not the webhook's.
	list := make([]*v1.OrgConnection, conns)
	apps := make([]types.NamespacedName, conns)
	for i := range list {
		// Connection i links application i mod 100 from a grant org; past the hundredth, the
		// next grant org over, so no org connects one application twice.
		apps[i] = appOf(i)
		list[i] = connection(grantName((i+i/(orgs*appsPerOrg))%grantOrgs), fmt.Sprintf("conn-%d", i), ids[apps[i]], v1.RoleObserver)
	}
	for step, role := range roles {
		for i, conn := range list {
			if len(rtt) >= b.cfg.assignments {
				break
			}
			t := time.Now()
			if step == 0 {
				if err := admin.Create(ctx, conn); err != nil {
					return fmt.Errorf("connecting %s as %s: %w", apps[i], role, err)
				}
				b.grants[apps[i]] = conn.Namespace
			} else {
				patch := client.MergeFrom(conn.DeepCopy())
				conn.Spec.Role = role
				if err := admin.Patch(ctx, conn, patch); err != nil {
					return fmt.Errorf("raising %s/%s to %s: %w", conn.Namespace, conn.Name, role, err)
				}
			}
			rtt = append(rtt, time.Since(t))
		}
	}
	fmt.Fprintf(os.Stderr, "bench: %d role assignments in %s; CPU: %s\n", len(rtt), time.Since(began).Round(time.Millisecond), cpuSince(cpu))
	webhookAfter, err := scrapeOperator(b.op.MetricsURL)
	if err != nil {
		return err
	}
	apiAfter, err := scrapeAPIServer(ctx, b.cs)
	if err != nil {
		return err
	}
	isOrgConnWebhook := func(m *dto.Metric) bool {
		return label(m, "webhook") == "/validate-access-clearance-dev-v1alpha1-orgconnection"
	}
	nb, _, _ := native(webhookBefore, "controller_runtime_webhook_latency_seconds", isOrgConnWebhook)
	na, schema, ok := native(webhookAfter, "controller_runtime_webhook_latency_seconds", isOrgConnWebhook)
	if !ok {
		return fmt.Errorf("the operator exposes no native histogram controller_runtime_webhook_latency_seconds for the OrgConnection webhook")
	}
	own := nativeDelta(nb, na, schema)
	b.res.AtMost("webhook p99 (webhook's own histogram)", own.quantile(0.99)*1000, "ms", 10,
		fmt.Sprintf("%d OrgConnection role assignments by an impersonated org admin, each with a SubjectAccessReview (%d webhook calls in the window); controller_runtime_webhook_latency_seconds (native, ~9%% buckets), bucket upper bound; p50 %.2f ms; client round trip p50 %.1f ms, p99 %.1f ms; the bare SubjectAccessReview from the bench, one after another: p50 %.2f ms, p99 %.2f ms",
			len(rtt), int(own.total), own.quantile(0.5)*1000, ms(percentile(rtt, 0.5)), ms(percentile(rtt, 0.99)), ms(percentile(bare, 0.5)), ms(percentile(bare, 0.99))))
	isOrgConnAdmission := func(m *dto.Metric) bool {
		return label(m, "name") == "vorgconnection.access.clearance.dev"
	}
	seen := classicDelta(
		classic(apiBefore, "apiserver_admission_webhook_admission_duration_seconds", isOrgConnAdmission),
		classic(apiAfter, "apiserver_admission_webhook_admission_duration_seconds", isOrgConnAdmission))
	isSAR := func(m *dto.Metric) bool {
		return label(m, "resource") == "subjectaccessreviews" && label(m, "verb") == "POST"
	}
	sar := classicDelta(classic(apiBefore, "apiserver_request_duration_seconds", isSAR), classic(apiAfter, "apiserver_request_duration_seconds", isSAR))
	bounds := make([]string, 0, len(seen.bounds))
	for _, ub := range seen.bounds {
		bounds = append(bounds, fmt.Sprintf("%g", ub))
	}
	b.res.AtMost("webhook p99 (apiserver's admission histogram)", seen.interpolated(0.99)*1000, "ms", 10,
		fmt.Sprintf("%d calls; apiserver_admission_webhook_admission_duration_seconds, interpolated as histogram_quantile does; its buckets (%s s) only bound it at %.0f ms; %.1f%% of calls within 5 ms (the interpolation reads 10 ms or less only from 98.7%%; the bare SubjectAccessReview from the bench: %.1f%%); p50 %.2f ms; the SubjectAccessReviews themselves, in the apiserver: p50 %.2f ms, p99 %.2f ms (apiserver_request_duration_seconds, interpolated)",
			int(seen.total), strings.Join(bounds, ", "), seen.quantile(0.99)*1000, 100*seen.within(0.005), 100*shareWithin(bare, 5*time.Millisecond), seen.interpolated(0.5)*1000, sar.interpolated(0.5)*1000, sar.interpolated(0.99)*1000))
	return nil
}

// bareReviews times n SubjectAccessReviews, one after another, each the one the webhook sends
// (webhook.BindReview): may this user bind an Analyst role in org.
func bareReviews(ctx context.Context, cs kubernetes.Interface, org, user string, groups []string, extra map[string][]string, n int) ([]time.Duration, error) {
	info := authenticationv1.UserInfo{Username: user, Groups: groups, Extra: map[string]authenticationv1.ExtraValue{}}
	for k, v := range extra {
		info.Extra[k] = v
	}
	out := make([]time.Duration, 0, n)
	for range n {
		sar := webhook.BindReview(info, org, v1.RoleAnalyst)
		t := time.Now()
		got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("a bare SubjectAccessReview: %w", err)
		}
		out = append(out, time.Since(t))
		if !got.Status.Allowed {
			return nil, fmt.Errorf("a bare SubjectAccessReview: %s may not bind Analyst in %s, though the bench made them an org admin", user, org)
		}
	}
	return out, nil
}

// shareWithin is the share of durations at most limit.
func shareWithin(d []time.Duration, limit time.Duration) float64 {
	in := 0
	for _, x := range d {
		if x <= limit {
			in++
		}
	}
	return float64(in) / float64(len(d))
}

// kubectl runs the kubectl built with the apiserver, as an admin.
func (b *bench) kubectl(args ...string) error {
	kubeconfig, err := b.env.WriteKubeconfig()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(b.env.Assets, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// revocation disables or deletes keys one after another and times each until the operator's
// verifier refuses the key.
func (b *bench) revocation(ctx context.Context) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	var lat []time.Duration
	minted := b.cfg.steps[len(b.cfg.steps)-1]
	for i := 0; i < minted && len(lat) < b.cfg.revocations; i++ {
		app := appOf(i)
		key := types.NamespacedName{Namespace: app.Namespace, Name: fmt.Sprintf("key-%05d", i)}
		grant, ok := b.grants[app]
		if !ok {
			continue
		}
		var k v1.APIKey
		if err := b.c.Get(ctx, key, &k); err != nil {
			return err
		}
		token, err := keyToken(ctx, b.c, key, k.Status.SecretName)
		if err != nil {
			return err
		}
		if reason, err := verify(hc, b.op.VerifierURL, token, grant); err != nil || reason != "" {
			return fmt.Errorf("key %s was not valid for %s before revoking it: %q %v", key, grant, reason, err)
		}
		start := time.Now()
		if len(lat)%2 == 0 {
			patch := client.MergeFrom(k.DeepCopy())
			k.Spec.Enabled = ptr.To(false)
			err = b.c.Patch(ctx, &k, patch)
		} else {
			err = b.c.Delete(ctx, &k)
		}
		if err != nil {
			return err
		}
		for {
			reason, err := verify(hc, b.op.VerifierURL, token, grant)
			if err != nil {
				return err
			}
			if reason != "" {
				break
			}
			if time.Since(start) > 10*time.Second {
				return fmt.Errorf("key %s still valid 10 s after it was revoked", key)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	if len(lat) < b.cfg.revocations {
		return fmt.Errorf("only %d keys belong to connected Applications, %d wanted", len(lat), b.cfg.revocations)
	}
	note := fmt.Sprintf("%d operations (half disable, half delete), from the API call to the first refusal, polled every 1 ms", len(lat))
	b.res.AtMost("revocation p50", ms(percentile(lat, 0.50)), "ms", 250, note)
	b.res.AtMost("revocation p99", ms(percentile(lat, 0.99)), "ms", 250, note)
	return nil
}
