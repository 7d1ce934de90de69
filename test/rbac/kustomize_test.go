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

package rbac

import (
	"bufio"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kustomized returns "Kind namespace/name" of every object `kubectl kustomize dir` builds.
func kustomized(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out, err := env.Kubectl(t, "kustomize", dir)
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string]bool{}
	docs := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := docs.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var obj struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Kind != "" {
			objects[obj.Kind+" "+obj.Metadata.Namespace+"/"+obj.Metadata.Name] = true
		}
	}
	return objects
}

// TestTheKustomizeInstallCarriesTheAdmissionPoliciesAndTheCatalog: config/default is the
// install without Helm ("everything an install needs"). Who may assign which role, who created
// an object, which objects are protected, who consented and which permissions a key may name are
// admission policies the apiserver evaluates (config/policies), and the permission policy reads
// the catalog (config/catalog). An install without them runs and serves, but lets anyone who may
// edit a connection give it OrgAdmin: so config/default must carry every one of them, as the
// chart does, and the apiserver must accept it.
func TestTheKustomizeInstallCarriesTheAdmissionPoliciesAndTheCatalog(t *testing.T) {
	install := kustomized(t, "config/default")
	for _, dir := range []string{"config/policies", "config/catalog", "config/crd", "config/rbac"} {
		for _, obj := range slices.Sorted(maps.Keys(kustomized(t, dir))) {
			if !install[obj] {
				t.Errorf("kubectl apply -k config/default does not install %s (from %s)", obj, dir)
			}
		}
	}
	if _, err := env.Kubectl(t, "create", "namespace", "clearance-system"); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	if res, err := env.Kubectl(t, "apply", "--server-side", "--dry-run=server", "--force-conflicts", "-k", "config/default"); err != nil {
		t.Errorf("config/default does not pass a server-side dry run: %v\n%s", err, res)
	}
}
