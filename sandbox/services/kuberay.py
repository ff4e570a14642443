"""The KubeRay emulation (``sandbox/kuberay``): a RayCluster controller with real local Ray heads.

Healthy once it has listed RayClusters on the apiserver (it writes its pid to ``kuberay/healthy``). Its Ray
heads are its children, in its process group, so stopping the service stops them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sandbox.paths import short_link
from sandbox.services.base import Launch, Service
from sandbox.state import SandboxState, ServiceRecord


class KubeRay(Service):
    name = "kuberay"
    needs = ("kube-apiserver",)
    ready_timeout = 60.0

    def _health_file(self, state: SandboxState):
        return self.data_dir(state) / "healthy"

    def launch(self, state: SandboxState) -> Launch:
        health = self._health_file(state)
        health.unlink(missing_ok=True)
        root = short_root(state)
        cmd = [sys.executable, "-m", "sandbox.kuberay", f"--kubeconfig={state.kubeconfig}", f"--root={root}",
               f"--health-file={health}"]
        return Launch(cmd=cmd, url=f"file://{health}", ports={})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        health = self._health_file(state)
        return health.exists() and health.read_text().strip() == str(record.pid)


def short_root(state: SandboxState) -> Path:
    """``<instance dir>/kr`` through a short link (see :func:`sandbox.paths.short_link`)."""
    return short_link(state.dir / "kr", "kr")
