"""Plain thresholds: the absolute bound and the bound relative to the baseline of a :class:`MetricSpec`.

One function serves both metric kinds; the caller decides what to compare:

- ratio metrics pass the most canary-friendly ends of their anytime-valid confidence sequences (the canary's
  best plausible rate, the baseline's worst plausible rate), so a breach is *evidence* of a breach and
  inherits the confidence sequences' error guarantee (see :mod:`tasks.analysis.sequential`);
- latency metrics pass the point values of the look (no raw requests, so no confidence sequence): these
  are guard rails without an error guarantee. Set them where a breach is unacceptable whatever the noise.
"""

from __future__ import annotations

from configs.analysis import Direction, MetricKind, MetricSpec


def _fmt(value: float, kind: MetricKind) -> str:
    """Render a value for a reason line: percent for ratios, milliseconds for latency."""
    return f"{value:.2%}" if kind is MetricKind.RATIO else f"{value * 1000:.0f}ms"


def _worse(a: float, b: float, direction: Direction) -> bool:
    """Return True when value ``a`` is strictly worse than ``b``."""
    return a > b if direction is Direction.LOWER_IS_BETTER else a < b


def threshold_breaches(spec: MetricSpec, canary: float, baseline: float, *, canary_label: str = "",
                       baseline_label: str = "baseline") -> list[str]:
    """Return one short text per breached threshold (empty list: none breached).

    Args:
        spec: the metric, with its bounds and direction.
        canary: canary value in the metric's unit (fraction 0..1 or seconds); for evidence-based checks
            the canary's best plausible value.
        baseline: baseline value, same unit; for evidence-based checks the baseline's value most
            favourable to the canary (its worst plausible value).
        canary_label, baseline_label: how the texts name the two values (e.g. "canary CI low", so a
            reader does not take a confidence bound for the observed rate).
    """
    breaches: list[str] = []
    word = ">" if spec.direction is Direction.LOWER_IS_BETTER else "<"
    lead = f"{canary_label} " if canary_label else ""
    if spec.absolute_bound is not None and _worse(canary, spec.absolute_bound, spec.direction):
        breaches.append(f"{lead}{_fmt(canary, spec.kind)} {word} absolute bound "
                        f"{_fmt(spec.absolute_bound, spec.kind)}")
    if spec.baseline_bound is not None:
        allowed = spec.baseline_bound.worst_allowed(baseline, spec.direction)
        if _worse(canary, allowed, spec.direction):
            bound = spec.baseline_bound
            breaches.append(
                f"{lead}{_fmt(canary, spec.kind)} {word} {baseline_label} {_fmt(baseline, spec.kind)} "
                f"x{bound.factor:g} {'+' if word == '>' else '-'} {_fmt(bound.margin, spec.kind)}"
                f" = {_fmt(allowed, spec.kind)}"
            )
    return breaches
