"""Canary policy: how a new model version is rolled out step by step and judged on Prometheus evidence.

A policy file (``configs/canary/*.yaml``) names the traffic steps, the timing, the approval gates and the
metrics. Each metric carries PromQL *templates* for the canary and for the baseline (stable) revision;
placeholders are ``${name}`` (Python :class:`string.Template`, so PromQL's own ``{}`` stay untouched):

==========================  =====================================================================
``${namespace}``            namespace of the InferenceService
``${isvc}``                 name of the InferenceService (the stable one in RawDeployment mode)
``${canary_revision}``      Serverless: the latest revision in ``status.components.predictor.traffic``;
                            RawDeployment: the canary InferenceService's predictor (``<isvc>-canary-predictor``)
``${baseline_revision}``    Serverless: the revision tagged ``prev`` (``latestRolledoutRevision``);
                            RawDeployment: the stable predictor (``<isvc>-predictor``)
``${range}``                a PromQL duration: since canary start for counts (``total``/``events``), since
                            the last look for ``value``, one window for the paired latency windows
==========================  =====================================================================

Ratio metrics need ``total`` and ``events`` (both cumulative counts, e.g. ``increase(...[${range}])``);
latency metrics need ``total`` and ``value`` (a quantile over ``${range}``, in ``value_unit``).

:meth:`CanaryPolicy.analysis_policy` produces the :class:`configs.analysis.CanaryAnalysisPolicy` the pure
analysis runs on. Checks that need Prometheus (does every metric and label a template names exist?) run
as a pre-flight in :func:`tasks.metrics.preflight`, before anything changes.

Export the JSON Schema for editors: ``python -m configs.canary > configs/canary/schema.json``.
"""

from __future__ import annotations

import json
import string
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from configs.analysis import BaselineBound, CanaryAnalysisPolicy, Decision, Direction, MetricKind, MetricSpec
from configs.loading import load_model

#: Placeholders a template may use (see the module docstring).
PLACEHOLDERS: frozenset[str] = frozenset({"namespace", "isvc", "canary_revision", "baseline_revision", "range"})

_STRICT = ConfigDict(extra="forbid", frozen=True)


class DeploymentMode(StrEnum):
    """How the InferenceService is deployed, which decides how traffic is split."""

    SERVERLESS = "Serverless"  # Knative: predictor.canaryTrafficPercent, revisions from status
    RAW_DEPLOYMENT = "RawDeployment"  # Standard: two InferenceServices behind a weighted Gateway API HTTPRoute


class ValueUnit(StrEnum):
    """Unit of a latency template's result (the analysis works in seconds)."""

    SECONDS = "seconds"  # e.g. KServe model server request_predict_seconds
    MILLISECONDS = "milliseconds"  # e.g. the OpenCensus-era queue-proxy revision_request_latencies

    @property
    def to_seconds(self) -> float:
        """Factor that turns a value in this unit into seconds."""
        return 0.001 if self is ValueUnit.MILLISECONDS else 1.0


class QueryTemplates(BaseModel):
    """PromQL templates for one side (canary or baseline) of one metric."""

    model_config = _STRICT

    total: str = Field(
        min_length=1, max_length=4000, description="Requests since canary start (a count, e.g. increase over ${range})."
    )
    events: str | None = Field(
        None,
        min_length=1,
        max_length=4000,
        description="Ratio metrics: counted events (errors) since canary start; add 'or vector(0)' so zero "
        "errors is 0 and not 'no data'.",
    )
    value: str | None = Field(
        None,
        min_length=1,
        max_length=4000,
        description="Latency metrics: the quantile over ${range}, in the metric's value_unit.",
    )

    def templates(self) -> dict[str, str]:
        """Return the templates that are set, by role (total/events/value)."""
        return {k: v for k, v in (("total", self.total), ("events", self.events), ("value", self.value)) if v}


class CanaryMetric(BaseModel):
    """One metric the canary is judged on: what to ask Prometheus and how to judge the answer."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Identifier, e.g. 'error_rate'.")
    kind: MetricKind = Field(description="ratio (events / requests) or latency (a quantile).")
    direction: Direction = Field(Direction.LOWER_IS_BETTER, description="Which way the metric gets better.")
    absolute_bound: float | None = Field(
        None, ge=0.0, le=1e6, description="Worst accepted canary value: a fraction 0..1 (ratio) or seconds (latency)."
    )
    baseline_bound: BaselineBound | None = Field(None, description="Worst accepted canary value relative to baseline.")
    weight: float = Field(1.0, gt=0.0, le=100.0, description="Weight in the step score.")
    critical: bool = Field(False, description="A failing critical metric rolls back whatever the score.")
    value_unit: ValueUnit = Field(ValueUnit.SECONDS, description="Latency: unit of the value template's result.")
    canary: QueryTemplates = Field(description="Templates for the canary revision.")
    baseline: QueryTemplates = Field(description="Templates for the baseline (stable) revision.")

    @model_validator(mode="after")
    def _templates_fit_kind(self) -> Self:
        need = "events" if self.kind is MetricKind.RATIO else "value"
        other = "value" if self.kind is MetricKind.RATIO else "events"
        for side in ("canary", "baseline"):
            queries: QueryTemplates = getattr(self, side)
            if getattr(queries, need) is None:
                raise ValueError(f"{self.kind.value} metric {self.name!r} needs {side}.{need}")
            if getattr(queries, other) is not None:
                raise ValueError(f"{self.kind.value} metric {self.name!r} takes no {side}.{other}")
            for role, text in queries.templates().items():
                try:
                    names = set(string.Template(text).get_identifiers())
                except ValueError as exc:
                    raise ValueError(f"{side}.{role}: malformed placeholder ({exc})") from exc
                if not string.Template(text).is_valid():
                    raise ValueError(f"{side}.{role}: malformed placeholder (write ${{name}})")
                unknown = sorted(names - PLACEHOLDERS)
                if unknown:
                    raise ValueError(
                        f"{side}.{role}: unknown placeholder(s) {unknown}; known: {sorted(PLACEHOLDERS)}"
                    )
        self.spec()  # the analysis's own checks (a ratio bound is a fraction, ...)
        return self

    def spec(self) -> MetricSpec:
        """Return the analysis's view of this metric."""
        return MetricSpec(
            name=self.name,
            kind=self.kind,
            direction=self.direction,
            absolute_bound=self.absolute_bound,
            baseline_bound=self.baseline_bound,
            weight=self.weight,
            critical=self.critical,
        )


class CanaryAnalysisSettings(BaseModel):
    """How verdicts turn into a decision (see tasks.analysis.decide)."""

    model_config = _STRICT

    query_failure_limit: int = Field(2, ge=0, le=100, description="Steps with failed queries held before failing.")
    on_query_failure: Decision = Field(Decision.ROLLBACK, description="Past the limit: rollback or hold.")
    inconclusive_step_limit: int = Field(3, ge=0, le=100, description="Inconclusive steps held before rollback.")
    score_threshold: float = Field(0.8, gt=0.0, le=1.0, description="Score needed to advance.")
    marginal_score: float = Field(0.5, ge=0.0, le=1.0, description="Scores from here to the threshold pause.")
    alpha: float = Field(0.05, gt=0.0, le=0.2, description="False-rollback budget over all looks (fraction).")


class CanaryWay(StrEnum):
    """How a Standard-mode (RawDeployment) canary is run; traffic is split by kaiops's HTTPRoute either way."""

    AUTO = "auto"  # spec-canary when the installed KServe release has spec.canary[] (v0.20.0 on), else the other
    SPEC_CANARY = "spec-canary"  # KServe v0.20's spec.canary[] entry: KServe runs the canary Deployment
    SECOND_INFERENCESERVICE = "second-inferenceservice"  # a second InferenceService <isvc>-canary (any release)


class GatewayRef(BaseModel):
    """The Gateway an HTTPRoute attaches to (RawDeployment mode)."""

    model_config = _STRICT

    name: str = Field("kserve-ingress-gateway", min_length=1, max_length=253, description="Gateway name.")
    namespace: str = Field("kserve", min_length=1, max_length=63, description="Gateway namespace.")
    scale_down_delay_seconds: float = Field(
        30.0, ge=0.0, le=3_600.0,
        description="Seconds the InferenceService the route moved off keeps serving before it is deleted, once "
        "the Gateway accepted the change (as Argo Rollouts' scaleDownDelaySeconds, default 30).",
    )
    way: CanaryWay = Field(
        CanaryWay.AUTO,
        description="Standard mode: run the canary as KServe's spec.canary[] entry (spec-canary, KServe v0.20.0 "
        "on; refused on an older release, which would drop the field) or as a second InferenceService; auto "
        "picks spec-canary when the installed release has it.",
    )


class CanaryPolicy(BaseModel):
    """A canary rollout policy (one YAML file under configs/canary/)."""

    model_config = _STRICT

    mode: DeploymentMode = Field(DeploymentMode.SERVERLESS, description="How traffic is split.")
    steps: list[int] = Field(
        [10, 25, 50, 100],
        min_length=1,
        max_length=20,
        description="Canary traffic percent per step, strictly increasing, ending at 100.",
    )
    interval_seconds: float = Field(60.0, ge=1.0, le=86_400.0, description="Seconds of traffic per analysis look.")
    warmup_seconds: float = Field(
        0.0, ge=0.0, le=3_600.0, description="Seconds after the canary is ready before the first look."
    )
    min_requests_per_step: int = Field(100, ge=1, le=10**9, description="New canary requests needed per look.")
    ready_deadline_seconds: float = Field(
        300.0, ge=1.0, le=7_200.0, description="Seconds for the new revision to become ready, else rollback."
    )
    approval_steps: list[int] = Field(
        [], max_length=20, description="Traffic percents (from steps) after whose passing look a human approves."
    )
    approval_timeout_seconds: int = Field(
        3_600, ge=10, le=7 * 86_400, description="Seconds to wait for a human decision; then roll back."
    )
    lease_seconds: float = Field(
        90.0, ge=10.0, le=3_600.0, description="Lease length; the guard rolls back once it expired unrenewed."
    )
    latency_window_seconds: float = Field(
        10.0, ge=1.0, le=3_600.0, description="Length of the paired canary/baseline latency windows."
    )
    max_looks: int = Field(100, ge=1, le=10_000, description="Looks in total before an undecided canary rolls back.")
    history_seconds: float = Field(
        3_600.0, ge=0.0, le=30 * 86_400.0,
        description="Seconds of the stable revision's own traffic before the canary started that ratio metrics "
        "also compare the canary with (the baseline templates over this range, at canary start), also while the "
        "canary takes 100 %; a drift guard stops using it when the live baseline runs worse. 0: live only.",
    )
    gateway: GatewayRef = Field(default_factory=GatewayRef, description="RawDeployment: the Gateway to attach to.")
    analysis: CanaryAnalysisSettings = Field(
        default_factory=CanaryAnalysisSettings, description="Decision settings."
    )
    metrics: list[CanaryMetric] = Field(min_length=1, max_length=50, description="Metrics judged at each look.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if any(not 1 <= s <= 100 for s in self.steps):
            raise ValueError(f"steps must be percents 1..100, got {self.steps}")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError(f"steps must be strictly increasing, got {self.steps}")
        if self.steps[-1] != 100:
            raise ValueError(f"the last step must be 100 (the canary takes all traffic first), got {self.steps}")
        stray = sorted(set(self.approval_steps) - set(self.steps))
        if stray:
            raise ValueError(f"approval_steps {stray} are not in steps {self.steps}")
        self.analysis_policy()
        return self

    def analysis_policy(self) -> CanaryAnalysisPolicy:
        """Return the :class:`CanaryAnalysisPolicy` the pure analysis runs on."""
        a = self.analysis
        return CanaryAnalysisPolicy(
            min_requests_per_step=self.min_requests_per_step,
            query_failure_limit=a.query_failure_limit,
            on_query_failure=a.on_query_failure,
            inconclusive_step_limit=a.inconclusive_step_limit,
            score_threshold=a.score_threshold,
            marginal_score=a.marginal_score,
            alpha=a.alpha,
            metrics=[m.spec() for m in self.metrics],
        )


def load_policy(path: str | Path) -> CanaryPolicy:
    """Read and validate a canary policy YAML file.

    Raises:
        InputError: the file is missing, not YAML, or fails validation (with the field path and a fix).
    """
    return load_model(path, CanaryPolicy, example='configs/canary/default.yaml')


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema of :class:`CanaryPolicy` (for editors)."""
    return CanaryPolicy.model_json_schema()


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
