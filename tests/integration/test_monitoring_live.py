"""Alert rules against the sandbox's real Prometheus: which series exist now and which alerts would fire.

kaiops's own backup metrics are written by its real writer (tasks/backup/metrics.py) and served over HTTP on
loopback; the sandbox Prometheus scrapes them through file-based discovery, like every sandbox target. The
metric catalogue is compared with what the pinned sources say (Go module proxy, installed packages).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tasks.backup.metrics import record_backup
from tasks.errors import InputError
from tasks.metrics import PrometheusProvider
from tasks.monitoring import extract
from tasks.monitoring.live import Verdict, check_files

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KAIOPS_RULES = REPO / "deployments/monitoring/prometheusrule-kaiops.yaml"
RAY_RULES = REPO / "deployments/monitoring/ray-cluster.yaml"


@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[str, Path]]:
    """The sandbox Prometheus only (the conftest stops it at the end if this session started it)."""
    from sandbox import launcher

    state = launcher.up(names=("prometheus",))
    yield launcher.env()["PROMETHEUS_URL"], state.dir / "prometheus" / "targets"


@pytest.fixture
def exporter(tmp_path: Path, prometheus: tuple[str, Path]) -> Iterator[Path]:
    """A loopback HTTP server serving the ``.prom`` files kaiops writes into ``tmp_path``, as a scrape target."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = "".join(p.read_text() for p in sorted(tmp_path.glob("*.prom"))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = prometheus[1] / f"kaiops-monitoring-test-{uuid.uuid4().hex[:8]}.json"
    target.write_text(json.dumps([{"targets": [f"127.0.0.1:{server.server_port}"],
                                   "labels": {"component": "kaiops-textfile"}}]))
    try:
        yield tmp_path
    finally:
        target.unlink(missing_ok=True)
        server.shutdown()


def wait_for(url: str, promql: str, expected: float, timeout: float = 45.0) -> None:
    """Until ``promql`` (one series) has ``expected``: the scrape interval is 2 s, discovery refresh 5 s."""
    provider = PrometheusProvider(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            result = provider.query(promql)
            if result.value is not None and abs(result.value - expected) < 1e-6:
                return
            time.sleep(1.0)
    finally:
        provider.close()
    raise AssertionError(f"{promql} never became {expected} in {timeout} s")


def by_rule(statuses: list) -> dict:
    return {s.rule: s for s in statuses}


def test_kaiops_backup_alerts_fire_when_their_condition_holds_and_go_quiet_after(prometheus, exporter) -> None:
    url, _ = prometheus
    policy = f"mon-{uuid.uuid4().hex[:6]}"
    # a failed run, and a last success 27 h ago: KaiopsBackupFailing and KaiopsBackupStale hold now
    record_backup(exporter, policy, success=True, now=time.time() - 27 * 3600)
    record_backup(exporter, policy, success=False, now=time.time())
    wait_for(url, f'kaiops_backup_last_run_success{{policy="{policy}"}}', 0.0)
    rules = by_rule(check_files([KAIOPS_RULES], url))
    assert rules["KaiopsBackupFailing"].verdict is Verdict.firing and rules["KaiopsBackupFailing"].series == 1
    assert rules["KaiopsBackupStale"].verdict is Verdict.firing
    assert rules["KaiopsBackupMetricsMissing"].verdict is Verdict.quiet  # absent() of a series that exists
    assert all(m.series_now for m in rules["KaiopsBackupFailing"].metrics)
    assert rules["KaiopsBackupFailing"].metrics[0].exported_by == "kaiops"
    assert rules["KaiopsDrillFailing"].verdict is Verdict.no_series  # no drill has written metrics here

    record_backup(exporter, policy, success=True, now=time.time())
    wait_for(url, f'kaiops_backup_last_run_success{{policy="{policy}"}}', 1.0)
    rules = by_rule(check_files([KAIOPS_RULES], url))
    assert rules["KaiopsBackupFailing"].verdict is Verdict.quiet
    assert rules["KaiopsBackupStale"].verdict is Verdict.quiet


def test_ray_rules_without_ray_targets_no_series_and_absent_fires(prometheus) -> None:
    url, _ = prometheus
    rules = by_rule(check_files([RAY_RULES], url))
    assert rules["HighCPUUsage"].verdict is Verdict.no_series
    cpu = rules["HighCPUUsage"].metrics[0]
    assert cpu.exported_by == "ray" and cpu.series_now is False
    assert rules["RayClusterDown"].verdict is Verdict.firing  # absent(up{job=~".+-head-svc"}): no head is scraped


def test_a_right_metric_with_a_wrong_job_matcher_has_no_series(prometheus, tmp_path: Path) -> None:
    url, _ = prometheus
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: jobs}\nspec:\n"
        "  groups:\n  - name: g\n    rules:\n"
        "    - {alert: WrongJob, expr: 'up{job=\"ray-head\"} == 0'}\n"
        "    - {alert: RightJob, expr: 'up{job=\"prometheus\"} == 0'}\n")
    got = by_rule(check_files([rules], url))
    assert got["WrongJob"].verdict is Verdict.no_series and got["WrongJob"].metrics[0].series_now is False
    assert got["WrongJob"].metrics[0].selector == 'up{job="ray-head"}'
    assert got["RightJob"].verdict is Verdict.quiet and got["RightJob"].metrics[0].series_now is True


def test_cli_json_and_exit_2_on_bad_input(prometheus, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    url, _ = prometheus
    runner = CliRunner()
    result = runner.invoke(app, ["monitoring", "check", str(RAY_RULES), "--prometheus", url, "-o", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["rule"]: r["verdict"] for r in rows}["HighCPUUsage"] == "no-series"
    not_rules = tmp_path / "x.yaml"
    not_rules.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    bad = runner.invoke(app, ["monitoring", "check", str(not_rules), "--prometheus", url])
    assert isinstance(bad.exception, InputError) and bad.exception.field == "kind"
    # the installed entry point turns it into exit 2 with the file and the fix
    kaiops = Path(sys.executable).parent / "kaiops"
    proc = subprocess.run([str(kaiops), "monitoring", "check", str(not_rules), "--prometheus", url],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and str(not_rules) in proc.stderr and "fix:" in proc.stderr


def test_catalogue_matches_the_pinned_sources() -> None:
    committed = json.loads(extract.CATALOGUE.read_text())
    assert committed == extract.extract(), "run: python -m tasks.monitoring.extract --write"


@pytest.fixture(scope="module")
def apiserver(prometheus) -> Iterator[str]:
    """The sandbox apiserver (with the pinned Prometheus Operator CRDs installed); yields its kubeconfig."""
    from sandbox import launcher

    launcher.up(names=("kube-apiserver",))
    yield launcher.env()["KUBECONFIG"]


def test_namespace_rules_from_the_cluster_are_checked_and_a_rejected_one_is_named(prometheus, apiserver) -> None:
    import yaml

    from tasks import kube
    from tasks.monitoring.live import check_objects, cluster_rules

    url, _ = prometheus
    dyn = kube.connect(apiserver)
    ns = "default"
    good = yaml.safe_load(RAY_RULES.read_text().split("---")[-1])
    good["metadata"] = {"name": f"ray-{uuid.uuid4().hex[:6]}", "namespace": ns}
    bad = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
           "metadata": {"name": f"broken-{uuid.uuid4().hex[:6]}", "namespace": ns},
           "spec": {"groups": [{"name": "g", "rules": [{"alert": "Broken", "expr": "sum(rate(up[5m]) by (job)"}]}]}}
    resource = kube.resource_for(dyn, "monitoring.coreos.com/v1", "PrometheusRule")
    try:
        for obj in (good, bad):
            kube.apply(dyn, obj)  # the apiserver accepts it: only the operator's webhook would run the parser
        statuses = check_objects(cluster_rules(apiserver, ns), url)
        mine = {s.rule: s for s in statuses if s.object in (f"PrometheusRule/{good['metadata']['name']}",
                                                              f"PrometheusRule/{bad['metadata']['name']}")}
        assert mine["HighCPUUsage"].verdict is Verdict.no_series
        assert mine["RayClusterDown"].verdict is Verdict.firing
        assert mine["RayClusterDown"].state == "not-loaded"  # its condition holds, but this Prometheus lacks it
        assert mine["Broken"].verdict is Verdict.rejected and "parse error" in (mine["Broken"].error or "")
    finally:
        for obj in (good, bad):
            resource.delete(name=obj["metadata"]["name"], namespace=ns)


def test_shipped_monitoring_manifests_are_clean() -> None:
    from tasks.manifests import validate_files

    findings = validate_files(sorted((REPO / "deployments/monitoring").glob("*.yaml")))
    assert [str(f) for f in findings] == []
