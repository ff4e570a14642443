#!/usr/bin/env bash
# Regenerate go.mod/go.sum of the wrapper module that builds Knative Serving at release $1 (e.g. v0.48.1, the
# version github.com/kserve/kserve v0.20.0's go.mod requires): cmd/controller, cmd/webhook, cmd/autoscaler,
# cmd/activator and cmd/queue (the queue-proxy sidecar). Any `replace` directive of the release's go.mod is
# copied verbatim (a dependency's replace lines do not reach its dependents); v0.48.1 has none.
set -euo pipefail
release=${1:?usage: regen.sh vX.Y.Z}
cd "$(dirname "$0")"
dir=$(GOTOOLCHAIN=local go mod download -json "knative.dev/serving@${release}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
goline=$(grep -E '^go ' "$dir/go.mod")
{
  echo "module kaiops.local/knative"
  echo
  echo "$goline"
  echo
  echo "require knative.dev/serving ${release}"
  echo
  awk '/^replace \(/{blk=1; print; next} blk{print; if ($0 ~ /^\)/) blk=0; next} /^replace /{print}' "$dir/go.mod"
} > go.mod
echo "$release" > RELEASE
GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod tidy
