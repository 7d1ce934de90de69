#!/usr/bin/env bash
# make run: runs the operator in the foreground against the cluster of KUBECONFIG or, when no
# cluster is reachable, against a local control plane it starts on loopback. Extra operator
# flags come from RUN_ARGS, e.g. make run RUN_ARGS="--key-prefix=acme_".
set -euo pipefail
cd "$(dirname "$0")/.."

assets="$(hack/kube-assets.sh)"
kubectl="$assets/kubectl"

if ! "$kubectl" get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
  echo "run: no reachable cluster; starting a local control plane on loopback" >&2
  eval "$(hack/local-control-plane.sh start)"
  export KUBECONFIG
fi
echo "run: using $("$kubectl" config view --minify -o jsonpath='{.clusters[0].cluster.server}')" >&2

"$kubectl" apply --server-side --force-conflicts -k config/crd >&2
"$kubectl" wait --for=condition=Established --timeout=60s \
  crd/applications.access.clearance.dev crd/apikeys.access.clearance.dev \
  crd/orgconnections.access.clearance.dev crd/metricsets.access.clearance.dev >&2

# The operator keeps its webhook certificate in its own namespace and registers its webhooks
# with a loopback URL, since the apiserver reaches it on this machine.
"$kubectl" create namespace clearance-system --dry-run=client -o yaml | "$kubectl" apply -f - >&2

cat >&2 <<MSG
run: CRDs installed; starting the operator (Ctrl-C stops it; 'make local-control-plane-stop' ends the local cluster).
run: in another shell:
    export KUBECONFIG=${KUBECONFIG:-$HOME/.kube/config} PATH="$assets:\$PATH"
    kubectl apply -k config/samples && kubectl get clearance -A
MSG
go build -o bin/clearance .
# shellcheck disable=SC2086
exec bin/clearance --webhook-local-url=https://localhost:9443 ${RUN_ARGS:-}
