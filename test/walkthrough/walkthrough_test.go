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

// Package walkthrough proves the quickstart: a new user who follows docs/quickstart.md
// installs the chart, creates an application and a key, connects it from another org, uses,
// rotates, disconnects, disables and revokes it, and sees each step in kubectl get.
//
// The control plane is envtest's kube-apiserver and etcd, started with
// --enable-aggregator-routing so it calls webhooks at their Service's endpoints, as it reaches
// pods in a cluster. What a cluster adds is played, honestly and only where needed (see
// cluster_test.go): the operator pod and the verifier pod are the real binary run with the args,
// env, ServiceAccount token and Secret volume of the two Deployments the chart rendered; the
// operator's EndpointSlice puts it behind the chart's webhook Service at a non-loopback address
// of this machine. Every other step is the page's own commands, run in one bash with the real
// kubectl.
package walkthrough

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.MainWith(m, &env, testenv.Options{
		WithoutCRDs:   true, // the chart installs them
		APIServerArgs: map[string]string{"enable-aggregator-routing": "true"},
	})
}

// Deadlines are generous: the machine is shared and has two cores.
const (
	namespace = "clearance-system"
	// commandTimeout bounds one command of the page.
	commandTimeout = time.Minute
	// settleTimeout bounds the operator's work the page's kubectl get shows: an ID, a minted
	// or rotated key, a resolved connection.
	settleTimeout = 60 * time.Second
	// verifierTimeout bounds how long a change takes to reach the verifier's answers.
	verifierTimeout = 30 * time.Second
)

const page = "docs/quickstart.md"

// walked says the walkthrough ran in this process: it installs the chart and the quickstart's
// namespaces into its cluster, as a new user does once.
var walked bool

func TestANewUserFollowsTheQuickstartFromInstallToRevocation(t *testing.T) {
	if walked {
		t.Skip("the walkthrough installs the chart into its cluster once; go test -count runs it again against the same cluster")
	}
	walked = true
	began := time.Now()
	ip := nodeIP(t)
	sh := startShell(t)
	testenv.CollectForLeakCheck("walkthrough shell output", sh.Transcript)
	w := newWalk(t, page, sh)
	step := func(name string) func() {
		t.Logf("=== %s", name)
		start := time.Now()
		return func() { t.Logf("=== %s: %s", name, time.Since(start).Round(time.Millisecond)) }
	}

	// ## Install
	done := step("install")
	w.play(t, "helm install clearance charts/clearance -n clearance-system --create-namespace",
		"no Helm release store is needed to prove the manifests: helm template of the same chart and values, applied with kubectl")
	installChart(t)
	operator := startPod(t, ip, "clearance")
	svc := webhookService(t)
	publishEndpoints(t, operator, svc)
	w.play(t, "kubectl rollout status -n clearance-system deploy/clearance --timeout=5m",
		"no kube-controller-manager to report the rollout: the test waited for the pod's /readyz and published its endpoints, and now waits until the apiserver reaches the webhooks through the Service")
	webhooksAnswer(t)
	pod := startPod(t, ip, "clearance-verifier")
	if pod.verifierURL == "" {
		t.Fatal("the chart's clearance-verifier container declares no verifier port")
	}
	w.play(t, "kubectl rollout status -n clearance-system deploy/clearance-verifier --timeout=5m",
		"no kube-controller-manager to report the rollout: the test waited for the verifier pod's /readyz (its index loaded)")
	gcKnowsAPIKeys(t)
	done()

	// ## Create an application and a key (org `acme`)
	done = step("create")
	w.run(t, "kubectl create namespace acme")
	out, _ := w.run(t, "kubectl apply -n acme -f - <<'YAML'")
	mustContain(t, out, "application.access.clearance.dev/acme-bi created", "apikey.access.clearance.dev/acme-bi-prod created")
	out, _ = w.runUntil(t, "kubectl get clapp,clkey -n acme", settleTimeout, func(out, _ string) error {
		if err := rowIs("acme-bi", map[string]string{"ID": `/app_[0-9a-z]+/`, "DESCRIPTION": "Acme BI export", "KEYS": "1", "READY": "True"})(out, ""); err != nil {
			return err
		}
		return rowIs("acme-bi-prod", map[string]string{"APPLICATION": "acme-bi", "KEY": `/clr_\S{4}…\S{4}/`, "ENABLED": "true", "STATE": "Active"})(out, "")
	})
	app, _ := row(out, "acme-bi")
	appID := app["ID"]
	key, _ := row(out, "acme-bi-prod")
	firstMasked := key["KEY"]
	// The mutating webhook, reached through the Service, recorded who created it.
	if by := kubectl(t, "get", "clapp", "-n", "acme", "acme-bi", "-o", `jsonpath={.metadata.annotations.access\.clearance\.dev/created-by}`); by == "" {
		t.Fatal("the Application has no created-by annotation: the policy clearance-created-by did not run")
	}
	done()

	// ## Connect it from another org (`globex`)
	done = step("connect")
	w.run(t, `APP_ID=$(kubectl get clapp -n acme acme-bi -o jsonpath='{.status.applicationID}')`)
	w.run(t, "kubectl create namespace globex")
	out, _ = w.run(t, "kubectl apply -n globex -f - <<YAML")
	mustContain(t, out, "orgconnection.access.clearance.dev/acme-bi created")
	w.runUntil(t, "kubectl get clconn -n globex", settleTimeout,
		rowIs("acme-bi", map[string]string{"ID": appID, "DESCRIPTION": "Acme BI export", "CREATED-BY": "acme", "ROLE": "Observer"}))
	roleAssignmentIsRefusedByTheAPIServer(t)
	done()

	// ## Use the key
	done = step("use")
	w.play(t, "kubectl port-forward -n clearance-system svc/clearance-verifier 8090 >/dev/null &",
		"no kubelet to forward to: the pod's verifier is on this machine already")
	w.rewrite("localhost:8090", strings.TrimPrefix(pod.verifierURL, "http://"), "the port-forward's local end")
	w.run(t, `TOKEN=$(kubectl get secret -n acme acme-bi-prod-key -o jsonpath='{.data.token}' | base64 -d)`)
	oldToken := secretToken(t)
	testenv.CollectTokensForLeakCheck(func() []string { return []string{oldToken} })
	authorized := func(stdout, _ string) error {
		return httpAnswer(stdout, 200, "X-Clearance-Role: Observer", "X-Clearance-Org: globex", "X-Clearance-Application-Id: "+appID)
	}
	w.runUntil(t, `curl -i "http://localhost:8090/v1/authorize?org=globex" -H "Authorization: api-key $TOKEN"`, verifierTimeout, authorized)
	done()

	// ## Rotate it
	done = step("rotate")
	oldKeyID := kubectl(t, "get", "clkey", "-n", "acme", "acme-bi-prod", "-o", "jsonpath={.status.keyID}")
	out, _ = w.run(t, `kubectl annotate clkey -n acme acme-bi-prod access.clearance.dev/rotate-requested-at="$(date -u +%FT%TZ)" --overwrite`)
	mustContain(t, out, "apikey.access.clearance.dev/acme-bi-prod annotated")
	rotatedAt := time.Now()
	w.runUntil(t, "kubectl get clkey -n acme", settleTimeout, func(out, _ string) error {
		r, err := row(out, "acme-bi-prod")
		if err != nil {
			return err
		}
		if r["KEY"] == firstMasked {
			return fmt.Errorf("KEY is still %s", firstMasked)
		}
		return expect(r, map[string]string{"KEY": `/clr_\S{4}…\S{4}/`, "ENABLED": "true", "STATE": "Rotating"})
	})
	out, _ = w.run(t, "kubectl get clkey -n acme acme-bi-prod -o custom-columns='KEY-ID:.status.keyID,PREVIOUS:.status.previousKeys[*].keyID,VALID-UNTIL:.status.previousKeys[*].validUntil'")
	tables := parseTables(out)
	if len(tables) != 1 || len(tables[0].rows) != 1 {
		t.Fatalf("want one row of custom columns, got:\n%s", out)
	}
	cols := tables[0].rows[0]
	if cols["KEY-ID"] == oldKeyID || cols["KEY-ID"] == "" || cols["PREVIOUS"] != oldKeyID {
		t.Fatalf("after rotation KEY-ID %q PREVIOUS %q, want a new key id and the previous one %q", cols["KEY-ID"], cols["PREVIOUS"], oldKeyID)
	}
	validUntil, err := time.Parse(time.RFC3339, cols["VALID-UNTIL"])
	if err != nil || validUntil.Before(rotatedAt.Add(23*time.Hour)) || validUntil.After(time.Now().Add(24*time.Hour+time.Minute)) {
		t.Fatalf("VALID-UNTIL %q, want the end of the 24h overlap (%v)", cols["VALID-UNTIL"], err)
	}
	out, _ = w.run(t, `curl -i "http://localhost:8090/v1/authorize?org=globex" -H "Authorization: api-key $TOKEN"`) // the old key, in its overlap
	if err := authorized(out, ""); err != nil {
		t.Fatalf("the previous key during its overlap: %v", err)
	}
	newToken := secretToken(t)
	if newToken == oldToken {
		t.Fatal("the Secret still holds the previous key after rotation")
	}
	verifierSays(t, pod, newToken, http.StatusOK, "")
	done()

	// ## Disconnect, disable, revoke
	done = step("disconnect, disable, revoke")
	out, _ = w.run(t, "kubectl delete clconn -n globex acme-bi")
	mustContain(t, out, `orgconnection.access.clearance.dev "acme-bi" deleted`)
	w.runUntil(t, `curl "http://localhost:8090/v1/authorize?org=globex" -H "Authorization: api-key $TOKEN"`, verifierTimeout, body("org_not_connected"))
	if err := rowIs("acme-bi", map[string]string{"ID": appID, "READY": "True"})(kubectl(t, "get", "clapp", "-n", "acme"), ""); err != nil {
		t.Fatalf("disconnecting touched the Application: %v", err)
	}
	out, _ = w.run(t, `kubectl patch clkey -n acme acme-bi-prod --type=merge -p '{"spec":{"enabled":false}}'`)
	mustContain(t, out, "apikey.access.clearance.dev/acme-bi-prod patched")
	w.runUntil(t, "kubectl get clkey -n acme", settleTimeout, rowIs("acme-bi-prod", map[string]string{"ENABLED": "false", "STATE": "Disabled"}))
	w.runUntil(t, `curl "http://localhost:8090/v1/authorize?org=globex" -H "Authorization: api-key $TOKEN"`, verifierTimeout, body("key_disabled"))
	verifierSays(t, pod, newToken, http.StatusUnauthorized, "key_disabled")
	if secretToken(t) != newToken {
		t.Fatal("disabling changed the key in the Secret; it must keep it for a re-enable")
	}
	var apikey v1.APIKey
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "acme", Name: "acme-bi-prod"}, &apikey); err != nil {
		t.Fatal(err)
	}
	out, _ = w.run(t, "kubectl delete clkey -n acme acme-bi-prod")
	mustContain(t, out, `apikey.access.clearance.dev "acme-bi-prod" deleted`)
	w.runUntil(t, "kubectl get clkey -n acme", settleTimeout, func(stdout, stderr string) error {
		if strings.TrimSpace(stdout) != "" || !strings.Contains(stderr, "No resources found in acme namespace.") {
			return fmt.Errorf("the key is still listed")
		}
		return nil
	})
	verifierSays(t, pod, newToken, http.StatusUnauthorized, "")
	secretGoesWithItsKey(t, &apikey)
	done()

	w.finish(t)
	t.Logf("the whole quickstart took %s", time.Since(began).Round(time.Millisecond))
}

// webhooksAnswer waits until the apiserver reaches the webhooks through the chart's Service.
// They fail open (the controllers hold their rules), so an answer is told from a failure by a
// refusal: a server-side dry run of an Application pinning the ID another Application holds.
func webhooksAnswer(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	app := func(name string) string {
		path := filepath.Join(dir, name+".yaml")
		manifest := "apiVersion: access.clearance.dev/v1alpha1\nkind: Application\nmetadata: {name: " + name +
			", namespace: default}\nspec: {description: probe, applicationID: app_00000000000000000000000042}\n"
		if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	holder, probe := app("probe-holder"), app("probe")
	kubectl(t, "create", "-f", holder)
	start := time.Now()
	waitFor(t, "the webhooks answering through their Service", 60*time.Second, func() error {
		_, err := env.Kubectl(t, "create", "--dry-run=server", "-f", probe)
		if err == nil {
			return fmt.Errorf("a second Application pinning the held ID was not refused yet")
		}
		if !strings.Contains(err.Error(), `admission webhook "vapplication.access.clearance.dev" denied the request`) {
			return err
		}
		return nil
	})
	kubectl(t, "delete", "-f", holder)
	t.Logf("webhooks answer through Service %s after %s", "clearance-webhook", time.Since(start).Round(time.Millisecond))
}

// roleAssignmentIsRefusedByTheAPIServer: a technician of globex (the chart's ClusterRole) may
// edit a connection's role up to Technician; raising it to OrgAdmin is refused by the
// apiserver's role assignment policy (the chart's clearance-role-assignment), with its message.
func roleAssignmentIsRefusedByTheAPIServer(t *testing.T) {
	t.Helper()
	kubectl(t, "create", "rolebinding", "carl-technician", "-n", "globex", "--clusterrole=clearance-technician", "--user=carl")
	err := kubectlFails(t, "--as=carl", "patch", "clconn", "-n", "globex", "acme-bi", "--type=merge", "-p", `{"spec":{"role":"OrgAdmin"}}`)
	const want = `ValidatingAdmissionPolicy 'clearance-role-assignment' with binding 'clearance-role-assignment' denied request: user "carl" may not assign role OrgAdmin in org "globex"`
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("raising a role beyond what carl may bind: %v\nwant the policy's refusal: %s", err, want)
	}
	t.Logf("kubectl --as=carl patch clconn (role OrgAdmin) is refused: %s", err.Error()[strings.Index(err.Error(), "ValidatingAdmissionPolicy"):])
	if err := rowIs("acme-bi", map[string]string{"ROLE": "Observer"})(kubectl(t, "get", "clconn", "-n", "globex"), ""); err != nil {
		t.Fatal(err)
	}
}

// secretGoesWithItsKey: the garbage collector (testenv runs kube-controller-manager, as a
// cluster does) deletes the key Secret through its owner reference to the deleted APIKey.
// gcKnowsAPIKeys returns once kube-controller-manager's garbage collector can resolve APIKeys.
// It started before the chart installed their CRD and takes in new kinds at its discovery resync
// (every 30 s); a key deleted before then leaves its Secret to a retry whose backoff by then
// outlasts the test's 30 s (CI saw it). In a cluster the chart was installed long before. The
// barrier: ConfigMaps owned by an APIKey that does not exist, one a second (each retried on its
// own backoff), which the collector deletes once it resolves the kind.
func gcKnowsAPIKeys(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var barriers []*corev1.ConfigMap
	defer func() {
		for _, b := range barriers {
			_ = client.IgnoreNotFound(env.Client.Delete(ctx, b))
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "clearance-system", GenerateName: "gc-barrier-",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1.GroupVersion.String(), Kind: "APIKey",
				Name: "gc-barrier-owner-that-does-not-exist", UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", len(barriers)))}}}}
		if err := env.Client.Create(ctx, b); err != nil {
			t.Fatalf("a garbage collector barrier: %v", err)
		}
		barriers = append(barriers, b)
		for _, b := range barriers {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(b), &corev1.ConfigMap{}); apierrors.IsNotFound(err) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-controller-manager's garbage collector did not resolve APIKeys within 2 minutes of the chart's install (%d barriers kept)", len(barriers))
		}
		time.Sleep(time.Second)
	}
}

func secretGoesWithItsKey(t *testing.T, key *v1.APIKey) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s corev1.Secret
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "acme", Name: "acme-bi-prod-key"}, &s)
		if apierrors.IsNotFound(err) {
			return
		}
		if err != nil {
			t.Fatalf("the key Secret: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Secret acme-bi-prod-key is still there 30 s after its APIKey %s (uid %s) was deleted; its owner references: %+v",
				key.Name, key.UID, s.OwnerReferences)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// secretToken reads the key the Secret holds now (never logged).
func secretToken(t *testing.T) string {
	t.Helper()
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "acme", Name: "acme-bi-prod-key"}, &s); err != nil {
		t.Fatal(err)
	}
	token := string(s.Data[v1.SecretKeyToken])
	if token == "" {
		t.Fatal("the key Secret holds no token")
	}
	return token
}

// verifierSays checks the verifier's answer for a key the page's $TOKEN does not hold, within
// verifierTimeout; an empty reason accepts any.
func verifierSays(t *testing.T, p *pod, token string, status int, reason string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	waitFor(t, fmt.Sprintf("the verifier answering %d %s", status, reason), verifierTimeout, func() error {
		req, _ := http.NewRequest(http.MethodGet, p.verifierURL+"/v1/authorize?org=globex", nil)
		req.Header.Set("Authorization", "api-key "+token)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != status || (reason != "" && !strings.Contains(string(answer), `"reason":"`+reason+`"`)) {
			return fmt.Errorf("answered %s %s", resp.Status, answer)
		}
		return nil
	})
}

// httpAnswer checks curl -i's output: the status and headers.
func httpAnswer(out string, status int, headers ...string) error {
	first, _, _ := strings.Cut(out, "\n")
	if !regexp.MustCompile(fmt.Sprintf(`^HTTP/[0-9.]+ %d\b`, status)).MatchString(first) {
		return fmt.Errorf("status line %q, want %d", strings.TrimSpace(first), status)
	}
	for _, h := range headers {
		if !strings.Contains(strings.ReplaceAll(out, "\r", ""), "\n"+h+"\n") {
			return fmt.Errorf("no header %q", h)
		}
	}
	return nil
}

// body checks curl's output is the verifier's refusal with reason.
func body(reason string) func(stdout, _ string) error {
	return func(stdout, _ string) error {
		if want := `{"valid":false,"reason":"` + reason + `"}`; strings.TrimSpace(stdout) != want {
			return fmt.Errorf("answered %q, want %s", strings.TrimSpace(stdout), want)
		}
		return nil
	}
}

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("want %q in:\n%s", w, out)
		}
	}
}
