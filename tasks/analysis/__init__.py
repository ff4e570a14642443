"""Canary analysis: pure decision logic for promoting a canary revision on Prometheus evidence.

What it is: given a :class:`CanaryAnalysisPolicy`, the state saved at the previous look and this look's
:class:`MetricSample` s (numbers already fetched from Prometheus), :func:`analyse_step` returns a
:class:`StepAnalysis`: a verdict per metric with a one-line reason, a weighted score, a :class:`Decision`
(advance / hold / rollback / promote / pause_for_human) and the state to save for the next look.

What sets it apart from fixed-threshold gates (Flagger, Argo) and fixed-time comparisons (Kayenta): the
comparison with the baseline is *anytime-valid* - the false-rollback guarantee holds over every look the
rollout takes, however many - and thin traffic or missing data is inconclusive, never a pass or a fail.
Ratio metrics also compare the canary with the stable revision's own history from before the rollout
(``MetricSample.history_*``), which keeps judging the canary once it takes 100 % and no live baseline is
left; a drift guard stops that comparison when the live baseline runs worse than its history.
The methods, assumptions and sources are in :mod:`tasks.analysis.sequential`; the decision order in
:mod:`tasks.analysis.decide`.

What it is not: no Prefect, no HTTP, no Kubernetes, no clock. Querying Prometheus, saving the state on the
InferenceService and changing traffic belong to the tasks and flows that call this package.

Modules: ``model`` (samples, state, results; the policy and its enums are :mod:`configs.analysis`),
``sequential`` (anytime-valid statistics), ``thresholds`` (bounds),
``verdict`` (one metric, one look), ``decide`` (the step decision).
"""

from configs.analysis import BaselineBound, CanaryAnalysisPolicy, Decision, Direction, MetricKind, MetricSpec
from tasks.analysis.decide import analyse_step
from tasks.analysis.model import (
    CanaryState,
    HistoryMode,
    MetricSample,
    MetricVerdict,
    Outcome,
    StepAnalysis,
    Verdict,
)

__all__ = [
    "BaselineBound",
    "CanaryAnalysisPolicy",
    "CanaryState",
    "Decision",
    "Direction",
    "HistoryMode",
    "MetricKind",
    "MetricSample",
    "MetricSpec",
    "MetricVerdict",
    "Outcome",
    "StepAnalysis",
    "Verdict",
    "analyse_step",
]
