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
from tests.prom_support import backfilled_prometheus, queue_proxy_openmetrics

pytestmark = pytest.mark.integration  # needs prometheus + promtool: `make setup` installs them; never skipped
ROOT = Path(__file__).resolve().parents[2]
NS = "demo"
T0 = (int(time.time()) // 3600 - 3) * 3600  # three hours ago, on the hour: inside the default retention
STEP = 5  # seconds between samples (a scrape interval)
DURATION = 600  # seconds of series per revision
RPS = {"good-00001": 20.0, "good-00002": 5.0, "bad-00002": 5.0}  # baseline and two canaries
ERR = {"good-00001": 0.005, "good-00002": 0.005, "bad-00002": 0.20}
LAT_MS = {"good-00001": 40, "good-00002": 40, "bad-00002": 40}
BORN, BORN_AT = "born-00003", 300  # a revision whose series are born inside the window


def _openmetrics() -> str:
    # what the real queue-proxy (Knative Serving v0.48.1, OTel) exports: one target per revision, the revision
    # in target_info, kn_serving_invocation_duration_seconds by http_response_status_code (seconds)
    revisions: dict[str, list[tuple[int, dict[int, int]]]] = {}
    for rev, rps in RPS.items():
        samples = []
        for t in range(0, DURATION + 1, STEP):
            total = rps * t
            bad = round(total * ERR[rev])
            samples.append((T0 + t, {200: round(total) - bad, 500: bad}))
        revisions[rev] = samples
    # BORN: its first 5xx and its first requests happened before its first scrape (an OTel series is born at
    # its first request, so its first sample is already > 0): 3 errors in 10 requests, no error after
    revisions[BORN] = [(T0 + t, {200: 7 + (t - BORN_AT), 500: 3}) for t in range(BORN_AT, DURATION + 1, STEP)]
    latency = {rev: LAT_MS[rev] / 1000 for rev in RPS} | {BORN: 0.04}
    return queue_proxy_openmetrics(NS, revisions, latency)


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
    assert set(checked) == {"kn_serving_invocation_duration_seconds_bucket",
                            "kn_serving_invocation_duration_seconds_count", "target_info"}


def test_preflight_names_a_missing_metric_and_label(prometheus: str, policy, tmp_path: Path) -> None:
    provider = PrometheusProvider(prometheus)
    raw = (ROOT / "configs/canary/default.yaml").read_text()
    # the OpenCensus-era name, which queue-proxy v0.48.1 no longer exports
    (tmp_path / "m.yaml").write_text(raw.replace("increase(kn_serving_invocation_duration_seconds_count[",
                                                 "increase(revision_request_count[", 1))
    with pytest.raises(InputError, match="no metric 'revision_request_count'") as info:
        preflight(provider, load_policy(tmp_path / "m.yaml"), str(tmp_path / "m.yaml"))
    assert "m.yaml" in str(info.value)
    wrong_label = raw.replace('kn_revision_name="${canary_revision}"', 'revision_name="${canary_revision}"', 1)
    (tmp_path / "l.yaml").write_text(wrong_label)
    with pytest.raises(InputError, match=r"no label\(s\) \['revision_name'\]"):
        preflight(provider, load_policy(tmp_path / "l.yaml"), "l.yaml")


def test_preflight_names_a_template_prometheus_cannot_parse(prometheus: str, tmp_path: Path) -> None:
    raw = (ROOT / "configs/canary/default.yaml").read_text()
    broken = raw.replace("[${range}]))", "[${range}])", 1)  # the first template loses its closing paren
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
    r = PrometheusProvider(prometheus).query('sum(target_info{kn_revision_name="nope"})')
    assert r.outcome is Outcome.NO_DATA


def test_a_series_born_inside_the_window_is_counted_from_zero(prometheus: str, policy) -> None:
    """BORN's 5xx series first appears holding 3 errors: increase() alone would count 0 of them (it has no
    earlier sample to subtract); the default policy's templates count all 3, and its requests from 0."""
    provider = PrometheusProvider(prometheus)
    ctx = QueryContext(namespace=NS, isvc="x", canary_revision=BORN, baseline_revision="good-00001")
    now, since = T0 + 500, 250  # the window starts before the series are born at T0 + 300
    error_rate = policy.metrics[0]
    events = provider.query(ctx.fill(error_rate.canary.events, since), at=now)
    total = provider.query(ctx.fill(error_rate.canary.total, since), at=now)
    assert events.value == 3.0
    assert total.value == 10.0 + (500 - BORN_AT)  # 10 at birth, then 1 request per second
    naive = provider.query(f'sum(increase(kn_serving_invocation_duration_seconds_count{{'
                           f'http_response_status_code="500"}}[{since}s]) * on (job, instance) group_left () '
                           f'target_info{{kn_revision_name="{BORN}"}})', at=now)
    assert naive.value == 0.0  # what the templates must not do
    # a series that existed when the window started is still counted by increase() (good-00001: 20 req/s)
    ctx = QueryContext(namespace=NS, isvc="x", canary_revision="good-00001", baseline_revision="good-00001")
    total = provider.query(ctx.fill(error_rate.canary.total, 120), at=T0 + 400)
    assert total.value == pytest.approx(20.0 * 120, rel=0.01)
    provider.close()
