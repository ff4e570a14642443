"""The LocalModelCache status emulation (``sandbox/localmodel``): downloads node copies with KServe's code.

Healthy once it has listed LocalModelCaches (it writes its pid to ``localmodel/healthy``).
"""

from __future__ import annotations

import sys

from sandbox.services.base import Launch, Service
from sandbox.state import SandboxState, ServiceRecord


class LocalModel(Service):
    name = "localmodel"
    needs = ("kube-apiserver",)
    ready_timeout = 60.0

    def _health_file(self, state: SandboxState):
        return self.data_dir(state) / "healthy"

    def launch(self, state: SandboxState) -> Launch:
        health = self._health_file(state)
        health.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "sandbox.localmodel", f"--kubeconfig={state.kubeconfig}",
               f"--root={self.data_dir(state)}", f"--health-file={health}"]
        return Launch(cmd=cmd, url=f"file://{health}", ports={})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        health = self._health_file(state)
        return health.exists() and health.read_text().strip() == str(record.pid)
