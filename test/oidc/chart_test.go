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

package oidc

import (
	"bufio"
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// TestTheChartSignsInWithTheProviderFromASecretFile: console.oidc.* become the console's
// --console-oidc-* flags; the client secret comes from the named Secret as a mounted file (never
// an argument or a variable), the provider's CA from a ConfigMap; off by default.
func TestTheChartSignsInWithTheProviderFromASecretFile(t *testing.T) {
	off := consoleDeployment(t, env.HelmTemplate(t, "--set", "console.enabled=true"))
	if slices.ContainsFunc(off.Spec.Template.Spec.Containers[0].Args, func(a string) bool { return strings.HasPrefix(a, "--console-oidc") }) {
		t.Errorf("the console signs in with a provider by default: %v", off.Spec.Template.Spec.Containers[0].Args)
	}

	d := consoleDeployment(t, env.HelmTemplate(t, "--set", "console.enabled=true",
		"--set", "console.oidc.issuerURL=https://dex.example.com", "--set", "console.oidc.clientID=clearance-console",
		"--set", "console.oidc.clientSecret.name=clearance-console-oidc", "--set", "console.oidc.clientSecret.key=secret",
		"--set", "console.oidc.caConfigMap.name=dex-ca", "--set", "console.oidc.providerName=Dex",
		"--set", "console.oidc.redirectURL=https://console.example.com/login/oidc/callback"))
	pod := d.Spec.Template.Spec
	args := pod.Containers[0].Args
	for _, want := range []string{"--console-oidc-issuer-url=https://dex.example.com", "--console-oidc-client-id=clearance-console",
		"--console-oidc-client-secret-file=/etc/clearance/oidc/client-secret", "--console-oidc-ca-file=/etc/clearance/oidc-ca/ca.crt",
		"--console-oidc-redirect-url=https://console.example.com/login/oidc/callback",
		"--console-oidc-extra-scopes=email,profile,offline_access", "--console-oidc-provider-name=Dex"} {
		if !slices.Contains(args, want) {
			t.Errorf("the console lacks %s: %v", want, args)
		}
	}
	mounts := map[string]string{}
	for _, m := range pod.Containers[0].VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	for _, v := range pod.Volumes {
		switch {
		case v.Secret != nil:
			if v.Name != "oidc-client-secret" || v.Secret.SecretName != "clearance-console-oidc" || len(v.Secret.Items) != 1 ||
				v.Secret.Items[0].Key != "secret" || v.Secret.Items[0].Path != "client-secret" || mounts[v.Name] != "/etc/clearance/oidc" {
				t.Errorf("the console mounts a Secret other than the client secret's file: %+v at %q", v, mounts[v.Name])
			}
		case v.ConfigMap != nil && v.ConfigMap.Name == "dex-ca":
			if mounts[v.Name] != "/etc/clearance/oidc-ca" || v.ConfigMap.Items[0].Path != "ca.crt" {
				t.Errorf("the provider's CA is not mounted where --console-oidc-ca-file points: %+v at %q", v, mounts[v.Name])
			}
		}
	}
	for _, e := range pod.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Errorf("the console reads Secret %s into $%s: the client secret is a file", e.ValueFrom.SecretKeyRef.Name, e.Name)
		}
	}
}

// consoleDeployment is the clearance-console Deployment of a rendered chart.
func consoleDeployment(t *testing.T, rendered []byte) *appsv1.Deployment {
	t.Helper()
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(rendered)))
	for {
		doc, err := docs.Read()
		if err == io.EOF {
			t.Fatal("the chart renders no clearance-console Deployment")
		} else if err != nil {
			t.Fatal(err)
		}
		var d appsv1.Deployment
		if yaml.Unmarshal(doc, &d) == nil && d.Kind == "Deployment" && d.Name == "clearance-console" {
			return &d
		}
	}
}
