"""The sandbox's control plane is the real one: kube-controller-manager (namespace deletion, garbage collection,
Deployments/ReplicaSets, ServiceAccounts, root CA publisher, EndpointSlices), kube-scheduler, the ServiceAccount
admission plugin, kube-proxy's nftables rules in the node network namespace, CoreDNS and metrics-server's
aggregated API. No mocks: every assertion is on what the upstream binaries did."""

from __future__ import annotations

import random
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox import launcher
from sandbox.pki import Pki
from sandbox.services.apiserver import node_network
from tasks import kube
from tasks.errors import NotFound

pytestmark = pytest.mark.integration

TIMEOUT = 60.0
CONTROL_PLANE = ("kube-controller-manager", "kube-scheduler", "node", "kube-proxy", "coredns")


@pytest.fixture(scope="module")
def dyn():
    """The admin client of a sandbox running (at least) the control plane and what it needs."""
    launcher.up(CONTROL_PLANE)
    return kube.connect(str(launcher.load().kubeconfig))


def eventually(check: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    """Call ``check`` until it returns a truthy value (returned) or ``timeout`` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except NotFound:
            last = None
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached within {timeout:.0f}s (last: {last!r})")


def gone(dyn, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
    try:
        kube.get(dyn, api_version, kind, name, namespace)
    except NotFound:
        return True
    return False


def items(dyn, api_version: str, kind: str, namespace: str, **selectors: str) -> list[dict]:
    resource = kube.resource_for(dyn, api_version, kind)
    return resource.get(namespace=namespace, **selectors).to_dict()["items"]


@pytest.fixture
def namespace(dyn) -> Iterator[str]:
    name = f"cp-{uuid.uuid4().hex[:8]}"
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.resource_for(dyn, "v1", "Namespace").delete(name=name)


def deployment(namespace: str, name: str, replicas: int = 2) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "main", "image": "busybox:1.36",
                                                       "command": ["sleep", "3600"]}]}}},
    }


def test_deleted_namespace_finishes_deleting(dyn) -> None:
    name = f"cp-del-{uuid.uuid4().hex[:6]}"
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    kube.apply(dyn, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": name},
                     "data": {"k": "v"}})
    kube.resource_for(dyn, "v1", "Namespace").delete(name=name)
    # the namespace controller empties it (the ConfigMap goes), removes the finalizer, and the object goes
    eventually(lambda: gone(dyn, "v1", "Namespace", name), what=f"namespace {name} deleted")
    assert gone(dyn, "v1", "ConfigMap", "c", name)


def test_new_namespace_gets_default_service_account_and_root_ca(dyn, namespace) -> None:
    sa = eventually(lambda: kube.get(dyn, "v1", "ServiceAccount", "default", namespace), what="default SA")
    assert sa["metadata"]["name"] == "default"
    cm = eventually(lambda: kube.get(dyn, "v1", "ConfigMap", "kube-root-ca.crt", namespace), what="root CA")
    ca = Pki(launcher.load().dir / "pki").ca_cert.read_text()
    assert cm["data"]["ca.crt"].strip() == ca.strip()


def test_deployment_gets_a_replicaset_and_pods(dyn, namespace) -> None:
    eventually(lambda: kube.get(dyn, "v1", "ServiceAccount", "default", namespace), what="default SA")
    kube.apply(dyn, deployment(namespace, "web", replicas=2))
    rs = eventually(lambda: items(dyn, "apps/v1", "ReplicaSet", namespace, label_selector="app=web"),
                    what="ReplicaSet")
    assert len(rs) == 1
    owner = rs[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Deployment", "web", True)
    def two_pods():
        pods = items(dyn, "v1", "Pod", namespace, label_selector="app=web")
        return pods if len(pods) == 2 else None

    pods = eventually(two_pods, what="2 Pods")
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["name"] == rs[0]["metadata"]["name"]
        # ServiceAccount admission: the default SA and its projected token volume, as on a real cluster
        assert pod["spec"]["serviceAccountName"] == "default"
        assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"])


def test_orphaned_replicaset_is_garbage_collected(dyn, namespace) -> None:
    owner = kube.apply(dyn, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "owner", "namespace": namespace}})
    rs = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "orphan", "namespace": namespace,
                     "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                          "uid": owner["metadata"]["uid"]}]},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "orphan"}},
                 "template": {"metadata": {"labels": {"app": "orphan"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}},
    }
    kube.apply(dyn, rs)
    kube.resource_for(dyn, "v1", "ConfigMap").delete(name="owner", namespace=namespace)
    eventually(lambda: gone(dyn, "apps/v1", "ReplicaSet", "orphan", namespace), what="orphan ReplicaSet collected")


def test_deleting_a_deployment_collects_its_replicaset(dyn, namespace) -> None:
    kube.apply(dyn, deployment(namespace, "gc", replicas=0))
    rs = eventually(lambda: items(dyn, "apps/v1", "ReplicaSet", namespace, label_selector="app=gc"), what="RS")
    kube.resource_for(dyn, "apps/v1", "Deployment").delete(name="gc", namespace=namespace)
    eventually(lambda: gone(dyn, "apps/v1", "ReplicaSet", rs[0]["metadata"]["name"], namespace), what="RS gone")


def test_service_gets_endpointslices(dyn, namespace) -> None:
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
                     "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})

    def slices():
        return items(dyn, "discovery.k8s.io/v1", "EndpointSlice", namespace,
                     label_selector="kubernetes.io/service-name=web")

    empty = eventually(slices, what="EndpointSlice")
    assert empty[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslice-controller.k8s.io"
    assert empty[0]["endpoints"] is None and empty[0]["ports"] is None  # upstream: no Pods, no ports either
    eventually(lambda: kube.get(dyn, "v1", "ServiceAccount", "default", namespace), what="default SA")
    kube.apply(dyn, deployment(namespace, "web", replicas=1))
    pod = eventually(lambda: [p for p in items(dyn, "v1", "Pod", namespace, label_selector="app=web")
                              if (p.get("status") or {}).get("podIP")], what="a running Pod with an IP")[0]
    filled = eventually(lambda: [s for s in slices() if s.get("endpoints")], what="endpoint in the slice")
    assert filled[0]["endpoints"][0]["addresses"] == [pod["status"]["podIP"]]
    assert filled[0]["ports"][0]["port"] == 8080


def test_kubernetes_service_endpoint_is_the_advertised_address(dyn) -> None:
    net = node_network(launcher.load())
    if net is None:
        pytest.fail("the sandbox has no node network (service `net`); the lease reconciler needs it")
    port = launcher.load().services["kube-apiserver"].ports["https"]
    slice_ = eventually(lambda: kube.get(dyn, "discovery.k8s.io/v1", "EndpointSlice", "kubernetes", "default"),
                        what="kubernetes EndpointSlice")
    assert slice_["endpoints"][0]["addresses"] == [net.host_ip]
    assert slice_["ports"][0]["port"] == port


def test_scheduler_binds_a_pod_to_a_ready_node(dyn, namespace) -> None:
    eventually(lambda: kube.get(dyn, "v1", "ServiceAccount", "default", namespace), what="default SA")
    nodes = [n for n in kube.resource_for(dyn, "v1", "Node").get().to_dict()["items"]
             if kube.condition_true(n, "Ready")]
    if not nodes:
        pytest.fail("no Ready Node: the node agent must run in the sandbox")
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace},
                     "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "60"]}]}})
    pod = eventually(lambda: (p := kube.get(dyn, "v1", "Pod", "p", namespace))["spec"].get("nodeName") and p,
                     what="Pod bound")
    assert pod["spec"]["nodeName"] in {n["metadata"]["name"] for n in nodes}
    scheduled = kube.condition(pod, "PodScheduled")
    assert scheduled and scheduled["status"] == "True"


def nft_ruleset(netns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "ip", "kube-proxy"],
                          capture_output=True, text=True, check=True).stdout


def test_kube_proxy_writes_service_rules_in_the_node_netns_only(dyn, namespace) -> None:
    net = node_network(launcher.load())
    assert net is not None, "the sandbox has no node network (service `net`)"
    svc = kube.apply(dyn, {"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "proxied", "namespace": namespace},
                           "spec": {"selector": {"app": "none"}, "ports": [{"port": 8080}]}})
    ip = svc["spec"]["clusterIP"]
    eventually(lambda: ip in nft_ruleset(net.netns), what=f"ClusterIP {ip} in the kube-proxy table")
    host = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    assert "kube-proxy" not in host.split()


def dns_query(server: str, name: str, qtype: int = 1, timeout: float = 2.0) -> tuple[int, list[str]]:
    """One DNS query over UDP; return (rcode, A-record addresses). Enough of RFC 1035 for these tests."""
    qid = random.randrange(1 << 16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (server, 53))
        data, _ = s.recvfrom(4096)
    rid, flags, _qd, an = struct.unpack(">HHHH", data[:8])
    assert rid == qid
    offset = 12 + len(question) + 4
    addresses = []
    for _ in range(an):
        while data[offset] and data[offset] & 0xC0 != 0xC0:
            offset += data[offset] + 1
        offset += 2 if data[offset] & 0xC0 == 0xC0 else 1
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[offset:offset + 10])
        offset += 10
        if rtype == 1:
            addresses.append(socket.inet_ntoa(data[offset:offset + 4]))
        offset += rdlen
    return flags & 0xF, addresses


def test_coredns_answers_cluster_local_and_nothing_else(dyn, namespace) -> None:
    net = node_network(launcher.load())
    assert net is not None, "the sandbox has no node network (service `net`)"
    svc = kube.apply(dyn, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "named", "namespace": namespace},
                           "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}})
    # the host reaches CoreDNS at its endpoint (the pod gateway); Pods reach it through 10.96.0.10
    fqdn = f"named.{namespace}.svc.cluster.local"
    eventually(lambda: dns_query(net.gateway, fqdn) == (0, [svc["spec"]["clusterIP"]]), what=f"A record of {fqdn}")
    assert dns_query(net.gateway, "kubernetes.default.svc.cluster.local") == (0, ["10.96.0.1"])
    rcode, addresses = dns_query(net.gateway, "example.com")
    assert (rcode, addresses) == (3, [])  # NXDOMAIN: no forward, nothing leaves the machine
    slices = items(dyn, "discovery.k8s.io/v1", "EndpointSlice", "kube-system",
                   label_selector="kubernetes.io/service-name=kube-dns")
    assert [e["addresses"] for s in slices for e in s["endpoints"]] == [[net.gateway]]


def test_metrics_api_is_served_through_the_aggregation_layer(dyn) -> None:
    launcher.up(("metrics-server",))

    def available():
        apisvc = kube.get(dyn, "apiregistration.k8s.io/v1", "APIService", "v1beta1.metrics.k8s.io")
        return kube.condition_true(apisvc, "Available")

    eventually(available, timeout=90, what="APIService v1beta1.metrics.k8s.io Available")
    # the apiserver proxies this to metrics-server; the answer lists the metrics.k8s.io resources
    resources = dyn.request("GET", "/apis/metrics.k8s.io/v1beta1").to_dict()
    assert {r["name"] for r in resources["resources"]} >= {"nodes", "pods"}
    # metrics-server scraped the node agent's kubelet API (/metrics/resource): kubectl top nodes reads this
    nodes = eventually(lambda: dyn.request("GET", "/apis/metrics.k8s.io/v1beta1/nodes").to_dict()["items"],
                       timeout=90, what="node metrics")
    assert all(n["usage"]["cpu"] and n["usage"]["memory"] for n in nodes)


def test_a_pod_reaches_another_through_a_clusterip_by_dns_name(dyn, namespace) -> None:
    """The whole path a workload uses: the client Pod's resolv.conf -> kube-dns 10.96.0.10 (kube-proxy DNAT) ->
    CoreDNS -> the Service's ClusterIP -> kube-proxy DNAT -> the server Pod's IP (EndpointSlice)."""
    from kubernetes import client

    eventually(lambda: kube.get(dyn, "v1", "ServiceAccount", "default", namespace), what="default SA")
    server = deployment(namespace, "server", replicas=1)
    box = server["spec"]["template"]["spec"]["containers"][0]
    box["command"] = ["sh", "-c", "mkdir -p /tmp/www && echo hello-from-server > /tmp/www/index.html && "
                                  "exec httpd -f -p 8080 -h /tmp/www"]
    box["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    kube.apply(dyn, server)
    svc = kube.apply(dyn, {"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "server", "namespace": namespace},
                           "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    eventually(lambda: [e for s in items(dyn, "discovery.k8s.io/v1", "EndpointSlice", namespace,
                                         label_selector="kubernetes.io/service-name=server")
                        for e in s.get("endpoints") or [] if e["conditions"].get("ready")],
               timeout=90, what="a ready endpoint of Service server")
    fqdn = f"server.{namespace}.svc.cluster.local"
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": namespace},
                     "spec": {"restartPolicy": "Never", "containers": [{
                         "name": "c", "image": "busybox:1.36",
                         "command": ["sh", "-c", f"nslookup {fqdn} && wget -O- http://{fqdn}/"]}]}})
    pod = eventually(lambda: (p := kube.get(dyn, "v1", "Pod", "client", namespace))["status"].get("phase") in (
        "Succeeded", "Failed") and p, timeout=90, what="client Pod finished")
    logs = client.CoreV1Api(dyn.client).read_namespaced_pod_log("client", namespace)
    assert pod["status"]["phase"] == "Succeeded", logs
    assert "hello-from-server" in logs
    assert svc["spec"]["clusterIP"] in logs  # nslookup printed the ClusterIP CoreDNS answered
