# kaiops: `make demo` runs the demo on the local sandbox, `make test` runs every test. Both do all set-up.
# Caches live outside the repository ($(KAIOPS_CACHE)); a second run reuses them.

SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.9
export KAIOPS_CACHE ?= $(HOME)/.cache/kaiops
export UV_CACHE_DIR ?= $(KAIOPS_CACHE)/uv-cache
UV := $(KAIOPS_CACHE)/uv-$(UV_VERSION)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)

.PHONY: setup venv binaries prometheus chromium crds demo test lint lock deploy sandbox-up sandbox-down clean

setup: venv binaries prometheus crds chromium

$(UV):
	$(PYTHON) -m venv $(KAIOPS_CACHE)/uv-$(UV_VERSION)
	$(KAIOPS_CACHE)/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION)

venv: $(STAMP)
$(STAMP): $(UV) requirements.lock pyproject.toml
	[ -x $(PY) ] || $(UV) venv -q --python $(PYTHON) $(VENV)
	# the registry first; when it cannot be reached, the pinned wheels already in the uv cache
	VIRTUAL_ENV=$(VENV) $(UV) pip sync -q --compile-bytecode requirements.lock || { \
	  echo "package index unreachable: installing requirements.lock from the uv cache (--offline)"; \
	  VIRTUAL_ENV=$(VENV) $(UV) pip sync -q --offline --compile-bytecode requirements.lock; }
	VIRTUAL_ENV=$(VENV) $(UV) pip install -q --no-deps -e . || \
	  VIRTUAL_ENV=$(VENV) $(UV) pip install -q --offline --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

binaries:
	sandbox/build/build.sh all

prometheus:  # Debian packages prometheus, nftables (kube-proxy's nftables mode), busybox-static (the node's busybox image), redis-server (GCS fault tolerance)
	@{ command -v prometheus && command -v nft && test -x /bin/busybox && command -v redis-server; } >/dev/null || { \
	  echo "installing Debian packages prometheus nftables busybox-static redis-server"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q prometheus nftables busybox-static redis-server >/dev/null || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q prometheus nftables busybox-static redis-server; }; }

chromium:  # headless browser for tests/e2e/test_prefect_ui.py (Debian packages chromium + chromium-driver)
	@command -v chromium >/dev/null || { \
	  echo "installing Debian packages chromium chromium-driver"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; }; }

crds: venv
	$(PY) -c "from tasks.crds import ensure_crds; ensure_crds()"

demo: setup
	$(VENV)/bin/kaiops demo

test: setup lint
	$(PY) -m pytest

lint: venv  # ruff, the layer contracts (pyproject.toml [tool.importlinter]) and mypy (strict on tasks/ and configs/)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

lock: $(UV)
	$(UV) pip compile -q pyproject.toml --extra sandbox --extra dev --python-version 3.11 -o requirements.lock \
	  --custom-compile-command "make lock"

deploy: setup
	$(VENV)/bin/kaiops deploy

sandbox-up: setup
	$(VENV)/bin/kaiops sandbox up

sandbox-down:
	$(VENV)/bin/kaiops sandbox down

clean: sandbox-down
	rm -rf $(VENV) demo-out
