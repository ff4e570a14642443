#!/usr/bin/env bash
# Build KServe's own Python images as environments on this machine, from the python/ sources inside the Go module
# github.com/kserve/kserve at the release in kserve/RELEASE, the way that release's Dockerfiles build them:
#   sklearnserver/         python/sklearn.Dockerfile: kserve + kserve-storage + sklearnserver, `uv sync` of
#                          sklearnserver's uv.lock (pinned; scikit-learn 1.5.2 at v0.20.0); ENTRYPOINT
#                          `python -m sklearnserver`, PYTHONPATH=/sklearnserver
#   storage-initializer/   python/storage-initializer.Dockerfile: kserve-storage[confidential] from storage's uv.lock;
#                          ENTRYPOINT /storage-initializer/scripts/initializer-entrypoint, WORKDIR /work
# into $KAIOPS_CACHE/bin/kserve-python-<release>/ (never into the repository). The node's image catalog
# (sandbox/node/images.yaml) maps kserve/sklearnserver and kserve/storage-initializer there.
# Differences from the images (sandbox needs, listed in sandbox/kserve_real/README.md): `--no-dev` (the images also
# carry black, a dev tool), no Kerberos extras for hdfs:// (krbcontext, hdfs, requests-kerberos need gcc and
# libkrb5-dev), no pip-licenses step, no `kserve` user (the node agent runs containers as root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KAIOPS_CACHE:-$HOME/.cache/kaiops}
release=$(cat "$here/kserve/RELEASE")
out=$cache/bin/kserve-python-$release
uv=${UV:-$cache/uv-0.13.9/bin/uv}
python=${PYTHON:-python3.11}
[ -f "$out/.complete" ] && exit 0
export UV_CACHE_DIR=${UV_CACHE_DIR:-$cache/uv-cache}
src=$(GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "github.com/kserve/kserve@$release" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/python
echo "building KServe $release Python environments into $out (first time only)" >&2
tmp=$(mktemp -d "$cache/bin/.kserve-python.XXXXXX")
# the sources as the Dockerfiles COPY them (the module cache is read-only; uv builds the local packages from here)
for d in kserve storage sklearnserver storage-initializer; do cp -r "$src/$d" "$tmp/$d"; done
chmod -R u+w "$tmp"
chmod +x "$tmp/storage-initializer/scripts/initializer-entrypoint"
# sklearnserver image: one venv; sklearnserver's lock includes kserve and kserve-storage (directory sources)
UV_PROJECT_ENVIRONMENT="$tmp/sklearnserver/venv" "$uv" sync -q --frozen --no-dev --no-editable \
  --python "$python" --project "$tmp/sklearnserver"
# storage-initializer image: kserve-storage with its `confidential` extra
UV_PROJECT_ENVIRONMENT="$tmp/storage-initializer/venv" "$uv" sync -q --frozen --no-dev --no-editable \
  --extra confidential --python "$python" --project "$tmp/storage"
# storage/pyproject.toml has no [build-system] (a virtual project: sync installs its dependencies only); the
# Dockerfile then runs `uv pip install ".[confidential]"`, which builds it with the setuptools fallback
(cd "$tmp/storage" && "$uv" pip install -q --python "$tmp/storage-initializer/venv/bin/python" ".[confidential]")
# the venvs must work at their final path: uv writes absolute paths into scripts and pyvenv.cfg
grep -rlF "$tmp" "$tmp"/*/venv/bin "$tmp"/*/venv/pyvenv.cfg 2>/dev/null | xargs -r sed -i "s#$tmp#$out#g"
rm -rf "$out"; mv "$tmp" "$out"
PYTHONPATH="$out/sklearnserver" "$out/sklearnserver/venv/bin/python" -c 'import sklearnserver, kserve, kserve_storage, sklearn; print("sklearnserver ok, scikit-learn", sklearn.__version__)'
"$out/storage-initializer/venv/bin/python" -c 'import kserve_storage; print("storage-initializer ok")'
touch "$out/.complete"
