"""The stable revision's pre-rollout history, read from a real Prometheus and used by the analysis.

Same set-up as ``test_metrics_backfill.py``: a Prometheus of our own (loopback, free port) on a TSDB made by
``promtool tsdb create-blocks-from openmetrics``. The series: a stable revision serving 20 req/s at 1 %
errors for an hour before the canary starts, then 90 % of the traffic for one minute and none after; a
canary at 5 % errors taking 10 % for a minute, then 100 %. Without history the comparison with the baseline
ends when the canary reaches 100 %; with it the canary is still judged, against the stable's own hour.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from configs.canary import load_policy
from tasks.analysis import Decision, HistoryMode, analyse_step
from tasks.metrics import PrometheusProvider, QueryContext, baseline_history, collect_samples, history_pending
from tests.prom_support import backfilled_prometheus, queue_proxy_openmetrics

pytestmark = pytest.mark.integration  # needs prometheus + promtool (`make setup`); never skipped
ROOT = Path(__file__).resolve().parents[2]
NS = "demo"
HISTORY = 3600  # seconds of stable traffic before the canary starts
CANARY_START = (int(time.time()) // 3600 - 2) * 3600  # two hours ago, on the hour: inside the retention
STEP = 5  # seconds between samples (a scrape interval)
RPS = 20.0
STABLE_ERR, CANARY_ERR = 0.01, 0.05


def _rates(rev: str, t: int) -> float:
    """Requests per second of ``rev`` at ``t`` seconds after the canary start (negative: history)."""
    if rev == "stable-00001":
        return RPS if t < 0 else (0.9 * RPS if t < 60 else 0.0)
    return 0.0 if t < 0 else (0.1 * RPS if t < 60 else RPS)


def _openmetrics() -> str:
    # the real queue-proxy's series (tests/prom_support.py); latency flat and equal for both (40 ms), only the
    # error rate differs
    revisions: dict[str, list[tuple[int, dict[int, int]]]] = {}
    for rev, err in (("stable-00001", STABLE_ERR), ("canary-00002", CANARY_ERR)):
        total = 0.0
        first = -HISTORY if rev == "stable-00001" else 0
        samples = []
        for t in range(first, 301, STEP):
            total += _rates(rev, t - STEP) * STEP if t > first else 0.0
            bad = round(total * err)
            samples.append((CANARY_START + t, {200: round(total) - bad, 500: bad}))
        revisions[rev] = samples
    return queue_proxy_openmetrics(NS, revisions, {"stable-00001": 0.04, "canary-00002": 0.04})


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with backfilled_prometheus(tmp_path_factory.mktemp("prom-history"), _openmetrics()) as url:
        yield url


@pytest.fixture
def policy(tmp_path: Path):
    text = (ROOT / "configs/canary/default.yaml").read_text().replace("min_requests_per_step: 100",
                                                                      "min_requests_per_step: 50")
    (tmp_path / "p.yaml").write_text(text)
    return load_policy(tmp_path / "p.yaml")


CTX = QueryContext(namespace=NS, isvc="x", canary_revision="canary-00002", baseline_revision="stable-00001")


def test_history_is_the_stable_revisions_hour_before_the_canary_started(prometheus: str, policy) -> None:
    provider = PrometheusProvider(prometheus)
    total, events = baseline_history(provider, policy.metrics[0], CTX, CANARY_START, HISTORY)
    provider.close()
    assert total == pytest.approx(RPS * HISTORY, rel=0.01)  # none of the rollout's minute at 90 % in it
    assert events == pytest.approx(RPS * HISTORY * STABLE_ERR, rel=0.02)


def test_history_of_a_revision_without_series_is_none(prometheus: str, policy) -> None:
    provider = PrometheusProvider(prometheus)
    ctx = CTX.__class__(namespace=NS, isvc="x", canary_revision="canary-00002", baseline_revision="nope-00009")
    assert baseline_history(provider, policy.metrics[0], ctx, CANARY_START, HISTORY) == (None, None)
    provider.close()


def _looks(url: str, policy, history: bool) -> list:
    provider = PrometheusProvider(url)
    state, results = None, []
    steps = [(60, False), (120, True), (180, True), (240, True)]  # (seconds after start, canary at 100 %)
    last = CANARY_START
    for at, final in steps:
        now = CANARY_START + at
        pending = history_pending(state, "error_rate")
        samples = collect_samples(provider, policy, CTX, now=now, canary_start=CANARY_START, last_look=last,
                                  state=state, history=history)
        errors = next(s for s in samples if s.metric == "error_rate")
        assert (errors.history_total is not None) == (history and pending)  # read only until taken
        analysis = analyse_step(policy.analysis_policy(), state, samples, final_step=final)
        state, last = analysis.state, now
        results.append(analysis)
        if analysis.decision is Decision.ROLLBACK:
            break
    provider.close()
    return results


def test_history_keeps_judging_the_canary_at_100_percent(prometheus: str, policy) -> None:
    live = _looks(prometheus, policy, history=False)
    assert [r.decision for r in live] == [Decision.ADVANCE, Decision.PROMOTE, Decision.PROMOTE, Decision.PROMOTE]
    with_history = _looks(prometheus, policy, history=True)
    assert with_history[0].decision is Decision.ADVANCE
    assert with_history[-1].decision is Decision.ROLLBACK and len(with_history) == 2
    assert with_history[-1].state.metrics["error_rate"].history_mode is HistoryMode.ON
    assert "stable revision's history" in with_history[-1].reason
