#!/usr/bin/env bash
# Regenerate go.mod for the wrapper module that builds kube-apiserver and kubectl at the Kubernetes release $1 (e.g. v1.35.4).
# k8s.io/kubernetes points every k8s.io/* staging module at ./staging/... (v0.0.0); as a dependency we
# replace each one with its published v0.<minor>.<patch>, read from that release's own go.mod.
set -euo pipefail
release=${1:?usage: regen.sh vX.Y.Z}
staging=v0.${release#v1.}
cd "$(dirname "$0")"
dir=$(go mod download -json "k8s.io/kubernetes@${release}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
godebug=$(grep -E '^godebug ' "$dir/go.mod")
goline=$(grep -E '^go ' "$dir/go.mod")
{
  echo "module kaiops.local/k8s"
  echo
  echo "$goline"
  echo
  echo "$godebug"
  echo
  echo "require k8s.io/kubernetes ${release}"
  echo
  echo "replace ("
  grep -E '=> \./staging/' "$dir/go.mod" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > go.mod
echo "$release" > RELEASE
GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod tidy
