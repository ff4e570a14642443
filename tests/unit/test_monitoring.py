"""Monitors and alert rules checked against what the operators create and the components export (pure logic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.manifests.findings import Rule, Severity
from tasks.manifests.rules import monitoring_alerts, monitoring_targets
from tasks.manifests.rules.base import Manifest
from tasks.monitoring import catalogue
from tasks.monitoring.promql import metric_names
from tasks.monitoring.targets import TARGETS

pytestmark = pytest.mark.unit

GROUP = "monitoring.coreos.com"
REPO = Path(__file__).resolve().parents[2]


def monitor(kind: str, selector: dict, ports: list[str]) -> Manifest:
    key = "endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"
    doc = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "m"},
           "spec": {"selector": selector, key: [{"port": p} for p in ports]}}
    return Manifest(doc, GROUP, kind)


def rule_manifest(*exprs: str, record: str | None = None) -> Manifest:
    rules = [{"alert": f"A{i}", "expr": e} for i, e in enumerate(exprs)]
    if record:
        rules.insert(0, {"record": record, "expr": "sum(up)"})
    doc = {"apiVersion": f"{GROUP}/v1", "kind": "PrometheusRule", "metadata": {"name": "r"},
           "spec": {"groups": [{"name": "g", "rules": rules}]}}
    return Manifest(doc, GROUP, "PrometheusRule")


def test_service_monitor_on_pod_only_labels_selects_nothing_and_names_the_labels_that_work() -> None:
    m = monitor("ServiceMonitor", {"matchLabels": {"ray.io/is-ray-node": "yes", "ray.io/cluster": "demo"}},
                ["metrics"])
    [hit] = list(monitoring_targets.selects_nothing(m))
    assert hit.severity is Severity.error and hit.field == "spec.selector"
    assert "no label ray.io/is-ray-node" in hit.message and "Ray head Pod (Pod)" in hit.message
    # the user's cluster name is kept, the head Service's node-type label is proposed
    assert "ray.io/cluster: demo, ray.io/node-type: head" in hit.fix and "PodMonitor" in hit.fix


def test_selector_with_a_value_kuberay_never_writes_selects_nothing() -> None:
    m = monitor("PodMonitor", {"matchLabels": {"ray.io/node-type": "ray-head"}}, ["metrics"])
    [hit] = list(monitoring_targets.selects_nothing(m))
    assert "ray.io/node-type=head, not ray-head" in hit.message
    assert "ray.io/node-type: head" in hit.fix


def test_match_expressions_that_exclude_every_node_type_select_nothing() -> None:
    sel = {"matchExpressions": [{"key": "ray.io/node-type", "operator": "In", "values": ["gpu-worker"]}]}
    assert [h.field for h in monitoring_targets.selects_nothing(monitor("PodMonitor", sel, ["metrics"]))] == \
        ["spec.selector"]


def test_wrong_port_name_is_reported_with_the_port_that_works() -> None:
    m = monitor("ServiceMonitor", {"matchLabels": {"ray.io/node-type": "head"}}, ["http-metrics"])
    [hit] = list(monitoring_targets.port_unknown(m))
    assert hit.severity is Severity.error and hit.field == "spec.endpoints[0].port"
    assert hit.fix == "port: metrics"


def test_knative_revision_pod_port_is_queue_proxys_user_metrics_port() -> None:
    m = monitor("PodMonitor", {"matchLabels": {"serving.kserve.io/inferenceservice": "iris",
                                               "serving.knative.dev/configuration": "iris-predictor"}}, ["metrics"])
    [hit] = list(monitoring_targets.port_unknown(m))
    assert hit.fix == "port: http-usermetric"
    ok = monitor("PodMonitor", {"matchLabels": {"serving.kserve.io/inferenceservice": "iris"}}, ["http-usermetric"])
    assert list(monitoring_targets.port_unknown(ok)) == [] and list(monitoring_targets.selects_nothing(ok)) == []


def test_existing_port_without_metrics_is_a_warning() -> None:
    m = monitor("ServiceMonitor", {"matchLabels": {"ray.io/node-type": "head"}}, ["dashboard"])
    [hit] = list(monitoring_targets.port_no_metrics(m))
    assert hit.severity is Severity.warning and hit.fix == "port: metrics"


def test_selectors_of_users_own_workloads_are_not_judged() -> None:
    m = monitor("ServiceMonitor", {"matchLabels": {"app": "my-exporter"}}, ["web"])
    assert [list(f(m)) for f in (monitoring_targets.selects_nothing, monitoring_targets.port_unknown)] == [[], []]


def test_correct_ray_monitors_are_clean() -> None:
    sm = monitor("ServiceMonitor", {"matchLabels": {"app.kubernetes.io/created-by": "kuberay-operator",
                                                    "ray.io/node-type": "head"}}, ["metrics"])
    pm = monitor("PodMonitor", {"matchLabels": {"ray.io/node-type": "worker", "team": "ml"}}, ["metrics"])
    for m in (sm, pm):
        for fn in (monitoring_targets.selects_nothing, monitoring_targets.port_unknown,
                   monitoring_targets.port_no_metrics):
            assert list(fn(m)) == [], (m.kind, fn.__name__)


def test_unknown_metric_is_reported_with_the_nearest_real_one() -> None:
    [hit] = list(monitoring_alerts.metric_exported(rule_manifest("avg(rate(container_cpu_usage[5m])) > 0.9")))
    assert hit.severity is Severity.warning and hit.field == "spec.groups[0].rules[0].expr"
    assert "container_cpu_usage_seconds_total (cadvisor v0.53.0" in hit.message
    assert hit.fix == "use container_cpu_usage_seconds_total"


def test_opencensus_era_knative_metric_is_unknown_at_v0_48() -> None:
    hits = list(monitoring_alerts.metric_exported(rule_manifest('sum(rate(revision_request_count[5m])) > 0')))
    assert [h.field for h in hits] == ["spec.groups[0].rules[0].expr"]


def test_known_metrics_recording_rules_and_prometheus_series_are_accepted() -> None:
    m = rule_manifest("kaiops_backup_last_run_success == 0", "job:up:sum < 1", "absent(up)",
                      'histogram_quantile(0.9, rate(kn_serving_invocation_duration_seconds_bucket[5m])) > 1',
                      "rate(python_gc_collections_total[5m]) > 1", record="job:up:sum")
    assert list(monitoring_alerts.metric_exported(m)) == []


def test_metric_names_skip_functions_labels_and_strings() -> None:
    expr = ('label_replace(sum by (pod) (rate(foo_total{a="x"}[5m])) / on(pod) group_left(node) bar, '
            '"n", "$1", "pod", "(.*)") > bool 0 unless baz offset 5m')
    assert metric_names(expr) == ["foo_total", "bar", "baz"]


def test_catalogue_covers_every_component_and_version() -> None:
    names = {c.name: c for c in catalogue.components()}
    assert set(names) == {"kuberay-operator", "ray", "kserve-model-server", "knative-queue-proxy", "cadvisor",
                          "prometheus-operator", "go-runtime", "kaiops"}
    assert "kuberay v1.6.2" in names["kuberay-operator"].version and "v0.48.1" in names["knative-queue-proxy"].version
    assert {"kuberay_cluster_info", "controller_runtime_reconcile_total"} <= set(names["kuberay-operator"].metrics)
    assert names["knative-queue-proxy"].metrics["kn_serving_invocation_duration_seconds"] == "histogram"
    assert names["kserve-model-server"].metrics["request_predict_seconds"] == "histogram"
    assert catalogue.size() > 500
    assert {"prometheus_operator_reconcile_errors_total", "prometheus_operator_build_info"} <= set(
        names["prometheus-operator"].metrics)
    go = names["go-runtime"].metrics  # client_golang v1.23.2's Go and process collectors
    assert go["go_gc_duration_seconds"] == "summary" and go["go_goroutines"] == "gauge"
    assert go["go_memstats_alloc_bytes_total"] == "counter" and go["go_sched_latencies_seconds"] == "histogram"
    assert go["process_cpu_seconds_total"] == "counter" and "process_network_receive_bytes_total" in go


def test_every_target_cites_its_source_and_identifies_by_its_own_labels() -> None:
    for t in TARGETS:
        assert ".go:" in t.source, t.what
        assert set(t.identify) <= set(t.labels), t.what
        assert set(t.metrics_ports) <= set(t.ports), t.what


def test_rule_ids_for_monitoring_exist() -> None:
    assert {Rule.MONITOR_SELECTS_NOTHING, Rule.MONITOR_PORT_UNKNOWN, Rule.ALERT_UNKNOWN_METRIC} <= set(Rule)


def test_selectors_keep_matchers_and_drop_ranges_offsets_and_strings() -> None:
    from tasks.monitoring.promql import selectors

    expr = ('sum(rate(foo_total{a="x}", b!="y"}[5m] offset 5m)) / sum(rate(foo_total[5m])) > 0 '
            'or label_replace(bar, "dst", "foo_total", "src", "(.*)")')
    assert selectors(expr) == [("foo_total", 'foo_total{a="x}", b!="y"}'), ("foo_total", "foo_total"),
                               ("bar", "bar")]


def test_loaded_state_names_the_rules_state_in_prometheus_or_not_loaded() -> None:
    from tasks.monitoring.live import loaded_state

    def group(name: str, file: str, **states: str) -> dict:
        return {"name": name, "file": file, "rules": [{"name": r, "state": s, "type": "alerting"}
                                                      for r, s in states.items()]}

    groups = [group("kaiops-backups", "/etc/prometheus/rules/prometheus-x-rulefiles-0/a-kaiops-backups-1.yaml",
                    KaiopsBackupFailing="inactive"),
              group("kaiops-backups", "/etc/prometheus/rules/prometheus-x-rulefiles-0/b-kaiops-backups-2.yaml",
                    KaiopsBackupFailing="pending"),
              {"name": "rec", "file": "/r.yaml", "rules": [{"name": "job:up:sum", "health": "ok",
                                                            "type": "recording"}]}]
    assert loaded_state(groups, "kaiops-backups", "KaiopsBackupFailing") == "pending"  # the most telling
    assert loaded_state(groups, "kaiops-backups", "KaiopsBackupFailing", namespace="a") == "inactive"
    assert loaded_state(groups, "kaiops-backups", "KaiopsBackupFailing", namespace="c") == "not-loaded"
    assert loaded_state(groups, "kaiops-backups", "KaiopsDrillFailing") == "not-loaded"
    assert loaded_state(groups, "rec", "job:up:sum") == "loaded"
    assert loaded_state([], "kaiops-backups", "KaiopsBackupFailing") == "not-loaded"


@pytest.mark.parametrize("policy", ["default.yaml", "demo.yaml"])
def test_the_knative_canary_policies_name_only_series_the_real_queue_proxy_exports(policy: str) -> None:
    """Issue 15 item 4: every metric the Serverless policies' templates select is a series of the catalogued
    queue-proxy of Knative Serving v0.48.1 (kn_serving_* and the OTel exporter's target_info)."""
    from configs.canary import load_policy
    from tasks.metrics.selectors import metric_selectors

    loaded = load_policy(REPO / "configs/canary" / policy)
    names = {s.metric for m in loaded.metrics for side in (m.canary, m.baseline)
             for t in side.templates().values() for s in metric_selectors(t)}
    assert names == {"kn_serving_invocation_duration_seconds_count", "kn_serving_invocation_duration_seconds_bucket",
                     "target_info"}
    assert {catalogue.series_index()[n].name for n in names} == {"knative-queue-proxy"}
    assert all(m.value_unit == "seconds" for m in loaded.metrics if m.kind == "latency")
