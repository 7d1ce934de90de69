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

package testenv

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options shape the control plane of a package that needs more than Main gives: Main is
// MainWith and the zero Options, MainWithWebhooks is Options{Webhooks: true}.
type Options struct {
	// Webhooks installs Clearance's webhook configurations from config/webhook, pointing at
	// Env.Webhook (what MainWithWebhooks does).
	Webhooks bool
	// WithoutCRDs starts without the Clearance CRDs and admission policies, for a package that
	// installs them itself (from the Helm chart, as a user does).
	WithoutCRDs bool
	// APIServerArgs are extra kube-apiserver flags by name without the dashes, e.g.
	// {"enable-aggregator-routing": "true"} to have the apiserver call webhooks at their
	// Service's endpoints, as it reaches pods in a cluster, instead of its ClusterIP.
	APIServerArgs map[string]string
	// WithoutControllerManager starts no kube-controller-manager: nothing then collects owned
	// objects, deleted namespaces stay Terminating and namespaces get no default
	// ServiceAccount. Every package runs it unless it must not (as no cluster lacks it).
	// ControllerManagerEnv=off does the same for every package, to tell whether a failure
	// comes from it.
	WithoutControllerManager bool
	// OIDC starts a real OpenID Connect provider on loopback over TLS first (Env.OIDC) and has
	// the apiserver trust it with a structured AuthenticationConfiguration
	// (--authentication-config), as a cluster trusts the company's provider.
	OIDC bool
}

// ControllerManagerEnv set to "off" starts no kube-controller-manager in any package.
const ControllerManagerEnv = "CLEARANCE_TEST_CONTROLLER_MANAGER"

// MainWith is Main with a control plane shaped by opts.
func MainWith(m *testing.M, out **Env, opts Options, hooks ...func(*Env) (after func() error, err error)) {
	run(m, out, opts, hooks)
}

// apply sets opts on the environment before it starts.
func (o Options) apply(env *envtest.Environment) {
	if o.WithoutCRDs {
		env.CRDDirectoryPaths = nil
	}
	args := env.ControlPlane.APIServer.Configure()
	for name, value := range o.APIServerArgs {
		args.Set(name, value)
	}
}
