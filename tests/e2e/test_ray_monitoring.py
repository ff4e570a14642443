"""kaiops's shipped Ray monitoring (``deployments/monitoring/ray-cluster.yaml``) against a real KubeRay head.

The real KubeRay v1.6.2 operator (service ``kuberay``) makes a RayCluster from ``configs/clusters/sandbox.yaml``
(no workers: a Ray head takes minutes on a loaded machine, a worker as long again) whose head is a real Ray
2.60.0 process in a Pod on the sandbox node; the real Prometheus Operator (service ``prometheus-operator``) loads
the file's ServiceMonitor, PodMonitor and PrometheusRule unchanged but for their namespace. Then:

- the ServiceMonitor selects the head Service KubeRay created (``<cluster>-head-svc``), its port ``metrics``
  is scraped and up, with ``job=<cluster>-head-svc`` (what ``RayClusterDown`` matches) and the
  ``ray_io_cluster`` label its relabeling adds;
- Ray's own series (``ray_node_cpu_utilization``) are there, so ``RayClusterDown`` and ``HighCPUUsage`` are
  loaded, healthy and evaluate on real series (``kaiops monitoring check``: not ``no-series``);
- suspending the cluster (KubeRay deletes the head Pod) makes ``RayClusterDown``'s condition true.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks import kube
from tasks.monitoring.live import Verdict, check_files

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
RAY_MONITORING = REPO / "deployments/monitoring/ray-cluster.yaml"
SANDBOX_YAML = REPO / "configs/clusters/sandbox.yaml"
MANAGER = "kaiops-e2e"


def wait(what: str, probe: Callable[[], Any], timeout: float = 300.0, every: float = 3.0) -> Any:
    """Return ``probe()``'s first truthy value; AssertionError naming ``what`` (and the last value) on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {str(last)[:800]})")


def api(url: str, path: str, **params: str) -> Any:
    """GET a Prometheus HTTP API path; the ``data`` of its answer."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{path}{query}", timeout=10) as resp:
        return json.load(resp)["data"]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real RayCluster (head only) made by KubeRay, and the operator's Prometheus; yields names and URLs."""
    from sandbox import launcher
    from sandbox.services.prometheus_operator import prometheus_url
    from tasks.ray_provision import apply_manifest, ensure_namespace, load_config, render_and_validate, wait_until

    state = launcher.up(names=("prometheus-operator", "kuberay"))
    kubeconfig = str(state.kubeconfig)
    url = wait("the operator's Prometheus Pod Ready", lambda: prometheus_url(kubeconfig), timeout=420)
    raw = yaml.safe_load(SANDBOX_YAML.read_text())
    name, ns = f"mon-{uuid.uuid4().hex[:6]}", f"raymon-{uuid.uuid4().hex[:4]}"
    raw.update(name=name, namespace=ns)
    for group in raw["workerGroups"]:
        group["replicas"] = 0
    path = tmp_path_factory.mktemp("ray") / "cluster.yaml"
    path.write_text(yaml.safe_dump(raw))
    manifest = render_and_validate.fn(load_config.fn(str(path)), str(path))
    ensure_namespace.fn(kubeconfig, ns)
    apply_manifest.fn(kubeconfig, manifest)
    started = time.monotonic()
    wait_until.fn(kubeconfig, name, ns, timeout_s=780, progress_every_s=60)  # under pytest-timeout (900 s)
    print(f"RayCluster {ns}/{name} ready after {time.monotonic() - started:.0f} s")
    dyn = kube.connect(kubeconfig)
    monitoring = []
    for doc in yaml.safe_load_all(RAY_MONITORING.read_text()):
        doc["metadata"]["namespace"] = ns
        kube.apply(dyn, doc, field_manager=MANAGER)
        monitoring.append(doc)
    rules = path.with_name("ray-cluster.yaml")
    rules.write_text(yaml.safe_dump_all(monitoring))
    yield {"dyn": dyn, "kubeconfig": kubeconfig, "url": url, "name": name, "ns": ns, "rules": rules}
    dyn.resources.get(api_version="ray.io/v1", kind="RayCluster").delete(name=name, namespace=ns)
    dyn.resources.get(api_version="v1", kind="Namespace").delete(name=ns)


def _head_targets(url: str, ns: str) -> list[dict[str, Any]]:
    return [t for t in api(url, "/api/v1/targets", state="active")["activeTargets"]
            if t["scrapePool"] == f"serviceMonitor/{ns}/ray-head/0"]


def test_the_service_monitor_scrapes_the_real_kuberay_head_and_the_rules_evaluate(ray_cluster) -> None:
    url, ns, name = ray_cluster["url"], ray_cluster["ns"], ray_cluster["name"]
    targets = wait("the head's metrics target up",
                   lambda: [t for t in _head_targets(url, ns) if t["health"] == "up"], timeout=300)
    head = targets[0]
    assert head["labels"]["job"] == f"{name}-head-svc"  # what RayClusterDown's job=~".+-head-svc" matches
    assert head["labels"]["service"] == f"{name}-head-svc" and head["labels"]["endpoint"] == "metrics"
    assert head["labels"]["ray_io_cluster"] == name  # the ServiceMonitor's relabeling
    pods = ray_cluster["dyn"].resources.get(api_version="v1", kind="Pod").get(namespace=ns).to_dict()["items"]
    pod = next(p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "head")
    assert head["scrapeUrl"] == f"http://{pod['status']['podIP']}:8080/metrics"  # Ray's metrics export port
    # Ray's reporter agent's node series, with the cluster label the rules group by
    cpu = wait("ray_node_cpu_utilization scraped", lambda: api(
        url, "/api/v1/query", query=f'ray_node_cpu_utilization{{ray_io_cluster="{name}"}}')["result"], timeout=300)
    assert 0.0 <= float(cpu[0]["value"][1]) <= 100.0 * 64  # percent (per node; Ray sums over its CPUs)

    def loaded() -> dict[str, Any] | None:
        for g in api(url, "/api/v1/rules")["groups"]:
            if g["name"] == "ray-cluster" and f"/{ns}-ray-cluster-" in g["file"]:
                rules = {r["name"]: r for r in g["rules"]}
                if all(r.get("lastEvaluation", "").startswith("20") and r["health"] == "ok" for r in rules.values()):
                    return rules
        return None

    rules = wait("the shipped Ray rules loaded and evaluated", loaded, timeout=180)
    assert set(rules) == {"RayClusterDown", "HighCPUUsage"}
    assert rules["RayClusterDown"]["duration"] == 300 and rules["HighCPUUsage"]["duration"] == 900
    assert rules["RayClusterDown"]["state"] == "inactive"  # the head is up
    statuses = {s.rule: s for s in check_files([ray_cluster["rules"]], url)}  # `kaiops monitoring check`
    assert statuses["RayClusterDown"].verdict is Verdict.quiet
    assert statuses["RayClusterDown"].state == "inactive"  # loaded by the operator's Prometheus
    # HighCPUUsage may really hold on this loaded machine: what matters is that it evaluates on real series
    assert statuses["HighCPUUsage"].verdict in (Verdict.quiet, Verdict.firing), statuses["HighCPUUsage"]
    assert all(m.series_now for s in statuses.values() for m in s.metrics), statuses
    print(f"HighCPUUsage: {statuses['HighCPUUsage'].verdict}; ray_node_cpu_utilization={cpu[0]['value'][1]}")


def test_suspending_the_cluster_makes_ray_cluster_down_true(ray_cluster) -> None:
    url, ns, name = ray_cluster["url"], ray_cluster["ns"], ray_cluster["name"]
    wait("the head's metrics target up", lambda: [t for t in _head_targets(url, ns) if t["health"] == "up"])
    kube.apply(ray_cluster["dyn"], {"apiVersion": "ray.io/v1", "kind": "RayCluster",
                                    "metadata": {"name": name, "namespace": ns}, "spec": {"suspend": True}},
               field_manager="kaiops-e2e-suspend")
    # KubeRay deletes the Pods; the head Service stays without endpoints, so the target goes away
    wait("the head target gone", lambda: not _head_targets(url, ns), timeout=240)
    expr = next(r["expr"] for d in yaml.safe_load_all(RAY_MONITORING.read_text()) if d["kind"] == "PrometheusRule"
                for g in d["spec"]["groups"] for r in g["rules"] if r["alert"] == "RayClusterDown")
    wait("RayClusterDown's condition true", lambda: api(url, "/api/v1/query", query=expr)["result"], timeout=120)
    statuses = {s.rule: s for s in check_files([ray_cluster["rules"]], url)}
    assert statuses["RayClusterDown"].verdict is Verdict.firing
    pending = wait("RayClusterDown pending (for: 5m)", lambda: [
        a for a in api(url, "/api/v1/alerts")["alerts"] if a["labels"].get("alertname") == "RayClusterDown"],
        timeout=60)
    assert pending[0]["state"] == "pending"
