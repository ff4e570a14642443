"""The step decision: from this look's samples and the saved state to advance / hold / rollback / promote.

Read top to bottom, first match wins:

1. a **critical** metric fails                       -> rollback (whatever the score)
2. a query failed (Prometheus down or erroring)      -> hold, up to ``query_failure_limit`` steps in a row;
                                                        past it fail closed: ``on_query_failure``
3. no conclusive metric, or a critical one is
   inconclusive (no data, NaN, too few requests)     -> hold, up to ``inconclusive_step_limit`` steps in a
                                                        row; past it rollback (never promote unseen)
4. score = weight of passing / weight of conclusive metrics
   score >= ``score_threshold``                      -> advance (promote on the final step)
   score >= ``marginal_score``                       -> pause_for_human
   otherwise                                         -> rollback

All critical metrics are conclusive and passing when step 4 is reached, so advance/promote always has
evidence for every critical metric.
"""

from __future__ import annotations

from collections.abc import Sequence

from configs.analysis import CanaryAnalysisPolicy, Decision
from tasks.analysis.model import (
    CanaryState,
    MetricSample,
    MetricState,
    MetricVerdict,
    Outcome,
    StepAnalysis,
    Verdict,
)
from tasks.analysis.verdict import judge_metric


def analyse_step(
    policy: CanaryAnalysisPolicy,
    state: CanaryState | None,
    samples: Sequence[MetricSample],
    *,
    final_step: bool,
) -> StepAnalysis:
    """Analyse one look of a canary and decide what the rollout does next.

    Args:
        policy: the canary analysis policy.
        state: ``StepAnalysis.state`` of the previous look, or None at the first look.
        samples: one sample per policy metric (a missing one counts as ``no_data``; unknown ones are ignored
            by name, so a query added before the policy does not break a running canary).
        final_step: True when the canary already takes all the traffic it will get before promotion;
            a passing look then returns ``promote`` instead of ``advance``.

    Returns:
        the verdicts, score, decision and the new state to save.
    """
    state = state or CanaryState()
    by_name = {s.metric: s for s in samples}
    verdicts: list[MetricVerdict] = []
    metric_states: dict[str, MetricState] = dict(state.metrics)
    for spec in policy.metrics:
        sample = by_name.get(spec.name) or MetricSample(metric=spec.name, outcome=Outcome.NO_DATA)
        verdict, metric_states[spec.name] = judge_metric(
            spec, sample, state.metrics.get(spec.name, MetricState()), policy
        )
        verdicts.append(verdict)

    decision, reason, score, failures, inconclusive = _decide(policy, state, verdicts, final_step)
    new_state = CanaryState(
        looks=state.looks + 1,
        consecutive_query_failures=failures,
        consecutive_inconclusive=inconclusive,
        metrics=metric_states,
    )
    return StepAnalysis(
        look=new_state.looks, decision=decision, reason=reason, score=score, verdicts=verdicts, state=new_state
    )


def _decide(
    policy: CanaryAnalysisPolicy, state: CanaryState, verdicts: list[MetricVerdict], final_step: bool
) -> tuple[Decision, str, float | None, int, int]:
    """Return (decision, reason, score, consecutive query failures, consecutive inconclusive steps)."""
    failures, inconclusive = state.consecutive_query_failures, state.consecutive_inconclusive

    critical_failed = [v for v in verdicts if v.critical and v.verdict is Verdict.FAIL]
    if critical_failed:
        return Decision.ROLLBACK, f"critical metric failed: {critical_failed[0].reason}", None, 0, 0

    query_failed = [v for v in verdicts if v.outcome is Outcome.QUERY_FAILED]
    if query_failed:
        failures += 1
        names = ", ".join(v.metric for v in query_failed)
        if failures > policy.query_failure_limit:
            return (
                policy.on_query_failure,
                f"queries failed {failures} steps in a row (limit {policy.query_failure_limit}) for {names}: "
                f"failing closed",
                None,
                failures,
                inconclusive,
            )
        return (
            Decision.HOLD,
            f"query failed for {names} ({failures}/{policy.query_failure_limit} tolerated); holding traffic",
            None,
            failures,
            inconclusive,
        )

    conclusive = [v for v in verdicts if v.verdict is not Verdict.INCONCLUSIVE]
    critical_open = [v for v in verdicts if v.critical and v.verdict is Verdict.INCONCLUSIVE]
    if not conclusive or critical_open:
        inconclusive += 1
        first = (critical_open or verdicts)[0].reason
        if inconclusive > policy.inconclusive_step_limit:
            return (
                Decision.ROLLBACK,
                f"inconclusive {inconclusive} steps in a row (limit {policy.inconclusive_step_limit}): {first}",
                None,
                0,
                inconclusive,
            )
        return (
            Decision.HOLD,
            f"inconclusive ({inconclusive}/{policy.inconclusive_step_limit} tolerated): {first}",
            None,
            0,
            inconclusive,
        )

    total = sum(v.weight for v in conclusive)
    score = sum(v.weight for v in conclusive if v.verdict is Verdict.PASS) / total
    failed = [v.metric for v in conclusive if v.verdict is Verdict.FAIL]
    summary = f"score {score:.2f} over {len(conclusive)} conclusive metrics" + (
        f" (failed: {', '.join(failed)})" if failed else ""
    )
    if score >= policy.score_threshold:
        decision = Decision.PROMOTE if final_step else Decision.ADVANCE
        return decision, f"{summary} >= {policy.score_threshold}", score, 0, 0
    if score >= policy.marginal_score:
        return Decision.PAUSE_FOR_HUMAN, f"{summary} is marginal (< {policy.score_threshold})", score, 0, 0
    return Decision.ROLLBACK, f"{summary} < {policy.marginal_score}", score, 0, 0
