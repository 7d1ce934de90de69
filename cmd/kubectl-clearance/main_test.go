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
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/internal/testenv"
)

var env *testenv.Env

// asPlugin makes this test binary behave as kubectl-clearance, so kubectl can run it from
// PATH exactly as it runs the installed plugin.
const asPlugin = "KUBECTL_CLEARANCE_TEST_AS_PLUGIN"

func TestMain(m *testing.M) {
	if os.Getenv(asPlugin) == "1" {
		main()
	}
	testenv.Main(m, &env)
}

// onPath puts this binary on PATH as kubectl-clearance.
func onPath(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "kubectl-clearance")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv(asPlugin, "1")
}

func TestKubectlFindsThePluginAndPassesItsKubeconfigAndNamespace(t *testing.T) {
	onPath(t)
	ns := env.Namespace(t, "kubectl")
	ctx := context.Background()
	app := &v1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-bi"}, Spec: v1.ApplicationSpec{Description: "Acme BI export"}}
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-bi-prod-key"},
		Data: map[string][]byte{v1.SecretKeyToken: []byte("clr_not-a-real-key")}}
	key := &v1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme-bi-prod"}, Spec: v1.APIKeySpec{ApplicationName: "acme-bi"}}
	for _, obj := range []client.Object{secret, key} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}

	out, err := env.Kubectl(t, "clearance", "apps", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "acme-bi ") || !strings.Contains(lines[1], "Acme BI export") {
		t.Errorf("kubectl clearance apps printed:\n%s", out)
	}

	out, err = env.Kubectl(t, "clearance", "key", "show", "acme-bi-prod", "-n", ns)
	if err != nil || out != "clr_not-a-real-key\n" {
		t.Errorf("kubectl clearance key show printed %q, %v", out, err)
	}

	_, err = env.Kubectl(t, "clearance", "rotate", "missing", "-n", ns)
	if err == nil || !strings.Contains(err.Error(), "error: APIKey missing not found in namespace "+ns) {
		t.Errorf("a failing command: %v", err)
	}

	out, err = env.Kubectl(t, "clearance", "version")
	if err != nil || !strings.HasPrefix(out, "kubectl-clearance ") {
		t.Errorf("kubectl clearance version printed %q, %v", out, err)
	}
}
