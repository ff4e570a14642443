#!/usr/bin/env bash
# Build the sandbox's Go binaries from the Go module proxy at pinned versions, once, into the cache.
#   kube-apiserver, kubectl, kube-controller-manager, kube-scheduler, kube-proxy
#                             (k8s/: k8s.io/kubernetes as a dependency, staging modules replaced)
#   etcd                      (etcd/: go.etcd.io/etcd/server/v3 behind a three-line main)
#   coredns                   (coredns/: github.com/coredns/coredns with the plugins a cluster DNS needs)
#   metrics-server            (go install sigs.k8s.io/metrics-server at the pinned version)
#   fake-gcs-server           (go install at the pinned version)
#   kserve-manager, kserve-localmodel, kserve-localmodelnode
#                             (kserve/: github.com/kserve/kserve as a dependency, its release's replace lines;
#                             `all` builds the manager only)
#   knative-controller, knative-webhook, knative-autoscaler, knative-activator, knative-queue
#                             (knative/: knative.dev/serving at the version KServe's release requires; one go build)
#   kserve-python             (kserve-python.sh: KServe's sklearnserver and storage-initializer environments)
#   prometheus-operator, prometheus-config-reloader, prometheus
#                             (prometheus-operator/: the operator module and its two sub-modules at one version;
#                             Prometheus from github.com/prometheus/prometheus at the version the operator requires)
# A binary already in the cache is never rebuilt. Nothing here is written into the repository.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KAIOPS_CACHE:-$HOME/.cache/kaiops}
bin=$cache/bin
mkdir -p "$bin"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod

k8s_release=$(cat "$here/k8s/RELEASE")
etcd_version=$(grep -oE 'go.etcd.io/etcd/server/v3 v[0-9.]+' "$here/etcd/go.mod" | head -1 | cut -d' ' -f2)
coredns_version=$(grep -oE 'github.com/coredns/coredns v[0-9.]+' "$here/coredns/go.mod" | head -1 | cut -d' ' -f2)
fake_gcs_version=v1.56.1
metrics_server_version=v0.8.0
kuberay_version=v1.6.2
kserve_release=$(cat "$here/kserve/RELEASE")
knative_release=$(cat "$here/knative/RELEASE")
knative_cmds=(controller webhook autoscaler activator queue)
prometheus_operator_version=$(grep -oE 'github.com/prometheus-operator/prometheus-operator v[0-9.]+' \
  "$here/prometheus-operator/go.mod" | head -1 | cut -d' ' -f2)
# Prometheus's Go module versions are v0.3MM.P for release v3.MM.P (v0.309.1 = v3.9.1)
prometheus_module_version=$(grep -oE 'github.com/prometheus/prometheus v0\.3[0-9]+\.[0-9]+' \
  "$here/prometheus-operator/go.mod" | head -1 | cut -d' ' -f2)
prometheus_minor=${prometheus_module_version#v0.3}; prometheus_minor=${prometheus_minor%%.*}
prometheus_version=v3.$((10#$prometheus_minor)).${prometheus_module_version##*.}

build_k8s() {  # $@ = command names under k8s/cmd; the missing ones are built in one go build (shared packages)
  local missing=() name
  for name in "$@"; do [ -x "$bin/$name-$k8s_release" ] || missing+=("$name"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local minor=${k8s_release#v1.}; minor=${minor%%.*}
  local pkg ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$k8s_release -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "building ${missing[*]} $k8s_release (first time only; several minutes)" >&2
  local tmp; tmp=$(mktemp -d "$bin/.k8s-build.XXXXXX")
  local pkgs=(); for name in "${missing[@]}"; do pkgs+=("./cmd/$name"); done
  if [ ${#pkgs[@]} -eq 1 ]; then
    (cd "$here/k8s" && go build -trimpath -ldflags "-s -w$ldflags" -o "$tmp/${missing[0]}" "${pkgs[0]}")
  else
    (cd "$here/k8s" && go build -trimpath -ldflags "-s -w$ldflags" -o "$tmp/" "${pkgs[@]}")
  fi
  for name in "${missing[@]}"; do mv "$tmp/$name" "$bin/$name-$k8s_release"; done
  rmdir "$tmp"
}

build_etcd() {
  local out="$bin/etcd-$etcd_version"
  [ -x "$out" ] && return 0
  echo "building etcd $etcd_version (first time only)" >&2
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" .) && mv "$out.tmp" "$out"
}

build_coredns() {
  local out="$bin/coredns-$coredns_version"
  [ -x "$out" ] && return 0
  echo "building coredns $coredns_version (first time only)" >&2
  (cd "$here/coredns" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" .) && mv "$out.tmp" "$out"
}

build_metrics_server() {
  local out="$bin/metrics-server-$metrics_server_version"
  [ -x "$out" ] && return 0
  echo "building metrics-server $metrics_server_version (first time only)" >&2
  local tmp; tmp=$(mktemp -d)
  GOBIN=$tmp go install -trimpath -ldflags "-s -w" "sigs.k8s.io/metrics-server/cmd/metrics-server@$metrics_server_version"
  mv "$tmp/metrics-server" "$out"; rmdir "$tmp"
}

build_fake_gcs() {
  local out="$bin/fake-gcs-server-$fake_gcs_version"
  [ -x "$out" ] && return 0
  echo "building fake-gcs-server $fake_gcs_version (first time only)" >&2
  local tmp; tmp=$(mktemp -d)
  GOBIN=$tmp go install -trimpath -ldflags "-s -w" "github.com/fsouza/fake-gcs-server@$fake_gcs_version"
  mv "$tmp/fake-gcs-server" "$out"; rmdir "$tmp"
}

build_kuberay() {  # the KubeRay operator (ray-operator module), as released
  local out="$bin/kuberay-operator-$kuberay_version"
  [ -x "$out" ] && return 0
  echo "building kuberay-operator $kuberay_version (first time only; a few minutes)" >&2
  local tmp; tmp=$(mktemp -d)
  GOBIN=$tmp go install -trimpath -ldflags "-s -w" "github.com/ray-project/kuberay/ray-operator@$kuberay_version"
  mv "$tmp/ray-operator" "$out"; rmdir "$tmp"
}

build_kserve() {  # $@ = kserve commands (manager localmodel localmodelnode); the missing ones in one go build
  local missing=() name
  for name in "$@"; do [ -x "$bin/kserve-$name-$kserve_release" ] || missing+=("$name"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "building kserve ${missing[*]} $kserve_release (first time only; several minutes)" >&2
  local tmp; tmp=$(mktemp -d "$bin/.kserve-build.XXXXXX")
  local pkgs=(); for name in "${missing[@]}"; do pkgs+=("github.com/kserve/kserve/cmd/$name"); done
  if [ ${#pkgs[@]} -eq 1 ]; then
    (cd "$here/kserve" && go build -trimpath -ldflags "-s -w" -o "$tmp/${missing[0]}" "${pkgs[0]}")
  else
    (cd "$here/kserve" && go build -trimpath -ldflags "-s -w" -o "$tmp/" "${pkgs[@]}")
  fi
  for name in "${missing[@]}"; do mv "$tmp/$name" "$bin/kserve-$name-$kserve_release"; done
  rmdir "$tmp"
}

build_knative() {  # $@ = knative.dev/serving commands; the missing ones in one go build (shared compile)
  local missing=() name
  for name in "$@"; do [ -x "$bin/knative-$name-$knative_release" ] || missing+=("$name"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "building knative ${missing[*]} $knative_release (first time only; several minutes)" >&2
  local tmp; tmp=$(mktemp -d "$bin/.knative-build.XXXXXX")
  local pkgs=(); for name in "${missing[@]}"; do pkgs+=("knative.dev/serving/cmd/$name"); done
  if [ ${#pkgs[@]} -eq 1 ]; then
    (cd "$here/knative" && go build -trimpath -ldflags "-s -w" -o "$tmp/${missing[0]}" "${pkgs[0]}")
  else
    (cd "$here/knative" && go build -trimpath -ldflags "-s -w" -o "$tmp/" "${pkgs[@]}")
  fi
  for name in "${missing[@]}"; do mv "$tmp/$name" "$bin/knative-$name-$knative_release"; done
  rmdir "$tmp"
}

build_prometheus_operator() {  # the operator and its config-reloader, one go build (shared packages)
  local v=$prometheus_operator_version
  [ -x "$bin/prometheus-operator-$v" ] && [ -x "$bin/prometheus-config-reloader-$v" ] && return 0
  echo "building prometheus-operator and prometheus-config-reloader $v (first time only; a few minutes)" >&2
  # upstream's Makefile sets the version through prometheus/common (the operator stamps it on what it creates)
  local ldflags="-s -w -X github.com/prometheus/common/version.Version=${v#v}"
  ldflags+=" -X github.com/prometheus/common/version.Revision=$v -X github.com/prometheus/common/version.Branch=HEAD"
  local tmp; tmp=$(mktemp -d "$bin/.prometheus-operator-build.XXXXXX")
  # pkg/client v0.89.0 is served by the proxy but missing from sum.golang.org (404): go.sum in the wrapper pins it
  (cd "$here/prometheus-operator" && GONOSUMDB=github.com/prometheus-operator/prometheus-operator/pkg/client \
    go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
    github.com/prometheus-operator/prometheus-operator/cmd/operator \
    github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader)
  mv "$tmp/operator" "$bin/prometheus-operator-$v"
  mv "$tmp/prometheus-config-reloader" "$bin/prometheus-config-reloader-$v"
  rmdir "$tmp"
}

build_prometheus() {  # the Prometheus server the operator's Pods run (all service discovery plugins, no UI assets)
  local out="$bin/prometheus-$prometheus_version"
  [ -x "$out" ] && return 0
  echo "building prometheus $prometheus_version (first time only; several minutes)" >&2
  local ldflags="-s -w -X github.com/prometheus/common/version.Version=${prometheus_version#v}"
  ldflags+=" -X github.com/prometheus/common/version.Revision=$prometheus_module_version"
  ldflags+=" -X github.com/prometheus/common/version.Branch=HEAD"
  (cd "$here/prometheus-operator" && GONOSUMDB=github.com/prometheus-operator/prometheus-operator/pkg/client \
    go build -trimpath -ldflags "$ldflags" -o "$out.tmp" github.com/prometheus/prometheus/cmd/prometheus) \
    && mv "$out.tmp" "$out"
}

control_plane=(kube-controller-manager kube-scheduler kube-proxy)
case "${1:-all}" in
  kube-apiserver|kubectl|kube-controller-manager|kube-scheduler|kube-proxy) build_k8s "$1" ;;
  control-plane) build_k8s "${control_plane[@]}" ;;
  etcd) build_etcd ;;
  coredns) build_coredns ;;
  metrics-server) build_metrics_server ;;
  fake-gcs-server) build_fake_gcs ;;
  kuberay-operator) build_kuberay ;;
  kserve-manager|kserve-localmodel|kserve-localmodelnode) build_kserve "${1#kserve-}" ;;
  kserve) build_kserve manager localmodel localmodelnode ;;
  knative) build_knative "${knative_cmds[@]}" ;;
  knative-controller|knative-webhook|knative-autoscaler|knative-activator|knative-queue) build_knative "${1#knative-}" ;;
  kserve-python) "$here/kserve-python.sh" ;;
  prometheus-operator|prometheus-config-reloader) build_prometheus_operator ;;
  prometheus) build_prometheus ;;
  all) build_etcd; build_fake_gcs; build_k8s kube-apiserver; build_k8s "${control_plane[@]}"; build_k8s kubectl
       build_coredns; build_metrics_server; build_kserve manager; build_knative "${knative_cmds[@]}"; "$here/kserve-python.sh"
       build_prometheus_operator; build_prometheus ;;
  *) echo "usage: build.sh [all|kube-apiserver|kubectl|kube-controller-manager|kube-scheduler|kube-proxy|control-plane|etcd|coredns|metrics-server|fake-gcs-server|kuberay-operator|kserve|kserve-manager|kserve-localmodel|kserve-localmodelnode|knative|knative-controller|knative-webhook|knative-autoscaler|knative-activator|knative-queue|kserve-python|prometheus-operator|prometheus]" >&2; exit 2 ;;
esac
