"""The rollout report figure and its data: a promoted and a rolled-back rollout through the real analysis."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from configs.canary import load_policy
from tasks.analysis import Direction, MetricKind, MetricSpec
from tasks.rollout.report import headline, write_report
from tasks.rollout.state import Phase, bound_at
from tests.rollout_scenarios import POLICY, run


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.unit
@pytest.mark.parametrize(("kind", "phase", "last_decision"), [("promoted", Phase.SUCCEEDED, "promote"),
                                                               ("rolled_back", Phase.ROLLED_BACK, "rollback")])
def test_report_has_one_figure_and_the_decision(tmp_path: Path, kind: str, phase: Phase, last_decision: str) -> None:
    record = run(kind)
    assert record.phase is phase and record.history[-1].decision.value == last_decision
    paths = write_report(record, "models", "iris", tmp_path)
    width, height = _png_size(paths["plot:rollout"])
    assert (width, height) == (800, 660)
    md = paths["markdown"].read_text()
    assert md.splitlines()[0] == f"# Rollout of {headline(record, 'models', 'iris')}"
    assert "![rollout](rollout.png)" in md
    assert list(tmp_path.rglob("*.png")) == [paths["plot:rollout"]]


@pytest.mark.unit
def test_every_look_carries_estimates_bands_bound_and_verdict() -> None:
    record = run("rolled_back")
    for look in record.history:
        ratio, latency = look.metrics["error_rate"], look.metrics["latency_p95"]
        assert ratio["kind"] == "ratio" and latency["kind"] == "latency"
        assert ratio["canary_low"] <= ratio["canary"] <= ratio["canary_high"]
        assert ratio["baseline_low"] <= ratio["baseline"] <= ratio["baseline_high"]
        # the error-rate bound: absolute 5 % or baseline's CI high + 1 point, whichever is tighter
        assert ratio["bound"] == pytest.approx(min(0.05, ratio["baseline_high"] + 0.01))
        assert latency["bound"] == pytest.approx(min(1.0, latency["baseline"] * 1.5 + 0.02))
        assert {ratio["verdict"], latency["verdict"]} <= {"pass", "fail", "inconclusive"}
    assert record.history[-1].metrics["error_rate"]["verdict"] == "fail"


@pytest.mark.unit
def test_headline_says_what_where_and_which_metric_failed() -> None:
    assert headline(run("rolled_back"), "models", "iris") == (
        "models/iris: ROLLED BACK after look 2 at 25 % canary traffic: error_rate, latency_p95 failed")
    assert headline(run("promoted"), "models", "iris") == "models/iris: PROMOTED after look 4 at 100 % canary traffic"


@pytest.mark.unit
def test_bound_at_takes_the_tighter_bound_per_direction() -> None:
    spec = load_policy(POLICY).analysis_policy().metrics[0]
    assert bound_at(spec, 0.002, 0.01) == pytest.approx(0.02)
    assert bound_at(spec, 0.002, 0.08) == pytest.approx(0.05)
    higher = MetricSpec(name="success", kind=MetricKind.RATIO, direction=Direction.HIGHER_IS_BETTER,
                        absolute_bound=0.9, baseline_bound={"factor": 1.0, "margin": 0.01})
    assert bound_at(higher, 0.99, 0.98) == pytest.approx(0.97)
    assert bound_at(MetricSpec(name="x", kind=MetricKind.LATENCY), 0.1, None) is None


@pytest.mark.unit
def test_live_view_shows_step_traffic_estimates_decision_and_next_look_at_80_columns() -> None:
    from rich.console import Console

    from flows.commands.rollout import render_live
    from tasks.rollout.report import live_status
    from tasks.rollout.state import parse_time

    policy = load_policy(POLICY)
    done = run("promoted")
    record = done.model_copy(update={"phase": Phase.PROGRESSING, "step": 2, "traffic": 50,
                                     "history": done.history[:2], "last_look": done.history[1].at})
    now_s = parse_time(record.last_look).timestamp() + 20
    status = live_status(record, policy.steps, policy.interval_seconds, policy.warmup_seconds, now_s)
    assert (status["step"], status["traffic"], status["steps"], status["next_look_s"], status["decision"]) == (
        "3/4", "50 %", "10>25>[50]>100 %", 40, "advance")
    assert [m["metric"] for m in status["metrics"]] == ["error_rate", "latency_p95"]
    assert status["metrics"][1]["canary"].endswith("ms") and "%" in status["metrics"][0]["bound"]
    console = Console(width=80, record=True)
    console.print(render_live("models", "iris", record, policy, now_s=now_s))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for needed in ("step 3/4: 50 %", "next look in 40 s", "decision advance", status["metrics"][0]["baseline"],
                   status["metrics"][1]["bound"]):
        assert needed in text, needed
