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
	"strings"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dto "github.com/prometheus/client_model/go"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/controllers"
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
// each batch in rounds interleaved with the floor's: each round is timed until all its keys
// are Ready with Secrets, the operator's API writes are counted from the apiserver's own
// request counter.
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
	// Every admission webhook call the apiserver makes from the first key's create to the last
	// batch's end: the APIKey create path should make none.
	callsBefore, err := scrapeAPIServer(ctx, b.cs)
	if err != nil {
		return err
	}
	if b.cfg.warmup > 0 {
		warm := make([]types.NamespacedName, b.cfg.warmup)
		for i := range warm {
			warm[i] = types.NamespacedName{Namespace: appOf(i).Namespace, Name: fmt.Sprintf("warmup-%05d", i)}
		}
		if _, _, err := b.mintKeys(ctx, warm, 0, false); err != nil {
			return err
		}
		// The floor's path warms too (the BenchKey kind's first use), untimed.
		if _, err := b.bareMint(ctx, warm); err != nil {
			return err
		}
		if err := b.tr.waitCounts(ctx, keyCounts(b.cfg.warmup, 0), time.Minute); err != nil {
			return err
		}
		if _, err := b.settledWrites(ctx); err != nil {
			return err
		}
	}
	have := 0
	for step, total := range b.cfg.steps {
		batch := total - have
		before, err := b.apiWrites(ctx)
		if err != nil {
			return err
		}
		floorPosts := b.floor.secretPosts.Load()
		reqBefore, err := operatorRequests(b.op.MetricsURL)
		if err != nil {
			return err
		}
		var took, floor, applied time.Duration
		var rounds []string
		cpuA, cpuF := map[string]float64{}, map[string]float64{}
		for off := 0; off < batch; off += b.cfg.mintRound {
			want := make([]types.NamespacedName, min(b.cfg.mintRound, batch-off))
			for i := range want {
				want[i] = types.NamespacedName{Namespace: appOf(have + off + i).Namespace, Name: fmt.Sprintf("key-%05d", have+off+i)}
			}
			cpu := cpuTimes()
			t, a, err := b.mintKeys(ctx, want, have+off, step == 0 && off == 0)
			if err != nil {
				return err
			}
			// CPU over the clock, as the floor's is over its own.
			cpuAdd(cpuA, cpu)
			// The operator's count of these keys is written a few seconds later, batched: it is
			// Clearance's work, and must not land in the floor's round.
			if err := b.tr.waitCounts(ctx, keyCounts(b.cfg.warmup, have+off+len(want)), time.Minute); err != nil {
				return err
			}
			cpu = cpuTimes()
			profiled := func() error { return nil }
			if step == 0 && off == 0 {
				// As long as the profile of Clearance's round (mintKeys), and shorter than
				// either round, so the two cover the same work and nothing else.
				profiled = b.profileDuring(ctx, "mint-floor", 2)
			}
			f, err := b.bareMint(ctx, want)
			if err != nil {
				return err
			}
			if err := profiled(); err != nil {
				return err
			}
			cpuAdd(cpuF, cpu)
			took, applied, floor = took+t, applied+a, floor+f
			rounds = append(rounds, fmt.Sprintf("%.2f/%.2f", t.Seconds(), f.Seconds()))
		}
		after, err := b.settledWrites(ctx)
		if err != nil {
			return err
		}
		reqAfter, err := operatorRequests(b.op.MetricsURL)
		if err != nil {
			return err
		}
		ours := map[string]float64{"POST apikeys": float64(batch), "POST secrets": float64(b.floor.secretPosts.Load() - floorPosts)}
		n, breakdown := operatorWrites(before, after, ours)
		rss, err := b.rss(3)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: %d keys (total %d) Ready with Secrets in %s (applying them took %s), bare writes %s; operator writes %g: %s; CPU in Clearance's rounds: %s; in the floor's: %s\n",
			batch, total, took.Round(time.Millisecond), applied.Round(time.Millisecond), floor.Round(time.Millisecond), n, breakdown, cpuText(cpuA), cpuText(cpuF))
		b.scale = append(b.scale, scalePoint{keys: total, batch: batch, seconds: took.Seconds(), floorSeconds: floor.Seconds(), writesPerKey: n / float64(batch), rssMiB: rss})
		have = total
		note := fmt.Sprintf("%d APIKeys over %d Applications created by %d clients, clock from the first create until the bench's watch sees all Ready with Secrets; "+
			"floor: the same creates of a copy of the APIKey CRD no webhook, admission policy or controller sees, and as each returns a bare client making the operator's writes "+
			"(the Secret, the status patch) as the operator's ServiceAccount (which the operator runs as, with the chart's RBAC), at its QPS %d, burst %d and %d workers; in rounds of %d keys, Clearance/floor seconds: %s; "+
			"CPU seconds in Clearance's rounds (until all Ready): %s; in the floor's: %s; the operator's requests by method (its rest_client_requests_total): %s",
			batch, orgs*appsPerOrg, benchClients, operatorQPS, operatorBurst, controllers.DefaultKeyWorkers, b.cfg.mintRound, strings.Join(rounds, ", "),
			cpuText(cpuA), cpuText(cpuF), requestsText(reqBefore, reqAfter))
		if step == 0 {
			b.res.RatioAtMost(fmt.Sprintf("mint %d keys: Ready with Secrets", batch), took.Seconds(), floor.Seconds(), "s", 1.15, note)
			b.res.AtMost(fmt.Sprintf("mint %d keys: API writes per key", batch), n/float64(batch), "writes", 3,
				"apiserver_request_total, operator's resources, events included: "+breakdown)
		} else {
			b.res.RatioAtMost(fmt.Sprintf("scale: mint %d more keys (to %d)", batch, total), took.Seconds(), floor.Seconds(), "s", 1.3, note)
			b.res.AtMost(fmt.Sprintf("scale: API writes per key (to %d)", total), n/float64(batch), "writes", 3, breakdown)
		}
		b.res.AtMost(fmt.Sprintf("scale: operator RSS with %d keys", total), rss, "MiB", 150, "VmRSS, highest of 3 readings 1 s apart")
	}
	if b.cfg.withoutAdmission {
		return nil // nothing to count: the webhook configurations are gone
	}
	return b.mintWebhookCalls(ctx, callsBefore, b.cfg.warmup+have)
}

// removeAdmission deletes every binding of Clearance's admission policies and its webhook
// configurations (-without-admission), and waits until the apiserver no longer stamps a
// dry-run APIKey with its creator.
func (b *bench) removeAdmission(ctx context.Context) error {
	var vbs admissionregistrationv1.ValidatingAdmissionPolicyBindingList
	var mbs admissionregistrationv1.MutatingAdmissionPolicyBindingList
	if err := b.c.List(ctx, &vbs); err != nil {
		return err
	}
	if err := b.c.List(ctx, &mbs); err != nil {
		return err
	}
	var gone []client.Object
	for i := range vbs.Items {
		gone = append(gone, &vbs.Items[i])
	}
	for i := range mbs.Items {
		gone = append(gone, &mbs.Items[i])
	}
	gone = append(gone, webhook.OwnConfigurations()...)
	for _, o := range gone {
		if !strings.HasPrefix(o.GetName(), "clearance-") && !strings.HasSuffix(o.GetName(), "-webhook-configuration") {
			continue
		}
		if err := b.c.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		// Until the apiserver has dropped every binding, one left can refuse the probe (the
		// creator check, once the stamp is gone): that is not yet, not an error.
		probe := apiKey("default", "bench-admission-probe", "probe")
		err := b.c.Create(ctx, probe, client.DryRunAll)
		if err != nil && !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			return err
		}
		if err == nil && probe.Annotations[v1.AnnotationCreatedBy] == "" {
			fmt.Fprintln(os.Stderr, "bench: -without-admission: Clearance's admission policy bindings and webhook configurations removed")
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("a minute after the bindings were deleted, the apiserver still refuses a dry-run APIKey: %w", err)
			}
			return fmt.Errorf("a minute after the bindings were deleted, the apiserver still stamps a dry-run APIKey with its creator")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mintWebhookCalls records the admission webhook calls the apiserver made since before (every
// webhook, every operation) while keys APIKeys were created and minted. A dry-run create of a
// key with a rate limit, which calls the webhook vapikey, then checks that the counter counts
// such a call: a counter that never moves would read 0 too.
func (b *bench) mintWebhookCalls(ctx context.Context, before families, keys int) error {
	after, err := scrapeAPIServer(ctx, b.cs)
	if err != nil {
		return err
	}
	calls, breakdown := webhookCalls(before, after)
	stamped := func(errorType func(string) bool) float64 {
		return counterDelta(before, after, "apiserver_mutating_admission_policy_check_total", func(m *dto.Metric) bool {
			return label(m, "policy") == "clearance-created-by" && errorType(label(m, "error_type"))
		})
	}
	stamps := stamped(func(t string) bool { return t == "no_error" })
	stampErrors := stamped(func(t string) bool { return t != "no_error" })
	// An Application that does not exist: the webhook leaves the check to the verifier and allows.
	probe := apiKey(appOf(0).Namespace, "bench-webhook-probe", "bench-no-such-application")
	probe.Spec.RateLimits = []v1.RateLimit{{Name: "probe", Limit: 10, Period: metav1.Duration{Duration: time.Minute}}}
	if err := b.c.Create(ctx, probe, client.DryRunAll); err != nil {
		return fmt.Errorf("a dry-run create of an APIKey with a rate limit: %w", err)
	}
	checked, err := scrapeAPIServer(ctx, b.cs)
	if err != nil {
		return err
	}
	probed := counterDelta(after, checked, "apiserver_admission_webhook_request_total", func(m *dto.Metric) bool {
		return label(m, "name") == "vapikey.access.clearance.dev" && label(m, "operation") == "CREATE"
	})
	if probed < 1 {
		return fmt.Errorf("apiserver_admission_webhook_request_total did not count the call to vapikey.access.clearance.dev of a dry-run create with a rate limit: "+
			"it cannot tell whether the APIKey create path calls a webhook (the apiserver's webhook metrics: %s)",
			strings.Join(familiesWithPrefix(checked, "apiserver_admission_webhook_"), ", "))
	}
	note := fmt.Sprintf("apiserver_admission_webhook_request_total, every webhook and operation, from before the first of %d APIKeys (warm-up and batches) was created "+
		"until the last batch was Ready with Secrets, the floor's rounds between them included: the creator stamp (the MutatingAdmissionPolicy clearance-created-by, "+
		"%g evaluations without an error and %g with one by apiserver_mutating_admission_policy_check_total, and its ValidatingAdmissionPolicy) and the Secret-template check (the ValidatingAdmissionPolicy "+
		"clearance-apikey) are admission policies the apiserver evaluates itself; the webhook vapikey is called only for a key with spec.rateLimits "+
		"(these keys have none), and a dry-run create of a key with one afterwards counted %g call", keys, stamps, stampErrors, probed)
	if breakdown != "" {
		note += "; calls by webhook and operation: " + breakdown
	}
	b.res.AtMost("mint: webhook calls on the APIKey create path", calls, "calls", 0, note)
	return nil
}

// keyCounts is how many keys each Application has once warm warm-up keys and keys 0..n-1 exist.
func keyCounts(warm, n int) map[types.NamespacedName]int32 {
	out := map[types.NamespacedName]int32{}
	for i := range warm {
		out[appOf(i)]++
	}
	for i := range n {
		out[appOf(i)]++
	}
	return out
}

// mintKeys creates the APIKeys want (key i of them belongs to the Application of key first+i)
// with benchClients clients and waits until all are Ready with Secrets. It returns the time
// from the first create until then, and the time the creates took. With profile, it writes
// CPU profiles of kube-apiserver and the operator meanwhile (-profiles).
func (b *bench) mintKeys(ctx context.Context, want []types.NamespacedName, first int, profile bool) (time.Duration, time.Duration, error) {
	wait := func() error { return nil }
	if profile {
		wait = b.profileDuring(ctx, "mint", 2)
	}
	start := time.Now()
	if err := forEach(len(want), benchClients, func(i int) error {
		return createRetrying(ctx, b.c, apiKey(want[i].Namespace, want[i].Name, appOf(first+i).Name))
	}); err != nil {
		return 0, 0, fmt.Errorf("creating keys: %w", err)
	}
	applied := time.Since(start)
	if err := b.tr.waitAll(ctx, want, mintTimeout); err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	if err := wait(); err != nil {
		return 0, 0, err
	}
	return took, applied, nil
}

// operatorScale mints keys up to -operator-keys after the other phases (no floor: the figure
// is the operator's memory) and records its RSS.
func (b *bench) operatorScale(ctx context.Context) error {
	have := b.cfg.steps[len(b.cfg.steps)-1]
	if b.cfg.operatorKeys <= have {
		return nil
	}
	batch := b.cfg.operatorKeys - have
	var took time.Duration
	for off := 0; off < batch; off += b.cfg.mintRound {
		want := make([]types.NamespacedName, min(b.cfg.mintRound, batch-off))
		for i := range want {
			want[i] = types.NamespacedName{Namespace: appOf(have + off + i).Namespace, Name: fmt.Sprintf("key-%05d", have+off+i)}
		}
		t, _, err := b.mintKeys(ctx, want, have+off, false)
		if err != nil {
			return err
		}
		took += t
	}
	rss, err := b.rss(5)
	if err != nil {
		return err
	}
	total := b.cfg.operatorKeys
	b.scale = append(b.scale, scalePoint{keys: total, batch: batch, seconds: took.Seconds(), rssMiB: rss})
	b.res.Record(fmt.Sprintf("scale: operator RSS with %d keys", total), rss, "MiB",
		fmt.Sprintf("VmRSS, highest of 5 readings 1 s apart, after minting %d more keys in %.1f s (after the foreign Secrets, which the operator does not hold)", batch, took.Seconds()))
	return nil
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
	b.res.RatioAtMost("memory: RSS with foreign Secrets / without", after, before, "MiB", 1.1,
		"VmRSS, highest of 5 readings, after and before the foreign Secrets")
	return nil
}

// labelNoAdmission marks the floor's grant orgs: the bench adds a namespace selector that leaves
// them out to every webhook of Clearance's configurations and to every binding of its admission
// policies, so nothing of Clearance's admits a write there.
const labelNoAdmission = floorGroup + "/no-admission"

// probeUser may create OrgConnections in the first grant org and in its floor's, and bind no
// role: whether the role-assignment policy refuses it says whether the policy applies there.
const probeUser = "bench-probe@example.com"

func floorGrantName(i int) string { return fmt.Sprintf("bench-grant-na-%d", i) }

// admission times an org admin's OrgConnection writes, one after another: connecting an
// application (a create as Observer, through the admission policies and the uniqueness webhook
// vorgconnection) and raising the connection's role to Analyst, Technician and OrgAdmin
// (patches, through the policy clearance-role-assignment, whose authorizer check is the
// apiserver's own: no webhook). Each write is followed by its floor: the same write in an org
// none of Clearance's admission applies to, neither its webhooks nor its policies.
func (b *bench) admission(ctx context.Context) error {
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
		for _, ns := range []*corev1.Namespace{
			{ObjectMeta: metav1.ObjectMeta{Name: grantName(g)}},
			{ObjectMeta: metav1.ObjectMeta{Name: floorGrantName(g), Labels: map[string]string{labelNoAdmission: "true"}}},
		} {
			if err := createRetrying(ctx, b.c, ns); err != nil {
				return err
			}
			if err := orgAdmin(ctx, b.c, ns.Name, user); err != nil {
				return err
			}
			if g == 0 {
				if err := connectorOnly(ctx, b.c, ns.Name, probeUser); err != nil {
					return err
				}
			}
		}
	}
	if err := b.excludeAdmission(ctx); err != nil {
		return err
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
	var connect, connectFloor, raise, raiseFloor []time.Duration
	cpu, began := cpuTimes(), time.Now()
	profiled := b.profileDuring(ctx, "admission", 10)
	b.grants = map[types.NamespacedName]string{}
	// One admin assigning roles one after another (latency, not the apiserver's throughput),
	// in rounds: every connection as Observer, then every one raised to Analyst, and so on, as
	// a change rolled out over many connections is. Raising the same connection again at once
	// would race the status the operator writes after each change, and the apiserver would
	// retry the patch, admitting it again: the bench's own doing, not admission's.
	list := make([]*v1.OrgConnection, conns)
	floorList := make([]*v1.OrgConnection, conns)
	apps := make([]types.NamespacedName, conns)
	for i := range list {
		// Connection i links application i mod 100 from a grant org; past the hundredth, the
		// next grant org over, so no org connects one application twice.
		apps[i] = appOf(i)
		g := (i + i/(orgs*appsPerOrg)) % grantOrgs
		list[i] = connection(grantName(g), fmt.Sprintf("conn-%d", i), ids[apps[i]], v1.RoleObserver)
		floorList[i] = connection(floorGrantName(g), fmt.Sprintf("conn-%d", i), ids[apps[i]], v1.RoleObserver)
	}
	assign := func(conn *v1.OrgConnection, create bool, role v1.Role) (time.Duration, error) {
		t := time.Now()
		if create {
			if err := admin.Create(ctx, conn); err != nil {
				return 0, fmt.Errorf("connecting %s in %s as %s: %w", conn.Spec.ApplicationID, conn.Namespace, role, err)
			}
			return time.Since(t), nil
		}
		patch := client.MergeFrom(conn.DeepCopy())
		conn.Spec.Role = role
		if err := admin.Patch(ctx, conn, patch); err != nil {
			return 0, fmt.Errorf("raising %s/%s to %s: %w", conn.Namespace, conn.Name, role, err)
		}
		return time.Since(t), nil
	}
	for step, role := range roles {
		for i := range list {
			if len(connect)+len(raise) >= b.cfg.assignments {
				break
			}
			d, err := assign(list[i], step == 0, role)
			if err != nil {
				return err
			}
			b.grants[apps[i]] = list[i].Namespace
			f, err := assign(floorList[i], step == 0, role)
			if err != nil {
				return err
			}
			if step == 0 {
				connect, connectFloor = append(connect, d), append(connectFloor, f)
			} else {
				raise, raiseFloor = append(raise, d), append(raiseFloor, f)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "bench: %d connections and %d role raises, each with its floor, in %s; CPU: %s\n",
		len(connect), len(raise), time.Since(began).Round(time.Millisecond), cpuSince(cpu))
	if err := profiled(); err != nil {
		return err
	}
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
	whole := nativeDelta(nb, na, schema)
	all := func(*dto.Metric) bool { return true }
	ob, _, _ := native(webhookBefore, "clearance_webhook_own_work_seconds", all)
	oa, oschema, ok := native(webhookAfter, "clearance_webhook_own_work_seconds", all)
	if !ok {
		return fmt.Errorf("the operator exposes no native histogram clearance_webhook_own_work_seconds")
	}
	own := nativeDelta(ob, oa, oschema)
	isOrgConnAdmission := func(m *dto.Metric) bool {
		return label(m, "name") == "vorgconnection.access.clearance.dev"
	}
	seen := classicDelta(
		classic(apiBefore, "apiserver_admission_webhook_admission_duration_seconds", isOrgConnAdmission),
		classic(apiAfter, "apiserver_admission_webhook_admission_duration_seconds", isOrgConnAdmission))
	calls, byCall := webhookCalls(apiBefore, apiAfter)
	onUpdate := counterDelta(apiBefore, apiAfter, "apiserver_admission_webhook_request_total", func(m *dto.Metric) bool {
		return label(m, "operation") == "UPDATE"
	})
	isPolicyUpdate := func(m *dto.Metric) bool {
		return label(m, "name") == "ValidatingAdmissionPolicy" && label(m, "operation") == "UPDATE"
	}
	policies := classicDelta(
		classic(apiBefore, "apiserver_admission_controller_admission_duration_seconds", isPolicyUpdate),
		classic(apiAfter, "apiserver_admission_controller_admission_duration_seconds", isPolicyUpdate))
	floorText := "floor, after each: the same write in an org none of Clearance's admission applies to (the bench adds a namespace selector leaving it out to every webhook " +
		"of Clearance's configurations and to every binding of its admission policies, clearance-*)"
	b.res.RatioAtMost("admission: role assignment p99", ms(percentile(raise, 0.99)), ms(percentile(raiseFloor, 0.99)), "ms", 1.1,
		fmt.Sprintf("%d OrgConnection role raises (Observer to Analyst, Technician, OrgAdmin, in rounds over %d connections) by an impersonated org admin, client round trip: "+
			"the ValidatingAdmissionPolicy clearance-role-assignment asks the apiserver's own authorizer for bind on orgroles (and clearance-advice warns), no webhook "+
			"(webhook calls on UPDATE in the phase: %g); %s; p50 %.2f ms, floor p50 %.2f ms; the apiserver's ValidatingAdmissionPolicy step over every update in the phase, "+
			"the floor's and the operator's status writes included (apiserver_admission_controller_admission_duration_seconds, %d updates): %.1f%% within 5 ms, its finest bucket",
			len(raise), conns, onUpdate, floorText, ms(percentile(raise, 0.5)), ms(percentile(raiseFloor, 0.5)), int(policies.total), 100*policies.within(0.005)))
	b.res.RatioAtMost("admission: connect an application p99", ms(percentile(connect, 0.99)), ms(percentile(connectFloor, 0.99)), "ms", 1.2,
		fmt.Sprintf("%d OrgConnections created as Observer by the same org admin, client round trip: the admission policies (the creator stamp, the role assignment's "+
			"authorizer check) and the webhook vorgconnection (is the application connected already: a lookup in the operator's cache); %s; p50 %.2f ms, floor p50 %.2f ms; "+
			"the webhook's whole call (controller_runtime_webhook_latency_seconds, %d calls) p50 %.2f ms, p99 %.2f ms; the apiserver's admission histogram "+
			"(apiserver_admission_webhook_admission_duration_seconds): %.1f%% of calls within 5 ms, p99 interpolated %.1f ms; webhook calls in the phase (apiserver_admission_webhook_request_total): %g, %s",
			len(connect), floorText, ms(percentile(connect, 0.5)), ms(percentile(connectFloor, 0.5)),
			int(whole.total), whole.quantile(0.5)*1000, whole.quantile(0.99)*1000, 100*seen.within(0.005), seen.interpolated(0.99)*1000, calls, byCall))
	b.res.AtMost("webhook: own work p99", own.quantile(0.99)*1000, "ms", 1,
		fmt.Sprintf("clearance_webhook_own_work_seconds (native, ~9%% buckets, the bucket's upper bound): the OrgConnection webhook, called on creates only (the connections above), "+
			"from a request's arrival (the last byte of its body) to its decision (decoding, the uniqueness and Application lookups in its cache); %d calls; p50 %.3f ms",
			int(own.total), own.quantile(0.5)*1000))
	return nil
}

// excludeAdmission adds to every webhook of Clearance's configurations, and to every binding of
// its admission policies (ValidatingAdmissionPolicyBindings and MutatingAdmissionPolicyBindings
// named clearance-*), a namespace selector that leaves out the namespaces labelled
// labelNoAdmission (the floor of the admission rows), and waits until the apiserver applies
// them (it reloads policies about a second after a change). A dry-run create of an OrgConnection
// as OrgAdmin, by probeUser (who may create connections and bind no role), in such a namespace
// is then admitted without the created-by stamp and without a warning (neither the advice
// policy's about the role nor the webhook's about the unknown application); in another one the
// policy clearance-role-assignment refuses it, and an admin's dry-run create is stamped.
func (b *bench) excludeAdmission(ctx context.Context) error {
	out := metav1.LabelSelectorRequirement{Key: labelNoAdmission, Operator: metav1.LabelSelectorOpDoesNotExist}
	var validating admissionregistrationv1.ValidatingWebhookConfiguration
	if err := b.c.Get(ctx, types.NamespacedName{Name: webhook.ValidatingConfigurationName}, &validating); err != nil {
		return err
	}
	for i := range validating.Webhooks {
		validating.Webhooks[i].NamespaceSelector = withRequirement(validating.Webhooks[i].NamespaceSelector, out)
	}
	if err := b.c.Update(ctx, &validating); err != nil {
		return err
	}
	var mutating admissionregistrationv1.MutatingWebhookConfiguration
	if err := b.c.Get(ctx, types.NamespacedName{Name: webhook.MutatingConfigurationName}, &mutating); err != nil {
		return err
	}
	for i := range mutating.Webhooks {
		mutating.Webhooks[i].NamespaceSelector = withRequirement(mutating.Webhooks[i].NamespaceSelector, out)
	}
	if err := b.c.Update(ctx, &mutating); err != nil {
		return err
	}
	excluded := 0
	var vbs admissionregistrationv1.ValidatingAdmissionPolicyBindingList
	if err := b.c.List(ctx, &vbs); err != nil {
		return err
	}
	for i := range vbs.Items {
		vb := &vbs.Items[i]
		if !strings.HasPrefix(vb.Name, "clearance-") {
			continue
		}
		vb.Spec.MatchResources = matchingWith(vb.Spec.MatchResources, out)
		if err := b.c.Update(ctx, vb); err != nil {
			return err
		}
		excluded++
	}
	var mbs admissionregistrationv1.MutatingAdmissionPolicyBindingList
	if err := b.c.List(ctx, &mbs); err != nil {
		return err
	}
	for i := range mbs.Items {
		mb := &mbs.Items[i]
		if !strings.HasPrefix(mb.Name, "clearance-") {
			continue
		}
		mb.Spec.MatchResources = matchingWith(mb.Spec.MatchResources, out)
		if err := b.c.Update(ctx, mb); err != nil {
			return err
		}
		excluded++
	}
	if excluded == 0 {
		return fmt.Errorf("no admission policy binding named clearance-*: are config/policies installed?")
	}
	warnings := &warningRecorder{}
	cfg := b.env.As(probeUser, []string{"system:authenticated"}, nil)
	cfg.WarningHandlerWithContext = warnings
	prober, err := client.New(cfg, client.Options{Scheme: b.env.Scheme})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		stamped, warned, leftErr := probeConnect(ctx, prober, warnings, floorGrantName(0))
		_, _, refused := probeConnect(ctx, prober, warnings, grantName(0))
		kept, err := b.createdBySet(ctx, grantName(0))
		if err != nil {
			return err
		}
		left := leftErr == nil && !stamped && len(warned) == 0
		if left && kept && refused != nil && strings.Contains(refused.Error(), "clearance-role-assignment") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Clearance's admission was not left out of %s, or not kept in %s, a minute after the namespace selectors were added: "+
				"in %s the probe's create was stamped %t, warned %q, refused %v; in %s an admin's create was stamped %t and the probe's refused %v",
				floorGrantName(0), grantName(0), floorGrantName(0), stamped, warned, leftErr, grantName(0), kept, refused)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// matchingWith is a policy binding's match resources with req added to its namespace selector.
func matchingWith(mr *admissionregistrationv1.MatchResources, req metav1.LabelSelectorRequirement) *admissionregistrationv1.MatchResources {
	if mr == nil {
		mr = &admissionregistrationv1.MatchResources{}
	}
	mr.NamespaceSelector = withRequirement(mr.NamespaceSelector, req)
	return mr
}

func withRequirement(sel *metav1.LabelSelector, req metav1.LabelSelectorRequirement) *metav1.LabelSelector {
	if sel == nil {
		sel = &metav1.LabelSelector{}
	}
	sel.MatchExpressions = append(sel.MatchExpressions, req)
	return sel
}

// createdBySet says whether a dry-run create of an OrgConnection in ns by the bench (an
// admin) comes back with the created-by stamp.
func (b *bench) createdBySet(ctx context.Context, ns string) (bool, error) {
	probe := connection(ns, "bench-probe", "app_"+strings.Repeat("0", 26), v1.RoleObserver)
	if err := b.c.Create(ctx, probe, client.DryRunAll); err != nil {
		return false, fmt.Errorf("a dry-run create in %s: %w", ns, err)
	}
	_, set := probe.Annotations[v1.AnnotationCreatedBy]
	return set, nil
}

// probeConnect makes a dry-run create of an OrgConnection as OrgAdmin in ns with c (the probe
// user's client, whose warnings go to warnings), and returns whether it came back with the
// created-by stamp, the warnings it came back with, and the refusal.
func probeConnect(ctx context.Context, c client.Client, warnings *warningRecorder, ns string) (bool, []string, error) {
	warnings.take()
	probe := connection(ns, "bench-probe", "app_"+strings.Repeat("0", 26), v1.RoleOrgAdmin)
	err := c.Create(ctx, probe, client.DryRunAll)
	_, stamped := probe.Annotations[v1.AnnotationCreatedBy]
	return stamped && err == nil, warnings.take(), err
}

// warningRecorder keeps the warnings the apiserver sends a client (rest.WarningHandlerWithContext).
type warningRecorder struct {
	mu   sync.Mutex
	list []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// take returns the warnings recorded since the last take.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
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
// verifier refuses the key; after each, its floor: the same write to the key's BenchKey, timed
// until the bench's own informer has the event (what the operator's informer must have before
// its verifier can refuse the key).
func (b *bench) revocation(ctx context.Context) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	var lat, floor []time.Duration
	profiled := b.profileDuring(ctx, "revocation", 10)
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
		del := len(lat)%2 == 1
		start := time.Now()
		if del {
			err = b.c.Delete(ctx, &k)
		} else {
			patch := client.MergeFrom(k.DeepCopy())
			k.Spec.Enabled = ptr.To(false)
			err = b.c.Patch(ctx, &k, patch)
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
		f, err := b.watchDelivery(ctx, key, del)
		if err != nil {
			return err
		}
		floor = append(floor, f)
	}
	if err := profiled(); err != nil {
		return err
	}
	if len(lat) < b.cfg.revocations {
		return fmt.Errorf("only %d keys belong to connected Applications, %d wanted", len(lat), b.cfg.revocations)
	}
	note := fmt.Sprintf("%d operations (half disable, half delete), from the API call to the verifier's first refusal, polled every 1 ms; p50 %.1f ms; "+
		"floor, after each: the same write to a copy of the key no controller watches, until the bench's own informer has the event: p50 %.1f ms",
		len(lat), ms(percentile(lat, 0.5)), ms(percentile(floor, 0.5)))
	b.res.AtMostWithFloor("revocation p99", ms(percentile(lat, 0.99)), ms(percentile(floor, 0.99)), "ms", 250, note)
	return nil
}
