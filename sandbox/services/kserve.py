"""The sandbox KServe controller (``python -m sandbox.kserve``): InferenceServices that really serve.

Healthy once its queue-proxy metrics endpoint answers, which it opens only after the first list of
InferenceServices succeeded. Model servers and routers are its children (same process group), so stopping
the service stops them.

Cannot run beside the real KServe manager (service ``kserve-controller``): starting this one stops that one and
removes its webhook configurations (see :attr:`sandbox.services.base.Service.conflicts`).
"""

from __future__ import annotations

import sys

from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord


class KServe(Service):
    name = "kserve"
    needs = ("kube-apiserver", "prometheus")
    # the real KServe manager (with or without Knative): one InferenceService controller at a time
    conflicts = ("kserve-controller", "kserve-serverless")
    ready_timeout = 60.0

    def launch(self, state: SandboxState) -> Launch:
        self.data_dir(state)
        port = self.port(state, "metrics")
        env = {}
        gcs = state.services.get("gcs")
        if gcs is not None:
            env["STORAGE_EMULATOR_HOST"] = gcs.url
        cmd = [sys.executable, "-m", "sandbox.kserve", "--instance-dir", str(state.dir), "--metrics-port", str(port)]
        return Launch(cmd=cmd, url=f"http://127.0.0.1:{port}", ports={"metrics": port}, env=env)

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/metrics")
