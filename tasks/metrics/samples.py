"""Samples for the canary analysis: a policy's templates filled, queried and turned into
:class:`tasks.analysis.MetricSample` s (counts cumulative since the canary started, latency in seconds, paired
latency windows since the last look) and, for ratio metrics until the analysis has taken it, the baseline's
history: the same baseline templates over ``history_seconds``, evaluated at the canary's start (the stable
revision's own traffic before the rollout)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tasks.analysis import MetricKind, MetricSample, Outcome
from tasks.metrics.provider import PrometheusProvider, QueryResult
from tasks.metrics.templates import QueryContext

if TYPE_CHECKING:
    from configs.canary import CanaryMetric, CanaryPolicy
    from tasks.analysis import CanaryState


def collect_sample(
    provider: PrometheusProvider,
    metric: CanaryMetric,
    ctx: QueryContext,
    *,
    now: float,
    canary_start: float,
    last_look: float,
    window_seconds: float,
    history_seconds: float = 0.0,
) -> MetricSample:
    """Query one metric for canary and baseline and return its :class:`MetricSample`.

    Args:
        provider: the Prometheus client.
        metric: the metric with its templates.
        ctx: placeholder values.
        now: evaluation time, unix seconds.
        canary_start: when the canary first took traffic, unix seconds (range of the cumulative counts).
        last_look: the previous look (or canary_start), unix seconds (range of the latency value/windows).
        window_seconds: length of one paired latency window, seconds.
        history_seconds: ratio metrics: > 0 also reads the baseline's ``total``/``events`` over this many
            seconds ending at ``canary_start`` (``history_total``/``history_events``); a failed or empty
            history query leaves them None (history is extra evidence, never required). 0: not read.

    Returns:
        the sample; ``query_failed`` when any query failed, ``no_data`` when a needed one was empty.
    """
    since_start = max(1.0, now - canary_start)
    since_look = max(1.0, now - last_look)
    results: dict[str, QueryResult] = {}
    for side in ("canary", "baseline"):
        for role, template in getattr(metric, side).templates().items():
            rng = since_look if role == "value" else since_start
            results[f"{side}_{role}"] = provider.query(ctx.fill(template, rng), at=now)
    failed = [f"{k}: {r.error}" for k, r in results.items() if r.outcome is Outcome.QUERY_FAILED]
    if failed:
        return MetricSample(metric=metric.name, outcome=Outcome.QUERY_FAILED, error="; ".join(failed)[:2000])
    empty = [k for k, r in results.items() if r.outcome is Outcome.NO_DATA]
    # No baseline requests at all is a fact (e.g. at 100 % canary), not missing data: count it as 0.
    if "baseline_total" in empty:
        results["baseline_total"] = QueryResult(Outcome.OK, value=0.0)
        empty.remove("baseline_total")
    if empty and "canary_total" in empty:
        return MetricSample(metric=metric.name, outcome=Outcome.NO_DATA, error=f"empty: {', '.join(empty)}")
    value = {k: r.value for k, r in results.items()}
    if metric.kind is MetricKind.RATIO:
        if empty:
            return MetricSample(metric=metric.name, outcome=Outcome.NO_DATA, error=f"empty: {', '.join(empty)}")
        history_total, history_events = (
            baseline_history(provider, metric, ctx, canary_start, history_seconds) if history_seconds > 0
            else (None, None)
        )
        return MetricSample(
            metric=metric.name,
            outcome=Outcome.OK,
            canary_total=value["canary_total"],
            baseline_total=value["baseline_total"],
            canary_events=value["canary_events"],
            baseline_events=value["baseline_events"],
            history_total=history_total,
            history_events=history_events,
        )
    scale = metric.value_unit.to_seconds
    canary_windows, baseline_windows = _paired_windows(
        provider, metric, ctx, scale, start=last_look, end=now, window_seconds=window_seconds
    )
    return MetricSample(
        metric=metric.name,
        outcome=Outcome.OK,
        canary_total=value["canary_total"],
        baseline_total=value["baseline_total"],
        canary_value=_scaled(value.get("canary_value"), scale),
        baseline_value=_scaled(value.get("baseline_value"), scale),
        canary_windows=canary_windows,
        baseline_windows=baseline_windows,
    )


def baseline_history(
    provider: PrometheusProvider, metric: CanaryMetric, ctx: QueryContext, canary_start: float, seconds: float
) -> tuple[float | None, float | None]:
    """The baseline's ``(total, events)`` over the ``seconds`` before ``canary_start`` (the stable revision's
    own traffic before the rollout), or ``(None, None)`` when a query failed, was empty or gave NaN.

    Runs the metric's baseline ``total`` and ``events`` templates with ``${range}`` = ``seconds``, evaluated
    at ``canary_start`` (the ``time`` parameter of ``/api/v1/query``). ``increase()`` over a range longer
    than the series covers counts what the series has (Prometheus extrapolates to at most half a scrape
    interval beyond the first sample, promql/functions.go ``extrapolatedRate``).
    """
    templates = (metric.baseline.total, metric.baseline.events)
    answers = [provider.query(ctx.fill(t, seconds), at=canary_start) if t is not None
               else QueryResult(Outcome.NO_DATA) for t in templates]
    values = [a.value for a in answers if a.outcome is Outcome.OK and a.value is not None and math.isfinite(a.value)]
    if len(values) != 2 or values[0] <= 0:
        return None, None
    return values[0], values[1]


def history_pending(state: CanaryState | None, metric: str) -> bool:
    """True while the analysis has not yet decided whether ``metric`` uses history (nothing conclusive yet)."""
    metric_state = state.metrics.get(metric) if state is not None else None
    return metric_state is None or metric_state.history_mode is None


def _scaled(v: float | None, scale: float) -> float | None:
    return None if v is None else v * scale


def _paired_windows(
    provider: PrometheusProvider,
    metric: CanaryMetric,
    ctx: QueryContext,
    scale: float,
    *,
    start: float,
    end: float,
    window_seconds: float,
) -> tuple[list[float], list[float]]:
    """Canary and baseline values of back-to-back windows in (start, end], paired by timestamp (seconds)."""
    if end - start < window_seconds:
        return [], []
    first = start + window_seconds
    series = []
    for side in ("canary", "baseline"):
        template = getattr(metric, side).value
        r = provider.query_range(ctx.fill(template, window_seconds), first, end, window_seconds)
        series.append({round(t, 3): v * scale for t, v in r.points} if r.outcome is Outcome.OK else {})
    both = sorted(set(series[0]) & set(series[1]))
    return [series[0][t] for t in both], [series[1][t] for t in both]


def collect_samples(
    provider: PrometheusProvider,
    policy: CanaryPolicy,
    ctx: QueryContext,
    *,
    now: float,
    canary_start: float,
    last_look: float,
    state: CanaryState | None = None,
    history: bool = False,
) -> list[MetricSample]:
    """Return one :class:`MetricSample` per policy metric (see :func:`collect_sample`).

    Args:
        state: the analysis state of the previous look (None at the first).
        history: read the baseline's history (``policy.history_seconds``) for the ratio metrics whose
            analysis has not taken it yet (:func:`history_pending`); False: never (e.g. a dry run).
    """
    return [
        collect_sample(
            provider,
            m,
            ctx,
            now=now,
            canary_start=canary_start,
            last_look=last_look,
            window_seconds=policy.latency_window_seconds,
            history_seconds=policy.history_seconds
            if history and m.kind is MetricKind.RATIO and history_pending(state, m.name) else 0.0,
        )
        for m in policy.metrics
    ]


def monotone_counts(samples: list[MetricSample], state: CanaryState | None, policy: CanaryPolicy) -> list[MetricSample]:
    """Keep the cumulative counts of each sample at or above what the previous look analysed.

    The counts are ``increase(...[now - canary start])``: reset-aware, over a range that only grows, so their
    true value never decreases - but Prometheus extrapolates ``increase()`` to the range ends
    (``extrapolatedRate`` in promql/functions.go) and the estimate shrinks once a series stops growing (the
    baseline at the 100 % step, the canary when traffic stops). Unclamped, that reads as "a counter went
    backwards" and leaves the look inconclusive. Raising each count to the previous look's value removes
    only that estimation error (never a real reset: ``increase()`` already absorbs resets).

    Args:
        samples: this look's samples (any outcome; only ``ok`` ones are touched).
        state: the saved analysis state of the previous look (None at the first look: nothing to do).
        policy: for each metric's kind and direction (which of events/non-events the state counts as bad).

    Returns:
        the samples, with counts clamped where needed.
    """
    if state is None:
        return samples
    specs = {m.name: m for m in policy.metrics}
    out = []
    for s in samples:
        prev, spec = state.metrics.get(s.metric), specs.get(s.metric)
        if prev is None or spec is None or s.outcome is not Outcome.OK:
            out.append(s)
            continue
        update: dict[str, float] = {}
        for field_name, before in (("canary_total", prev.canary_total), ("baseline_total", prev.baseline_total)):
            value = getattr(s, field_name)
            if value is not None and value == value and value < before:
                update[field_name] = float(before)
        if spec.kind is MetricKind.RATIO:
            lower = spec.direction.value == "lower_is_better"
            prev_events = {
                "canary_events": prev.canary_bad if lower else prev.canary_total - prev.canary_bad,
                "baseline_events": prev.baseline_bad if lower else prev.baseline_total - prev.baseline_bad,
            }
            for field_name, before in prev_events.items():
                value = getattr(s, field_name)
                if value is not None and value == value and value < before:
                    update[field_name] = float(before)
        out.append(s.model_copy(update=update) if update else s)
    return out


def failed_queries(samples: list[MetricSample]) -> str:
    """What failed in this look's queries (``"<metric>: <error>; ..."``), or ``""`` when every query answered.

    A look whose queries failed is retried before the failure counts toward ``query_failure_limit``
    (:func:`tasks.rollout.tasks.analyse_look`): a single unreachable or erroring Prometheus is transient.
    """
    return "; ".join(f"{s.metric}: {s.error}" for s in samples if s.outcome is Outcome.QUERY_FAILED)[:1000]
