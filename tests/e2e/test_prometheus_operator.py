"""The real Prometheus Operator v0.89.0 in the sandbox: monitors and rules a user writes are really exercised.

Service ``prometheus-operator`` runs the operator as a host process with upstream's RBAC; its ``Prometheus``
object becomes a StatefulSet whose Pod (Debian ``prometheus`` + the config-reloader built from the same module)
runs on the node agent. Here a real target (busybox ``httpd`` serving what kaiops's own metrics writer wrote,
from a ConfigMap the test updates) is selected by a ServiceMonitor and a PodMonitor, kaiops's shipped
PrometheusRule is loaded by the operator, and:

- the target is up in the operator-managed Prometheus, with the job names the operator really gives;
- a ServiceMonitor with a port name the Service does not have and a PodMonitor whose selector matches no Pod
  produce no target at all (what ``kaiops validate`` warns about for the operators' objects): silent, no error;
- the rule is loaded with its ``for:`` and evaluates against the scraped series; ``kaiops monitoring check``
  against this Prometheus reports it (quiet: the last run succeeded; the drill rule: no series);
- a failed backup run makes ``KaiopsBackupFailing`` go pending and then firing for real: the shipped rule keeps
  its ``for: 5m`` (seen pending), a copy of it in its own PrometheusRule has ``for: 15s`` (seen pending, then
  firing no sooner than 15 s after ``activeAt``, with its ``ALERTS`` series). The Prometheus object's
  ``evaluationInterval`` is the sandbox's 5 s (``sandbox/services/prometheus_operator.py``); the rule reaches
  Prometheus through the operator's rulefiles ConfigMap and the config-reloader (no restart).
"""

from __future__ import annotations

import copy
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks import kube
from tasks.backup.metrics import record_backup
from tasks.monitoring.live import Verdict, check_files
from tests.sandbox_env import exported

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
KAIOPS_RULES = REPO / "deployments/monitoring/prometheusrule-kaiops.yaml"
MANAGER = "kaiops-e2e"


def wait(what: str, probe: Callable[[], Any], timeout: float = 240.0, every: float = 2.0) -> Any:
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
def operated() -> Iterator[dict[str, str]]:
    """The operator and its Prometheus Pod; yields ``{"url": http://<Pod IP>:9090, "kubeconfig": ...}``."""
    from sandbox import launcher
    from sandbox.services.prometheus_operator import prometheus_url

    state = launcher.up(names=("prometheus-operator",))
    kubeconfig = str(state.kubeconfig)
    url = wait("the operator's Prometheus Pod Ready", lambda: prometheus_url(kubeconfig), timeout=420)
    with exported({"KUBECONFIG": kubeconfig}):
        yield {"url": url, "kubeconfig": kubeconfig}


def metrics_text(tmp_path: Path, policy: str, *, success: bool) -> str:
    """What kaiops's backup metrics writer writes for one run of ``policy`` (tasks/backup/metrics.py)."""
    return record_backup(tmp_path, policy, success=success, now=time.time()).read_text()


def exporter_objects(ns: str, text: str) -> list[dict[str, Any]]:
    """A ConfigMap holding ``text``, a busybox httpd Pod serving it at ``/metrics`` on port ``metrics``, a Service."""
    labels = {"app.kubernetes.io/name": "kaiops-exporter"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kaiops-metrics", "namespace": ns},
         "data": {"metrics": text}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kaiops-exporter", "namespace": ns, "labels": labels},
         "spec": {"containers": [{
             "name": "httpd", "image": "busybox:1.36", "command": ["httpd", "-f", "-p", "9108", "-h", "/www"],
             "ports": [{"name": "metrics", "containerPort": 9108}],
             "readinessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 2},
             "volumeMounts": [{"name": "metrics", "mountPath": "/www"}]}],
             "volumes": [{"name": "metrics", "configMap": {"name": "kaiops-metrics"}}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kaiops-exporter", "namespace": ns,
                                                             "labels": labels},
         "spec": {"selector": labels, "ports": [{"name": "metrics", "port": 9108, "targetPort": "metrics"}]}},
    ]


def monitors(ns: str) -> list[dict[str, Any]]:
    """Two monitors that select the exporter and two that select nothing (a wrong port name, a wrong selector)."""
    def obj(kind: str, name: str, selector: dict[str, str], port: str) -> dict[str, Any]:
        endpoints = "endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"
        # busybox httpd sends no Content-Type for a file without an extension; Prometheus v3 refuses such a
        # target ("non-compliant scrape target sending blank Content-Type") unless the monitor names a fallback
        return {"apiVersion": "monitoring.coreos.com/v1", "kind": kind, "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"matchLabels": selector}, "fallbackScrapeProtocol": "PrometheusText0.0.4",
                         endpoints: [{"port": port, "interval": "5s"}]}}

    good = {"app.kubernetes.io/name": "kaiops-exporter"}
    return [obj("ServiceMonitor", "kaiops", good, "metrics"),
            obj("PodMonitor", "kaiops-pods", good, "metrics"),
            obj("ServiceMonitor", "kaiops-wrong-port", good, "http-metrics"),
            obj("PodMonitor", "kaiops-wrong-selector", {"app.kubernetes.io/name": "kaiops-exportr"}, "metrics")]


def shipped_rule(ns: str) -> dict[str, Any]:
    doc = yaml.safe_load(KAIOPS_RULES.read_text())
    doc["metadata"]["namespace"] = ns
    return doc


SHORT_FOR = "15s"  # the test copy's `for:` (the shipped rules wait 5 min to 2 h)
TEST_LABEL = {"kaiops_e2e": "short-for"}  # tells the copy's alerts (and ALERTS series) from the shipped rule's


def short_for(rule: dict[str, Any]) -> dict[str, Any]:
    """The same alerts with ``for: 15s`` and label :data:`TEST_LABEL`, in a PrometheusRule of its own."""
    doc = copy.deepcopy(rule)
    doc["metadata"]["name"] += "-short"
    for group in doc["spec"]["groups"]:
        group["name"] += "-short"
        for r in group["rules"]:
            r["for"] = SHORT_FOR
            r["labels"] = {**r.get("labels", {}), **TEST_LABEL}
    return doc


def active_by_pool(url: str) -> dict[str, list[dict[str, Any]]]:
    pools: dict[str, list[dict[str, Any]]] = {}
    for t in api(url, "/api/v1/targets", state="active")["activeTargets"]:
        pools.setdefault(t["scrapePool"], []).append(t)
    return pools


@pytest.fixture(scope="module")
def monitored(operated: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    dyn = kube.connect(operated["kubeconfig"])
    ns = f"mon-{uuid.uuid4().hex[:6]}"
    policy = f"e2e-{ns}"
    tmp = tmp_path_factory.mktemp("metrics")
    rule = shipped_rule(ns)
    for obj in [*exporter_objects(ns, metrics_text(tmp, policy, success=True)), *monitors(ns), rule,
                short_for(rule)]:
        kube.apply(dyn, obj, field_manager=MANAGER)
    yield {"dyn": dyn, "ns": ns, "policy": policy, "tmp": tmp, "url": operated["url"]}
    dyn.resources.get(api_version="v1", kind="Namespace").delete(name=ns)


def test_the_service_and_pod_monitors_make_the_operator_managed_prometheus_scrape_the_real_pod(monitored) -> None:
    url, ns = monitored["url"], monitored["ns"]
    sm, pm = f"serviceMonitor/{ns}/kaiops/0", f"podMonitor/{ns}/kaiops-pods/0"

    def both_up() -> dict | None:
        pools = active_by_pool(url)
        ok = all(any(t["health"] == "up" for t in pools.get(p, [])) for p in (sm, pm))
        return pools if ok else None

    pools = wait("both monitors' targets up", both_up, timeout=180)
    service_target, pod_target = pools[sm][0], pools[pm][0]
    pod = monitored["dyn"].resources.get(api_version="v1", kind="Pod").get(name="kaiops-exporter", namespace=ns)
    assert service_target["scrapeUrl"] == f"http://{pod.status.podIP}:9108/metrics"
    # the operator's job label: the Service's name for a ServiceMonitor, <namespace>/<name> for a PodMonitor
    assert service_target["labels"]["job"] == "kaiops-exporter"
    assert pod_target["labels"]["job"] == f"{ns}/kaiops-pods"
    assert {"namespace", "pod", "container", "endpoint", "service"} <= set(service_target["labels"])
    assert service_target["labels"]["endpoint"] == "metrics"


def test_a_wrong_port_name_and_a_wrong_selector_select_nothing_silently(monitored) -> None:
    url, ns = monitored["url"], monitored["ns"]
    wait("the good ServiceMonitor's target", lambda: active_by_pool(url).get(f"serviceMonitor/{ns}/kaiops/0"))
    config = api(url, "/api/v1/status/config")["yaml"]
    # the operator did generate both jobs: nothing anywhere says they select nothing
    assert f"job_name: serviceMonitor/{ns}/kaiops-wrong-port/0" in config
    assert f"job_name: podMonitor/{ns}/kaiops-wrong-selector/0" in config
    pools = active_by_pool(url)
    assert pools.get(f"serviceMonitor/{ns}/kaiops-wrong-port/0", []) == []
    assert pools.get(f"podMonitor/{ns}/kaiops-wrong-selector/0", []) == []


def _alerts(url: str, name: str, policy: str) -> list[dict[str, Any]]:
    return [a for a in api(url, "/api/v1/alerts")["alerts"]
            if a["labels"].get("alertname") == name and a["labels"].get("policy") == policy]


def test_kaiops_rule_is_loaded_and_evaluates_against_the_scraped_series(monitored) -> None:
    url, ns, policy = monitored["url"], monitored["ns"], monitored["policy"]

    def ours() -> dict[str, Any] | None:  # the group loaded from this namespace's PrometheusRule
        return next((g for g in api(url, "/api/v1/rules")["groups"]
                     if g["name"] == "kaiops-backups" and f"/{ns}-kaiops-backups-" in g["file"]), None)

    group = wait("the shipped rule group loaded", ours)
    shipped = {r["name"]: r for r in group["rules"]}
    assert set(shipped) == {"KaiopsBackupStale", "KaiopsBackupFailing", "KaiopsBackupMetricsMissing",
                            "KaiopsDrillStale", "KaiopsDrillFailing"}
    assert shipped["KaiopsBackupFailing"]["duration"] == 300  # for: 5m kept
    # the operator's rule file: <namespace>-<name>-<uid>.yaml in its rulefiles ConfigMap, mounted in the Pod
    assert group["file"].startswith("/etc/prometheus/rules/prometheus-sandbox-rulefiles-")
    wait("a successful run scraped",
         lambda: api(url, "/api/v1/query", query=f'kaiops_backup_last_run_success{{policy="{policy}"}} == 1')["result"])
    assert _alerts(url, "KaiopsBackupFailing", policy) == []

    statuses = {s.rule: s for s in check_files([KAIOPS_RULES], url)}  # `kaiops monitoring check`
    assert statuses["KaiopsBackupFailing"].verdict is Verdict.quiet
    assert statuses["KaiopsBackupMetricsMissing"].verdict is Verdict.quiet
    assert statuses["KaiopsDrillFailing"].verdict is Verdict.no_series
    assert statuses["KaiopsBackupFailing"].state == "inactive"  # loaded by this Prometheus, not pending


def _rule_alerts(url: str, group: str, ns: str, rule: str, policy: str) -> list[dict[str, Any]]:
    """The alerts of ``rule`` in group ``group`` loaded from namespace ``ns`` (Prometheus's rules API)."""
    for g in api(url, "/api/v1/rules", type="alert")["groups"]:
        if g["name"] == group and f"/{ns}-" in g["file"]:
            for r in g["rules"]:
                if r["name"] == rule:
                    return [a for a in r["alerts"] if a["labels"].get("policy") == policy]
    return []


def test_kaiops_alert_goes_pending_then_firing_when_its_condition_is_made_true(monitored) -> None:
    """A failed backup run, written by kaiops's metrics writer and served by the real Pod, makes
    ``KaiopsBackupFailing`` pending and then firing in the operator's Prometheus (test copy: ``for: 15s``);
    the shipped rule (``for: 5m``) is pending at the same time and not firing."""
    url, ns, policy, dyn = monitored["url"], monitored["ns"], monitored["policy"], monitored["dyn"]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kaiops-metrics", "namespace": ns},
          "data": {"metrics": metrics_text(monitored["tmp"], policy, success=False)}}
    kube.apply(dyn, cm, field_manager=MANAGER)
    t0 = time.monotonic()
    # the node agent re-reads configMap volumes every 5 s, Prometheus scrapes and evaluates every 5 s
    wait("the failed run scraped", lambda: api(
        url, "/api/v1/query", query=f'kaiops_backup_last_run_success{{policy="{policy}"}} == 0')["result"], timeout=120)

    states: list[tuple[float, str]] = []

    def state_of_copy(want: str) -> list[dict[str, Any]] | None:
        alerts = _rule_alerts(url, "kaiops-backups-short", ns, "KaiopsBackupFailing", policy)
        for a in alerts:
            if not states or states[-1][1] != a["state"]:
                states.append((time.monotonic() - t0, a["state"]))
        return [a for a in alerts if a["state"] == want] or None

    pending = wait("the test copy's alert pending", lambda: state_of_copy("pending"), timeout=120, every=1.0)
    assert pending[0]["labels"]["severity"] == "warning"
    firing = wait("the test copy's alert firing", lambda: state_of_copy("firing"), timeout=120, every=1.0)
    assert [s for _, s in states][:2] == ["pending", "firing"], states
    assert firing[0]["activeAt"] == pending[0]["activeAt"]  # the same alert, promoted once `for:` had passed
    pending_s = next(t for t, s in states if s == "pending")
    firing_s = next(t for t, s in states if s == "firing")
    # the ALERTS series Prometheus writes at each evaluation: the first firing sample is at least `for:` after
    # the alert became active (activeAt, the evaluation that first found the condition true)
    active_at = datetime.fromisoformat(pending[0]["activeAt"].replace("Z", "+00:00")).timestamp()
    selector = f'ALERTS{{alertname="KaiopsBackupFailing", policy="{policy}", kaiops_e2e="short-for"}}'
    ranged = api(url, "/api/v1/query_range", query=selector, start=str(active_at - 10), end=str(time.time()),
                 step="1")["result"]
    by_state = {r["metric"]["alertstate"]: [float(t) for t, _ in r["values"]] for r in ranged}
    assert set(by_state) == {"pending", "firing"}, ranged
    assert min(by_state["pending"]) < min(by_state["firing"])
    assert min(by_state["firing"]) - active_at >= 15.0 - 1.0, (active_at, by_state)  # 1 s: the query step
    # the shipped rule's own `for: 5m` holds it pending meanwhile
    shipped = _rule_alerts(url, "kaiops-backups", ns, "KaiopsBackupFailing", policy)
    assert [a["state"] for a in shipped] == ["pending"]
    statuses = {s.rule: s for s in check_files([KAIOPS_RULES], url)}  # `kaiops monitoring check`
    assert statuses["KaiopsBackupFailing"].verdict is Verdict.firing  # its condition holds now
    assert statuses["KaiopsBackupFailing"].state == "pending"  # the shipped rule, loaded, waits out its for: 5m
    print(f"KaiopsBackupFailing (for: {SHORT_FOR}): failed run scraped, pending at {pending_s:.0f} s, "
          f"firing at {firing_s:.0f} s after the ConfigMap update")
