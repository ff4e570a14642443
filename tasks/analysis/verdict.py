"""One metric, one look: pass, fail or inconclusive, with a one-line reason and the updated state.

The order of checks, for both kinds:

1. the query must have answered (``ok``) with finite, consistent numbers, else **inconclusive**;
2. the canary must have received ``policy.min_requests_per_step`` new requests since the last analysed
   look, else **inconclusive** (the requests are kept and count at the next look);
3. the statistical comparison with the baseline and the thresholds: any of them failing is **fail**,
   otherwise **pass**.

Alpha: each metric gets ``policy.alpha / len(metrics)`` (Bonferroni). A ratio metric spends
``EVIDENCE_SHARE`` (90 %) of it on the odds-ratio e-process, which finds regressions, and 5 % on each of the
two binomial confidence sequences (canary, baseline) behind its thresholds, which are guard rails; a
latency metric spends all of it on the sign test. So, for a canary no worse than
its baseline and within its ratio bounds, P(any statistical check of any metric fails at any look) <= alpha.
Latency thresholds are point checks outside that guarantee (see :mod:`tasks.analysis.thresholds`).
"""

from __future__ import annotations

import math

from tasks.analysis.model import (
    CanaryAnalysisPolicy,
    Direction,
    MetricKind,
    MetricSample,
    MetricSpec,
    MetricState,
    MetricVerdict,
    Outcome,
    Verdict,
    is_number,
)
from tasks.analysis.sequential import (
    ALTERNATIVE_ODDS_RATIOS,
    OddsRatioEvidence,
    binomial_confidence_sequence,
    sign_test_log_e,
)
from tasks.analysis.thresholds import threshold_breaches

#: Share of a ratio metric's alpha spent on the odds-ratio e-process; the rest is split evenly between the
#: canary's and the baseline's binomial confidence sequences behind the thresholds.
EVIDENCE_SHARE = 0.9
_MAX_LOG_E = 700.0  # exp() of more overflows a float; such evidence is conclusive anyway


def judge_metric(
    spec: MetricSpec, sample: MetricSample, state: MetricState, policy: CanaryAnalysisPolicy
) -> tuple[MetricVerdict, MetricState]:
    """Judge one metric at one look.

    Args:
        spec: the metric's definition.
        sample: what its queries returned at this look (cumulative counts, values in seconds).
        state: what earlier looks left for this metric (``MetricState()`` at the first look).
        policy: minimum requests and alpha.

    Returns:
        the verdict, and the metric state to save (unchanged when the verdict is inconclusive).
    """
    if sample.outcome is not Outcome.OK:
        what = "query failed" if sample.outcome is Outcome.QUERY_FAILED else "query returned no data"
        detail = f": {sample.error}" if sample.error else ""
        return _inconclusive(spec, sample.outcome, f"{what}{detail}"), state
    if spec.kind is MetricKind.RATIO:
        return _judge_ratio(spec, sample, state, policy)
    return _judge_latency(spec, sample, state, policy)


def _inconclusive(spec: MetricSpec, outcome: Outcome, why: str, **numbers: float | int | None) -> MetricVerdict:
    return MetricVerdict(
        metric=spec.name,
        kind=spec.kind,
        critical=spec.critical,
        weight=spec.weight,
        outcome=outcome,
        verdict=Verdict.INCONCLUSIVE,
        reason=f"{spec.name}: inconclusive, {why}",
        **numbers,
    )


def _counts(sample: MetricSample, names: tuple[str, ...]) -> list[int] | str:
    """Return the named sample fields rounded to whole counts, or why they cannot be used."""
    values = [getattr(sample, n) for n in names]
    bad = [n for n, v in zip(names, values, strict=True) if not is_number(v) or v < 0]
    if bad:
        return f"empty, NaN or negative value in {', '.join(bad)}"
    return [round(v) for v in values]


def _too_few(spec: MetricSpec, step: int, policy: CanaryAnalysisPolicy) -> str | None:
    if step < 0:
        return "request counter went backwards (canary restarted or query changed); keeping earlier evidence"
    if step < policy.min_requests_per_step:
        return f"too few requests: {step} new canary requests < minimum {policy.min_requests_per_step}"
    return None


def _judge_ratio(
    spec: MetricSpec, sample: MetricSample, state: MetricState, policy: CanaryAnalysisPolicy
) -> tuple[MetricVerdict, MetricState]:
    counts = _counts(sample, ("canary_total", "canary_events", "baseline_total", "baseline_events"))
    if isinstance(counts, str):
        return _inconclusive(spec, Outcome.OK, counts), state
    c_n, c_ev, b_n, b_ev = counts
    if c_ev > c_n or b_ev > b_n:
        return _inconclusive(spec, Outcome.OK, "more events than requests (inconsistent queries)"), state
    lower = spec.direction is Direction.LOWER_IS_BETTER
    c_bad, b_bad = (c_ev, b_ev) if lower else (c_n - c_ev, b_n - b_ev)
    step = c_n - state.canary_total
    numbers = {"canary_requests": c_n, "step_requests": step}
    if why := _too_few(spec, step, policy):
        return _inconclusive(spec, Outcome.OK, why, **numbers), state
    if b_n == 0:
        return _inconclusive(spec, Outcome.OK, "no baseline requests to compare with", **numbers), state
    batch = (step, c_bad - state.canary_bad, b_n - state.baseline_total, b_bad - state.baseline_bad)
    if min(batch) < 0:
        why = "a counter went backwards (canary restarted or query changed); keeping earlier evidence"
        return _inconclusive(spec, Outcome.OK, why, **numbers), state

    alpha = policy.alpha_per_metric
    evidence = OddsRatioEvidence()
    if state.log_mgf_sums is not None and len(state.log_mgf_sums) == len(ALTERNATIVE_ODDS_RATIOS):
        # (a record written with another alternatives grid starts afresh: less evidence, never invalid)
        evidence = OddsRatioEvidence(state.evidence_canary_bad, tuple(state.log_mgf_sums))
    evidence = evidence.update(*batch)
    log_e = min(evidence.log_e_value(), _MAX_LOG_E)
    e_threshold = 1.0 / (EVIDENCE_SHARE * alpha)
    new_state = MetricState(
        canary_total=c_n,
        baseline_total=b_n,
        canary_bad=c_bad,
        baseline_bad=b_bad,
        evidence_canary_bad=evidence.canary_bad,
        log_mgf_sums=list(evidence.log_mgf_sums),
    )

    # Time-uniform intervals of the metric's own value (bad rate, or good rate when higher is better).
    cs_alpha = (1.0 - EVIDENCE_SHARE) * alpha / 2
    c_low, c_high = binomial_confidence_sequence(c_bad, c_n, cs_alpha)
    b_low, b_high = binomial_confidence_sequence(b_bad, b_n, cs_alpha)
    if not lower:
        c_low, c_high, b_low, b_high = 1 - c_high, 1 - c_low, 1 - b_high, 1 - b_low
    canary_best, baseline_favourable = (c_low, b_high) if lower else (c_high, b_low)
    low, high = ("CI low", "CI high") if lower else ("CI high", "CI low")
    breaches = threshold_breaches(spec, canary_best, baseline_favourable, canary_label=f"canary {low}",
                                  baseline_label=f"baseline {high}")
    worse = log_e >= math.log(e_threshold)

    c_rate = c_ev / c_n
    b_rate = b_ev / b_n
    diff_low, diff_high = c_low - b_high, c_high - b_low
    head = (
        f"{spec.name}: canary {c_rate:.2%} vs baseline {b_rate:.2%} (n={c_n}/{b_n}); "
        f"{1 - 2 * cs_alpha:.1%} anytime-valid CI of difference [{diff_low:+.2%}, {diff_high:+.2%}]"
    )
    e_text = f"e-value {math.exp(log_e):.3g} {'>=' if worse else '<'} {e_threshold:.3g}"
    if worse or breaches:
        verdict = Verdict.FAIL
        findings = ([f"{e_text}: canary worse than baseline"] if worse else []) + [
            f"beyond threshold: {b}" for b in breaches
        ]
        reason = f"{head}; " + "; ".join(findings)
    else:
        verdict = Verdict.PASS
        reason = f"{head}; {e_text}, thresholds not breached"
    return (
        MetricVerdict(
            metric=spec.name,
            kind=spec.kind,
            critical=spec.critical,
            weight=spec.weight,
            outcome=Outcome.OK,
            verdict=verdict,
            reason=reason,
            canary=c_rate,
            baseline=b_rate,
            e_value=math.exp(log_e),
            e_threshold=e_threshold,
            diff_low=diff_low,
            diff_high=diff_high,
            canary_low=c_low,
            canary_high=c_high,
            baseline_low=b_low,
            baseline_high=b_high,
            **numbers,
        ),
        new_state,
    )


def _paired_windows(sample: MetricSample, direction: Direction) -> tuple[int, int] | str:
    """Count windows where the canary was worse / better than the baseline; ties and NaN are left out."""
    canary, baseline = sample.canary_windows or [], sample.baseline_windows or []
    if len(canary) != len(baseline):
        return f"canary_windows has {len(canary)} values but baseline_windows {len(baseline)}"
    worse = better = 0
    for c, b in zip(canary, baseline, strict=True):
        if not (math.isfinite(c) and math.isfinite(b)) or c == b:
            continue
        if (c > b) == (direction is Direction.LOWER_IS_BETTER):
            worse += 1
        else:
            better += 1
    return worse, better


def _judge_latency(
    spec: MetricSpec, sample: MetricSample, state: MetricState, policy: CanaryAnalysisPolicy
) -> tuple[MetricVerdict, MetricState]:
    counts = _counts(sample, ("canary_total", "baseline_total"))
    if isinstance(counts, str):
        return _inconclusive(spec, Outcome.OK, counts), state
    c_n, b_n = counts
    step = c_n - state.canary_total
    numbers = {"canary_requests": c_n, "step_requests": step}
    if why := _too_few(spec, step, policy):
        return _inconclusive(spec, Outcome.OK, why, **numbers), state
    if not (is_number(sample.canary_value) and is_number(sample.baseline_value)):
        return _inconclusive(spec, Outcome.OK, "empty or NaN latency value", **numbers), state
    pairs = _paired_windows(sample, spec.direction)
    if isinstance(pairs, str):
        return _inconclusive(spec, Outcome.OK, pairs, **numbers), state

    canary, baseline = float(sample.canary_value), float(sample.baseline_value)  # type: ignore[arg-type]
    worse, better = state.windows_worse + pairs[0], state.windows_better + pairs[1]
    log_e = min(sign_test_log_e(worse, better), _MAX_LOG_E)
    e_threshold = 1.0 / policy.alpha_per_metric
    new_state = MetricState(canary_total=c_n, baseline_total=b_n, windows_worse=worse, windows_better=better)

    breaches = threshold_breaches(spec, canary, baseline)
    slower = log_e >= math.log(e_threshold)
    head = (
        f"{spec.name}: canary {canary * 1000:.0f}ms vs baseline {baseline * 1000:.0f}ms (n={c_n}/{b_n}); "
        f"canary worse in {worse} of {worse + better} paired windows"
    )
    e_text = f"sign-test e-value {math.exp(log_e):.3g} {'>=' if slower else '<'} {e_threshold:.3g}"
    if slower or breaches:
        verdict = Verdict.FAIL
        findings = ([f"{e_text}: canary worse than baseline"] if slower else []) + [
            f"threshold breached: {b}" for b in breaches
        ]
        reason = f"{head}; " + "; ".join(findings)
    else:
        verdict = Verdict.PASS
        reason = f"{head}; {e_text}, thresholds not breached"
    return (
        MetricVerdict(
            metric=spec.name,
            kind=spec.kind,
            critical=spec.critical,
            weight=spec.weight,
            outcome=Outcome.OK,
            verdict=verdict,
            reason=reason,
            canary=canary,
            baseline=baseline,
            e_value=math.exp(log_e),
            e_threshold=e_threshold,
            **numbers,
        ),
        new_state,
    )
