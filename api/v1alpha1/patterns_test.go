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

package v1alpha1_test

import (
	"os"
	"strings"
	"testing"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// The verifier checks its default allowed origins with AllowedOriginPattern: the CRD's CEL rule
// for spec.allowedOrigins must spell the same expression, so both accept the same origins.
func TestAllowedOriginPatternIsTheCRDsRule(t *testing.T) {
	crd, err := os.ReadFile("../../config/crd/bases/access.clearance.dev_applications.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := "self.matches('" + v1.AllowedOriginPattern + "')"; !strings.Contains(string(crd), want) {
		t.Errorf("the Application CRD has no rule %s", want)
	}
}
