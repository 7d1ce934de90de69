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

// Package webhook holds Clearance's admission webhooks: what needs other objects or the
// requesting user (role assignment, uniqueness, creator, protected objects). What one object
// can say about itself is in the CRD schema and its CEL rules.
//
// Each webhook's configuration (the patch in its marker) lets the apiserver skip the call when
// the webhook has nothing to judge: the validators see creations and changes of spec, the
// created-by mutator creations and edits of its annotation, the protected-object guard only
// labelled objects. A label, annotation or finalizer edit then costs no call, and still goes
// through while the operator is down.
package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// Options configure the webhooks.
type Options struct {
	// OperatorUsername is the operator's own user (system:serviceaccount:NS:NAME), the only
	// one allowed to delete or unprotect protected objects.
	OperatorUsername string
	// Clock times the OrgConnection webhook's own work; nil: the real clock.
	Clock clock.PassiveClock
	// Registerer gets the webhooks' own metrics (controller-runtime's metrics.Registry);
	// nil: they are not registered.
	Registerer prometheus.Registerer
}

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=get;list;watch;create;update;patch

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
	if err := ctrl.NewWebhookManagedBy(mgr, &v1.OrgConnection{}).WithValidator(&orgConnectionValidator{client: c, reviewer: c, ownWork: own}).
		WithContextFunc(stampArrival(clk)).Complete(); err != nil {
		return err
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &v1.Application{}).WithValidator(&applicationValidator{client: c}).Complete(); err != nil {
		return err
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &v1.APIKey{}).WithValidator(apiKeyValidator{client: c}).Complete(); err != nil {
		return err
	}
	srv := mgr.GetWebhookServer()
	srv.Register("/validate-protected", &admission.Webhook{Handler: &protectedGuard{operator: opts.OperatorUsername, namespaces: mgr.GetAPIReader()}})
	srv.Register("/mutate-created-by", &admission.Webhook{Handler: createdBy{}})
	return nil
}
