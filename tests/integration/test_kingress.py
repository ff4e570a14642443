"""The sandbox gateway as Knative's Ingress (KIngress) implementation, against the real control plane and node.

Only the KIngress CRD of Knative is installed (``configs/crds.yaml``, ``knative-networking``); Knative itself
does not run. The tests write Ingress objects by hand, as Knative's Route controller would, pointing at
ordinary Deployments + Services on the sandbox node whose Pods answer ``K-Network-Probe`` as the queue-proxy
does (tests/integration/kingress_backend.py), and check what a Knative user would notice: host routing on the
public and the cluster-local listener (also from inside a Pod through ``gateway-internal``), an 80/20 split,
appended headers at the backend, status Ready only after the backends answered the hash probe, and that an
Ingress of another class is left alone.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from scipy.stats import binom

from sandbox import launcher
from sandbox.gateway import kingress as k
from tests.integration.node_support import BASE, logs, make_namespace, phase, start, wait_for

pytestmark = pytest.mark.integration

BACKEND = (Path(__file__).parent / "kingress_backend.py").read_text()
OTHER_CLASS = "kourier.ingress.networking.knative.dev"


@pytest.fixture(scope="module")
def api() -> Iterator[client.ApiClient]:
    yield from start((*BASE, "kube-proxy", "coredns", "gateway"))


@pytest.fixture(scope="module")
def urls(api: client.ApiClient) -> dict[str, str]:
    env = launcher.env()
    return {"public": env["KAIOPS_GATEWAY_URL"], "local": env["KAIOPS_GATEWAY_LOCAL_URL"]}


@pytest.fixture(scope="module")
def ns(api: client.ApiClient) -> Iterator[str]:
    yield from make_namespace(api)


@pytest.fixture(scope="module")
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def backend(name: str, replicas: int = 1) -> tuple[dict, dict]:
    """A Deployment of the probe-aware echo backend and its Service (port 80 -> named port http)."""
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "web", "image": "python:3.11-slim",
                                     "command": ["python3", "-c", BACKEND, name, "8080"],
                                     "ports": [{"containerPort": 8080, "name": "http"}],
                                     "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                                                        "periodSeconds": 1}}]}}}}
    svc = {"metadata": {"name": name}, "spec": {"selector": {"app": name},
                                                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return deploy, svc


@pytest.fixture(scope="module")
def backends(api: client.ApiClient, ns: str) -> list[str]:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    names = ["blue", "green"]
    for name in names:
        deploy, svc = backend(name)
        apps.create_namespaced_deployment(ns, deploy)
        core.create_namespaced_service(ns, svc)
    for name in names:
        wait_for(lambda n=name: (apps.read_namespaced_deployment(n, ns).status.ready_replicas or 0) >= 1, 240,
                 f"Deployment {name} ready")
    return names


def split(ns: str, name: str, percent: int | None = None, **headers: str) -> dict:
    s: dict = {"serviceName": name, "serviceNamespace": ns, "servicePort": 80}
    if percent is not None:
        s["percent"] = percent
    if headers:
        s["appendHeaders"] = headers
    return s


def kingress(name: str, rules: list[dict], cls: str = k.INGRESS_CLASS) -> dict:
    return {"apiVersion": k.API_VERSION, "kind": "Ingress",
            "metadata": {"name": name, "annotations": {"networking.knative.dev/ingress.class": cls}},
            "spec": {"rules": rules}}


def create(custom: client.CustomObjectsApi, ns: str, obj: dict) -> dict:
    return custom.create_namespaced_custom_object(k.GROUP, k.VERSION, ns, k.PLURAL, obj)


def read(custom: client.CustomObjectsApi, ns: str, name: str) -> dict:
    return custom.get_namespaced_custom_object(k.GROUP, k.VERSION, ns, k.PLURAL, name)


def condition(obj: dict, type_: str) -> str | None:
    return next((c["status"] for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def ready(custom: client.CustomObjectsApi, ns: str, name: str) -> dict | None:
    """The Ingress once it is Ready for its current generation (``Ingress.IsReady``), else None."""
    obj = read(custom, ns, name)
    st = obj.get("status") or {}
    ok = st.get("observedGeneration") == obj["metadata"]["generation"] and condition(obj, "Ready") == "True"
    return obj if ok else None


def get(url: str, host: str, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url + path, headers={"Host": host, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_hosts_route_to_their_backends_with_appended_headers_once_ready(
        custom: client.CustomObjectsApi, ns: str, backends: list[str], urls: dict[str, str]) -> None:
    a, b = f"a.{ns}.example.com", f"b.{ns}.example.com"
    create(custom, ns, kingress("hosts", [
        {"hosts": [a], "visibility": "ExternalIP", "http": {"paths": [{
            "splits": [split(ns, "blue", **{"Knative-Serving-Revision": "blue-00001"})],
            "appendHeaders": {"Knative-Serving-Namespace": ns}}]}},
        {"hosts": [b], "http": {"paths": [{"splits": [split(ns, "green")]}]}},
    ]))
    obj = wait_for(lambda: ready(custom, ns, "hosts"), 60, "Ingress hosts Ready")
    st = obj["status"]
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "LoadBalancerReady": "True", "NetworkConfigured": "True", "Ready": "True"}
    assert st["publicLoadBalancer"]["ingress"] == [{"domainInternal": "gateway.kaiops-sandbox.svc.cluster.local"}]
    assert st["privateLoadBalancer"]["ingress"] == [
        {"domainInternal": "gateway-internal.kaiops-sandbox.svc.cluster.local"}]
    assert any(f["manager"] == "kaiops-sandbox-gateway" and f.get("subresource") == "status"
               and f["operation"] == "Apply" for f in obj["metadata"]["managedFields"])

    code, body = get(urls["public"], a, "/v1/models/x:predict")
    assert code == 200 and body["name"] == "blue" and body["path"] == "/v1/models/x:predict"
    sent = {h.lower(): v for h, v in body["headers"].items()}
    assert sent["knative-serving-revision"] == "blue-00001"  # the split's appendHeaders
    assert sent["knative-serving-namespace"] == ns  # the path's appendHeaders
    assert sent["host"] == a and "k-network-hash" not in sent  # ordinary requests take the non-probe route
    code, body = get(urls["public"], b)
    assert code == 200 and body["name"] == "green"
    assert "knative-serving-revision" not in {h.lower() for h in body["headers"]}
    assert get(urls["public"], f"nobody.{ns}.example.com")[0] == 404
    # the probe that made it Ready reached the backend carrying the hash of the current spec
    _, probes = get(urls["public"], a, "/probes")
    assert probes["count"] >= 1 and probes["last_hash"] == k.spec_hash(obj)


def test_an_80_20_split_holds_over_many_requests(custom: client.CustomObjectsApi, ns: str, backends: list[str],
                                                 urls: dict[str, str]) -> None:
    host = f"split.{ns}.example.com"
    create(custom, ns, kingress("split", [{"hosts": [host], "http": {"paths": [{"splits": [
        split(ns, "blue", 80), split(ns, "green", 20)]}]}}]))
    wait_for(lambda: ready(custom, ns, "split"), 60, "Ingress split Ready")
    n = 1200
    names = [get(urls["public"], host)[1].get("name") for _ in range(n)]
    assert set(names) <= {"blue", "green"}
    # bounds at probability 1e-9 on either side of Binomial(1200, 0.2) ([161, 326]): a correct split does not
    # fail, while 70/30 (mean 360) or 90/10 (mean 120) land outside them with probability > 0.98
    lo, hi = binom.ppf(1e-9, n, 0.2), binom.isf(1e-9, n, 0.2)
    assert lo <= names.count("green") <= hi, (names.count("green"), lo, hi)
    assert names.count("green") + names.count("blue") == n

    # a new spec (Knative's Route moving all traffic) is Ready again only for the new generation and hash
    custom.patch_namespaced_custom_object(k.GROUP, k.VERSION, ns, k.PLURAL, "split", {"spec": {"rules": [
        {"hosts": [host], "http": {"paths": [{"splits": [split(ns, "blue", 0), split(ns, "green", 100)]}]}}]}})
    obj = wait_for(lambda: (o := ready(custom, ns, "split")) and o["metadata"]["generation"] == 2 and o, 60,
                   "Ingress split Ready at generation 2")
    assert obj["status"]["observedGeneration"] == 2
    assert {get(urls["public"], host)[1].get("name") for _ in range(50)} == {"green"}
    _, probes = get(urls["public"], host, "/probes")
    assert probes["last_hash"] == k.spec_hash(obj)


def test_ready_only_after_the_backends_answer(api: client.ApiClient, custom: client.CustomObjectsApi, ns: str,
                                              backends: list[str], urls: dict[str, str]) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    deploy, svc = backend("late", replicas=0)
    apps.create_namespaced_deployment(ns, deploy)
    core.create_namespaced_service(ns, svc)
    host = f"late.{ns}.example.com"
    create(custom, ns, kingress("late", [{"hosts": [host], "http": {"paths": [{"splits": [split(ns, "late")]}]}}]))
    obj = wait_for(lambda: (o := read(custom, ns, "late")).get("status") and o, 30, "first status of late")
    time.sleep(4)  # several syncs and probe rounds with no ready endpoint
    obj = read(custom, ns, "late")
    conds = {c["type"]: (c["status"], c.get("reason")) for c in obj["status"]["conditions"]}
    assert conds["Ready"] == ("Unknown", "Uninitialized") == conds["LoadBalancerReady"]
    assert conds["NetworkConfigured"][0] == "True"
    assert "publicLoadBalancer" not in obj["status"]
    assert get(urls["public"], host)[0] == 404  # not programmed while no endpoint is ready

    apps.patch_namespaced_deployment_scale("late", ns, {"spec": {"replicas": 1}})
    obj = wait_for(lambda: ready(custom, ns, "late"), 180, "Ingress late Ready after scale-up")
    _, probes = get(urls["public"], host, "/probes")
    assert probes["count"] >= 1 and probes["last_hash"] == k.spec_hash(obj)
    assert get(urls["public"], host)[1]["name"] == "late"


def test_cluster_local_hosts_only_on_the_local_listener_and_from_pods(
        api: client.ApiClient, custom: client.CustomObjectsApi, ns: str, backends: list[str],
        urls: dict[str, str]) -> None:
    local = f"hello.{ns}.svc.cluster.local"
    create(custom, ns, kingress("hello", [
        {"hosts": [f"hello.{ns}", f"hello.{ns}.svc", local], "visibility": "ClusterLocal",
         "http": {"paths": [{"splits": [split(ns, "green")]}]}}]))
    obj = wait_for(lambda: ready(custom, ns, "hello"), 60, "Ingress hello Ready")
    assert get(urls["public"], local)[0] == 404
    code, body = get(urls["local"], local)
    assert code == 200 and body["name"] == "green"
    # what Knative's Route makes for cluster-local access: an ExternalName Service at the private LB
    core = client.CoreV1Api(api)
    domain = obj["status"]["privateLoadBalancer"]["ingress"][0]["domainInternal"]
    core.create_namespaced_service(ns, {"metadata": {"name": "hello"},
                                        "spec": {"type": "ExternalName", "externalName": domain}})
    script = f"wget -O- http://{local}/from-pod 2>/dev/null"  # busybox wget: no -q/-T (segfaults)
    core.create_namespaced_pod(ns, {"metadata": {"name": "client"}, "spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}]}})
    wait_for(lambda: phase(core, ns, "client", "Succeeded", "Failed"), 120, "client Pod finished")
    out = logs(core, "client", ns)
    assert phase(core, ns, "client", "Succeeded"), out
    answer = json.loads(out)
    assert answer["name"] == "green" and answer["path"] == "/from-pod"


def test_an_ingress_of_another_class_is_ignored(custom: client.CustomObjectsApi, ns: str, backends: list[str],
                                               urls: dict[str, str]) -> None:
    theirs = f"theirs.{ns}.example.com"
    create(custom, ns, kingress("theirs", [{"hosts": [theirs], "http": {"paths": [{"splits": [split(ns, "blue")]}]}}],
                                cls=OTHER_CLASS))
    # an Ingress of ours created afterwards and Ready proves the gateway synced past the other one
    marker = f"marker-{uuid.uuid4().hex[:6]}"
    create(custom, ns, kingress(marker, [{"hosts": [f"{marker}.{ns}.example.com"],
                                          "http": {"paths": [{"splits": [split(ns, "blue")]}]}}]))
    wait_for(lambda: ready(custom, ns, marker), 60, f"Ingress {marker} Ready")
    time.sleep(2)
    assert "status" not in read(custom, ns, "theirs") or not read(custom, ns, "theirs")["status"]
    assert get(urls["public"], theirs)[0] == 404 and get(urls["local"], theirs)[0] == 404


def test_httproutes_keep_their_hosts_beside_a_catch_all_ingress_until_it_is_deleted(
        custom: client.CustomObjectsApi, ns: str, backends: list[str], urls: dict[str, str]) -> None:
    gw_api = ("gateway.networking.k8s.io", "v1")
    gc_name = f"kingress-{ns}"
    custom.create_cluster_custom_object(*gw_api, "gatewayclasses", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": gc_name},
        "spec": {"controllerName": "sandbox.kaiops.io/gateway-controller"}})
    try:
        custom.create_namespaced_custom_object(*gw_api, ns, "gateways", {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw"},
            "spec": {"gatewayClassName": gc_name, "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}})
        route_host = f"route.{ns}.example.com"
        custom.create_namespaced_custom_object(*gw_api, ns, "httproutes", {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
            "spec": {"parentRefs": [{"name": "gw"}], "hostnames": [route_host],
                     "rules": [{"backendRefs": [{"name": "blue", "port": 80}]}]}})
        create(custom, ns, kingress("catch-all", [{"http": {"paths": [{"splits": [split(ns, "green")]}]}}]))
        wait_for(lambda: ready(custom, ns, "catch-all"), 60, "Ingress catch-all Ready")
        wait_for(lambda: get(urls["public"], route_host)[1].get("name") == "blue", 30, "HTTPRoute host served")
        assert get(urls["public"], f"any.{ns}.example.com")[1]["name"] == "green"  # KIngress without hosts
        assert get(urls["local"], route_host)[1]["name"] == "green"  # the local listener has no HTTPRoutes

        custom.delete_namespaced_custom_object(k.GROUP, k.VERSION, ns, k.PLURAL, "catch-all")
        wait_for(lambda: get(urls["public"], f"any.{ns}.example.com")[0] == 404, 30, "deleted Ingress unrouted")
        assert get(urls["public"], route_host)[1]["name"] == "blue"
    finally:
        custom.delete_cluster_custom_object(*gw_api, "gatewayclasses", gc_name)
