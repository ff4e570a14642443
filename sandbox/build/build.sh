#!/usr/bin/env bash
# Build the sandbox's Go binaries from the Go module proxy at pinned versions, once, into the cache.
#   kube-apiserver + kubectl  (k8s/: k8s.io/kubernetes as a dependency, staging modules replaced)
#   etcd                      (etcd/: go.etcd.io/etcd/server/v3 behind a three-line main)
#   fake-gcs-server           (go install at the pinned version)
# A binary already in the cache is never rebuilt. Nothing here is written into the repository.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KAIOPS_CACHE:-$HOME/.cache/kaiops}
bin=$cache/bin
mkdir -p "$bin"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod

k8s_release=$(cat "$here/k8s/RELEASE")
etcd_version=$(grep -oE 'go.etcd.io/etcd/server/v3 v[0-9.]+' "$here/etcd/go.mod" | head -1 | cut -d' ' -f2)
fake_gcs_version=v1.56.1

build_k8s() {  # $1 = command name
  local out="$bin/$1-$k8s_release"
  [ -x "$out" ] && return 0
  local minor=${k8s_release#v1.}; minor=${minor%%.*}
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$k8s_release -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "building $1 $k8s_release (first time only; several minutes)" >&2
  (cd "$here/k8s" && go build -trimpath -ldflags "-s -w$ldflags" -o "$out.tmp" "./cmd/$1") && mv "$out.tmp" "$out"
}

build_etcd() {
  local out="$bin/etcd-$etcd_version"
  [ -x "$out" ] && return 0
  echo "building etcd $etcd_version (first time only)" >&2
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" .) && mv "$out.tmp" "$out"
}

build_fake_gcs() {
  local out="$bin/fake-gcs-server-$fake_gcs_version"
  [ -x "$out" ] && return 0
  echo "building fake-gcs-server $fake_gcs_version (first time only)" >&2
  local tmp; tmp=$(mktemp -d)
  GOBIN=$tmp go install -trimpath -ldflags "-s -w" "github.com/fsouza/fake-gcs-server@$fake_gcs_version"
  mv "$tmp/fake-gcs-server" "$out"; rmdir "$tmp"
}

ldflags=""
case "${1:-all}" in
  kube-apiserver|kubectl) build_k8s "$1" ;;
  etcd) build_etcd ;;
  fake-gcs-server) build_fake_gcs ;;
  all) build_etcd; build_fake_gcs; build_k8s kube-apiserver; ldflags=""; build_k8s kubectl ;;
  *) echo "usage: build.sh [all|kube-apiserver|kubectl|etcd|fake-gcs-server]" >&2; exit 2 ;;
esac
