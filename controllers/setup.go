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

// Package controllers holds one reconciler per Clearance kind. They meet only through the API:
// an Application's ID, an APIKey's status and an OrgConnection's resolution.
package controllers

import (
	"context"
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"

	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/metrics"
	"github.com/clearance-dev/clearance/internal/signingkey"
)

// Options are the dependencies every reconciler shares, set in main.go.
type Options struct {
	// Clock is the only source of time; tests inject a fake one.
	Clock clock.PassiveClock
	// KeyFormat mints and parses keys with the configured prefix.
	KeyFormat keyformat.Format
	// Metrics records mints, key states and time to ready.
	Metrics *metrics.Controllers
	// KeyWorkers is how many APIKeys are reconciled at once (--apikey-workers); default
	// DefaultKeyWorkers. Each pass mostly waits on the apiserver, so a few run in parallel.
	KeyWorkers int
	// SigningKeys, when it names a Secret, runs the OAuth signing-key controller.
	SigningKeys SigningKeyOptions
	// Namespace is the operator's (--namespace): where the cluster-wide metric catalog lives,
	// which a MetricSet's catalogRef falls back to when its org has no catalog of that name.
	// Empty: no fallback.
	Namespace string
	// OrgDefaults gives every org (a namespace holding an Application or an OrgConnection) its
	// protected default MetricSet (--org-defaults; orgdefaults_controller.go).
	OrgDefaults bool
}

// DefaultKeyWorkers reconciles eight APIKeys at once: enough to mint 1,000 keys in a few
// seconds on two cores without crowding the apiserver.
const DefaultKeyWorkers = 8

// Setup registers the reconcilers with the manager. They look objects up through the field
// indexes of package index, which the process registers (index.Register) before.
func Setup(mgr ctrl.Manager, opts Options) error {
	base := reconcilerBase{
		client:    mgr.GetClient(),
		apiReader: mgr.GetAPIReader(),
		clock:     opts.Clock,
	}
	app := &ApplicationReconciler{reconcilerBase: base, events: mgr.GetEventRecorder("clearance-application"), burstClock: clock.RealClock{}}
	key := &APIKeyReconciler{reconcilerBase: base, events: mgr.GetEventRecorder("clearance-apikey"),
		format: opts.KeyFormat, metrics: opts.Metrics, workers: opts.KeyWorkers}
	if key.workers <= 0 {
		key.workers = DefaultKeyWorkers
	}
	conn := &OrgConnectionReconciler{reconcilerBase: base, events: mgr.GetEventRecorder("clearance-orgconnection")}
	ms := &MetricSetReconciler{reconcilerBase: base, events: mgr.GetEventRecorder("clearance-metricset"), systemNamespace: opts.Namespace}
	restart := &RestartReconciler{reconcilerBase: base, events: mgr.GetEventRecorder("clearance-restart")}
	reconcilers := []interface{ SetupWithManager(ctrl.Manager) error }{app, key, conn, ms, restart}
	if opts.OrgDefaults {
		reconcilers = append(reconcilers, &OrgDefaultsReconciler{reconcilerBase: base, events: mgr.GetEventRecorder("clearance-orgdefaults")})
	}
	if sk := opts.SigningKeys; sk.Secret.Name != "" {
		if sk.Rotation <= 0 {
			sk.Rotation = signingkey.DefaultRotation
		}
		reconcilers = append(reconcilers, &SigningKeyReconciler{reconcilerBase: base, events: mgr.GetEventRecorder("clearance-signingkeys"),
			secret: sk.Secret, every: sk.Rotation})
	}
	for _, r := range reconcilers {
		if err := r.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return nil
}

// KeyStateCounter counts APIKeys by state from the informer cache, for the keys gauge.
func KeyStateCounter(reader client.Reader) metrics.KeyStateCounter {
	return func() (map[string]int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var keys v1.APIKeyList
		if err := reader.List(ctx, &keys); err != nil {
			return nil, err
		}
		counts := map[string]int{}
		for _, k := range keys.Items {
			state := string(k.Status.State)
			if state == "" {
				state = string(v1.KeyPending)
			}
			counts[state]++
		}
		return counts, nil
	}
}
