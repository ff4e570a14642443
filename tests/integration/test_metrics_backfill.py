"""Deterministic canary analysis on series backfilled into a real Prometheus with ``promtool``.

The test starts its own Prometheus (loopback, free port) on a TSDB made by
``promtool tsdb create-blocks-from openmetrics`` - Knative queue-proxy counters for a baseline and a canary
revision - and runs the policy templates, the provider and ``analyse_step`` against it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from configs.canary import load_policy
from tasks.analysis import Decision, Outcome, analyse_step
from tasks.errors import InputError
from tasks.metrics import PrometheusProvider, QueryContext, collect_samples, preflight
from tests.prom_support import backfilled_prometheus

pytestmark = pytest.mark.integration  # needs prometheus + promtool: `make setup` installs them; never skipped
ROOT = Path(__file__).resolve().parents[2]
NS = "demo"
T0 = (int(time.time()) // 3600 - 3) * 3600  # three hours ago, on the hour: inside the default retention
STEP = 5  # seconds between samples (a scrape interval)
DURATION = 600  # seconds of series per revision
RPS = {"good-00001": 20.0, "good-00002": 5.0, "bad-00002": 5.0}  # baseline and two canaries
ERR = {"good-00001": 0.005, "good-00002": 0.005, "bad-00002": 0.20}
LAT_MS = {"good-00001": 40, "good-00002": 40, "bad-00002": 40}


def _openmetrics() -> str:
    # Knative's exporter names the counter revision_request_count (no _total); OpenMetrics would force
    # _total on a counter, so the backfill declares it unknown to keep Knative's name.
    lines = ["# TYPE revision_request_count unknown", "# HELP revision_request_count requests"]
    buckets = [5, 10, 25, 50, 100, 250, 500, 1000]
    for rev, rps in RPS.items():
        for t in range(0, DURATION + 1, STEP):
            total = rps * t
            bad = round(total * ERR[rev])
            labels = f'namespace_name="{NS}",revision_name="{rev}",configuration_name="x",service_name="x"'
            lines.append(f'revision_request_count{{{labels},response_code="200",response_code_class="2xx"}} '
                         f"{round(total) - bad} {T0 + t}")
            lines.append(f'revision_request_count{{{labels},response_code="500",response_code_class="5xx"}} '
                         f"{bad} {T0 + t}")
    lines += ["# TYPE revision_request_latencies histogram", "# HELP revision_request_latencies ms"]
    for rev, rps in RPS.items():
        for t in range(0, DURATION + 1, STEP):
            n = round(rps * t)
            labels = f'namespace_name="{NS}",revision_name="{rev}"'
            for le in buckets:
                v = n if le >= LAT_MS[rev] else (n // 2 if le >= LAT_MS[rev] // 2 else 0)
                lines.append(f'revision_request_latencies_bucket{{{labels},le="{le}"}} {v} {T0 + t}')
            lines.append(f'revision_request_latencies_bucket{{{labels},le="+Inf"}} {n} {T0 + t}')
            lines.append(f"revision_request_latencies_count{{{labels}}} {n} {T0 + t}")
            lines.append(f"revision_request_latencies_sum{{{labels}}} {n * LAT_MS[rev]} {T0 + t}")
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with backfilled_prometheus(tmp_path_factory.mktemp("prom"), _openmetrics()) as url:
        yield url


@pytest.fixture
def policy(tmp_path: Path):
    text = (ROOT / "configs/canary/default.yaml").read_text().replace("min_requests_per_step: 100",
                                                                      "min_requests_per_step: 50")
    (tmp_path / "p.yaml").write_text(text)
    return load_policy(tmp_path / "p.yaml")


def _looks(url: str, policy, canary: str, baseline: str = "good-00001", looks: int = 4, every: int = 60):
    provider = PrometheusProvider(url)
    ctx = QueryContext(namespace=NS, isvc="x", canary_revision=canary, baseline_revision=baseline)
    start, state, results = T0 + 30, None, []
    for i in range(1, looks + 1):
        now = start + i * every
        samples = collect_samples(provider, policy, ctx, now=now, canary_start=start, last_look=now - every)
        analysis = analyse_step(policy.analysis_policy(), state, samples, final_step=i == looks)
        state = analysis.state
        results.append(analysis)
    provider.close()
    return results


def test_preflight_accepts_the_default_policy(prometheus: str, policy) -> None:
    checked = preflight(PrometheusProvider(prometheus), policy, "default.yaml")
    assert "revision_request_count" in checked and "revision_request_latencies_bucket" in checked


def test_preflight_names_a_missing_metric_and_label(prometheus: str, policy, tmp_path: Path) -> None:
    provider = PrometheusProvider(prometheus)
    raw = (ROOT / "configs/canary/default.yaml").read_text()
    (tmp_path / "m.yaml").write_text(raw.replace("revision_request_count{", "revision_request_total{", 1))
    with pytest.raises(InputError, match="revision_request_total") as info:
        preflight(provider, load_policy(tmp_path / "m.yaml"), str(tmp_path / "m.yaml"))
    assert "m.yaml" in str(info.value)
    wrong_label = raw.replace('revision_name="${canary_revision}"', 'revision="${canary_revision}"', 1)
    (tmp_path / "l.yaml").write_text(wrong_label)
    with pytest.raises(InputError, match="revision"):
        preflight(provider, load_policy(tmp_path / "l.yaml"), "l.yaml")


def test_preflight_names_a_template_prometheus_cannot_parse(prometheus: str, tmp_path: Path) -> None:
    raw = (ROOT / "configs/canary/default.yaml").read_text()
    broken = raw.replace("[${range}]))\n", "[${range}])\n", 1)  # the first template loses its closing paren
    assert broken != raw
    (tmp_path / "p.yaml").write_text(broken)
    with pytest.raises(InputError, match="does not parse") as info:
        preflight(PrometheusProvider(prometheus), load_policy(tmp_path / "p.yaml"), "p.yaml")
    assert info.value.field == "metrics[0].canary.total"


def test_healthy_canary_advances_every_look_and_promotes(prometheus: str, policy) -> None:
    results = _looks(prometheus, policy, "good-00002")
    assert [r.decision for r in results] == [Decision.ADVANCE] * 3 + [Decision.PROMOTE]


def test_canary_with_20_percent_errors_is_rolled_back_at_the_first_look(prometheus: str, policy) -> None:
    first = _looks(prometheus, policy, "bad-00002", looks=1)[0]
    assert first.decision is Decision.ROLLBACK
    assert "error_rate" in first.reason


def test_canary_without_traffic_is_never_promoted(prometheus: str, policy) -> None:
    results = _looks(prometheus, policy, "absent-00009", looks=5)
    assert Decision.PROMOTE not in [r.decision for r in results]
    assert [r.decision for r in results][:3] == [Decision.HOLD] * 3
    assert results[-1].decision is Decision.ROLLBACK  # past inconclusive_step_limit


def test_unreachable_prometheus_is_query_failed_and_never_promotes(policy) -> None:
    from sandbox.procs import free_port

    provider = PrometheusProvider(f"http://127.0.0.1:{free_port()}", timeout=1)
    assert provider.query("up").outcome is Outcome.QUERY_FAILED
    results = _looks(provider.url, policy, "good-00002", looks=4)
    # query_failure_limit 2: two steps held, the third fails closed
    assert [r.decision for r in results][:3] == [Decision.HOLD, Decision.HOLD, Decision.ROLLBACK]
    assert all(r.decision in (Decision.HOLD, Decision.ROLLBACK) for r in results)


def test_empty_result_is_no_data_not_an_error(prometheus: str) -> None:
    r = PrometheusProvider(prometheus).query('sum(revision_request_count{revision_name="nope"})')
    assert r.outcome is Outcome.NO_DATA
