"""kube-proxy built from k8s.io/kubernetes (same release as the apiserver), nftables mode, run inside the
instance's node network namespace (``ip netns exec``): Service ClusterIPs work for Pods, as on a real node.

Its kubeconfig points at the apiserver through the node network's forwarder (``https://<host_ip>:<port>``;
the serving certificate carries ``host_ip``), user ``system:kube-proxy`` (bound to ``system:node-proxier`` by
bootstrap RBAC). Conntrack settings are all 0 ("leave the kernel's value") so it writes no sysctl: several of
them (``nf_conntrack_max``) are global to the machine, not per network namespace. Its OOM score is left alone.

Its nftables table (``ip kube-proxy``, and ``ip6 kube-proxy`` when made) lives in the node network namespace
only. kube-proxy leaves it behind on exit, so :meth:`KubeProxy.cleanup` deletes it after the process stopped
(``kaiops sandbox down``); removing the namespace (service ``net``) removes it too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from sandbox.paths import binary
from sandbox.services.apiserver import component_kubeconfig, node_network, write_component_kubeconfig
from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord

HEALTHZ_PORT = 10256  # upstream's default; inside the node network namespace, so instances never collide
TABLES = (("ip", "kube-proxy"), ("ip6", "kube-proxy"))  # pkg/proxy/nftables: kubeProxyTable, per family


def proxy_config(kubeconfig: str, node_name: str, cluster_cidr: str, healthz_ip: str) -> dict:
    """The KubeProxyConfiguration (``kubeproxy.config.k8s.io/v1alpha1``) the sandbox runs with.

    Args:
        kubeconfig: path of kube-proxy's kubeconfig.
        node_name: the Node kube-proxy serves (its ``hostnameOverride``).
        cluster_cidr: the instance's pod range; traffic from it is "local" (``detectLocalMode: ClusterCIDR``).
        healthz_ip: address of the health endpoint inside the node network namespace (reachable from the host).
    Returns:
        A dict to dump as YAML. Conntrack values are explicit zeros: upstream's defaults (``maxPerCore`` 32768,
        ``tcpEstablishedTimeout`` 24h, ...) would make it write machine-global sysctls
        (cmd/kube-proxy/app/server_linux.go ``setupConntrack`` skips zero values).
    """
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": kubeconfig},
        "hostnameOverride": node_name,
        "clusterCIDR": cluster_cidr,
        "detectLocalMode": "ClusterCIDR",
        "healthzBindAddress": f"{healthz_ip}:{HEALTHZ_PORT}",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": ["primary"],
        "oomScoreAdj": 0,
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
                      "tcpBeLiberal": False, "udpTimeout": "0s", "udpStreamTimeout": "0s"},
        "nftables": {"syncPeriod": "30s", "minSyncPeriod": "1s"},
    }


def first_node_name(state: SandboxState) -> str:
    """Name of the first Node the node agent registers (``sandbox/node/nodes.yaml`` or ``$KAIOPS_SANDBOX_NODES``).

    Every Node of an instance shares its one node network namespace, so one kube-proxy serves them all.
    """
    from sandbox.node.agent import NODES_FILE, load_nodes

    return load_nodes(Path(os.environ.get("KAIOPS_SANDBOX_NODES", NODES_FILE)), state.dir.name)[0]["name"]


class KubeProxy(Service):
    name = "kube-proxy"
    needs = ("net", "kube-apiserver")
    ready_timeout = 60.0

    def launch(self, state: SandboxState) -> Launch:
        net = node_network(state)
        if net is None:
            raise RuntimeError("kube-proxy needs the node network (service `net`) recorded in the sandbox state")
        api_port = state.services["kube-apiserver"].ports["https"]
        kubeconfig = write_component_kubeconfig(state, "kube-proxy", f"https://{net.host_ip}:{api_port}")
        config = self.data_dir(state) / "config.yaml"
        config.write_text(yaml.safe_dump(
            proxy_config(str(kubeconfig), first_node_name(state), net.pod_cidr, net.node_ip), sort_keys=False))
        cmd = ["ip", "netns", "exec", net.netns, str(binary("kube-proxy")), f"--config={config}", "--v=0"]
        return Launch(cmd=cmd, url=f"http://{net.node_ip}:{HEALTHZ_PORT}", ports={})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/livez")

    def cleanup(self, state: SandboxState) -> None:
        """Delete kube-proxy's nftables tables in the node network namespace (only those; nothing else)."""
        net = node_network(state)
        if net is None or net.netns not in _netns_names():
            return
        for family, table in TABLES:
            subprocess.run(["ip", "netns", "exec", net.netns, "nft", "delete", "table", family, table],
                           capture_output=True, check=False)


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


__all__ = ["KubeProxy", "component_kubeconfig", "proxy_config"]
