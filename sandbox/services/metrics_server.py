"""metrics-server (``sigs.k8s.io/metrics-server``, pinned in ``sandbox/build/build.sh``): serves
``metrics.k8s.io/v1beta1`` through the apiserver's aggregation layer from the node agent's kubelet API
(``/metrics/resource``), so ``kubectl top pods|nodes`` works.

Objects are the release's own ``manifests/base`` (read from the module at the pinned version, never copied):
RBAC for ServiceAccount ``kube-system/metrics-server`` and the APIService ``v1beta1.metrics.k8s.io``. Unlike the
release it runs as a host process, not a Pod, listening on 127.0.0.1; the node network's forwarder serves the
same port on the host-side address, so the ``metrics-server`` Service has no selector and one EndpointSlice
(managed by ``kaiops-sandbox``) naming that address, which the apiserver dials directly
(``--enable-aggregator-routing``). Flags as the release's
Deployment (``--kubelet-use-node-status-port``, ``--metric-resolution=15s``), with the kubelet address type
``InternalIP`` and the kubelet's serving certificate verified against the instance CA (client certificate
``system:metrics-server`` towards the kubelet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sandbox.paths import binary, binary_version, go_module_dir
from sandbox.pki import Pki
from sandbox.services.apiserver import node_network
from sandbox.services.base import Launch, Service, http_ok, token_kubeconfig
from sandbox.services.controller_manager import loopback_tls
from sandbox.state import SandboxState, ServiceRecord

MODULE = "sigs.k8s.io/metrics-server"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "metrics-server"
FIELD_MANAGER = "kaiops-sandbox"
TOKEN_SECONDS = 7 * 24 * 3600
LABELS = {"k8s-app": "metrics-server"}  # manifests/base/kustomization.yaml labels


def module_dir(version: str) -> Path:
    """The metrics-server module at ``version`` in the Go module cache (see :func:`sandbox.paths.go_module_dir`)."""
    return go_module_dir(MODULE, version)


def release_objects(module: Path) -> list[dict[str, Any]]:
    """The release's RBAC and APIService (``manifests/base/rbac.yaml``, ``apiservice.yaml``) with its labels."""
    objects = []
    for name in ("rbac.yaml", "apiservice.yaml"):
        for doc in yaml.safe_load_all((module / "manifests" / "base" / name).read_text()):
            if doc:
                meta = doc.setdefault("metadata", {})
                meta["labels"] = {**(meta.get("labels") or {}), **LABELS}
                objects.append(doc)
    return objects


def endpoint_objects(host_ip: str, port: int) -> list[dict[str, Any]]:
    """Service ``kube-system/metrics-server`` (no selector) and its EndpointSlice ``host_ip:port``."""
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "metrics-server", "namespace": NAMESPACE, "labels": LABELS},
         "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port,
                             "appProtocol": "https"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "metrics-server-sandbox", "namespace": NAMESPACE,
                      "labels": {"kubernetes.io/service-name": "metrics-server",
                                 "endpointslice.kubernetes.io/managed-by": FIELD_MANAGER, **LABELS}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [host_ip], "conditions": {"ready": True}}],
         "ports": [{"name": "https", "port": port, "protocol": "TCP", "appProtocol": "https"}]},
    ]


def _install(admin_kubeconfig: str, objects: list[dict[str, Any]]) -> str:
    """Apply ``objects``; return a token of ServiceAccount kube-system/metrics-server (TokenRequest)."""
    from kubernetes import client

    from tasks import kube

    dyn = kube.connect(admin_kubeconfig)
    for obj in objects:
        kube.apply(dyn, obj, field_manager=FIELD_MANAGER, force=True)
    api = client.CoreV1Api(dyn.client)
    body = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[], expiration_seconds=TOKEN_SECONDS))
    return api.create_namespaced_service_account_token(SERVICE_ACCOUNT, NAMESPACE, body).status.token


class MetricsServer(Service):
    name = "metrics-server"
    needs = ("net", "kube-apiserver")
    ready_timeout = 60.0

    def launch(self, state: SandboxState) -> Launch:
        net = node_network(state)
        if net is None:
            raise RuntimeError("metrics-server needs the node network (service `net`) recorded in the sandbox state")
        port = self.port(state, "https")
        objects = release_objects(module_dir(binary_version("metrics-server"))) + endpoint_objects(net.host_ip, port)
        token = _install(str(state.kubeconfig), objects)
        home = self.data_dir(state)
        kubeconfig = token_kubeconfig(state.kubeconfig, home / "kubeconfig", SERVICE_ACCOUNT, token)
        pki = Pki(state.dir / "pki")
        cmd = [
            str(binary("metrics-server")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",  # host_ip:port is the node network's forwarder
            f"--secure-port={port}",
            f"--cert-dir={home / 'certs'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--kubelet-use-node-status-port",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            f"--kubelet-client-certificate={pki.client_cert('metrics-server')}",
            f"--kubelet-client-key={pki.client_key('metrics-server')}",
            "--metric-resolution=15s",
        ]
        return Launch(cmd=cmd, url=f"https://127.0.0.1:{port}", ports={"https": port}, env={"KUBECONFIG": None})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/livez", context=loopback_tls())

    def cleanup(self, state: SandboxState) -> None:
        """Unregister the APIService once metrics-server stopped (while the apiserver still runs).

        An APIService whose backend is gone makes discovery fail, and the namespace controller then stops
        finishing namespace deletions (condition ``NamespaceDeletionDiscoveryFailure``): uninstalling
        metrics-server on a cluster means deleting its APIService too.
        """
        api = state.services.get("kube-apiserver")
        if api is None or not state.kubeconfig.exists():
            return
        from tasks import kube

        try:
            dyn = kube.connect(str(state.kubeconfig))
            kube.resource_for(dyn, "apiregistration.k8s.io/v1", "APIService").delete(
                name="v1beta1.metrics.k8s.io", _request_timeout=10)
        except Exception:  # not registered, or the apiserver is already gone: nothing to unregister
            return
