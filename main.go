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

// Command clearance is the Clearance operator: controllers, admission webhooks and the key
// verifier in one binary, each switchable by a flag.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	accessv1alpha1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/controllers"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/metrics"
)

// options are the operator's flags.
type options struct {
	metricsAddr             string
	probeAddr               string
	verifierAddr            string
	webhookPort             int
	enableControllers       bool
	enableWebhooks          bool
	enableVerifier          bool
	keyPrefix               string
	leaderElect             bool
	leaderElectionNamespace string
	kubeAPIQPS              float64
	kubeAPIBurst            int
	gracefulShutdown        time.Duration
}

func (o *options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	fs.StringVar(&o.verifierAddr, "verifier-bind-address", ":8090", "Address the key verifier (forward-auth and JSON API) binds to.")
	fs.IntVar(&o.webhookPort, "webhook-port", 9443, "Port the admission webhook server listens on.")
	fs.BoolVar(&o.enableControllers, "enable-controllers", true, "Run the controllers for Application, APIKey, OrgConnection and MetricSet.")
	fs.BoolVar(&o.enableWebhooks, "enable-webhooks", false, "Serve the validating admission webhooks.")
	fs.BoolVar(&o.enableVerifier, "enable-verifier", false, "Serve the key verifier on --verifier-bind-address.")
	fs.StringVar(&o.keyPrefix, "key-prefix", "clr_", "Prefix of minted keys, so secret scanners can recognise them.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader so only one replica runs the controllers.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease; default the pod's namespace, or clearance-system out of cluster.")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", 200, "Sustained queries per second to the Kubernetes API.")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", 400, "Burst of queries to the Kubernetes API.")
	fs.DurationVar(&o.gracefulShutdown, "graceful-shutdown-timeout", 30*time.Second, "How long to wait for work in flight on shutdown.")
}

func (o *options) validate() error {
	if _, err := keyformat.New(o.keyPrefix); err != nil {
		return fmt.Errorf("--key-prefix: %w", err)
	}
	if !o.enableControllers && !o.enableWebhooks && !o.enableVerifier {
		return errors.New("nothing to run: enable at least one of --enable-controllers, --enable-webhooks, --enable-verifier")
	}
	// Webhooks and the verifier are not part of this build yet; refuse rather than pretend.
	if o.enableWebhooks {
		return errors.New("--enable-webhooks: the admission webhooks are not available in this build yet")
	}
	if o.enableVerifier {
		return errors.New("--enable-verifier: the verifier is not available in this build yet")
	}
	return nil
}

func main() {
	var opts options
	opts.bind(flag.CommandLine)
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	setupLog := ctrl.Log.WithName("setup")

	if err := opts.validate(); err != nil {
		setupLog.Error(err, "invalid flags")
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		setupLog.Error(err, "clearance stopped")
		os.Exit(1)
	}
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(accessv1alpha1.AddToScheme(s))
	return s
}

func run(opts options) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no Kubernetes API to talk to (set KUBECONFIG or run in a cluster): %w", err)
	}
	cfg.QPS = float32(opts.kubeAPIQPS)
	cfg.Burst = opts.kubeAPIBurst

	leNamespace := opts.leaderElectionNamespace
	if leNamespace == "" {
		leNamespace = os.Getenv("POD_NAMESPACE")
	}
	if leNamespace == "" {
		leNamespace = "clearance-system"
	}
	gracefulShutdown := opts.gracefulShutdown

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  newScheme(),
		Metrics:                 metricsserver.Options{BindAddress: opts.metricsAddr},
		HealthProbeBindAddress:  opts.probeAddr,
		WebhookServer:           webhook.NewServer(webhook.Options{Port: opts.webhookPort}),
		LeaderElection:          opts.leaderElect,
		LeaderElectionID:        "clearance.access.clearance.dev",
		LeaderElectionNamespace: leNamespace,
		// Leases are released on a clean stop so a new leader takes over at once.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &gracefulShutdown,
		Cache:                         controllers.CacheOptions(),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}

	if opts.enableControllers {
		if err := setupControllers(mgr, opts); err != nil {
			return err
		}
	}

	ctrl.Log.WithName("setup").Info("starting clearance",
		"controllers", opts.enableControllers, "webhooks", opts.enableWebhooks, "verifier", opts.enableVerifier)
	return mgr.Start(ctrl.SetupSignalHandler())
}

func setupControllers(mgr ctrl.Manager, opts options) error {
	format, err := keyformat.New(opts.keyPrefix)
	if err != nil {
		return err
	}
	m, err := metrics.NewControllers(ctrlmetrics.Registry, controllers.KeyStateCounter(mgr.GetCache()))
	if err != nil {
		return err
	}
	return controllers.Setup(mgr, controllers.Options{Clock: clock.RealClock{}, KeyFormat: format, Metrics: m})
}
