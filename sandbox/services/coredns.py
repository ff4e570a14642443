"""CoreDNS (``github.com/coredns/coredns``, pinned in ``sandbox/build/coredns``): the cluster DNS for
``cluster.local`` behind the ``kube-dns`` Service at 10.96.0.10, as kubeadm deploys it, with two differences:

- it runs as a process inside the node network namespace (``ip netns exec``), listening on the pod bridge's
  gateway address, instead of as a Pod; the ``kube-dns`` Service therefore has no selector and one
  EndpointSlice (managed by ``kaiops-sandbox``) naming that address. kube-proxy's rules send 10.96.0.10:53 there.
- no ``forward`` plugin: names outside ``cluster.local`` (and the reverse zones) are answered NXDOMAIN, so no
  query leaves the machine.

It reads the API as ServiceAccount ``kube-system/coredns`` with upstream's ``system:coredns`` ClusterRole
(coredns/deployment ``kubernetes/coredns.yaml.sed``), through the node network's forwarder to the apiserver.
Healthy once its ``ready`` plugin answers (the kubernetes plugin has synced).
"""

from __future__ import annotations

from typing import Any

from sandbox.paths import binary
from sandbox.services.apiserver import node_network
from sandbox.services.base import Launch, Service, http_ok, token_kubeconfig
from sandbox.state import SandboxState, ServiceRecord

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "coredns"
FIELD_MANAGER = "kaiops-sandbox"
CLUSTER_DOMAIN = "cluster.local"
TOKEN_SECONDS = 7 * 24 * 3600
HEALTH_PORT, READY_PORT, METRICS_PORT = 8080, 8181, 9153  # upstream's ports, inside the node netns


def corefile(kubeconfig: str, listen_ip: str, probe_ip: str) -> str:
    """The Corefile: kubeadm's default server block minus ``forward``, plus an NXDOMAIN catch-all.

    Args:
        kubeconfig: path of CoreDNS's kubeconfig (context ``coredns``).
        listen_ip: address DNS is served on (the pod gateway in the node netns).
        probe_ip: address of the health/ready endpoints (reachable from the host).
    """
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {listen_ip}
    errors
    health {probe_ip}:{HEALTH_PORT} {{
        lameduck 5s
    }}
    ready {probe_ip}:{READY_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} coredns
        pods insecure
        ttl 30
    }}
    prometheus 127.0.0.1:{METRICS_PORT}
    cache 30
    reload
    loadbalance
}}
.:53 {{
    bind {listen_ip}
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""


def dns_objects(gateway: str, dns_ip: str) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole/Binding ``system:coredns``, Service ``kube-dns`` and its EndpointSlice."""
    labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    ports = [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", METRICS_PORT, "TCP")]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:coredns", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
         "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}]},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": NAMESPACE, "labels": labels},
         "spec": {"clusterIP": dns_ip,
                  "ports": [{"name": n, "port": p, "targetPort": p, "protocol": proto} for n, p, proto in ports]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "kube-dns-sandbox", "namespace": NAMESPACE,
                      "labels": {"kubernetes.io/service-name": "kube-dns",
                                 "endpointslice.kubernetes.io/managed-by": FIELD_MANAGER}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [gateway], "conditions": {"ready": True}}],
         "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]},
    ]


def _install(admin_kubeconfig: str, gateway: str, dns_ip: str) -> str:
    """Apply :func:`dns_objects`; return a token of ServiceAccount kube-system/coredns (TokenRequest)."""
    from kubernetes import client

    from tasks import kube

    dyn = kube.connect(admin_kubeconfig)
    for obj in dns_objects(gateway, dns_ip):
        kube.apply(dyn, obj, field_manager=FIELD_MANAGER, force=True)
    api = client.CoreV1Api(dyn.client)
    body = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[], expiration_seconds=TOKEN_SECONDS))
    return api.create_namespaced_service_account_token(SERVICE_ACCOUNT, NAMESPACE, body).status.token


class CoreDns(Service):
    name = "coredns"
    needs = ("net", "kube-apiserver", "kube-proxy")
    ready_timeout = 60.0

    def launch(self, state: SandboxState) -> Launch:
        net = node_network(state)
        if net is None:
            raise RuntimeError("coredns needs the node network (service `net`) recorded in the sandbox state")
        token = _install(str(state.kubeconfig), net.gateway, net.dns_ip)
        home = self.data_dir(state)
        api_port = state.services["kube-apiserver"].ports["https"]
        kubeconfig = token_kubeconfig(state.kubeconfig, home / "kubeconfig", SERVICE_ACCOUNT, token,
                                      server=f"https://{net.host_ip}:{api_port}")
        conf = home / "Corefile"
        conf.write_text(corefile(str(kubeconfig), net.gateway, net.node_ip))
        cmd = ["ip", "netns", "exec", net.netns, str(binary("coredns")), "-conf", str(conf)]
        return Launch(cmd=cmd, url=f"dns://{net.dns_ip}:53", ports={})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        net = node_network(state)
        return net is not None and http_ok(f"http://{net.node_ip}:{READY_PORT}/ready")
