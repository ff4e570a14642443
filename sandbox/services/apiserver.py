"""kube-apiserver built from k8s.io/kubernetes: TLS, client-certificate authentication, RBAC,
service-account token signing, the ServiceAccount admission plugin (Pods get their ``kube-api-access-*``
volume), and the aggregation layer (front-proxy client certificate and request-header CA, as kubeadm sets it
up) so metrics-server serves ``metrics.k8s.io``. After it is healthy the pinned CRDs are installed and waited
for, and each control-plane component's kubeconfig is written (``kubeconfigs/<component>.kubeconfig``).

With the node network running (service ``net``) the apiserver advertises the network's host-side address and
its endpoint reconciler keeps the ``kubernetes`` Service's endpoints on it, as on a real cluster; without it,
it advertises 127.0.0.1 and the reconciler is off.
"""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import yaml

from sandbox.paths import binary
from sandbox.pki import COMPONENTS, Pki, ensure_pki
from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTEXT = "kaiops-sandbox"
COMPONENT_KUBECONFIGS = ("controller-manager", "scheduler")  # host processes: server 127.0.0.1


class KubeApiserver(Service):
    name = "kube-apiserver"
    needs = ("etcd", "net")  # net: the advertised address (host side of the node network's veth)
    ready_timeout = 120.0

    def launch(self, state: SandboxState) -> Launch:
        host_ip = advertise_address(state)
        pki = ensure_pki(state.dir / "pki", extra_ips=(host_ip,) if host_ip else ())
        port = self.port(state, "https")
        url = f"https://127.0.0.1:{port}"
        etcd = state.services["etcd"].url
        if host_ip:
            # the lease reconciler writes the kubernetes Service's endpoints (host_ip:port, the forwarder)
            endpoints = [f"--advertise-address={host_ip}", "--endpoint-reconciler-type=lease"]
        else:
            endpoints = ["--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none"]
        cmd = [
            str(binary("kube-apiserver")),
            f"--etcd-servers={etcd}",
            f"--secure-port={port}",
            "--bind-address=127.0.0.1",
            *endpoints,
            f"--cert-dir={self.data_dir(state)}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            # aggregation layer (kubeadm's flags): the apiserver proxies metrics.k8s.io to metrics-server
            f"--requestheader-client-ca-file={pki.front_proxy_ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.front_proxy_client_cert}",
            f"--proxy-client-key-file={pki.front_proxy_client_key}",
            # the aggregator dials the APIService's endpoint address, not its ClusterIP: the host has no
            # kube-proxy rules (they live in the node network namespace)
            "--enable-aggregator-routing=true",
            # logs, exec and port-forward through the node agent's kubelet API (client cert, as kubeadm's)
            f"--kubelet-client-certificate={pki.client_cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={pki.client_key('apiserver-kubelet-client')}",
            "--kubelet-preferred-address-types=InternalIP",
            "--v=0",
        ]
        return Launch(cmd=cmd, url=url, ports={"https": port})

    def _ssl(self, state: SandboxState) -> ssl.SSLContext:
        pki = Pki(state.dir / "pki")
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        return ctx

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/readyz", context=self._ssl(state))

    def after_ready(self, state: SandboxState, record: ServiceRecord) -> None:
        from sandbox import crd_install  # imports the kubernetes client: only when needed

        write_kubeconfig(state, record.url)
        for component in COMPONENT_KUBECONFIGS:
            write_component_kubeconfig(state, component, record.url)
        crd_install.install_crds(str(state.kubeconfig))

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        return {"KUBECONFIG": str(state.kubeconfig)}


def node_network(state: SandboxState):
    """The node network's :class:`sandbox.node.network.NetAddresses` while the ``net`` service is recorded in
    ``state``, else None (an apiserver-only sandbox keeps 127.0.0.1)."""
    if "net" not in state.services:
        return None
    from sandbox.services.net import addresses  # the node network service (owned by the node agent)

    return addresses(state)


def advertise_address(state: SandboxState) -> str | None:
    """The node network's host-side address when the ``net`` service is recorded, else None."""
    addresses = node_network(state)
    return addresses.host_ip if addresses else None


def component_kubeconfig(state: SandboxState, component: str) -> Path:
    """Path of ``component``'s kubeconfig (``kubeconfigs/<component>.kubeconfig`` in the instance)."""
    return state.dir / "kubeconfigs" / f"{component}.kubeconfig"


def write_kubeconfig(state: SandboxState, server: str) -> None:
    """Write the instance's kubeconfig: context ``kaiops-sandbox``, admin client certificate (mode 0600)."""
    _write_config(state.kubeconfig, server, Pki(state.dir / "pki"), "admin", "kaiops-admin")


def write_component_kubeconfig(state: SandboxState, component: str, server: str) -> Path:
    """Write ``component``'s kubeconfig (its client certificate from :mod:`sandbox.pki`) for ``server``; return it.

    Args:
        component: a key of :data:`sandbox.pki.COMPONENTS` (``controller-manager``, ``scheduler``, ...).
        server: the apiserver URL this component uses (127.0.0.1 on the host; the forwarder on the node
            network's host-side address for kube-proxy inside the node network namespace).
    """
    path = component_kubeconfig(state, component)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_config(path, server, Pki(state.dir / "pki"), component, COMPONENTS[component][0])
    return path


def _write_config(path: Path, server: str, pki: Pki, component: str, user: str) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(pki.client_cert(component)),
            "client-key-data": b64(pki.client_key(component))}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
