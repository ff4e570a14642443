"""The sandbox gateway (``python -m sandbox.gateway``, see ``sandbox/gateway/``): Gateway API for the GatewayClass
``kaiops-sandbox``, one loopback port for every HTTP listener, per-backend metrics for Prometheus.

Healthy once its first sync of the Gateway API objects succeeded (``/healthz`` on the metrics port).
``kaiops sandbox env`` exports ``KAIOPS_GATEWAY_URL`` (send requests there with the route's ``Host``).
"""

from __future__ import annotations

import sys

from sandbox.procs import free_port
from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord


class Gateway(Service):
    name = "gateway"
    needs = ("kube-apiserver",)
    ready_timeout = 60.0

    def launch(self, state: SandboxState) -> Launch:
        self.data_dir(state)
        port = self.port(state, "http")
        metrics = self.port(state, "metrics")
        while metrics == port:
            metrics = free_port()
        cmd = [sys.executable, "-m", "sandbox.gateway", f"--kubeconfig={state.kubeconfig}", f"--port={port}",
               f"--metrics-port={metrics}", f"--instance-dir={state.dir}"]
        return Launch(cmd=cmd, url=f"http://127.0.0.1:{port}", ports={"http": port, "metrics": metrics},
                      env={"KUBECONFIG": None})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"http://127.0.0.1:{record.ports['metrics']}/healthz")

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        return {"KAIOPS_GATEWAY_URL": record.url}

    def cleanup(self, state: SandboxState) -> None:
        (state.dir / "prometheus" / "targets" / "gateway.json").unlink(missing_ok=True)
