"""Typed vocabulary of canary analysis: one look's samples, state and results (the policy and its enums are
:mod:`configs.analysis`, re-exported here).

Units, everywhere in :mod:`tasks.analysis`:

- rates and shares are **fractions 0..1** (0.012 means 1.2 %); only human ``reason`` strings show percent;
- latencies are **seconds** (convert Knative's milliseconds before building a :class:`MetricSample`);
- request and event counts are **cumulative since the canary started** (Prometheus ``increase()`` over the
  canary's lifetime); they may be fractional because ``increase()`` extrapolates, and are rounded to whole
  requests by the analysis.
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from configs.analysis import Decision, MetricKind, MetricName


class Verdict(StrEnum):
    """What one metric says about the canary at one look."""

    PASS = "pass"  # enough data, no threshold breached, no statistical evidence the canary is worse
    FAIL = "fail"  # a threshold is breached or the anytime-valid test shows the canary is worse
    INCONCLUSIVE = "inconclusive"  # no data, NaN, failed query or too few requests: neither pass nor fail


class Outcome(StrEnum):
    """What happened to the metric query itself (a breached threshold is a Verdict, not an Outcome)."""

    OK = "ok"  # the query answered with values (which may still be NaN or too few)
    NO_DATA = "no_data"  # the query answered with an empty result
    QUERY_FAILED = "query_failed"  # Prometheus unreachable, timed out or returned an error


class HistoryMode(StrEnum):
    """Whether a ratio metric is also judged against the stable revision's pre-rollout history."""

    ON = "on"  # history counts were there at the first conclusive look: the history test runs
    NONE = "none"  # no usable history at the first conclusive look: live comparison only, all rollout long
    DRIFTED = "drifted"  # the drift guard fired (live baseline worse than its history): history test off


_STRICT = ConfigDict(extra="forbid", frozen=True)


class MetricSample(BaseModel):
    """What the metric queries returned for one metric at one look.

    Ratio metrics fill the four counts; latency metrics fill the two totals, the two values and optionally
    the paired windows. Values that are missing, NaN or inconsistent make the verdict inconclusive (they
    are data, not programming errors, so they are not refused here).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: MetricName = Field(description="Name of the MetricSpec this sample belongs to.")
    outcome: Outcome = Field(description="What happened to the query.")
    error: str | None = Field(None, max_length=2000, description="Query error message when query_failed.")
    canary_total: float | None = Field(None, description="Canary requests, cumulative since canary start.")
    baseline_total: float | None = Field(None, description="Baseline requests, cumulative since canary start.")
    canary_events: float | None = Field(None, description="Ratio: canary events (errors), cumulative.")
    baseline_events: float | None = Field(None, description="Ratio: baseline events (errors), cumulative.")
    canary_value: float | None = Field(None, description="Latency: canary value over this look, seconds.")
    baseline_value: float | None = Field(None, description="Latency: baseline value over this look, seconds.")
    canary_windows: list[float] | None = Field(
        None,
        max_length=100_000,
        description="Latency: canary values of short windows since the last "
        "look, seconds, paired by index with baseline_windows (same time range).",
    )
    baseline_windows: list[float] | None = Field(
        None, max_length=100_000, description="Latency: baseline values of the same windows, seconds."
    )
    history_total: float | None = Field(
        None,
        description="Ratio: baseline (stable revision) requests in the history window that ends when the "
        "canary started (None: no history). Read once, at the first conclusive look.",
    )
    history_events: float | None = Field(
        None, description="Ratio: baseline events (errors) in the same history window."
    )


class MetricState(BaseModel):
    """What one metric carries from look to look (counts already analysed, accumulated evidence)."""

    model_config = ConfigDict(extra="forbid")

    canary_total: int = Field(0, ge=0, description="Canary requests already analysed (cumulative).")
    baseline_total: int = Field(0, ge=0, description="Baseline requests already analysed (cumulative).")
    canary_bad: int = Field(0, ge=0, description="Ratio: canary bad events already analysed.")
    baseline_bad: int = Field(0, ge=0, description="Ratio: baseline bad events already analysed.")
    evidence_canary_bad: int = Field(
        0, ge=0, description="Ratio: canary bad events in the batches the e-process could use."
    )
    log_mgf_sums: list[float] | None = Field(
        None, description="Ratio: odds-ratio e-process accumulator, see sequential.OddsRatioEvidence."
    )
    history_mode: HistoryMode | None = Field(
        None, description="Ratio: history test on / none / drifted; None until the first conclusive look."
    )
    history_total: int = Field(0, ge=0, description="Ratio: baseline requests in the history window.")
    history_bad: int = Field(0, ge=0, description="Ratio: baseline bad events in the history window.")
    reference_rate: float | None = Field(
        None, description="Ratio: upper confidence bound of the history's bad rate (fraction), fixed once."
    )
    windows_worse: int = Field(0, ge=0, description="Latency: windows where the canary was worse.")
    windows_better: int = Field(0, ge=0, description="Latency: windows where the canary was better.")


class CanaryState(BaseModel):
    """Everything the analysis needs from earlier looks; the flow saves it on the InferenceService."""

    model_config = ConfigDict(extra="forbid")

    looks: int = Field(0, ge=0, description="Looks analysed so far.")
    consecutive_query_failures: int = Field(0, ge=0, description="Steps in a row with a failed query.")
    consecutive_inconclusive: int = Field(0, ge=0, description="Steps in a row without a conclusion.")
    metrics: dict[str, MetricState] = Field(default_factory=dict, description="Per metric name.")


class MetricVerdict(BaseModel):
    """The verdict on one metric at one look, with the numbers behind it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    kind: MetricKind
    critical: bool
    weight: float
    outcome: Outcome
    verdict: Verdict
    reason: str = Field(description="One line a human can act on.")
    canary: float | None = Field(None, description="Canary estimate (fraction or seconds).")
    baseline: float | None = Field(None, description="Baseline estimate (fraction or seconds).")
    canary_requests: int | None = Field(None, description="Canary requests analysed so far (cumulative).")
    step_requests: int | None = Field(None, description="Canary requests new at this look.")
    e_value: float | None = Field(None, description="Anytime-valid evidence that the canary is worse.")
    e_threshold: float | None = Field(None, description="e_value at or above this fails the metric.")
    diff_low: float | None = Field(None, description="Ratio: anytime-valid CI of canary - baseline, low.")
    diff_high: float | None = Field(None, description="Ratio: anytime-valid CI of canary - baseline, high.")
    canary_low: float | None = Field(None, description="Ratio: anytime-valid CI of the canary's rate, low.")
    canary_high: float | None = Field(None, description="Ratio: anytime-valid CI of the canary's rate, high.")
    baseline_low: float | None = Field(None, description="Ratio: anytime-valid CI of the baseline's rate, low.")
    baseline_high: float | None = Field(None, description="Ratio: anytime-valid CI of the baseline's rate, high.")
    history_e_value: float | None = Field(
        None, description="Ratio: anytime-valid evidence that the canary is worse than the stable's history."
    )
    history_e_threshold: float | None = Field(None, description="history_e_value at or above this fails.")
    reference_rate: float | None = Field(None, description="Ratio: the history's upper bound (fraction).")


class StepAnalysis(BaseModel):
    """The result of one look: verdicts, score, decision and the state to save for the next look."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    look: int = Field(description="1-based index of this look.")
    decision: Decision
    reason: str = Field(description="One line explaining the decision.")
    score: float | None = Field(None, description="Weighted share of passing conclusive metrics, 0..1.")
    verdicts: list[MetricVerdict]
    state: CanaryState = Field(description="Save this and pass it to the next look.")

    def to_json(self) -> str:
        """Return the analysis as a JSON document (NaN and infinities become null)."""
        return self.model_dump_json(indent=2)


def is_number(value: float | None) -> bool:
    """Return True for a finite number (not None, NaN or infinite)."""
    return value is not None and math.isfinite(value)
