#!/usr/bin/env bash
# Regenerate go.mod/go.sum of the wrapper module that builds the KServe control plane at release $1 (e.g. v0.20.0):
# cmd/manager (controller + webhooks), cmd/localmodel (LocalModelCache controller), cmd/localmodelnode (node agent).
# github.com/kserve/kserve has `replace` lines that a dependency's go.mod cannot carry to its dependents, so
# they are copied verbatim from that release's go.mod (controller-runtime, the k8s.io modules, grpc, expr,
# protoc-gen-validate); without them `go install ...@v0.20.0` resolves other versions and does not build.
set -euo pipefail
release=${1:?usage: regen.sh vX.Y.Z}
cd "$(dirname "$0")"
dir=$(GOTOOLCHAIN=local go mod download -json "github.com/kserve/kserve@${release}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
goline=$(grep -E '^go ' "$dir/go.mod")
{
  echo "module kaiops.local/kserve"
  echo
  echo "$goline"
  echo
  echo "require github.com/kserve/kserve ${release}"
  echo
  # every replace directive of the release, single-line and block form
  awk '/^replace \(/{blk=1; print; next} blk{print; if ($0 ~ /^\)/) blk=0; next} /^replace /{print}' "$dir/go.mod"
} > go.mod
echo "$release" > RELEASE
GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod tidy
