#!/usr/bin/env bash
# make run: runs the operator in the foreground against the cluster of KUBECONFIG or, when no
# cluster is reachable, against a local control plane it starts on loopback, with the console on
# a loopback port (CONSOLE_ADDR, default 127.0.0.1:8095; empty turns it off). Extra operator
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

# The admission policies the chart installs with the CRDs (config/policies): among them, only the
# operator may write what decides a key's validity.
"$kubectl" apply --server-side --force-conflicts -k config/policies >&2
# Right after new CRDs and policies the apiserver answers 503 for their kinds for a moment, and
# loads policies about a second after they are created: wait until a dry run is admitted.
for _ in $(seq 1 300); do
  if "$kubectl" create --dry-run=server -o jsonpath='{.metadata.annotations}' -f - >/dev/null 2>&1 <<'PROBE'
apiVersion: access.clearance.dev/v1alpha1
kind: Application
metadata: {name: admission-probe, namespace: default}
spec: {description: probe}
PROBE
  then break; fi
  sleep 0.2
done

# The people ClusterRoles (clearance-observer, -analyst, -technician, -org-admin) that orgs bind.
"$kubectl" apply --server-side --force-conflicts -f config/rbac/people_roles.yaml >&2

# The operator keeps its webhook certificate in its own namespace and registers its webhooks
# with a loopback URL, since the apiserver reaches it on this machine.
"$kubectl" create namespace clearance-system --dry-run=client -o yaml | "$kubectl" apply -f - >&2
# The cluster-wide metric catalog every org's default MetricSet names, and the permission catalog
# a key's scopes are picked from (config/catalog).
"$kubectl" apply --server-side --force-conflicts -k config/catalog >&2

cat >&2 <<MSG
run: CRDs and policies installed; starting the operator (Ctrl-C stops it; 'make local-control-plane-stop' ends the local cluster).
run: in another shell:
    export KUBECONFIG=${KUBECONFIG:-$HOME/.kube/config} PATH="$assets:\$PATH"
    kubectl apply -k config/samples && kubectl get clearance -A
MSG
# The verifier listens on every address at :8090; partners and browsers on this machine reach it
# at loopback, so that is the OAuth issuer (discovery's jwks_uri and endpoints resolve) and where
# the console's consent page sends the browser back.
verifier_url="${VERIFIER_URL-http://127.0.0.1:8090}"
console_addr="${CONSOLE_ADDR-127.0.0.1:8095}"
console_args=(--oauth-issuer="$verifier_url")
if [[ -n "$console_addr" ]]; then
  console_args+=(--console-bind-address="$console_addr" --console-verifier-url="$verifier_url"
    --oauth-consent-url="http://$console_addr/oauth2/consent")
  cat >&2 <<MSG
run: the console: http://$console_addr/  (sign in with a Kubernetes token; for an org admin of org acme:)
    kubectl create namespace acme
    kubectl create serviceaccount alice -n acme
    kubectl create rolebinding alice-org-admin -n acme --clusterrole=clearance-org-admin --serviceaccount=acme:alice
    kubectl create role key-reader -n acme --verb=get,list,watch --resource=secrets,configmaps,rolebindings
    kubectl create rolebinding alice-key-reader -n acme --role=key-reader --serviceaccount=acme:alice
    kubectl create token alice -n acme --duration=8h
  (the key-reader role lets alice see a new key once, read the metric catalog and see who holds
  which role on the People tab; in a cluster with ClusterRole aggregation, binding the built-in
  admin role gives all three with clearance-org-admin)
MSG
fi
go build -o bin/clearance .
# shellcheck disable=SC2086
exec bin/clearance --webhook-local-url=https://localhost:9443 "${console_args[@]}" ${RUN_ARGS:-}
