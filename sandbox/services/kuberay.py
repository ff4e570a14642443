"""The KubeRay emulation (``sandbox/kuberay``): a RayCluster controller with real local Ray heads.

Healthy once it has listed RayClusters on the apiserver (it writes its pid to ``kuberay/healthy``). Its Ray
heads are its children, in its process group, so stopping the service stops them.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.paths import short_link
from sandbox.services.base import ControllerService
from sandbox.state import SandboxState


class KubeRay(ControllerService):
    name = "kuberay"
    module = "sandbox.kuberay"

    def root(self, state: SandboxState) -> Path:
        """``<instance dir>/kr`` through a short link: Ray's socket paths must fit 107 bytes."""
        return short_link(state.dir / "kr", "kr")
