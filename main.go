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
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	v1alpha1 "github.com/clearance-dev/clearance/api/v1alpha1"
	"github.com/clearance-dev/clearance/controllers"
	"github.com/clearance-dev/clearance/internal/console"
	"github.com/clearance-dev/clearance/internal/index"
	"github.com/clearance-dev/clearance/internal/keyformat"
	"github.com/clearance-dev/clearance/internal/metrics"
	"github.com/clearance-dev/clearance/internal/metricsauth"
	"github.com/clearance-dev/clearance/internal/oauth"
	"github.com/clearance-dev/clearance/internal/ratestore"
	"github.com/clearance-dev/clearance/internal/signingkey"
	"github.com/clearance-dev/clearance/internal/verifier"
	clearancewebhook "github.com/clearance-dev/clearance/internal/webhook"
	"github.com/clearance-dev/clearance/internal/wiring"
)

// webhookManifests are the webhook configurations generated from the markers in
// internal/webhook, registered by the operator itself with --webhook-local-url.
//
//go:embed config/webhook/manifests.yaml
var webhookManifests []byte

// options are the operator's flags.
type options struct {
	metricsAddr             string
	metricsSecure           bool
	metricsCertDir          string
	probeAddr               string
	verifierAddr            string
	webhookPort             int
	enableControllers       bool
	enableWebhooks          bool
	enableVerifier          bool
	keyPrefix               string
	leaderElect             bool
	leaderElectionNamespace string
	leaseDuration           time.Duration
	renewDeadline           time.Duration
	retryPeriod             time.Duration
	pprofAddr               string
	enableHTTP2             bool
	kubeAPIQPS              float64
	kubeAPIBurst            int
	keyWorkers              int
	gracefulShutdown        time.Duration
	namespace               string
	webhookCertDir          string
	webhookCertsExternal    bool
	webhookService          string
	webhookLocalURL         string
	maxStaleness            time.Duration
	usageFlushInterval      time.Duration
	writeMinRole            string
	defaultAllowedOrigins   []string
	applicationDecisions    bool
	orgDefaults             bool
	decisionLogEndpoint     string
	consoleAddr             string
	consoleTrustAuthProxy   bool
	consoleVerifierURL      string
	consolePrometheusURL    string
	consoleOIDC             consoleOIDCFlags
	rateLimitStore          string
	rateLimitStoreTimeout   time.Duration
	rateLimitStoreReplicas  int
	oauth                   oauthFlags
}

// consoleOIDCFlags configure the console's sign-in with an OpenID Connect provider
// (docs/console.md).
type consoleOIDCFlags struct {
	issuerURL, clientID, clientSecretFile, caFile, redirectURL, extraScopes, providerName string
}

// oauthFlags configure OAuth 2.0 client credentials (docs/oauth.md).
type oauthFlags struct {
	signingSecret string
	rotation      time.Duration
	issuer        string
	audience      string
	tokenTTL      time.Duration
	consentURL    string
}

func (o *options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", false, "Serve the metrics endpoint over HTTPS to clients whose Kubernetes bearer token is allowed get on /metrics (the ClusterRole clearance-metrics-reader), asking the apiserver (TokenReview, SubjectAccessReview; answers kept a minute). Off: plain HTTP to anyone who reaches the port, which tells which orgs each application is connected to (docs/security.md).")
	fs.StringVar(&o.metricsCertDir, "metrics-cert-dir", "", "With --metrics-secure: a directory holding tls.crt and tls.key to serve the metrics endpoint with, reloaded when they change. Empty: a self-signed certificate made at start.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false, "Serve the webhooks (and the metrics endpoint with --metrics-secure) over HTTP/2 too. Off by default, as kubebuilder's scaffold has it: HTTP/1.1 keeps HTTP/2's stream-reset attacks (CVE-2023-44487, CVE-2023-39325) away.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address Go's profiling endpoints (/debug/pprof) bind to, e.g. 127.0.0.1:6060; empty disables them. Keep it on loopback.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	fs.StringVar(&o.verifierAddr, "verifier-bind-address", ":8090", "Address the key verifier (forward-auth and JSON API) binds to.")
	fs.IntVar(&o.webhookPort, "webhook-port", 9443, "Port the admission webhook server listens on.")
	fs.BoolVar(&o.enableControllers, "enable-controllers", true, "Run the controllers for Application, APIKey, OrgConnection and MetricSet.")
	fs.BoolVar(&o.enableWebhooks, "enable-webhooks", true, "Serve the admission webhooks on --webhook-port.")
	fs.BoolVar(&o.enableVerifier, "enable-verifier", true, "Serve the key verifier on --verifier-bind-address.")
	fs.DurationVar(&o.maxStaleness, "max-staleness", 5*time.Minute, "How long the verifier answers from what it knows without hearing from the apiserver before it answers 503 stale.")
	fs.DurationVar(&o.usageFlushInterval, "usage-flush-interval", 10*time.Second, "How often the verifier writes keys' lastUsedAt and usageCount (batched) to their status.")
	fs.StringVar(&o.writeMinRole, "write-min-role", string(verifier.DefaultWriteMinRole), "Least role of a request that may change something (any method but GET, HEAD and OPTIONS, or an unknown one) when its route sets no minRole: Observer, Analyst, Technician or OrgAdmin. Safe methods need Observer.")
	fs.Func("default-allowed-origins", "The allow-list's system default entries: comma-separated browser origins (scheme://host[:port], e.g. your product's own web app) every Application's keys may be used from besides its spec.allowedOrigins. Set here by the platform team, they are in no Application, so no org can remove them. Empty: none.", func(v string) error {
		o.defaultAllowedOrigins = nil
		for _, origin := range strings.Split(v, ",") {
			if origin = strings.TrimSpace(origin); origin != "" {
				o.defaultAllowedOrigins = append(o.defaultAllowedOrigins, origin)
			}
		}
		return nil
	})
	fs.BoolVar(&o.applicationDecisions, "application-decision-metrics", true, "Count the verifier's answers per org and application (clearance_verifier_application_decisions_total{org,application,reason}; docs/metrics.md). Off only to measure what counting costs.")
	fs.StringVar(&o.decisionLogEndpoint, "decision-log-otlp-endpoint", "", "Export every verifier answer as an OpenTelemetry log record (org asked, Application ID, key id, reason, status; never a key) with OTLP/HTTP to this URL, e.g. http://otel-collector:4318 (path /v1/logs unless given). Records wait in a bounded queue and are dropped, counted, when it is full or the endpoint fails (clearance_verifier_decision_log_records_total; docs/metrics.md). Empty: nothing is exported.")
	fs.StringVar(&o.rateLimitStore, "rate-limit-store", "", "Keep the verifier's rate-limit buckets in Redis or Valkey, shared by every verifier replica, so each key's limits hold exactly across replicas: redis://[user@]host:port/db, or rediss:// for TLS; the password from $"+ratestore.PasswordEnv+" (or in the URL). Empty: each replica limits on its own.")
	fs.DurationVar(&o.rateLimitStoreTimeout, "rate-limit-store-timeout", verifier.DefaultRateLimitStoreTimeout, "How long a request waits for the rate-limit store before the verifier limits it in memory instead.")
	fs.IntVar(&o.rateLimitStoreReplicas, "rate-limit-store-fallback-replicas", verifier.DefaultFallbackReplicas, "While the rate-limit store is unreachable each verifier replica allows this fraction of every limit (limit/N, rounded up): set it to the most verifier replicas that can run at once (an autoscaler's maximum), or a key gets up to replicas/N times its limit.")
	fs.StringVar(&o.keyPrefix, "key-prefix", "clr_", "Prefix of minted keys, so secret scanners can recognise them.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader so only one replica runs the controllers.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease; default the pod's namespace, or clearance-system out of cluster.")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a follower waits after the leader's last renewal before it takes the lease.")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps trying to renew before it gives up leading (and exits).")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often candidates try to take or renew the lease.")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", 200, "Sustained queries per second to the Kubernetes API.")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", 400, "Burst of queries to the Kubernetes API.")
	fs.IntVar(&o.keyWorkers, "apikey-workers", controllers.DefaultKeyWorkers, "How many APIKeys are reconciled at once.")
	fs.DurationVar(&o.gracefulShutdown, "graceful-shutdown-timeout", 30*time.Second, "How long to wait for work in flight on shutdown.")
	fs.BoolVar(&o.orgDefaults, "org-defaults", true, "Give every org (a namespace holding an Application or an OrgConnection) its protected default MetricSet, naming the cluster-wide metric catalog in --namespace with a few metrics enabled; created once, never overwritten.")
	fs.StringVar(&o.namespace, "namespace", "", "The operator's namespace, where the cluster-wide metric and permission catalogs live (the console reads the permission catalog there); default the pod's (POD_NAMESPACE), or clearance-system.")
	fs.StringVar(&o.webhookCertDir, "webhook-cert-dir", "", "Where the webhook serving certificate is written (self-managed) or mounted (the chart mounts its Secret; cert-manager). Default: a new temporary directory of this process, removed when it exits, so no run serves the certificate an earlier one left.")
	fs.BoolVar(&o.webhookCertsExternal, "webhook-certs-external", false, "Do not manage the webhook certificate: cert-manager (or another tool) mounts it in --webhook-cert-dir and injects the CA bundle.")
	fs.StringVar(&o.webhookService, "webhook-service", "clearance-webhook", "The Service in front of the webhook server, for the certificate's DNS name.")
	fs.StringVar(&o.oauth.signingSecret, "oauth-signing-secret", signingkey.DefaultSecretName, "The Secret in --namespace holding the OAuth token signing keys: the controllers create and rotate it, the verifier reads it (and only it). Empty turns OAuth off: no signing-key controller, and the token endpoint answers 503.")
	fs.DurationVar(&o.oauth.rotation, "oauth-signing-key-rotation", signingkey.DefaultRotation, "How often the token signing keys rotate; each key is published one period before it signs and one after, so this must exceed --oauth-token-ttl.")
	fs.StringVar(&o.oauth.issuer, "oauth-issuer", "", "The OAuth issuer: the URL partners reach the verifier at (iss of access tokens, base of the discovery document's URLs). Default http://clearance-verifier.<namespace>.svc:8090.")
	fs.StringVar(&o.oauth.audience, "oauth-audience", "", "The aud of access tokens, and the only one the verifier accepts. Default the issuer.")
	fs.StringVar(&o.oauth.consentURL, "oauth-consent-url", "", "The console's OAuth consent page as browsers reach it (e.g. https://console.example.com/oauth2/consent): set, the verifier serves the authorization code grant with PKCE, sending org admins there to consent. Empty: client credentials only. With --rate-limit-store, authorization requests, codes and refresh tokens are kept there too, shared by every replica; without it, in each replica's memory (one replica only).")
	fs.DurationVar(&o.oauth.tokenTTL, "oauth-token-ttl", verifier.DefaultTokenTTL, "Lifetime of access tokens (at most 1h); a token never outlives its key, and dies with it.")
	fs.StringVar(&o.consoleAddr, "console-bind-address", "", "Address the console (web pages acting with each signed-in person's own Kubernetes credentials) binds to, e.g. 127.0.0.1:8095; empty disables it. With every other role off, the process serves only the console and needs no credentials of its own.")
	fs.StringVar(&o.consoleVerifierURL, "console-verifier-url", "", "The verifier's base URL as browsers reach it (e.g. http://127.0.0.1:8090): the console's OAuth consent page asks it what an authorization request is and sends the browser back to it, and the Developers page's examples and tester use it. Empty: the console takes no OAuth consent and has no tester.")
	fs.StringVar(&o.consolePrometheusURL, "console-prometheus-url", "", "The Prometheus that scrapes the verifiers (e.g. http://prometheus.monitoring:9090): the console's Activity page reads what applications did from it. Empty: the page says it needs one.")
	fs.BoolVar(&o.consoleTrustAuthProxy, "console-trust-auth-proxy", false, "The console sits behind an auth proxy (such as oauth2-proxy) that every request passes and that sets Authorization: Bearer with the person's token: sign requests in with that header. Off, the header is ignored and people sign in with the console's form.")
	fs.StringVar(&o.consoleOIDC.issuerURL, "console-oidc-issuer-url", "", "Offer sign-in to the console with this OpenID Connect provider (https issuer URL, exactly as its discovery document says, e.g. https://dex.example.com) beside the token form. The ID token it issues is the person's bearer token toward the apiserver, whose AuthenticationConfiguration must trust the same issuer with --console-oidc-client-id as audience (docs/console.md). Empty: the token form only.")
	fs.StringVar(&o.consoleOIDC.clientID, "console-oidc-client-id", "", "The console's client ID at the OpenID Connect provider: the audience of its ID tokens.")
	fs.StringVar(&o.consoleOIDC.clientSecretFile, "console-oidc-client-secret-file", "", "A file holding the console's client secret at the OpenID Connect provider (a mounted Secret); never given as a flag value.")
	fs.StringVar(&o.consoleOIDC.caFile, "console-oidc-ca-file", "", "PEM CA certificates that verify the OpenID Connect provider's TLS certificate, besides the system's.")
	fs.StringVar(&o.consoleOIDC.redirectURL, "console-oidc-redirect-url", "", "The console's sign-in callback as browsers reach it, registered at the provider: the console's URL followed by "+console.PathOIDCCallback+", e.g. https://console.example.com"+console.PathOIDCCallback+".")
	fs.StringVar(&o.consoleOIDC.extraScopes, "console-oidc-extra-scopes", strings.Join(console.DefaultOIDCScopes, ","), "Comma-separated scopes the console asks the provider for besides openid; offline_access brings the refresh token that renews the ID token while the session lives.")
	fs.StringVar(&o.consoleOIDC.providerName, "console-oidc-provider-name", "", "The provider's name on the sign-in button (\"Sign in with NAME\"); default the issuer's host.")
	fs.StringVar(&o.webhookLocalURL, "webhook-local-url", "", "Register the webhook configurations with this base URL (e.g. https://localhost:9443) instead of a Service: for an operator running outside the cluster (make run).")
}

func (o *options) validate() error {
	if _, err := keyformat.New(o.keyPrefix); err != nil {
		return fmt.Errorf("--key-prefix: %w", err)
	}
	if v1alpha1.Role(o.writeMinRole).Rank() < 0 {
		return fmt.Errorf("--write-min-role %q is not a role: use one of Observer, Analyst, Technician, OrgAdmin", o.writeMinRole)
	}
	if !o.enableControllers && !o.enableWebhooks && !o.enableVerifier && o.consoleAddr == "" {
		return errors.New("nothing to run: enable at least one of --enable-controllers, --enable-webhooks, --enable-verifier, --console-bind-address")
	}
	if err := o.consoleOIDC.validate(o.consoleAddr != ""); err != nil {
		return err
	}
	if o.consoleAddr == "" {
		for _, set := range []struct {
			flag string
			on   bool
		}{{"console-verifier-url", o.consoleVerifierURL != ""}, {"console-prometheus-url", o.consolePrometheusURL != ""},
			{"console-trust-auth-proxy", o.consoleTrustAuthProxy}} {
			if set.on {
				return fmt.Errorf("--%s is the console's and does nothing without it: set --console-bind-address too, or drop --%s", set.flag, set.flag)
			}
		}
	}
	if o.metricsSecure && o.metricsAddr == "0" {
		return errors.New("--metrics-secure secures nothing with --metrics-bind-address=0: give the endpoint an address, or drop --metrics-secure")
	}
	if o.metricsCertDir != "" && !o.metricsSecure {
		return errors.New("--metrics-cert-dir serves the metrics endpoint over HTTPS only with --metrics-secure: set it too, or drop --metrics-cert-dir")
	}
	// controller-runtime takes 0 for 9443 and a negative port for no webhook server at all.
	if o.enableWebhooks && (o.webhookPort < 1 || o.webhookPort > 65535) {
		return fmt.Errorf("--webhook-port must be a port between 1 and 65535, got %d (to serve no webhooks, use --enable-webhooks=false)", o.webhookPort)
	}
	if o.enableWebhooks && o.webhookCertsExternal && o.webhookCertDir == "" {
		return errors.New("--webhook-certs-external needs --webhook-cert-dir: where the certificate is mounted")
	}
	if o.oauth.tokenTTL <= 0 || o.oauth.tokenTTL > verifier.MaxTokenTTL {
		return fmt.Errorf("--oauth-token-ttl must be between 1s and %s, got %s", verifier.MaxTokenTTL, o.oauth.tokenTTL)
	}
	if o.oauth.rotation <= o.oauth.tokenTTL {
		return fmt.Errorf("--oauth-signing-key-rotation (%s) must be longer than --oauth-token-ttl (%s), or tokens outlive the key that checks them", o.oauth.rotation, o.oauth.tokenTTL)
	}
	if o.rateLimitStore != "" {
		if !o.enableVerifier {
			return errors.New("--rate-limit-store is the verifier's: set it on the replicas that run with --enable-verifier")
		}
		if _, err := ratestore.ParseURL(o.rateLimitStore); err != nil {
			return fmt.Errorf("--rate-limit-store: %w", err)
		}
	}
	// The verifier takes zero for its default: a zero given here would silently become it.
	if o.maxStaleness <= 0 {
		return fmt.Errorf("--max-staleness must be positive, got %s", o.maxStaleness)
	}
	if o.usageFlushInterval <= 0 {
		return fmt.Errorf("--usage-flush-interval must be positive, got %s", o.usageFlushInterval)
	}
	if o.rateLimitStoreTimeout <= 0 {
		return fmt.Errorf("--rate-limit-store-timeout must be positive, got %s", o.rateLimitStoreTimeout)
	}
	if o.rateLimitStoreReplicas < 1 {
		return fmt.Errorf("--rate-limit-store-fallback-replicas must be at least 1, got %d", o.rateLimitStoreReplicas)
	}
	// client-go takes a zero qps or burst for its defaults (5 and 10), and a qps below zero, NaN
	// or infinite for no limit at all.
	if !(o.kubeAPIQPS > 0) || math.IsInf(o.kubeAPIQPS, 1) {
		return fmt.Errorf("--kube-api-qps must be a positive number, got %v", o.kubeAPIQPS)
	}
	if o.kubeAPIBurst < 1 {
		return fmt.Errorf("--kube-api-burst must be at least 1, got %d", o.kubeAPIBurst)
	}
	if o.keyWorkers < 1 {
		return fmt.Errorf("--apikey-workers must be at least 1, got %d", o.keyWorkers)
	}
	if o.leaderElect && !(o.retryPeriod > 0 && o.retryPeriod < o.renewDeadline && o.renewDeadline < o.leaseDuration) {
		return fmt.Errorf("leader election needs 0 < --leader-elect-retry-period (%s) < --leader-elect-renew-deadline (%s) < --leader-elect-lease-duration (%s)",
			o.retryPeriod, o.renewDeadline, o.leaseDuration)
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

func run(opts options) error {
	if opts.namespace == "" {
		opts.namespace = os.Getenv("POD_NAMESPACE")
	}
	if opts.namespace == "" {
		opts.namespace = "clearance-system"
	}
	if opts.consoleOnly() {
		return runConsole(opts)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no Kubernetes API to talk to (set KUBECONFIG or run in a cluster): %w", err)
	}
	wiring.TuneAPIConfig(cfg, opts.kubeAPIQPS, opts.kubeAPIBurst)

	leNamespace := opts.leaderElectionNamespace
	if leNamespace == "" {
		leNamespace = opts.namespace
	}
	if opts.enableWebhooks && opts.webhookCertDir == "" {
		// A directory of this run's own: a fixed path shared by every run would have this one
		// start on the certificate the last one left, of a CA no longer injected.
		dir, err := os.MkdirTemp("", "clearance-webhook-certs-")
		if err != nil {
			return fmt.Errorf("creating the webhook certificate directory: %w", err)
		}
		defer func() { _ = os.RemoveAll(dir) }()
		opts.webhookCertDir = dir
	}
	gracefulShutdown := opts.gracefulShutdown
	certsReady := make(chan struct{})
	scheme := wiring.Scheme()
	format, err := keyformat.New(opts.keyPrefix)
	if err != nil {
		return err
	}

	metricsOpts, err := metricsOptions(opts)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: opts.probeAddr,
		PprofBindAddress:       opts.pprofAddr,
		WebhookServer: clearancewebhook.GatedServer{
			Server: webhook.NewServer(webhook.Options{Port: opts.webhookPort, CertDir: opts.webhookCertDir, TLSOpts: serverTLSOpts(opts.enableHTTP2)}),
			Ready:  certsReady,
		},
		LeaderElection:          opts.leaderElect,
		LeaderElectionID:        "clearance.access.clearance.dev",
		LeaderElectionNamespace: leNamespace,
		LeaseDuration:           &opts.leaseDuration,
		RenewDeadline:           &opts.renewDeadline,
		RetryPeriod:             &opts.retryPeriod,
		// Leases are released on a clean stop so a new leader takes over at once.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &gracefulShutdown,
		Cache:                         wiring.CacheOptions(clock.RealClock{}),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	// The controllers and the webhooks look objects up through the same field indexes.
	if opts.enableControllers || opts.enableWebhooks {
		if err := index.Register(context.Background(), mgr.GetFieldIndexer()); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}

	if opts.enableControllers {
		if err := setupControllers(mgr, format, opts); err != nil {
			return err
		}
	}
	if opts.enableWebhooks {
		// Before the manager starts, the webhook setup writes with a client of its own.
		direct, err := client.New(cfg, client.Options{Scheme: scheme})
		if err != nil {
			return err
		}
		if err := setupWebhooks(mgr, direct, opts, certsReady); err != nil {
			return err
		}
		// Ready once the server serves a certificate the CA injected into both webhook
		// configurations vouches for: not merely once it listens, perhaps still on a
		// certificate an earlier run or a late volume update left.
		served := &clearancewebhook.ServedCertificateCheck{
			Reader: mgr.GetAPIReader(),
			Addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.webhookPort)),
		}
		if err := mgr.AddReadyzCheck("webhook", served.Check); err != nil {
			return err
		}
	}

	if opts.enableVerifier {
		if err := setupVerifier(mgr, opts, format); err != nil {
			return err
		}
	}

	if opts.consoleAddr != "" {
		c, err := newConsole(opts, console.BaseConfig(cfg))
		if err != nil {
			return err
		}
		if err := mgr.Add(c); err != nil {
			return err
		}
	}

	ctrl.Log.WithName("setup").Info("starting clearance",
		"controllers", opts.enableControllers, "webhooks", opts.enableWebhooks, "verifier", opts.enableVerifier)
	return mgr.Start(ctrl.SetupSignalHandler())
}

func setupControllers(mgr ctrl.Manager, format keyformat.Format, opts options) error {
	m, err := metrics.NewControllers(ctrlmetrics.Registry, controllers.KeyStateCounter(mgr.GetCache()))
	if err != nil {
		return err
	}
	return controllers.Setup(mgr, controllers.Options{Clock: clock.RealClock{}, KeyFormat: format, Metrics: m, KeyWorkers: opts.keyWorkers,
		SigningKeys: controllers.SigningKeyOptions{Secret: opts.signingSecret(), Rotation: opts.oauth.rotation},
		Namespace:   opts.namespace, OrgDefaults: opts.orgDefaults})
}

// setupWebhooks registers the webhooks and, unless certificates come from elsewhere, the
// rotator that renews the serving certificate and its CA and injects the CA bundle into the
// webhook configurations; the first certificate and injection are done here, before the
// rotator starts (PrepareCertificates).
func setupWebhooks(mgr ctrl.Manager, direct client.Client, opts options, certsReady chan struct{}) error {
	if err := clearancewebhook.Setup(mgr, clearancewebhook.Options{
		Clock:      clock.RealClock{},
		Registerer: ctrlmetrics.Registry,
	}); err != nil {
		return err
	}
	dnsName := opts.webhookService + "." + opts.namespace + ".svc"
	if opts.webhookLocalURL != "" {
		dnsName = "localhost"
		if err := registerLocalWebhooks(direct, opts); err != nil {
			return err
		}
	}
	ctrl.Log.WithName("setup").Info("webhook serving certificate", "dir", opts.webhookCertDir, "external", opts.webhookCertsExternal)
	if opts.webhookCertsExternal {
		close(certsReady)
		return nil
	}
	secret := types.NamespacedName{Namespace: opts.namespace, Name: "clearance-webhook-cert"}
	cr := &rotator.CertRotator{
		SecretKey:      secret,
		CertDir:        opts.webhookCertDir,
		CAName:         "clearance-webhook-ca",
		CAOrganization: "clearance",
		DNSName:        dnsName,
		IsReady:        certsReady,
		Webhooks: []rotator.WebhookInfo{
			{Name: clearancewebhook.ValidatingConfigurationName, Type: rotator.Validating},
			{Name: clearancewebhook.MutatingConfigurationName, Type: rotator.Mutating},
		},
	}
	if err := rotator.AddRotator(mgr, cr); err != nil {
		return err
	}
	// The certificate and the CA bundles are in place before the rotator starts, so its first
	// pass has nothing to write: left to it, its start-up refresh and its reconciler both
	// write them from a cache still filling, and one is refused with a conflict.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := clearancewebhook.PrepareCertificates(ctx, direct, cr); err != nil {
		return err
	}
	if opts.webhookLocalURL != "" {
		writer := &clearancewebhook.LocalCertWriter{
			Reader: mgr.GetAPIReader(), Secret: secret, Dir: opts.webhookCertDir, Clock: clock.RealClock{},
		}
		// The first copy before anything serves, replacing what an earlier run left there.
		if _, err := writer.Sync(ctx); err != nil {
			return fmt.Errorf("copying the webhook certificate to %s: %w", opts.webhookCertDir, err)
		}
		if err := mgr.Add(writer); err != nil {
			return err
		}
	}
	return nil
}

// registerLocalWebhooks registers the webhook configurations pointing at this process, for
// an operator running outside the cluster.
func registerLocalWebhooks(c client.Client, opts options) error {
	validating, mutating, err := clearancewebhook.Configurations(webhookManifests, opts.webhookLocalURL, opts.namespace)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return clearancewebhook.Register(ctx, c, validating, mutating)
}

// setupVerifier serves the key verifier from the manager's informers; it runs in every
// replica, leader or not.
func setupVerifier(mgr ctrl.Manager, opts options, format keyformat.Format) error {
	vopts := verifier.Options{
		Addr:          opts.verifierAddr,
		Clock:         clock.RealClock{},
		Format:        format,
		MaxStaleness:  opts.maxStaleness,
		FlushInterval: opts.usageFlushInterval,
		WriteMinRole:  v1alpha1.Role(opts.writeMinRole),
		Registerer:    ctrlmetrics.Registry,

		DefaultAllowedOrigins: opts.defaultAllowedOrigins,

		NoApplicationDecisions: !opts.applicationDecisions,
		DecisionLog:            verifier.DecisionLogOptions{Endpoint: opts.decisionLogEndpoint},
		OAuth: verifier.OAuthOptions{
			Issuer:        opts.oauthIssuer(),
			Audience:      opts.oauth.audience,
			TokenTTL:      opts.oauth.tokenTTL,
			SigningSecret: opts.signingSecret(),
			ConsentURL:    opts.oauth.consentURL,
		},
		RateLimitStoreTimeout:     opts.rateLimitStoreTimeout,
		RateLimitFallbackReplicas: opts.rateLimitStoreReplicas,
	}
	if opts.rateLimitStore != "" {
		store, err := ratestore.Open(opts.rateLimitStore, os.Getenv(ratestore.PasswordEnv))
		if err != nil {
			return fmt.Errorf("--rate-limit-store: %w", err)
		}
		vopts.RateLimitStore = store
		if opts.oauth.consentURL != "" {
			vopts.OAuth.CodeStore = oauth.NewRedisStore(store.Client(), "clearance:oauth:")
		}
		ctrl.Log.WithName("setup").Info("rate limits shared through a store", "store", store.String(),
			"timeout", opts.rateLimitStoreTimeout, "fallbackReplicas", opts.rateLimitStoreReplicas)
	}
	v, err := verifier.New(vopts)
	if err != nil {
		return err
	}
	if err := v.SetupWithManager(mgr); err != nil {
		return err
	}
	// A verifier-only Deployment is ready once its index is loaded and fresh. In the combined
	// binary a stale verifier (which answers 503 itself) must not take the webhooks down too.
	if !opts.enableControllers && !opts.enableWebhooks {
		return mgr.AddReadyzCheck("verifier", v.ReadyzCheck)
	}
	return nil
}

// signingSecret is where the token signing keys live; empty when OAuth is off.
func (o *options) signingSecret() types.NamespacedName {
	if o.oauth.signingSecret == "" {
		return types.NamespacedName{}
	}
	return types.NamespacedName{Namespace: o.namespace, Name: o.oauth.signingSecret}
}

// oauthIssuer defaults to the chart's verifier Service in the operator's namespace.
func (o *options) oauthIssuer() string {
	if o.oauth.issuer != "" {
		return o.oauth.issuer
	}
	return "http://clearance-verifier." + o.namespace + ".svc:8090"
}

// consoleOnly: the process serves the console alone, without credentials of its own.
func (o *options) consoleOnly() bool {
	return o.consoleAddr != "" && !o.enableControllers && !o.enableWebhooks && !o.enableVerifier
}

// runConsole serves only the console, from the apiserver's address and CA alone.
func runConsole(opts options) error {
	base, err := console.LoadBaseConfig()
	if err != nil {
		return err
	}
	c, err := newConsole(opts, base)
	if err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("starting clearance console", "apiserver", base.Host)
	return c.Start(ctrl.SetupSignalHandler())
}

func newConsole(opts options, base *rest.Config) (*console.Server, error) {
	oidc, err := opts.consoleOIDC.options()
	if err != nil {
		return nil, err
	}
	return console.New(console.Options{
		Addr: opts.consoleAddr, Base: base, Scheme: wiring.Scheme(), Clock: clock.RealClock{},
		TrustAuthProxy: opts.consoleTrustAuthProxy, VerifierURL: opts.consoleVerifierURL,
		PrometheusURL: opts.consolePrometheusURL, CatalogNamespace: opts.namespace, OIDC: oidc, Log: ctrl.Log.WithName("console"),
	})
}

// validate says which OIDC flag is missing or set without the others.
func (f consoleOIDCFlags) validate(consoleOn bool) error {
	if f.issuerURL == "" {
		for _, set := range [][2]string{{"client-id", f.clientID}, {"client-secret-file", f.clientSecretFile},
			{"ca-file", f.caFile}, {"redirect-url", f.redirectURL}, {"provider-name", f.providerName}} {
			if set[1] != "" {
				return fmt.Errorf("--console-oidc-%s is set but --console-oidc-issuer-url is not: set the provider's issuer URL too, or drop --console-oidc-%s", set[0], set[0])
			}
		}
		return nil
	}
	switch {
	case !consoleOn:
		return errors.New("--console-oidc-issuer-url is the console's: set --console-bind-address too")
	case f.clientID == "":
		return errors.New("--console-oidc-issuer-url needs --console-oidc-client-id: the console's client ID at the provider")
	case f.clientSecretFile == "":
		return errors.New("--console-oidc-issuer-url needs --console-oidc-client-secret-file: a file holding the console's client secret at the provider")
	case f.redirectURL == "":
		return errors.New("--console-oidc-issuer-url needs --console-oidc-redirect-url: the console's URL as browsers reach it followed by " + console.PathOIDCCallback)
	}
	return nil
}

// options reads the OIDC flags' files into the console's options; nil without an issuer.
func (f consoleOIDCFlags) options() (*console.OIDCOptions, error) {
	if f.issuerURL == "" {
		return nil, nil
	}
	secret, err := os.ReadFile(f.clientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("--console-oidc-client-secret-file: cannot read the client secret: %w", err)
	}
	o := &console.OIDCOptions{
		IssuerURL: f.issuerURL, ClientID: f.clientID, ClientSecret: strings.TrimSpace(string(secret)),
		RedirectURL: f.redirectURL, ProviderName: f.providerName, ExtraScopes: []string{},
	}
	if o.ClientSecret == "" {
		return nil, fmt.Errorf("--console-oidc-client-secret-file %s is empty: put the console's client secret at the provider in it", f.clientSecretFile)
	}
	for s := range strings.SplitSeq(f.extraScopes, ",") {
		if s = strings.TrimSpace(s); s != "" && s != "openid" {
			o.ExtraScopes = append(o.ExtraScopes, s)
		}
	}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--console-oidc-ca-file: cannot read the provider's CA certificates: %w", err)
		}
		if o.RootCAs, err = x509.SystemCertPool(); err != nil {
			o.RootCAs = x509.NewCertPool()
		}
		if !o.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--console-oidc-ca-file %s holds no PEM certificate: give the CA that signed the provider's TLS certificate", f.caFile)
		}
	}
	return o, nil
}

// metricsOptions serve the metrics endpoint as the flags say: plain HTTP, or HTTPS to clients
// Kubernetes RBAC allows (package metricsauth). controller-runtime serves a self-signed
// certificate when its directory lacks tls.crt or tls.key: a directory given without them is
// refused rather than silently replaced.
func metricsOptions(opts options) (metricsserver.Options, error) {
	if !opts.metricsSecure {
		return metricsserver.Options{BindAddress: opts.metricsAddr}, nil
	}
	if opts.metricsCertDir != "" {
		for _, name := range []string{"tls.crt", "tls.key"} {
			if _, err := os.Stat(filepath.Join(opts.metricsCertDir, name)); err != nil {
				return metricsserver.Options{}, fmt.Errorf("--metrics-cert-dir %s: %w: it must hold tls.crt and tls.key (or leave the flag out for a self-signed certificate)", opts.metricsCertDir, err)
			}
		}
	}
	return metricsserver.Options{BindAddress: opts.metricsAddr, SecureServing: true, CertDir: opts.metricsCertDir,
		TLSOpts: serverTLSOpts(opts.enableHTTP2), FilterProvider: metricsauth.Filter(clock.RealClock{})}, nil
}

// serverTLSOpts offer HTTP/1.1 only, unless HTTP/2 is asked for: the webhook server's (which the
// apiserver calls) and the secure metrics server's.
func serverTLSOpts(enableHTTP2 bool) []func(*tls.Config) {
	if enableHTTP2 {
		return nil
	}
	return []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
}
