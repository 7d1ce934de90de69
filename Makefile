# Clearance — build, generate, test and run.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

export GOTOOLCHAIN := local

# Tools, pinned and installed into ./bin with go install.
LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN_VERSION ?= v0.23.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
CRD_REF_DOCS_VERSION ?= v0.3.0
CRD_REF_DOCS ?= $(LOCALBIN)/crd-ref-docs-$(CRD_REF_DOCS_VERSION)
HELM_VERSION ?= v3.22.0
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
HELM_DOCS_VERSION ?= v1.14.2
HELM_DOCS ?= $(LOCALBIN)/helm-docs-$(HELM_DOCS_VERSION)

# kube-apiserver, kube-controller-manager, kubectl and etcd, built from Go modules into a cache
# outside the repo.
KUBE_ASSETS = $(shell hack/kube-assets.sh)

GO_TEST_FLAGS ?= -count=1
# VERSION is the image tag; keep it equal to the chart's appVersion (no leading v).
VERSION ?= 0.1.0
IMAGE_ARCH ?= amd64
TEST_TIMEOUT ?= 20m
# Every test binary with a control plane writes the keys it minted and the texts they must never
# reach (logs, events, objects, metrics) here; hack/leakcheck then searches them all.
LEAK_DIR ?= $(LOCALBIN)/leaks

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-20s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs, RBAC and webhook manifests from markers.
	$(CONTROLLER_GEN) rbac:roleName=clearance-manager crd:allowDangerousTypes=false webhook paths="./..." \
		output:crd:artifacts:config=config/crd/bases
	rm -rf charts/clearance/crds && mkdir -p charts/clearance/crds
	cp config/crd/bases/*.yaml charts/clearance/crds/
	{ echo "# Generated from config/rbac/role.yaml by make manifests; do not edit."; cat config/rbac/role.yaml; } > charts/clearance/templates/manager-clusterrole.yaml
	{ echo "# Copied from config/rbac/people_roles.yaml by make manifests; do not edit."; cat config/rbac/people_roles.yaml; } > charts/clearance/templates/people-clusterroles.yaml
	{ echo "# Copied from the resources of config/policies/kustomization.yaml by make manifests; do not edit."; \
		for f in $$(sed -n 's/^  - //p' config/policies/kustomization.yaml); do echo "---"; cat "config/policies/$$f"; done; } \
		| sed -e "s/'system:serviceaccount:clearance-system:clearance'/'system:serviceaccount:{{ .Release.Namespace }}:clearance'/" \
			-e "s/^    namespace: clearance-system$$/    namespace: {{ .Release.Namespace }}/" > charts/clearance/templates/admission-policies.yaml
	{ echo "# Copied from config/catalog/metric-catalog.yaml by make manifests; do not edit."; echo "{{- if .Values.metricCatalog.enabled }}"; \
		sed "s/^  namespace: clearance-system$$/  namespace: {{ .Release.Namespace }}/" config/catalog/metric-catalog.yaml; echo "{{- end }}"; } > charts/clearance/templates/metric-catalog.yaml
	{ echo "# Copied from config/catalog/permission-catalog.yaml by make manifests; do not edit."; echo "{{- if .Values.permissionCatalog.enabled }}"; \
		sed "s/^  namespace: clearance-system$$/  namespace: {{ .Release.Namespace }}/" config/catalog/permission-catalog.yaml; echo "{{- end }}"; } > charts/clearance/templates/permission-catalog.yaml
	{ echo "# Copied from config/catalog/permission-catalog-reader.yaml by make manifests; do not edit."; \
		sed "s/^  namespace: clearance-system$$/  namespace: {{ .Release.Namespace }}/" config/catalog/permission-catalog-reader.yaml; } > charts/clearance/templates/permission-catalog-reader.yaml

.PHONY: generate
generate: controller-gen crd-ref-docs helm-docs ## Generate deepcopy code, the API reference (docs/api.md) and the chart's values table.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."
	$(CRD_REF_DOCS) --source-path=api/v1alpha1 --config=hack/crd-ref-docs.yaml --renderer=markdown --output-path=docs/api.md --log-level=WARN
	cd charts/clearance && $(HELM_DOCS) --chart-search-root=. --template-files=README.md.gotmpl --log-level=warning

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: verify-fmt
verify-fmt: ## Fail if a Go file is not gofmt-formatted.
	@files="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$files" ]; then \
		echo "not gofmt-formatted (run 'make fmt' and commit the result):"; echo "$$files"; exit 1; fi

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: verify-generated
verify-generated: manifests generate ## Fail if generated files differ from what is committed.
	@if [ -n "$$(git status --porcelain -- api config charts/clearance/crds charts/clearance/templates docs/api.md)" ]; then \
		echo "generated files are out of date: run 'make manifests generate' and commit the result"; \
		git status --porcelain -- api config charts docs/api.md; git --no-pager diff --stat -- api config charts docs/api.md; exit 1; fi

.PHONY: test
test: verify-fmt verify-generated vet chart-check kube-assets ## Run every test (unit and envtest against a real kube-apiserver), then the suite-wide leak check.
	rm -rf "$(LEAK_DIR)" && mkdir -p -m 700 "$(LEAK_DIR)"
	status=0; CLEARANCE_LEAK_DIR="$(LEAK_DIR)" KUBEBUILDER_ASSETS="$(KUBE_ASSETS)" HELM="$(HELM)" go test $(GO_TEST_FLAGS) -timeout $(TEST_TIMEOUT) ./... || status=$$?; \
	go run ./hack/leakcheck "$(LEAK_DIR)" || status=1; exit $$status

.PHONY: chart-check
# What helm template needs without a cluster to ask (internal/testenv.HelmOffline says why).
HELM_OFFLINE = --kube-version 1.37.0 --api-versions admissionregistration.k8s.io/v1/MutatingAdmissionPolicy --api-versions admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy

chart-check: helm ## helm lint and helm template the chart with its main value sets.
	$(HELM) lint --strict charts/clearance
	$(HELM) template clearance charts/clearance -n clearance-system $(HELM_OFFLINE) > /dev/null
	$(HELM) template clearance charts/clearance -n clearance-system $(HELM_OFFLINE) --set verifier.separate=true --set verifier.hpa.enabled=true --set serviceMonitor.enabled=true --set scrapeAnnotations=true --set grafanaDashboard.enabled=true > /dev/null
	$(HELM) template clearance charts/clearance -n clearance-system $(HELM_OFFLINE) --set verifier.separate=false --set replicaCount=1 > /dev/null
	$(HELM) template clearance charts/clearance -n clearance-system $(HELM_OFFLINE) --set webhooks.certManager.enabled=true --set webhooks.networkPolicy.apiserverCIDRs={10.0.0.0/8} > /dev/null
	$(HELM) template clearance charts/clearance -n clearance-system $(HELM_OFFLINE) --set console.enabled=true > /dev/null
	$(HELM) template clearance charts/clearance -n clearance-system $(HELM_OFFLINE) --set console.enabled=true --set console.oidc.issuerURL=https://dex.example.com --set console.oidc.clientID=clearance-console --set console.oidc.clientSecret.name=clearance-console-oidc --set console.oidc.redirectURL=https://console.example.com/login/oidc/callback --set console.oidc.caConfigMap.name=dex-ca > /dev/null

.PHONY: kube-assets
kube-assets: ## Build (once) kube-apiserver, kubectl and etcd into the cache and print where.
	@hack/kube-assets.sh

##@ Build and run

.PHONY: build
build: ## Build the clearance binary into ./bin.
	go build -o $(LOCALBIN)/clearance .

.PHONY: build-plugin
build-plugin: ## Build the kubectl plugin into ./bin.
	go build -ldflags "-X main.version=$(VERSION)" -o $(LOCALBIN)/kubectl-clearance ./cmd/kubectl-clearance

.PHONY: install-plugin
install-plugin: build-plugin ## Install kubectl-clearance into $GOBIN, or ~/.local/bin when GOBIN is unset.
	@dest="$$(go env GOBIN)"; [ -n "$$dest" ] || dest="$$HOME/.local/bin"; \
	mkdir -p "$$dest" && install -m 0755 $(LOCALBIN)/kubectl-clearance "$$dest/kubectl-clearance" && \
	echo "installed $$dest/kubectl-clearance; run: kubectl clearance version"

.PHONY: image
image: ## Build the operator image tarball bin/clearance-image.tar offline (no Docker engine, no base image).
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) go build -trimpath -ldflags "-s -w" -o $(LOCALBIN)/clearance-linux-$(IMAGE_ARCH) .
	go run ./hack/image --binary $(LOCALBIN)/clearance-linux-$(IMAGE_ARCH) --arch $(IMAGE_ARCH) --out $(LOCALBIN)/clearance-image.tar --version $(VERSION) --revision $(shell git rev-parse HEAD)

.PHONY: run
run: manifests kube-assets ## Run the operator against KUBECONFIG, or a local control plane when none is reachable.
	hack/run.sh

FUZZTIME ?= 30s
.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (key parsing, header parsing, admission decoding, redirect matching).
	go test ./internal/keyformat -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	go test ./internal/keyformat -run '^$$' -fuzz '^FuzzRoundTrip$$' -fuzztime $(FUZZTIME)
	go test ./internal/verifier -run '^$$' -fuzz '^FuzzParseCredentials$$' -fuzztime $(FUZZTIME)
	go test ./internal/verifier -run '^$$' -fuzz '^FuzzAuthorizeNeverAllowsWithoutAKeyInForce$$' -fuzztime $(FUZZTIME)
	go test ./internal/webhook -run '^$$' -fuzz '^FuzzAdmissionRequestDecoding$$' -fuzztime $(FUZZTIME)
	go test ./api/v1alpha1 -run '^$$' -fuzz '^FuzzAllowsRedirect$$' -fuzztime $(FUZZTIME)

.PHONY: bench
bench: kube-assets ## Measure every figure of the numbers to beat, each timed one against a floor of the same run (docs/performance.md; about 8 minutes): bench/results.json, bench/scale.png and a table.
	KUBEBUILDER_ASSETS="$(KUBE_ASSETS)" go run ./hack/bench $(BENCH_ARGS)

.PHONY: install
install: manifests kube-assets ## Install the CRDs, the admission policies and the catalogs (in clearance-system) into the cluster of KUBECONFIG.
	"$(KUBE_ASSETS)/kubectl" apply --server-side -k config/crd
	"$(KUBE_ASSETS)/kubectl" apply --server-side -k config/policies
	"$(KUBE_ASSETS)/kubectl" create namespace clearance-system --dry-run=client -o yaml | "$(KUBE_ASSETS)/kubectl" apply -f -
	"$(KUBE_ASSETS)/kubectl" apply --server-side -k config/catalog

.PHONY: uninstall
uninstall: kube-assets ## Remove the CRDs (and every Clearance object), the admission policies and the catalogs from the cluster.
	"$(KUBE_ASSETS)/kubectl" delete --ignore-not-found -k config/catalog
	"$(KUBE_ASSETS)/kubectl" delete --ignore-not-found -k config/policies
	"$(KUBE_ASSETS)/kubectl" delete --ignore-not-found -k config/crd

.PHONY: local-control-plane-stop
local-control-plane-stop: ## Stop the local control plane started by make run.
	hack/local-control-plane.sh stop

##@ Tools

.PHONY: crd-ref-docs
crd-ref-docs: $(CRD_REF_DOCS)
$(CRD_REF_DOCS):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/elastic/crd-ref-docs@$(CRD_REF_DOCS_VERSION)
	mv $(LOCALBIN)/crd-ref-docs $(CRD_REF_DOCS)

.PHONY: helm-docs
helm-docs: $(HELM_DOCS)
$(HELM_DOCS):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/norwoodj/helm-docs/cmd/helm-docs@$(HELM_DOCS_VERSION)
	mv $(LOCALBIN)/helm-docs $(HELM_DOCS)

.PHONY: helm
helm: $(HELM)
$(HELM):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/helm $(HELM)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)
