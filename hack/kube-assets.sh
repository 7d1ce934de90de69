#!/usr/bin/env bash
# Provides kube-apiserver, kube-controller-manager, kubectl and etcd for envtest and the local
# control plane without Docker or a binary download: each is built from its Go module through
# the module proxy, once, into a cache outside the repo. Prints the directory to use as
# KUBEBUILDER_ASSETS. A cache from before kube-controller-manager was added is rebuilt whole
# (the Go build cache makes the binaries it already had quick).
#
#   hack/kube-assets.sh            build if needed, print the directory
#   KUBE_VERSION=v1.37.2 ETCD_VERSION=v3.6.16 override the pinned versions
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/clearance/kube-assets"
DIR="$CACHE_ROOT/${KUBE_VERSION}-etcd${ETCD_VERSION}"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

log() { echo "kube-assets: $*" >&2; }

build_kube() {
  local work="$CACHE_ROOT/src/kubernetes-$KUBE_VERSION"
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local staging="v0.${KUBE_VERSION#v1.}"
  mkdir -p "$work"
  log "building kube-apiserver, kube-controller-manager and kubectl $KUBE_VERSION (about 18 minutes cold on 2 cores)"
  (
    cd "$work"
    cat > go.mod <<MOD
module clearance.local/kubeassets

go 1.26

require k8s.io/kubernetes $KUBE_VERSION
MOD
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    # kubernetes' own go.mod replaces every k8s.io staging repo with ./staging/...; a module that
    # requires it must replace each with the published v0.x release of the same minor.
    local gomod
    gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    grep -E '^\s*k8s.io/[^ ]+ => ./staging/' "$gomod" | awk '{print $1}' | sort -u | while read -r mod; do
      echo "replace $mod => $mod $staging" >> go.mod
    done
    go mod tidy >&2
    go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" \
      -o "$DIR.tmp/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kubectl >&2
  )
}

build_etcd() {
  local work="$CACHE_ROOT/src/etcd-$ETCD_VERSION"
  mkdir -p "$work"
  log "building etcd $ETCD_VERSION (about 2 minutes cold)"
  (
    cd "$work"
    cat > go.mod <<MOD
module clearance.local/etcdassets

go 1.26

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
    cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
    go mod tidy >&2
    go build -trimpath -ldflags "-s -w" -o "$DIR.tmp/etcd" go.etcd.io/etcd/server/v3 >&2
  )
}

have_all() {
  local b
  for b in kube-apiserver kube-controller-manager kubectl etcd; do
    [[ -x "$DIR/$b" ]] || return 1
  done
}

if have_all; then
  echo "$DIR"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
# One builder at a time: parallel `make test` runs share the cache.
exec 9>"$CACHE_ROOT/.lock"
flock 9
if ! have_all; then
  rm -rf "$DIR.tmp"
  mkdir -p "$DIR.tmp"
  build_etcd
  build_kube
  rm -rf "$DIR"
  mv "$DIR.tmp" "$DIR"
  log "cached in $DIR"
fi
echo "$DIR"
