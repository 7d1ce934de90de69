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

package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/ops"
	"github.com/clearance-dev/clearance/internal/testenv"
)

// The plugin's commands run in-process against a real kube-apiserver with no operator: tests
// write the statuses the operator would.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// now is the fake clock's time for every command.
var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// result is what one `kubectl clearance` run printed.
type result struct {
	stdout, stderr string
	err            error
}

// newOptions are the plugin's dependencies for one test run: buffers, a fake clock.
func newOptions() (*Options, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	o := &Options{
		ConfigFlags:    genericclioptions.NewConfigFlags(true),
		IOStreams:      genericiooptions.IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr},
		Clock:          clocktesting.NewFakePassiveClock(now),
		KeyWaitTimeout: 20 * time.Second,
		Version:        "v0.0.0-test",
	}
	return o, &stdout, &stderr
}

// run is `kubectl clearance -n NS ARGS...` as the admin of the test cluster.
func run(t *testing.T, ns string, args ...string) result {
	t.Helper()
	o, _, _ := newOptions()
	return runWith(t, o, ns, args...)
}

func runWith(t *testing.T, o *Options, ns string, args ...string) result {
	t.Helper()
	cmd := NewCommand(o)
	cmd.SetArgs(append([]string{"--kubeconfig", env.Kubeconfig(t), "-n", ns}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return result{
		stdout: o.IOStreams.Out.(*bytes.Buffer).String(),
		stderr: o.IOStreams.ErrOut.(*bytes.Buffer).String(),
		err:    err,
	}
}

// ok fails the test when the command failed, showing what it printed.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.err != nil {
		t.Fatalf("command failed: %v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
	}
	return r
}

// failed returns the command's error message, failing the test if it succeeded.
func (r result) failed(t *testing.T) string {
	t.Helper()
	if r.err == nil {
		t.Fatalf("command succeeded, want an error\nstdout:\n%s", r.stdout)
	}
	return r.err.Error()
}

// table splits a table's output into rows of cells.
func table(out string) [][]string {
	var rows [][]string
	for line := range strings.SplitSeq(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			break // a blank line ends the table (metrics prints a summary after it)
		}
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

func wantRow(t *testing.T, rows [][]string, want ...string) {
	t.Helper()
	for _, r := range rows {
		if strings.Join(r, " ") == strings.Join(want, " ") {
			return
		}
	}
	t.Errorf("no row %q in table:\n%v", want, rows)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ctx() context.Context { return context.Background() }

func readyTrue(reason string) []metav1.Condition {
	return []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: reason,
		Message: "ready", LastTransitionTime: metav1.NewTime(now)}}
}

// application creates an Application and writes the status the operator would.
func application(t *testing.T, ns, name, description string, keys int32) *v1.Application {
	t.Helper()
	id, err := keyformat.ApplicationID()
	must(t, err)
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ApplicationSpec{Description: description}}
	must(t, env.Client.Create(ctx(), app))
	app.Status = v1.ApplicationStatus{ApplicationID: id, KeyCount: keys, Conditions: readyTrue(v1.ReasonApplicationID)}
	must(t, env.Client.Status().Update(ctx(), app))
	return app
}

// mintedKey creates an APIKey and its Secret as the operator would mint them, and returns the token.
func mintedKey(t *testing.T, ns, name, app string, mutate func(*v1.APIKey)) (*v1.APIKey, string) {
	t.Helper()
	format, err := keyformat.New(keyformat.DefaultPrefix)
	must(t, err)
	k, err := format.Generate()
	must(t, err)
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.APIKeySpec{ApplicationName: app}}
	must(t, env.Client.Create(ctx(), key))
	key.Status = v1.APIKeyStatus{KeyID: k.KeyID, Masked: keyformat.Mask(k.Token), Hash: keyformat.Hash(k.Token),
		State: v1.KeyActive, SecretName: name + "-key", Conditions: readyTrue(v1.ReasonMinted)}
	if mutate != nil {
		mutate(key)
	}
	must(t, env.Client.Status().Update(ctx(), key))
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-key", Labels: map[string]string{v1.LabelAPIKey: name}},
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			v1.SecretKeyToken:         []byte(k.Token),
			v1.SecretKeyAccessKey:     []byte(keyformat.AccessKey(k)),
			v1.SecretKeySecretKey:     []byte(keyformat.SecretKey(k)),
			v1.SecretKeyApplicationID: []byte("app_00000000000000000000000000"),
			v1.SecretKeyAuthorization: []byte("api-key " + k.Token),
		},
	}
	must(t, env.Client.Create(ctx(), secret))
	return key, k.Token
}

// grantOnly binds user to a Role with only these rules in ns.
func grantOnly(t *testing.T, ns, user string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules}
	must(t, env.Client.Create(ctx(), role))
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
	must(t, env.Client.Create(ctx(), binding))
}

func TestOrgAdminListsApplicationsWithTheirIDsAndKeyCounts(t *testing.T) {
	ns := env.Namespace(t, "apps")
	bi := application(t, ns, "acme-bi", "Acme BI export", 2)
	crm := application(t, ns, "acme-crm", "CRM sync", 0)

	rows := table(run(t, ns, "apps").ok(t).stdout)
	wantRow(t, rows, "NAME", "ID", "DESCRIPTION", "KEYS", "READY")
	wantRow(t, rows, "acme-bi", bi.Status.ApplicationID, "Acme", "BI", "export", "2", "True")
	if len(rows) != 3 {
		t.Errorf("want a header and 2 applications, got %v", rows)
	}

	var list v1.ApplicationList
	must(t, json.Unmarshal([]byte(run(t, ns, "apps", "-o", "json").ok(t).stdout), &list))
	if list.Kind != "ApplicationList" || len(list.Items) != 2 || list.Items[0].Kind != "Application" || list.Items[0].Status.ApplicationID != bi.Status.ApplicationID {
		t.Errorf("-o json printed %+v", list)
	}

	must(t, yaml.Unmarshal([]byte(run(t, ns, "apps", "-o", "yaml").ok(t).stdout), &list))
	if len(list.Items) != 2 {
		t.Errorf("-o yaml printed %+v", list)
	}

	all := table(run(t, "default", "apps", "-A").ok(t).stdout)
	wantRow(t, all, "NAMESPACE", "NAME", "ID", "DESCRIPTION", "KEYS", "READY")
	wantRow(t, all, ns, "acme-crm", crm.Status.ApplicationID, "CRM", "sync", "0", "True")
}

func TestAnEmptyOrgSaysSoOnStderrAndPrintsAnEmptyListAsJSON(t *testing.T) {
	ns := env.Namespace(t, "empty")
	r := run(t, ns, "keys").ok(t)
	if r.stdout != "" || !strings.Contains(r.stderr, "No resources found in "+ns+" namespace.") {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
	var list v1.APIKeyList
	must(t, json.Unmarshal([]byte(run(t, ns, "keys", "-o", "json").ok(t).stdout), &list))
	if list.Kind != "APIKeyList" || len(list.Items) != 0 {
		t.Errorf("-o json printed %+v", list)
	}
}

func TestKeysAreListedMaskedWithStateExpiryAndUsage(t *testing.T) {
	ns := env.Namespace(t, "keys")
	application(t, ns, "acme-bi", "Acme BI export", 2)
	expires := metav1.NewTime(now.Add(720 * time.Hour))
	used := metav1.NewTime(now.Add(-5 * time.Minute))
	prod, prodToken := mintedKey(t, ns, "acme-bi-prod", "acme-bi", func(k *v1.APIKey) {
		k.Status.ExpiresAt, k.Status.LastUsedAt, k.Status.UsageCount = &expires, &used, 42
	})
	_, crmToken := mintedKey(t, ns, "acme-crm-sync", "acme-crm", nil)

	r := run(t, ns, "keys").ok(t)
	rows := table(r.stdout)
	wantRow(t, rows, "NAME", "APPLICATION", "KEY", "ENABLED", "STATE", "EXPIRES", "LAST-USED", "USES")
	wantRow(t, rows, "acme-bi-prod", "acme-bi", prod.Status.Masked, "true", "Active", "2026-12-23T12:00:00Z", "5m", "42")
	for _, token := range []string{prodToken, crmToken} {
		if strings.Contains(r.stdout+r.stderr, token) {
			t.Fatal("keys printed a plaintext key")
		}
	}

	filtered := table(run(t, ns, "keys", "--app", "acme-bi").ok(t).stdout)
	if len(filtered) != 2 || filtered[1][0] != "acme-bi-prod" {
		t.Errorf("--app acme-bi listed %v", filtered)
	}

	var list v1.APIKeyList
	must(t, json.Unmarshal([]byte(run(t, ns, "keys", "--app", "acme-crm", "-o", "json").ok(t).stdout), &list))
	if len(list.Items) != 1 || list.Items[0].Name != "acme-crm-sync" || list.Items[0].Kind != "APIKey" {
		t.Errorf("-o json printed %+v", list)
	}
}

func TestKeyShowPrintsTheTokenFromTheKeySecretToStdoutOnly(t *testing.T) {
	ns := env.Namespace(t, "show")
	_, token := mintedKey(t, ns, "acme-bi-prod", "acme-bi", nil)

	r := run(t, ns, "key", "show", "acme-bi-prod").ok(t)
	if r.stdout != token+"\n" || r.stderr != "" {
		t.Errorf("stdout %q (want the token), stderr %q (want nothing)", r.stdout, r.stderr)
	}
	if got := run(t, ns, "key", "show", "acme-bi-prod", "--field", "authorization").ok(t).stdout; got != "api-key "+token+"\n" {
		t.Errorf("--field authorization printed %q", got)
	}

	var fields map[string]string
	must(t, json.Unmarshal([]byte(run(t, ns, "key", "show", "acme-bi-prod", "-o", "json").ok(t).stdout), &fields))
	if fields["token"] != token || fields["access-key"] == "" || fields["secret-key"] == "" || len(fields) != 5 {
		t.Errorf("-o json printed fields %v", keysOf(fields))
	}

	if msg := run(t, ns, "key", "show", "acme-bi-prod", "--field", "password").failed(t); !strings.Contains(msg, `unknown --field "password"`) {
		t.Errorf("unknown field: %s", msg)
	}
	want := "APIKey nope not found in namespace " + ns + ": list the keys with `kubectl clearance keys -n " + ns + "`"
	if msg := run(t, ns, "key", "show", "nope").failed(t); msg != want {
		t.Errorf("missing key:\n got %s\nwant %s", msg, want)
	}
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestObserverWhoMayListKeysButNotReadSecretsIsToldWhichPermissionIsMissing(t *testing.T) {
	ns := env.Namespace(t, "observer")
	mintedKey(t, ns, "acme-bi-prod", "acme-bi", nil)
	grantOnly(t, ns, "olivia", rbacv1.PolicyRule{
		APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"apikeys"}, Verbs: []string{"get", "list"},
	})

	rows := table(run(t, ns, "--as", "olivia", "keys").ok(t).stdout)
	if len(rows) != 2 || rows[1][0] != "acme-bi-prod" {
		t.Errorf("keys as an observer: %v", rows)
	}

	r := run(t, ns, "--as", "olivia", "key", "show", "acme-bi-prod")
	want := "you may list keys but not read their Secrets: ask an org admin for get on secrets in " + ns
	if msg := r.failed(t); msg != want {
		t.Errorf("key show as an observer:\n got %s\nwant %s", msg, want)
	}
	if r.stdout != "" {
		t.Errorf("printed %q", r.stdout)
	}

	want = "you may not patch apikeys in namespace " + ns + ": ask an org admin for patch on apikeys.access.clearance.dev in namespace " + ns
	if msg := run(t, ns, "--as", "olivia", "disable", "acme-bi-prod").failed(t); msg != want {
		t.Errorf("disable as an observer:\n got %s\nwant %s", msg, want)
	}
}

func TestKeyNewCreatesAKeyForTheApplicationAndWaitsUntilItIsMinted(t *testing.T) {
	ns := env.Namespace(t, "new")
	application(t, ns, "acme-bi", "Acme BI export", 0)

	// The operator's part: mint whatever key appears.
	var wg sync.WaitGroup
	wg.Add(1)
	operatorCtx, stop := context.WithTimeout(ctx(), 30*time.Second)
	defer stop()
	go func() {
		defer wg.Done()
		for operatorCtx.Err() == nil {
			var keys v1.APIKeyList
			if err := env.Client.List(operatorCtx, &keys, client.InNamespace(ns)); err == nil && len(keys.Items) == 1 {
				k := keys.Items[0]
				k.Status = v1.APIKeyStatus{State: v1.KeyActive, Masked: "clr_abcd…wxyz", Conditions: readyTrue(v1.ReasonMinted)}
				if env.Client.Status().Update(operatorCtx, &k) == nil {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	r := run(t, ns, "key", "new", "--app", "acme-bi", "--ttl", "720h", "--scope", "reports:read", "--description", "prod exporter").ok(t)
	wg.Wait()
	var keys v1.APIKeyList
	must(t, env.Client.List(ctx(), &keys, client.InNamespace(ns)))
	if len(keys.Items) != 1 {
		t.Fatalf("want one key, got %d", len(keys.Items))
	}
	key := keys.Items[0]
	if !strings.HasPrefix(key.Name, "acme-bi-") || key.Spec.ApplicationName != "acme-bi" || key.Spec.TTL.Duration != 720*time.Hour ||
		len(key.Spec.Scopes) != 1 || key.Spec.Scopes[0] != "reports:read" || key.Spec.Description != "prod exporter" {
		t.Errorf("created %s with spec %+v", key.Name, key.Spec)
	}
	want := fmt.Sprintf("apikey/%s created: clr_abcd…wxyz (Active)\nRead it with: kubectl clearance key show %s -n %s\n", key.Name, key.Name, ns)
	if r.stdout != want {
		t.Errorf("printed\n%s\nwant\n%s", r.stdout, want)
	}
}

func TestKeyNewGivesUpWithAClearMessageWhenNoOperatorMintsTheKey(t *testing.T) {
	ns := env.Namespace(t, "nooperator")
	application(t, ns, "acme-bi", "Acme BI export", 0)
	o, _, _ := newOptions()
	o.KeyWaitTimeout = time.Second

	start := time.Now()
	msg := runWith(t, o, ns, "key", "new", "--app", "acme-bi", "--name", "acme-bi-ci").failed(t)
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("waited %s with a 1s timeout", waited)
	}
	want := `APIKey acme-bi-ci was created but is not Active after 1s (state "", no Ready condition yet): check that the Clearance operator is running, then ` +
		"`kubectl clearance keys -n " + ns + "`"
	if msg != want {
		t.Errorf("\n got %s\nwant %s", msg, want)
	}
}

func TestKeyNewStopsWaitingWhenTheOperatorReportsTheKeyFailed(t *testing.T) {
	ns := env.Namespace(t, "failed")
	application(t, ns, "acme-bi", "Acme BI export", 0)
	go func() {
		for range 100 {
			var key v1.APIKey
			if env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi-ci"}, &key) == nil {
				key.Status.State = v1.KeyFailed
				key.Status.Conditions = []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1.ReasonConflict,
					Message: "Secret acme-bi-ci-key belongs to something else: set spec.secretName", LastTransitionTime: metav1.NewTime(now)}}
				if env.Client.Status().Update(ctx(), &key) == nil {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	msg := run(t, ns, "key", "new", "--app", "acme-bi", "--name", "acme-bi-ci").failed(t)
	if !strings.Contains(msg, "APIKey acme-bi-ci is Failed (Conflict: Secret acme-bi-ci-key belongs to something else: set spec.secretName)") {
		t.Errorf("got %s", msg)
	}
}

func TestKeyNewForAnApplicationThatDoesNotExistSaysWhereToLook(t *testing.T) {
	ns := env.Namespace(t, "noapp")
	msg := run(t, ns, "key", "new", "--app", "acme-typo").failed(t)
	want := "Application acme-typo not found in namespace " + ns + ": list the applications with `kubectl clearance apps -n " + ns + "`"
	if msg != want {
		t.Errorf("\n got %s\nwant %s", msg, want)
	}
	var keys v1.APIKeyList
	must(t, env.Client.List(ctx(), &keys, client.InNamespace(ns)))
	if len(keys.Items) != 0 {
		t.Errorf("created %d keys for a missing application", len(keys.Items))
	}
}

func TestRotateRequestsARotationAtTheCurrentTime(t *testing.T) {
	ns := env.Namespace(t, "rotate")
	key0, _ := mintedKey(t, ns, "acme-bi-prod", "acme-bi", nil)

	r := run(t, ns, "rotate", "acme-bi-prod").ok(t)
	if r.stdout != "apikey/acme-bi-prod rotation requested at 2026-11-23T12:00:00Z: key "+key0.Status.Masked+
		" stays valid for the rotation overlap after the new key is minted\n" {
		t.Errorf("printed %q", r.stdout)
	}
	var key v1.APIKey
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi-prod"}, &key))
	if got := key.Annotations[v1.AnnotationRotateRequestedAt]; got != "2026-11-23T12:00:00Z" {
		t.Errorf("annotation %s = %q", v1.AnnotationRotateRequestedAt, got)
	}

	var printed v1.APIKey
	must(t, json.Unmarshal([]byte(run(t, ns, "rotate", "acme-bi-prod", "-o", "json").ok(t).stdout), &printed))
	if printed.Annotations[v1.AnnotationRotateRequestedAt] != "2026-11-23T12:00:00Z" || printed.Kind != "APIKey" {
		t.Errorf("-o json printed %+v", printed.ObjectMeta)
	}

	want := "APIKey gone not found in namespace " + ns + ": list the keys with `kubectl clearance keys -n " + ns + "`"
	if msg := run(t, ns, "rotate", "gone").failed(t); msg != want {
		t.Errorf("rotating a missing key:\n got %s\nwant %s", msg, want)
	}
}

func TestRotateNowAsksForARotationThatEndsEveryEarlierKey(t *testing.T) {
	ns := env.Namespace(t, "rotatenow")
	key0, _ := mintedKey(t, ns, "acme-bi-prod", "acme-bi", func(k *v1.APIKey) {
		k.Status.State = v1.KeyRotating
		k.Status.PreviousKeys = []v1.PreviousKey{{KeyID: "old", Hash: "sha256:00", ValidUntil: metav1.NewTime(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))}}
	})
	r := run(t, ns, "rotate", "acme-bi-prod", "--now").ok(t)
	want := "apikey/acme-bi-prod immediate rotation requested at 2026-11-23T12:00:00Z: key " + key0.Status.Masked +
		" and its previous key stops working as soon as the new key is minted\n"
	if r.stdout != want {
		t.Errorf("\n got %q\nwant %q", r.stdout, want)
	}
	var key v1.APIKey
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi-prod"}, &key))
	if got := key.Annotations[v1.AnnotationInvalidateRequestedAt]; got != "2026-11-23T12:00:00Z" {
		t.Errorf("annotation %s = %q", v1.AnnotationInvalidateRequestedAt, got)
	}
	if _, ok := key.Annotations[v1.AnnotationRotateRequestedAt]; ok {
		t.Error("rotate --now must not also ask for a rotation with overlap")
	}
}

func TestRevokeSaysWhatStopsWorkingAndDeletesTheKey(t *testing.T) {
	ns := env.Namespace(t, "revoke")
	key0, _ := mintedKey(t, ns, "acme-bi-prod", "acme-bi", nil)
	r := run(t, ns, "revoke", "acme-bi-prod").ok(t)
	want := "apikey/acme-bi-prod revoked: key " + key0.Status.Masked +
		" of application acme-bi stopped working and never comes back; Secret acme-bi-prod-key is deleted with it\n"
	if r.stdout != want {
		t.Errorf("\n got %q\nwant %q", r.stdout, want)
	}
	err := env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi-prod"}, &v1.APIKey{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the APIKey is still there: %v", err)
	}
	wantErr := "APIKey gone not found in namespace " + ns + ": list the keys with `kubectl clearance keys -n " + ns + "`"
	if msg := run(t, ns, "revoke", "gone").failed(t); msg != wantErr {
		t.Errorf("revoking a missing key:\n got %s\nwant %s", msg, wantErr)
	}
}

func TestDisableAppAndEnableAppSwitchTheApplicationAndSayWhatChanged(t *testing.T) {
	ns := env.Namespace(t, "appswitch")
	app := application(t, ns, "acme-bi", "Acme BI export", 2)
	out := run(t, ns, "disable-app", "acme-bi").ok(t).stdout
	want := "application/acme-bi (" + orNone(app.Status.ApplicationID) + ") disabled: its 2 keys are refused in every org until " +
		"`kubectl clearance enable-app acme-bi` (no org is connected yet)\n"
	if out != want {
		t.Errorf("\n got %q\nwant %q", out, want)
	}
	var got v1.Application
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi"}, &got))
	if got.IsEnabled() {
		t.Error("disable-app left spec.enabled true")
	}
	out = run(t, ns, "enable-app", "acme-bi").ok(t).stdout
	if !strings.HasPrefix(out, "application/acme-bi (") || !strings.Contains(out, "enabled: its 2 keys work again, the same keys") {
		t.Errorf("enable-app printed %q", out)
	}
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi"}, &got))
	if !got.IsEnabled() {
		t.Error("enable-app left spec.enabled false")
	}
}

func TestDisableKeepsTheKeyAndEnableTurnsItBackOn(t *testing.T) {
	ns := env.Namespace(t, "toggle")
	before, _ := mintedKey(t, ns, "acme-bi-prod", "acme-bi", nil)

	if out := run(t, ns, "disable", "acme-bi-prod").ok(t).stdout; out != "apikey/acme-bi-prod disabled\n" {
		t.Errorf("disable printed %q", out)
	}
	var key v1.APIKey
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "acme-bi-prod"}, &key))
	if key.IsEnabled() || key.Status.Hash != before.Status.Hash || key.Spec.ApplicationName != "acme-bi" {
		t.Errorf("after disable: spec %+v, hash kept %v", key.Spec, key.Status.Hash == before.Status.Hash)
	}

	var printed v1.APIKey
	must(t, json.Unmarshal([]byte(run(t, ns, "enable", "acme-bi-prod", "-o", "json").ok(t).stdout), &printed))
	if !printed.IsEnabled() || printed.Spec.Enabled == nil {
		t.Errorf("enable -o json printed spec %+v", printed.Spec)
	}
	rows := table(run(t, ns, "keys").ok(t).stdout)
	if rows[1][3] != "true" {
		t.Errorf("keys after enable: %v", rows)
	}
}

// warnAboveObserver makes the apiserver answer every OrgConnection above Observer in ns with an
// admission warning, as Clearance's webhook does, using a ValidatingAdmissionPolicy in Warn mode.
func warnAboveObserver(t *testing.T, ns string) {
	t.Helper()
	env.NamespacePolicy(t, ns, "orgconnections", admissionregistrationv1.Validation{
		Expression:        "object.spec.role == 'Observer'",
		MessageExpression: "'role ' + object.spec.role + ' is above Observer: the application may change data in this org'",
	}, admissionregistrationv1.Warn)

	// The apiserver loads policies asynchronously: wait until a dry run is warned.
	warned := &warningRecorder{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = warned
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	must(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for !warned.saw("role Analyst is above Observer") {
		if time.Now().After(deadline) {
			t.Fatal("the ValidatingAdmissionPolicy never warned")
		}
		probe := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"},
			Spec: v1.OrgConnectionSpec{ApplicationID: "app_00000000000000000000000000", Role: v1.RoleAnalyst}}
		must(t, c.Create(ctx(), probe, client.DryRunAll))
		time.Sleep(200 * time.Millisecond)
	}
}

type warningRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

// saw says whether a warning containing text came back (Clearance's own policies warn too).
func (w *warningRecorder) saw(text string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		if strings.Contains(s, text) {
			return true
		}
	}
	return false
}

func TestConnectGrantsAnApplicationIDARoleAndPrintsAdmissionWarnings(t *testing.T) {
	ns := env.Namespace(t, "globex")
	warnAboveObserver(t, ns)
	appID, err := keyformat.ApplicationID()
	must(t, err)

	r := run(t, ns, "connect", appID, "--role", "Analyst", "--metric-set", "default").ok(t)
	name := ops.ConnectionName(appID)
	if want := fmt.Sprintf("orgconnection/%s created: %s is connected to %s as Analyst\n", name, appID, ns); r.stdout != want {
		t.Errorf("printed %q, want %q", r.stdout, want)
	}
	// The apiserver prefixes a policy's message with the policy's name; a webhook's goes as is.
	// Two policies warn: Clearance's own clearance-advice and the org's (warnAboveObserver).
	if !strings.HasPrefix(r.stderr, "Warning: ") || strings.Count(r.stderr, "\n") != 2 || strings.Count(r.stderr, "Warning: ") != 2 ||
		!strings.Contains(r.stderr, "'clearance-advice': role Analyst grants more than Observer (read-only, the recommended default): make sure application "+appID+" needs it\n") ||
		!strings.Contains(r.stderr, "role Analyst is above Observer: the application may change data in this org\n") {
		t.Errorf("stderr %q, want the two admission warnings, each on a line of its own", r.stderr)
	}
	var conn v1.OrgConnection
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, &conn))
	if conn.Spec.ApplicationID != appID || conn.Spec.Role != v1.RoleAnalyst || len(conn.Spec.MetricSets) != 1 {
		t.Errorf("created spec %+v", conn.Spec)
	}

	other, err := keyformat.ApplicationID()
	must(t, err)
	r = run(t, ns, "connect", other, "--name", "partner", "-o", "json").ok(t)
	var printed v1.OrgConnection
	must(t, json.Unmarshal([]byte(r.stdout), &printed))
	if printed.Name != "partner" || printed.Spec.Role != v1.RoleObserver || printed.Kind != "OrgConnection" || r.stderr != "" {
		t.Errorf("connect -o json printed %+v, stderr %q", printed, r.stderr)
	}

	if msg := run(t, ns, "connect", appID).failed(t); msg != "OrgConnection "+name+" already exists in namespace "+ns+": choose another name with --name" {
		t.Errorf("connecting twice: %s", msg)
	}
	if msg := run(t, ns, "connect", appID, "--role", "Admin").failed(t); !strings.HasPrefix(msg, `--role "Admin" is not a role: use Observer`) {
		t.Errorf("bad role: %s", msg)
	}
	if msg := run(t, ns, "connect", "acme-bi").failed(t); !strings.HasPrefix(msg, `"acme-bi" is not an Application ID`) {
		t.Errorf("bad ID: %s", msg)
	}
}

// TestConnectAboveOnesOwnRoleGetsTheRoleAssignmentPolicysRefusal: RBAC lets the person create
// connections, the apiserver's role assignment policy refuses the role, and its words are
// printed rather than an RBAC hint that would send them after the wrong permission.
func TestConnectAboveOnesOwnRoleGetsTheRoleAssignmentPolicysRefusal(t *testing.T) {
	ns := env.Namespace(t, "bindless")
	grantOnly(t, ns, "tina",
		rbacv1.PolicyRule{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgconnections"}, Verbs: []string{"create"}},
		rbacv1.PolicyRule{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"orgroles"}, Verbs: []string{"bind"}, ResourceNames: []string{"Observer"}})
	appID, err := keyformat.ApplicationID()
	must(t, err)

	msg := run(t, ns, "--as", "tina", "connect", appID, "--role", "OrgAdmin").failed(t)
	want := `orgconnections.access.clearance.dev "` + ops.ConnectionName(appID) + `" is forbidden: ValidatingAdmissionPolicy 'clearance-role-assignment' with binding 'clearance-role-assignment' denied request: ` +
		`user "tina" may not assign role OrgAdmin in org "` + ns + `"`
	if !strings.HasPrefix(msg, want) {
		t.Errorf("\n got %s\nwant %s…", msg, want)
	}
	run(t, ns, "--as", "tina", "connect", appID).ok(t)
}

func TestConnectionsShowEachConnectedApplicationWithItsOwnerAndRole(t *testing.T) {
	ns := env.Namespace(t, "conns")
	appID, err := keyformat.ApplicationID()
	must(t, err)
	conn := &v1.OrgConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-bi"},
		Spec: v1.OrgConnectionSpec{ApplicationID: appID, Role: v1.RoleObserver}}
	must(t, env.Client.Create(ctx(), conn))
	conn.Status = v1.OrgConnectionStatus{Description: "Acme BI export", CreatedBy: "acme", ApplicationNamespace: "acme",
		Conditions: readyTrue(v1.ReasonConnected)}
	must(t, env.Client.Status().Update(ctx(), conn))

	rows := table(run(t, ns, "connections").ok(t).stdout)
	wantRow(t, rows, "NAME", "ID", "DESCRIPTION", "CREATED-BY", "ROLE", "READY")
	wantRow(t, rows, "acme-bi", appID, "Acme", "BI", "export", "acme", "Observer", "True")

	var list v1.OrgConnectionList
	must(t, json.Unmarshal([]byte(run(t, ns, "connections", "-o", "json").ok(t).stdout), &list))
	if len(list.Items) != 1 || list.Items[0].Status.CreatedBy != "acme" {
		t.Errorf("-o json printed %+v", list)
	}
}

// metricSet creates a MetricSet with a cap and metrics named name=true|false.
func metricSet(t *testing.T, ns, name string, maxEnabled int32, metrics ...string) {
	t.Helper()
	ms := &v1.MetricSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.MetricSetSpec{MaxEnabled: ptr.To(maxEnabled)}}
	for _, m := range metrics {
		n, on, _ := strings.Cut(m, "=")
		ms.Spec.Metrics = append(ms.Spec.Metrics, v1.Metric{Name: n, Enabled: ptr.To(on == "true")})
	}
	must(t, env.Client.Create(ctx(), ms))
}

func TestMetricsShowWhatIsOnAndHideDisabledUnlessAsked(t *testing.T) {
	ns := env.Namespace(t, "metrics")
	metricSet(t, ns, "default", 3, "occupancy.current=true", "dwell.p95=false", "occupancy.peak=true")

	out := run(t, ns, "metrics").ok(t).stdout
	want := "SET       METRIC              ENABLED\n" +
		"default   occupancy.current   true\n" +
		"default   occupancy.peak      true\n" +
		"\n" +
		"2 of 3 enabled in MetricSet default\n"
	if out != want {
		t.Errorf("metrics printed\n%s\nwant\n%s", out, want)
	}

	rows := table(run(t, ns, "metrics", "--show-disabled").ok(t).stdout)
	wantRow(t, rows, "default", "dwell.p95", "false")
	if len(rows) != 4 {
		t.Errorf("--show-disabled printed %v", rows)
	}

	var printed struct{ Items []metricSetView }
	must(t, json.Unmarshal([]byte(run(t, ns, "metrics", "--set", "default", "-o", "json").ok(t).stdout), &printed))
	if len(printed.Items) != 1 || printed.Items[0].EnabledCount != 2 || printed.Items[0].MaxEnabled != 3 || len(printed.Items[0].Metrics) != 2 {
		t.Errorf("-o json printed %+v", printed)
	}

	want = "MetricSet nope not found in namespace " + ns + ": pick the set with --set; `kubectl clearance metrics -n " + ns + "` lists them"
	if msg := run(t, ns, "metrics", "--set", "nope").failed(t); msg != want {
		t.Errorf("\n got %s\nwant %s", msg, want)
	}
}

func TestEnableMetricSwitchesItOnAndDisableMetricKeepsItListed(t *testing.T) {
	ns := env.Namespace(t, "switch")
	metricSet(t, ns, "default", 5, "occupancy.current=true", "dwell.p95=false")
	get := func() *v1.MetricSet {
		var ms v1.MetricSet
		must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "default"}, &ms))
		return &ms
	}

	if out := run(t, ns, "enable-metric", "occupancy.peak").ok(t).stdout; out != "metric occupancy.peak enabled in MetricSet default (2 of 5 enabled)\n" {
		t.Errorf("enable-metric of an unlisted metric printed %q", out)
	}
	if out := run(t, ns, "enable-metric", "dwell.p95").ok(t).stdout; out != "metric dwell.p95 enabled in MetricSet default (3 of 5 enabled)\n" {
		t.Errorf("enable-metric of a disabled metric printed %q", out)
	}
	if out := run(t, ns, "disable-metric", "occupancy.current", "--set", "default").ok(t).stdout; out != "metric occupancy.current disabled in MetricSet default (2 of 5 enabled)\n" {
		t.Errorf("disable-metric printed %q", out)
	}
	rv := get().ResourceVersion
	if out := run(t, ns, "disable-metric", "occupancy.current").ok(t).stdout; out != "metric occupancy.current is already disabled in MetricSet default (2 of 5 enabled)\n" {
		t.Errorf("disabling twice printed %q", out)
	}
	ms := get()
	if ms.ResourceVersion != rv {
		t.Error("disabling a disabled metric wrote the MetricSet")
	}
	got := map[string]bool{}
	for _, m := range ms.Spec.Metrics {
		got[m.Name] = m.IsEnabled()
	}
	if fmt.Sprint(got) != "map[dwell.p95:true occupancy.current:false occupancy.peak:true]" {
		t.Errorf("metrics now %v", got)
	}

	var printed v1.MetricSet
	must(t, json.Unmarshal([]byte(run(t, ns, "disable-metric", "dwell.p95", "-o", "json").ok(t).stdout), &printed))
	if printed.Kind != "MetricSet" || len(printed.Spec.Metrics) != 3 || printed.Spec.Metrics[1].IsEnabled() {
		t.Errorf("-o json printed %+v", printed.Spec)
	}
}

func TestEnablingAMetricOverTheCapShowsTheAPIServersMessage(t *testing.T) {
	ns := env.Namespace(t, "cap")
	metricSet(t, ns, "default", 1, "occupancy.current=true")

	msg := run(t, ns, "enable-metric", "occupancy.peak").failed(t)
	if !strings.Contains(msg, "more metrics are enabled than spec.maxEnabled allows: disable some or raise maxEnabled") ||
		!strings.HasPrefix(msg, `MetricSet.access.clearance.dev "default" is invalid`) {
		t.Errorf("got %s", msg)
	}
	var ms v1.MetricSet
	must(t, env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "default"}, &ms))
	if len(ms.Spec.Metrics) != 1 {
		t.Errorf("the MetricSet changed: %+v", ms.Spec.Metrics)
	}
}

func TestVersionNeedsNoCluster(t *testing.T) {
	o, stdout, _ := newOptions()
	cmd := NewCommand(o)
	cmd.SetArgs([]string{"version", "--kubeconfig", "/nonexistent"})
	must(t, cmd.Execute())
	if !strings.HasPrefix(stdout.String(), "kubectl-clearance v0.0.0-test (API access.clearance.dev/v1alpha1, go") {
		t.Errorf("printed %q", stdout.String())
	}

	o, stdout, _ = newOptions()
	cmd = NewCommand(o)
	cmd.SetArgs([]string{"version", "-o", "yaml"})
	must(t, cmd.Execute())
	var info versionInfo
	must(t, yaml.Unmarshal(stdout.Bytes(), &info))
	if info.Version != "v0.0.0-test" || info.APIVersion != "access.clearance.dev/v1alpha1" {
		t.Errorf("printed %+v", info)
	}
}

func TestAnUnsupportedOutputFormatIsRefusedBeforeTouchingTheCluster(t *testing.T) {
	msg := run(t, "default", "apps", "-o", "wide").failed(t)
	if msg != `unsupported output format "wide": use -o json or -o yaml, or leave -o out for a table` {
		t.Errorf("got %s", msg)
	}
}
