"""The sandbox gateway (``python -m sandbox.gateway``, see ``sandbox/gateway/``): Gateway API for the GatewayClass
``kaiops-sandbox`` and Knative Ingresses of class ``gateway.sandbox.kaiops.io``, one loopback port for every
HTTP listener and ExternalIP KIngress host (role ``http``), one for the KIngress cluster-local listener (role
``local``), per-backend metrics for Prometheus.

Healthy once its first sync of the Gateway API objects succeeded (``/healthz`` on the metrics port).
``kaiops sandbox env`` exports ``KAIOPS_GATEWAY_URL`` (send requests there with the route's ``Host``) and
``KAIOPS_GATEWAY_LOCAL_URL`` (the cluster-local listener). With the node network (``net``) running, Pods reach
both through Services ``kaiops-sandbox/gateway`` and ``kaiops-sandbox/gateway-internal`` (port 80).
"""

from __future__ import annotations

import sys

from sandbox.procs import free_port
from sandbox.services.apiserver import node_network
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
        local = self.port(state, "local")
        while local in (port, metrics):
            local = free_port()
        cmd = [sys.executable, "-m", "sandbox.gateway", f"--kubeconfig={state.kubeconfig}", f"--port={port}",
               f"--metrics-port={metrics}", f"--local-port={local}", f"--instance-dir={state.dir}"]
        net = node_network(state)
        if net is not None:  # the `net` forwarder serves our ports on the host side of the veth
            cmd.append(f"--host-ip={net.host_ip}")
        return Launch(cmd=cmd, url=f"http://127.0.0.1:{port}",
                      ports={"http": port, "metrics": metrics, "local": local}, env={"KUBECONFIG": None})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"http://127.0.0.1:{record.ports['metrics']}/healthz")

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        env = {"KAIOPS_GATEWAY_URL": record.url}
        if "local" in record.ports:
            env["KAIOPS_GATEWAY_LOCAL_URL"] = f"http://127.0.0.1:{record.ports['local']}"
        return env

    def cleanup(self, state: SandboxState) -> None:
        (state.dir / "prometheus" / "targets" / "gateway.json").unlink(missing_ok=True)
