"""kube-scheduler built from k8s.io/kubernetes (same release as the apiserver), default profile: binds Pods to
the node agent's Nodes by their real filters and scores (resources, taints/tolerations, affinity, ...).

It authenticates with its own client certificate (user ``system:kube-scheduler``, bound by bootstrap RBAC).
Leader election is off; it serves health on 127.0.0.1 only.
"""

from __future__ import annotations

from sandbox.paths import binary
from sandbox.services.apiserver import component_kubeconfig
from sandbox.services.base import Launch, Service, http_ok
from sandbox.services.controller_manager import loopback_tls
from sandbox.state import SandboxState, ServiceRecord


class KubeScheduler(Service):
    name = "kube-scheduler"
    needs = ("kube-apiserver",)
    ready_timeout = 90.0

    def launch(self, state: SandboxState) -> Launch:
        kubeconfig = component_kubeconfig(state, "scheduler")
        port = self.port(state, "https")
        cmd = [
            str(binary("kube-scheduler")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.data_dir(state)}",
            "--leader-elect=false",
            "--v=0",
        ]
        return Launch(cmd=cmd, url=f"https://127.0.0.1:{port}", ports={"https": port})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/healthz", context=loopback_tls())
