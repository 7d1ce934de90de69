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

// Package webhook holds what is left of Clearance's admission webhooks: the rules that need a
// lookup the apiserver cannot make (a pinned Application ID held by another Application, a
// second connection of an application in one org, a key's rate limits against its
// Application's), and the warning when a create names another creator. Everything the
// apiserver can decide from the request alone (who created an object, role assignment through
// its authorizer, protected objects, a key's Secret template, advice) is an admission policy in
// config/policies, in force while the operator is down. docs/architecture.md says which rule
// lives where.
//
// Each webhook's configuration (the patch in its marker) lets the apiserver skip the call
// unless the request touches the field its rule reads: an ordinary APIKey create, a role
// change, a label, annotation or finalizer edit never leaves the apiserver. Each fails open:
// the controllers (Conflict) and the verifier (the narrower rate limit) hold its rule, the
// webhook only says so at apply time.
package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Options configure the webhooks.
type Options struct {
	// Clock times the OrgConnection webhook's own work; nil: the real clock.
	Clock clock.PassiveClock
	// Registerer gets the webhooks' own metrics (controller-runtime's metrics.Registry);
	// nil: they are not registered.
	Registerer prometheus.Registerer
}

// The operator reads every webhook configuration (the certificate rotator's cache lists them
// all) but writes only its own two, by name: update and patch of any other would let its
// credentials switch off another product's admission or send every Pod to a webhook of their
// choosing. It creates none: the chart ships both configurations, and --webhook-local-url
// (make run) runs with the person's own kubeconfig.
//
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=update;patch,resourceNames=clearance-validating-webhook-configuration
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,verbs=update;patch,resourceNames=clearance-mutating-webhook-configuration

// Setup registers the webhooks with the manager's webhook server. They look Applications and
// OrgConnections up through the field indexes of package index, which the process registers
// (index.Register) before.
func Setup(mgr ctrl.Manager, opts Options) error {
	c := mgr.GetClient()
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	own, err := newOwnWork(clk, opts.Registerer)
	if err != nil {
		return err
	}
	srv := mgr.GetWebhookServer()
	srv.Register("/validate-access-clearance-dev-v1alpha1-orgconnection", &admission.Webhook{
		Handler: &orgConnectionValidator{client: c, ownWork: own}, WithContextFunc: stampArrival(clk)})
	srv.Register("/validate-access-clearance-dev-v1alpha1-application", &admission.Webhook{Handler: &applicationValidator{client: c}})
	srv.Register("/validate-access-clearance-dev-v1alpha1-apikey", &admission.Webhook{Handler: apiKeyValidator{client: c}})
	srv.Register("/mutate-created-by", &admission.Webhook{Handler: createdBy{}})
	return nil
}
