"""Two rollouts run through the real analysis and state machine, for the report figure's tests and the README.

``promoted``: a canary as good as its baseline, promoted after the last step. ``rolled_back``: a canary whose
5xx rate rises to about 6 % at 25 % traffic, rolled back by the critical error-rate metric. Requests, errors
and latencies are generated from a seeded random generator (no cluster, no Prometheus), then judged by
:func:`tasks.analysis.analyse_step` and moved through :func:`tasks.rollout.state.after_analysis` exactly as
the flow does. ``python -m tests.rollout_scenarios DIR`` writes both figures into DIR.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from configs.canary import load_policy
from tasks.analysis import MetricSample, Outcome, analyse_step
from tasks.rollout.state import Phase, RolloutRecord, after_analysis, iso, look_record, released

POLICY = Path(__file__).resolve().parent.parent / "configs" / "canary" / "default.yaml"
RPS = 40.0  # requests per second the InferenceService serves


def run(kind: str, seed: int = 7) -> RolloutRecord:
    """Return the final record of the ``promoted`` or ``rolled_back`` scenario."""
    policy = load_policy(POLICY)
    analysis_policy = policy.analysis_policy()
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    record = RolloutRecord(phase=Phase.PROGRESSING, step=0, traffic=policy.steps[0], target_storage_uri="s3://models/iris/v2",
                           previous_storage_uri="s3://models/iris/v1", canary_revision="iris-predictor-00002",
                           previous_revision="iris-predictor-00001", started=iso(t0), canary_started=iso(t0))
    totals = {"c_n": 0, "c_e": 0, "b_n": 0, "b_e": 0}
    look = 0
    while record.phase is Phase.PROGRESSING:
        look += 1
        seconds = policy.interval_seconds + (policy.warmup_seconds if look == 1 else 0)
        share = record.traffic / 100
        c_n, b_n = rng.poisson(RPS * seconds * share), rng.poisson(RPS * seconds * (1 - share))
        bad = kind == "rolled_back" and record.traffic >= 25
        c_rate = 0.06 if bad else 0.004
        totals["c_n"] += c_n
        totals["b_n"] += b_n
        totals["c_e"] += rng.binomial(c_n, c_rate)
        totals["b_e"] += rng.binomial(b_n, 0.004)
        windows = int(seconds // policy.latency_window_seconds)
        c_lat = rng.normal(0.180 if bad else 0.120, 0.015, windows)
        b_lat = rng.normal(0.120, 0.015, windows)
        samples = [
            MetricSample(metric="error_rate", outcome=Outcome.OK, canary_total=totals["c_n"],
                         canary_events=totals["c_e"], baseline_total=totals["b_n"], baseline_events=totals["b_e"]),
            MetricSample(metric="latency_p95", outcome=Outcome.OK, canary_total=totals["c_n"],
                         baseline_total=totals["b_n"], canary_value=float(np.quantile(c_lat, 0.95)),
                         baseline_value=float(np.quantile(b_lat, 0.95)), canary_windows=list(c_lat),
                         baseline_windows=list(b_lat)),
        ]
        final = record.step >= len(policy.steps) - 1
        analysis = analyse_step(analysis_policy, record.analysis, samples, final_step=final)
        at = iso(t0 + timedelta(seconds=policy.warmup_seconds + look * policy.interval_seconds))
        entry = look_record(analysis, analysis_policy.metrics, step=record.step, traffic=record.traffic, at=at)
        looked = record.model_copy(update={"analysis": analysis.state, "history": [*record.history, entry],
                                           "last_look": at, "message": analysis.reason})
        record, _ = after_analysis(looked, analysis.decision, policy.steps, policy.approval_steps,
                                   policy.max_looks)
    if record.phase is Phase.PROMOTING:
        record = record.model_copy(update={"phase": Phase.SUCCEEDED, "traffic": 100,
                                           "message": "promoted: the canary passed every step"})
    elif record.phase is Phase.ROLLING_BACK:
        record = record.model_copy(update={"phase": Phase.ROLLED_BACK, "traffic": 0})
    return released(record)


if __name__ == "__main__":
    from tasks.rollout.report import write_report

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "rollout-figures")
    for name in ("promoted", "rolled_back"):
        paths = write_report(run(name), "models", f"iris-{name.replace('_', '-')}", out)
        print(paths["plot:rollout"])
