"""Where the sandbox keeps binaries, CRDs and per-instance state (outside the repository)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from tasks.crds import REPO_ROOT, cache_root

BUILD_DIR = REPO_ROOT / "sandbox" / "build"


def instance_name() -> str:
    """The sandbox instance in use: ``$KAIOPS_SANDBOX`` or ``default`` (tests use ``test``)."""
    return os.environ.get("KAIOPS_SANDBOX", "default")


def instance_dir(name: str | None = None) -> Path:
    """Directory of one sandbox instance: state file, kubeconfig, certificates, data and logs."""
    path = cache_root() / "sandbox" / (name or instance_name())
    path.mkdir(parents=True, exist_ok=True)
    return path


def binary(command: str) -> Path:
    """Path of a built Go binary in the cache (``kube-apiserver``, ``kubectl``, ``kube-controller-manager``,
    ``kube-scheduler``, ``kube-proxy``, ``coredns``, ``metrics-server``, ``etcd``, ``fake-gcs-server``,
    ``kuberay-operator``, ``kserve-manager``, ``kserve-localmodel``, ``kserve-localmodelnode``,
    ``knative-controller``, ``knative-webhook``, ``knative-autoscaler``, ``knative-activator``, ``knative-queue``).

    The version is the one pinned under ``sandbox/build``; the binary exists once ``make binaries`` ran.
    """
    return cache_root() / "bin" / f"{command}-{binary_version(command)}"


def binary_version(command: str) -> str:
    """The pinned version of a sandbox binary, read from ``sandbox/build``."""
    if command in ("kube-apiserver", "kubectl", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
        return (BUILD_DIR / "k8s" / "RELEASE").read_text().strip()
    if command in ("kserve-manager", "kserve-localmodel", "kserve-localmodelnode"):
        return (BUILD_DIR / "kserve" / "RELEASE").read_text().strip()
    if command.startswith("knative-"):  # knative-controller, -webhook, -autoscaler, -activator, -queue
        return (BUILD_DIR / "knative" / "RELEASE").read_text().strip()
    if command == "etcd":
        for line in (BUILD_DIR / "etcd" / "go.mod").read_text().splitlines():
            parts = line.split()
            if "go.etcd.io/etcd/server/v3" in parts:
                return parts[parts.index("go.etcd.io/etcd/server/v3") + 1]
    if command == "coredns":
        for line in (BUILD_DIR / "coredns" / "go.mod").read_text().splitlines():
            parts = line.split()
            if "github.com/coredns/coredns" in parts:
                return parts[parts.index("github.com/coredns/coredns") + 1]
    if command in ("prometheus-operator", "prometheus-config-reloader", "prometheus"):
        module = "github.com/prometheus/prometheus" if command == "prometheus" else \
            "github.com/prometheus-operator/prometheus-operator"
        for line in (BUILD_DIR / "prometheus-operator" / "go.mod").read_text().splitlines():
            parts = line.split()
            if module in parts:
                version = parts[parts.index(module) + 1]
                if command == "prometheus":  # module v0.3MM.P is release v3.MM.P (build.sh names it so)
                    minor, patch = version.removeprefix("v0.3").split(".")
                    return f"v3.{int(minor)}.{patch}"
                return version
    variables = {"fake-gcs-server": "fake_gcs_version=", "metrics-server": "metrics_server_version=",
                 "kuberay-operator": "kuberay_version="}
    if command in variables:
        for line in (BUILD_DIR / "build.sh").read_text().splitlines():
            if line.startswith(variables[command]):
                return line.split("=", 1)[1].strip()
    raise KeyError(command)


def short_link(real: Path, prefix: str) -> Path:
    """Return a short symlink ``/tmp/<prefix>-<hash>`` to directory ``real`` (created if missing).

    Ray puts AF_UNIX sockets under ``<temp dir>/session_<date>_<pid>/sockets/plasma_store`` and refuses paths
    over 107 bytes; an instance directory (``~/.cache/kaiops/sandbox/<name>``) can be too deep for that.
    """
    real.mkdir(parents=True, exist_ok=True)
    link = Path(tempfile.gettempdir()) / f"{prefix}-{hashlib.sha256(str(real).encode()).hexdigest()[:8]}"
    if not (link.is_symlink() and link.resolve() == real.resolve()):
        link.unlink(missing_ok=True)
        link.symlink_to(real)
    return link


def go_module_dir(module: str, version: str) -> Path:
    """Go module ``module`` at ``version`` in the Go module cache, downloaded through the proxy if missing
    (its release manifests, RBAC and sources are read from there; nothing is copied into the repository).

    Raises:
        RuntimeError: ``go mod download`` failed (no network to the proxy, unknown version).
    """
    proc = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True,
                          text=True, check=False, env={**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "on"},
                          cwd="/")
    info = json.loads(proc.stdout or "{}")
    if not info.get("Dir"):
        raise RuntimeError(f"go mod download {module}@{version} failed: {info.get('Error') or proc.stderr[-500:]}")
    return Path(info["Dir"])
