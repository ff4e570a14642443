"""The canary analysis policy as typed data: how a canary is judged at each step, and the enums it names.

:class:`configs.canary.CanaryPolicy` builds a :class:`CanaryAnalysisPolicy` from a policy file;
:mod:`tasks.analysis` runs the pure analysis on it (and re-exports these names). Units as in
:mod:`tasks.analysis.model`: fractions 0..1 for rates, seconds for latencies.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Direction(StrEnum):
    """Which way a metric gets better."""

    LOWER_IS_BETTER = "lower_is_better"  # error rates, latencies
    HIGHER_IS_BETTER = "higher_is_better"  # success rates, throughput


class Decision(StrEnum):
    """What the rollout should do after this step's analysis."""

    ADVANCE = "advance"  # go to the next traffic step
    HOLD = "hold"  # keep the current traffic split and analyse again next tick
    ROLLBACK = "rollback"  # send all traffic back to the previous revision
    PROMOTE = "promote"  # the last step passed: make the canary the new stable revision
    PAUSE_FOR_HUMAN = "pause_for_human"  # evidence is mixed (marginal score): a person decides


class MetricKind(StrEnum):
    """How a metric is sampled and compared."""

    RATIO = "ratio"  # event counts over request counts (5xx errors / requests); exact sequential tests
    LATENCY = "latency"  # quantile-style values (p95 seconds); paired-window sign test plus thresholds


_STRICT = ConfigDict(extra="forbid", frozen=True)


class BaselineBound(BaseModel):
    """Worst canary value still accepted, relative to the baseline's value.

    For ``lower_is_better`` metrics the canary may be at most ``baseline * factor + margin``; for
    ``higher_is_better`` at least ``baseline / factor - margin``. ``factor=1.2`` alone means "at most 20 %
    worse"; ``margin=0.01`` alone on an error rate means "at most 1 percentage point worse"; both combine.
    """

    model_config = _STRICT

    factor: float = Field(1.0, ge=1.0, le=1000.0, description="Multiplicative tolerance (>= 1).")
    margin: float = Field(
        0.0, ge=0.0, le=1e6, description="Additive tolerance in the metric's unit (fraction or seconds)."
    )

    def worst_allowed(self, baseline: float, direction: Direction) -> float:
        """Return the worst accepted canary value for a baseline value (same unit as ``baseline``)."""
        if direction is Direction.LOWER_IS_BETTER:
            return baseline * self.factor + self.margin
        return baseline / self.factor - self.margin


MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class MetricSpec(BaseModel):
    """One metric the canary is judged on."""

    model_config = _STRICT

    name: MetricName = Field(description="Identifier, e.g. 'error_rate'; samples are matched by it.")
    kind: MetricKind = Field(description="ratio (event counts / request counts) or latency (seconds).")
    direction: Direction = Field(
        Direction.LOWER_IS_BETTER,
        description="For ratio metrics: lower_is_better means the counted events are bad (errors); "
        "higher_is_better means they are good (successes) and bad = total - events.",
    )
    absolute_bound: float | None = Field(
        None,
        ge=0.0,
        le=1e6,
        description="Worst accepted canary value regardless of baseline: a fraction 0..1 for ratio metrics, "
        "seconds for latency. None: no absolute bound.",
    )
    baseline_bound: BaselineBound | None = Field(
        None, description="Worst accepted canary value relative to the baseline. None: no such bound."
    )
    weight: float = Field(1.0, gt=0.0, le=100.0, description="Weight in the step score (> 0).")
    critical: bool = Field(False, description="A failing critical metric rolls back regardless of score.")

    @model_validator(mode="after")
    def _ratio_bound_is_a_fraction(self) -> Self:
        if self.kind is MetricKind.RATIO and self.absolute_bound is not None and self.absolute_bound > 1.0:
            raise ValueError(
                f"absolute_bound {self.absolute_bound} of ratio metric {self.name!r} is a fraction 0..1 "
                "(write 0.05 for 5 %)"
            )
        return self


class CanaryAnalysisPolicy(BaseModel):
    """How a canary is judged at each step (loaded later from configs/ by the lead's policy YAML)."""

    model_config = _STRICT

    min_requests_per_step: int = Field(
        100, ge=1, le=10**9, description="Canary requests needed since the last analysed look; fewer is inconclusive."
    )
    query_failure_limit: int = Field(
        2,
        ge=0,
        le=100,
        description="Consecutive steps with a failed query that are held; one more fails closed with on_query_failure.",
    )
    on_query_failure: Decision = Field(
        Decision.ROLLBACK, description="Fail-closed decision past query_failure_limit: rollback or hold."
    )
    inconclusive_step_limit: int = Field(
        3, ge=0, le=100, description="Consecutive inconclusive steps that are held; one more rolls back."
    )
    score_threshold: float = Field(
        0.8, gt=0.0, le=1.0, description="Weighted share of passing conclusive metrics needed to advance."
    )
    marginal_score: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Scores in [marginal_score, score_threshold) pause for a human; below rolls back.",
    )
    alpha: float = Field(
        0.05, gt=0.0, le=0.2, description="Budget for a false failure over ALL looks and metrics (fraction)."
    )
    metrics: list[MetricSpec] = Field(min_length=1, max_length=50, description="Metrics judged each step.")

    @field_validator("on_query_failure")
    @classmethod
    def _fail_closed(cls, value: Decision) -> Decision:
        if value not in (Decision.ROLLBACK, Decision.HOLD):
            raise ValueError("on_query_failure must be 'rollback' or 'hold': never advance without evidence")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.marginal_score > self.score_threshold:
            raise ValueError(
                f"marginal_score {self.marginal_score} must not exceed score_threshold {self.score_threshold}"
            )
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metric names must be unique, repeated: {duplicates}")
        return self

    @property
    def alpha_per_metric(self) -> float:
        """Bonferroni share of ``alpha`` for each metric's statistical checks (fraction)."""
        return self.alpha / len(self.metrics)
