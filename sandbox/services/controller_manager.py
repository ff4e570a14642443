"""kube-controller-manager built from k8s.io/kubernetes (same release as the apiserver): the real Deployment,
ReplicaSet, Job, CronJob, garbage-collector, namespace, ServiceAccount/token, root-ca-cert-publisher and
EndpointSlice controllers (``--controllers=*``, upstream's default set).

It authenticates with its own client certificate (user ``system:kube-controller-manager``, bound by bootstrap
RBAC) and, with ``--use-service-account-credentials``, runs each controller under its own ServiceAccount as
kubeadm does. Leader election is off (one instance per sandbox); it serves health on 127.0.0.1 only.
"""

from __future__ import annotations

import ssl

from sandbox.paths import binary
from sandbox.pki import Pki
from sandbox.services.apiserver import component_kubeconfig
from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"


def loopback_tls() -> ssl.SSLContext:
    """TLS context for a component's own health endpoint on 127.0.0.1: its self-signed serving certificate
    (written by the component into ``--cert-dir``) is not verified; only /healthz is read through it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class KubeControllerManager(Service):
    name = "kube-controller-manager"
    needs = ("kube-apiserver",)
    ready_timeout = 90.0

    def launch(self, state: SandboxState) -> Launch:
        pki = Pki(state.dir / "pki")
        kubeconfig = component_kubeconfig(state, "controller-manager")
        port = self.port(state, "https")
        cmd = [
            str(binary("kube-controller-manager")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.data_dir(state)}",
            "--leader-elect=false",
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allocate-node-cidrs=false",  # the node agent sets its Node's podCIDR from the node network
            "--v=0",
        ]
        return Launch(cmd=cmd, url=f"https://127.0.0.1:{port}", ports={"https": port})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/healthz", context=loopback_tls())
