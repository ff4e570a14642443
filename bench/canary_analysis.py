"""Benchmark: kaiops canary analysis against the best possible test, a fixed-threshold gate and naive tests.

Simulates many canaries, healthy and bad, through two look schedules and two traffic regimes and runs every
method on the *same* simulated numbers:

- ``kaiops``      :func:`tasks.analysis.analyse_step` with :func:`bench_policy`, given the stable revision's
                  history (its counts over the ``HISTORY_SECONDS`` before the canary started, as the rollout
                  flow reads them from Prometheus): live comparison + history test + drift guard;
- ``kaiops-live`` the same analysis without the history (what kaiops shipped before: live comparison only);
- ``fixed``       Flagger-style gate at every look, on the look's window: roll back when the canary error
                  rate > baseline + 1 point or > 5 %, or canary p50 latency > baseline x 1.25;
- ``matched``     the same fixed gate with its thresholds widened (margin 1 pt x s, latency factor
                  1 + 0.25 x s, s from 1 in steps of 0.25) until its false-rollback rate on this run's
                  healthy canaries is no higher than kaiops's: detection compared at equal false rollbacks;
- ``naive``       Kayenta-style fixed-sample tests repeated at every look on all data so far: one-sided
                  two-proportion z-test and Mann-Whitney U (normal approximation) on window latencies, each
                  at alpha = 0.05;
- ``oracle``      the physical limit: a Neyman-Pearson test that knows the scenario's true alternative and
                  the canary's true baseline (its error rate, the latency distribution), and sees all the
                  rollout's canary data at one final look (every step, the 100 % step included). Errors: the
                  binomial log-likelihood ratio of all canary requests, rate p_b + d against p_b. Latency: the
                  exact log-likelihood ratio of every window median (order statistic of lognormal requests),
                  factor f against 1 (not the look-level medians, which kaiops's latency bounds also read).
                  Knowing p_b is worth more than any amount of baseline history, so on errors no method of
                  this bench can beat it at equal false rollbacks (Neyman-Pearson lemma, on the simulated
                  population; up to the sampling noise of the calibration). Its threshold is calibrated on
                  this run's healthy canaries so that it rolls back exactly as many of them as kaiops does
                  (``oracle-live``: as many as ``kaiops-live``, for the before/after ratio); its delay is
                  the final look and every canary request by construction.

Simulation (fractions 0..1, seconds): total traffic R ~ U(20, 100) req/s (``standard``) or U(2, 10) req/s
(``low``) split by the step's canary share; request counts Poisson, errors Binomial at the arm's rate
(baseline rate ~ U(0.5 %, 2 %)); latency lognormal (median 80 ms, sigma 0.6). Latency is compared per 10 s
window by its median (exact order-statistic draws). At 100 % canary traffic the baseline gets no new
requests; the fixed and naive methods then compare with the last baseline values they saw. The history:
R x 3600 s of stable requests (Poisson) at the baseline rate. Scenario ``drift +1pt`` is a healthy canary
(same rate as the live baseline) while the whole service runs 1 point worse than in its history: the false
rollbacks the drift guard must prevent. Every look advances the traffic (no holds): a look with fewer than
``min_requests_per_step`` new canary requests keeps them for the next (50 per look in ``standard``, 10 in
``low``, where 50 would leave many looks inconclusive).

Schedules: ``steps`` = 10/25/50/100 % with one look per 60 s step (4 looks); ``fine`` = the same shares
with a look every 30 s, 5 looks per share (20 looks), to show what repeated looks do to false alarms.

Run: ``.venv/bin/python bench/canary_analysis.py [--trials N] [--seed S] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats
from scipy.special import betaln, log_ndtr, ndtri

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.analysis import (
    BaselineBound,
    CanaryAnalysisPolicy,
    CanaryState,
    Decision,
    MetricKind,
    MetricSample,
    MetricSpec,
    Outcome,
    analyse_step,
)

WINDOW_SECONDS = 10
LATENCY_MEDIAN_S = 0.08
LATENCY_SIGMA = 0.6
FIXED_MARGIN, FIXED_ABSOLUTE, FIXED_LATENCY_FACTOR = 0.01, 0.05, 1.25
NAIVE_ALPHA = 0.05

SCHEDULES: dict[str, list[tuple[float, int]]] = {  # (canary share, seconds of traffic before the look)
    "steps": [(0.10, 60), (0.25, 60), (0.50, 60), (1.00, 60)],
    "fine": [(share, 30) for share in (0.10, 0.25, 0.50, 1.00) for _ in range(5)],
}
#: (added canary error rate, canary latency factor, rollout-time drift of both arms' error rate vs history).
#: The first five keep their cell seeds of earlier runs; the history draws between canaries shift the streams,
#: so kaiops-live repeats the earlier kaiops numbers only within their noise (+2 pt, 4 looks: 95.6 vs 94.8 %).
SCENARIOS: dict[str, tuple[float, float, float]] = {
    "healthy": (0.0, 1.0, 0.0),
    "errors +2pt": (0.02, 1.0, 0.0),
    "errors +5pt": (0.05, 1.0, 0.0),
    "errors +20pt": (0.20, 1.0, 0.0),
    "latency +30%": (0.0, 1.3, 0.0),
    "latency +25%": (0.0, 1.25, 0.0),
    "drift +1pt": (0.0, 1.0, 0.01),
}
HEALTHY = ("healthy", "drift +1pt")
REGIMES: dict[str, tuple[float, float, int]] = {  # (min req/s, max req/s, min_requests_per_step)
    "standard": (20.0, 100.0, 50),
    "low": (2.0, 10.0, 10),
}
HISTORY_SECONDS = 3600
METHODS = ("kaiops", "kaiops-live", "oracle", "oracle-live", "fixed", "matched", "naive")
SCALES = tuple(1.0 + 0.25 * i for i in range(41))  # threshold widening tried for the ``matched`` gate


def bench_policy(min_requests_per_step: int = 50) -> CanaryAnalysisPolicy:
    """The kaiops policy under test: both metrics critical, thresholds as gross guard rails."""
    return CanaryAnalysisPolicy(
        min_requests_per_step=min_requests_per_step,
        alpha=0.05,
        metrics=[
            MetricSpec(
                name="error_rate",
                kind=MetricKind.RATIO,
                critical=True,
                absolute_bound=FIXED_ABSOLUTE,
                baseline_bound=BaselineBound(margin=FIXED_MARGIN),
            ),
            MetricSpec(
                name="latency_p50",
                kind=MetricKind.LATENCY,
                critical=True,
                baseline_bound=BaselineBound(factor=2.0),
            ),
        ],
    )


@dataclass
class Look:
    """Simulated numbers of one look: window counts since the last look, latency windows."""

    c_n: int
    c_bad: int
    b_n: int
    b_bad: int
    c_lat: float  # canary p50 over the look, seconds (NaN without requests)
    b_lat: float
    c_windows: list[float]
    b_windows: list[float]
    c_window_n: list[int]  # canary requests per window (the oracle's latency likelihood needs them)


@dataclass
class Canary:
    """One simulated canary: its looks, the true parameters (for the oracle) and the stable's history."""

    looks: list[Look]
    base_rate: float  # the stable revision's error rate during the rollout (history rate + drift)
    history_n: int
    history_bad: int


def _median_latency(rng: np.random.Generator, n: np.ndarray, factor: float) -> list[float]:
    """Sample median latency (nearest rank) of n[i] lognormal requests each, drawn exactly via order
    statistics (the k-th of n uniforms is Beta(k, n - k + 1)); NaN where n[i] == 0."""
    k = np.ceil(0.5 * n)
    u = rng.beta(np.maximum(k, 1), np.maximum(n - k + 1, 1))
    values = LATENCY_MEDIAN_S * factor * np.exp(LATENCY_SIGMA * ndtri(u))
    return [float(v) if count else math.nan for v, count in zip(values, n, strict=True)]


def simulate(
    rng: np.random.Generator,
    schedule: list[tuple[float, int]],
    scenario: tuple[float, float, float],
    rps_range: tuple[float, float] = (20.0, 100.0),
) -> Canary:
    """Simulate one canary for a schedule and a scenario (added error rate, latency factor, drift)."""
    rps = rng.uniform(*rps_range)
    history_rate = rng.uniform(0.005, 0.02)
    base_rate = history_rate + scenario[2]
    canary_rate = base_rate + scenario[0]
    looks = []
    for share, seconds in schedule:
        windows = seconds // WINDOW_SECONDS
        c_w = rng.poisson(rps * WINDOW_SECONDS * share, windows)
        b_w = rng.poisson(rps * WINDOW_SECONDS * (1 - share), windows)
        c_n, b_n = int(c_w.sum()), int(b_w.sum())
        looks.append(
            Look(
                c_n=c_n,
                c_bad=int(rng.binomial(c_n, canary_rate)),
                b_n=b_n,
                b_bad=int(rng.binomial(b_n, base_rate)),
                c_lat=_median_latency(rng, np.array([c_n]), scenario[1])[0],
                b_lat=_median_latency(rng, np.array([b_n]), 1.0)[0],
                c_windows=_median_latency(rng, c_w, scenario[1]),
                b_windows=_median_latency(rng, b_w, 1.0),
                c_window_n=[int(n) for n in c_w],
            )
        )
    history_n = int(rng.poisson(rps * HISTORY_SECONDS))  # drawn last: the looks keep their earlier seeds
    return Canary(looks, base_rate, history_n, int(rng.binomial(history_n, history_rate)))


def run_kaiops(policy: CanaryAnalysisPolicy, canary: Canary, history: bool = True) -> int | None:
    """Return the 1-based look at which kaiops rolls back, or None (``history``: give it the stable's)."""
    looks = canary.looks
    h_n, h_bad = (canary.history_n, canary.history_bad) if history else (None, None)
    state: CanaryState | None = None
    c_n = c_bad = b_n = b_bad = 0
    last_b_lat = math.nan
    for i, look in enumerate(looks, start=1):
        c_n, c_bad, b_n, b_bad = c_n + look.c_n, c_bad + look.c_bad, b_n + look.b_n, b_bad + look.b_bad
        last_b_lat = look.b_lat if look.b_n else last_b_lat
        samples = [
            MetricSample(
                metric="error_rate",
                outcome=Outcome.OK,
                canary_total=c_n,
                canary_events=c_bad,
                baseline_total=b_n,
                baseline_events=b_bad,
                history_total=h_n,
                history_events=h_bad,
            ),
            MetricSample(
                metric="latency_p50",
                outcome=Outcome.OK,
                canary_total=c_n,
                baseline_total=b_n,
                canary_value=look.c_lat,
                baseline_value=last_b_lat,
                canary_windows=look.c_windows,
                baseline_windows=look.b_windows,
            ),
        ]
        result = analyse_step(policy, state, samples, final_step=i == len(looks))
        state = result.state
        if result.decision is Decision.ROLLBACK:
            return i
    return None


def run_fixed(looks: list[Look], scale: float = 1.0) -> int | None:
    """Flagger-style: fixed thresholds on each look's window; returns the rollback look or None.

    ``scale`` widens the relative thresholds: margin ``FIXED_MARGIN * scale``, latency factor
    ``1 + (FIXED_LATENCY_FACTOR - 1) * scale`` (1.0 = the Flagger-style defaults).
    """
    margin, factor = FIXED_MARGIN * scale, 1 + (FIXED_LATENCY_FACTOR - 1) * scale
    b_rate, b_lat = math.nan, math.nan
    for i, look in enumerate(looks, start=1):
        if look.b_n:
            b_rate, b_lat = look.b_bad / look.b_n, look.b_lat
        c_rate = look.c_bad / look.c_n if look.c_n else math.nan
        if c_rate > FIXED_ABSOLUTE or c_rate > b_rate + margin or look.c_lat > b_lat * factor:
            return i
    return None


def matched_scale(healthy: list[list[Look]], kaiops_rollbacks: int) -> float:
    """Smallest :data:`SCALES` entry at which the fixed gate rolls back no more of ``healthy`` than kaiops."""
    for scale in SCALES:
        if sum(run_fixed(looks, scale) is not None for looks in healthy) <= kaiops_rollbacks:
            return scale
    return SCALES[-1]


def oracle_statistic(canary: Canary, scenario: tuple[float, float, float]) -> float:
    """Neyman-Pearson log-likelihood ratio of all the canary's data, the scenario's alternative vs healthy.

    Errors (``scenario[0] > 0``): binomial, rate ``p_b + d`` against ``p_b`` (``p_b`` = the canary's true
    baseline rate) over every canary request of the rollout. Latency (factor ``f = scenario[1] != 1``): the
    median of a window of ``n`` lognormal requests is ``m f exp(sigma z)``, ``Phi(z) ~ Beta(k, n - k + 1)``
    with ``k = ceil(n / 2)``; the ratio of those densities at every canary window median, ``f`` against 1.
    """
    added, factor = scenario[0], scenario[1]
    if added > 0:
        n = sum(look.c_n for look in canary.looks)
        k = sum(look.c_bad for look in canary.looks)
        p0, p1 = canary.base_rate, canary.base_rate + added
        return k * math.log(p1 / p0) + (n - k) * math.log((1 - p1) / (1 - p0))
    values = np.array([v for look in canary.looks for v in look.c_windows if math.isfinite(v)])
    n = np.array([c for look in canary.looks for c, v in zip(look.c_window_n, look.c_windows, strict=True)
                  if math.isfinite(v)], dtype=float)
    k = np.ceil(0.5 * n)
    a, b = np.maximum(k, 1), np.maximum(n - k + 1, 1)

    def log_density(f: float) -> np.ndarray:
        z = (np.log(values) - math.log(LATENCY_MEDIAN_S * f)) / LATENCY_SIGMA
        return (a - 1) * log_ndtr(z) + (b - 1) * log_ndtr(-z) - betaln(a, b) - 0.5 * z * z

    return float(np.sum(log_density(factor) - log_density(1.0)))


def oracle_threshold(healthy_statistics: list[float], rollbacks: int) -> float:
    """The NP test's threshold: reject above it; it rejects ``rollbacks`` of the healthy canaries (the
    ``rollbacks + 1``-th largest statistic; ties can only make it reject fewer)."""
    ordered = sorted(healthy_statistics, reverse=True)
    return ordered[min(rollbacks, len(ordered) - 1)] if ordered else math.inf


def run_naive(looks: list[Look]) -> int | None:
    """Kayenta-style tests repeated at each look on all data so far, alpha 0.05 each time."""
    c_n = c_bad = b_n = b_bad = 0
    c_win: list[float] = []
    b_win: list[float] = []
    for i, look in enumerate(looks, start=1):
        c_n, c_bad, b_n, b_bad = c_n + look.c_n, c_bad + look.c_bad, b_n + look.b_n, b_bad + look.b_bad
        c_win += [w for w in look.c_windows if math.isfinite(w)]
        b_win += [w for w in look.b_windows if math.isfinite(w)]
        pooled = (c_bad + b_bad) / (c_n + b_n)
        se = math.sqrt(pooled * (1 - pooled) * (1 / c_n + 1 / b_n)) if c_n and b_n else 0.0
        if se > 0 and (c_bad / c_n - b_bad / b_n) / se > stats.norm.ppf(1 - NAIVE_ALPHA):
            return i
        if c_win and b_win and mann_whitney_greater_p(c_win, b_win) < NAIVE_ALPHA:
            return i
    return None


def mann_whitney_greater_p(x: list[float], y: list[float]) -> float:
    """One-sided Mann-Whitney U p-value (x stochastically greater), normal approximation with continuity
    correction and no ties (continuous data): scipy's ``mannwhitneyu(method="asymptotic")`` without its
    per-call overhead, which took 40 % of this bench's time."""
    nx, ny = len(x), len(y)
    u = float(np.sum(np.searchsorted(np.sort(y), x, side="left")))  # pairs with x above y
    mean, sd = nx * ny / 2, math.sqrt(nx * ny * (nx + ny + 1) / 12)
    return float(stats.norm.sf((u - mean - 0.5) / sd)) if sd > 0 else 1.0


@dataclass
class Tally:
    """Rollback looks of one method on one (schedule, scenario) cell."""

    trials: int = 0
    looks: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | None]:
        rate = len(self.looks) / self.trials
        low, high = wilson(len(self.looks), self.trials)
        return {
            "trials": self.trials,
            "rollbacks": len(self.looks),
            "rate": rate,
            "ci95": [low, high],
            "mean_looks": statistics.fmean(self.looks) if self.looks else None,
            "median_looks": statistics.median(self.looks) if self.looks else None,
            "mean_requests": statistics.fmean(self.requests) if self.requests else None,
            "median_requests": statistics.median(self.requests) if self.requests else None,
        }


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion, fractions 0..1."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


Results = dict[str, dict[str, dict[str, dict[str, float | int | None]]]]


def run(trials: int, seed: int) -> dict[str, Results]:
    """Run every regime x schedule x scenario x method; healthy canaries get ``trials``, the others ``trials // 4``.

    Returns:
        ``{regime: {schedule: {scenario: {method: summary}}}}`` (see :meth:`Tally.summary`).
    """
    out: dict[str, Results] = {}
    for r_index, (regime_name, (rps_low, rps_high, min_requests)) in enumerate(REGIMES.items()):
        policy = bench_policy(min_requests)
        out[regime_name] = results = {}
        for s_index, (schedule_name, schedule) in enumerate(SCHEDULES.items()):
            results[schedule_name] = {}
            simulated_healthy: list[Canary] = []
            healthy_rollbacks = {"kaiops": 0, "kaiops-live": 0}
            scale = 1.0
            for c_index, (scenario_name, scenario) in enumerate(SCENARIOS.items()):  # "healthy" first
                key = [seed, s_index, c_index] + ([r_index] if r_index else [])
                rng = np.random.default_rng(key)
                n = trials if scenario_name == "healthy" else max(1, trials // 4)
                simulated = [simulate(rng, schedule, scenario, (rps_low, rps_high)) for _ in range(n)]
                at: dict[str, list[int | None]] = {
                    "kaiops": [run_kaiops(policy, c) for c in simulated],
                    "kaiops-live": [run_kaiops(policy, c, history=False) for c in simulated],
                    "fixed": [run_fixed(c.looks) for c in simulated],
                    "naive": [run_naive(c.looks) for c in simulated],
                }
                if scenario_name == "healthy":
                    simulated_healthy = simulated
                    healthy_rollbacks = {m: sum(a is not None for a in at[m]) for m in healthy_rollbacks}
                    scale = matched_scale([c.looks for c in simulated], healthy_rollbacks["kaiops"])
                at["matched"] = [run_fixed(c.looks, scale) for c in simulated]
                calibration: dict[str, float] = {}
                if scenario_name not in HEALTHY:
                    null = [oracle_statistic(c, scenario) for c in simulated_healthy]
                    for method, base in (("oracle", "kaiops"), ("oracle-live", "kaiops-live")):
                        calibration[method] = threshold = oracle_threshold(null, healthy_rollbacks[base])
                        final = len(schedule)
                        at[method] = [final if oracle_statistic(c, scenario) > threshold else None
                                      for c in simulated]
                elif scenario_name == "healthy":
                    for method, base in (("oracle", "kaiops"), ("oracle-live", "kaiops-live")):
                        at[method] = [len(schedule)] * healthy_rollbacks[base] + [None] * (n - healthy_rollbacks[base])
                tallies = {m: Tally(trials=n) for m in METHODS if m in at}
                for i, c in enumerate(simulated):
                    cumulative = np.cumsum([look.c_n for look in c.looks])
                    for method, tally in tallies.items():
                        look = at[method][i]
                        if look is not None:
                            tally.looks.append(look)
                            tally.requests.append(int(cumulative[look - 1]))
                cell: dict[str, dict[str, float | int | None]] = {}
                for m, t in tallies.items():
                    extra: dict[str, float | int | None] = {"scale": scale} if m == "matched" else {}
                    if m in calibration:
                        extra["threshold_log_lr"] = calibration[m]
                    cell[m] = {**t.summary(), **extra}
                results[schedule_name][scenario_name] = cell
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    return "inf" if not b else f"{a / b:.3f}"


def print_table(out: dict[str, Results]) -> None:
    """Print one table per regime and schedule, then the kaiops / oracle and kaiops / fixed ratios."""
    for regime_name, results in out.items():
        low, high, min_requests = REGIMES[regime_name]
        for schedule_name, by_scenario in results.items():
            looks = len(SCHEDULES[schedule_name])
            print(f"\n== {regime_name} traffic ({low:g}-{high:g} req/s, min {min_requests} requests per look), "
                  f"schedule {schedule_name} ({looks} looks) ==")
            print(f"{'scenario':<14} {'method':<12}{'rollback rate':>13} {'95% CI':>17} "
                  f"{'looks mean/med':>15} {'canary req mean/med':>20}")
            for scenario_name, by_method in by_scenario.items():
                for method, r in by_method.items():
                    ci_low, ci_high = r["ci95"]  # type: ignore[misc]
                    print(
                        f"{scenario_name:<14} {method:<12}{_pct(r['rate']):>13} "  # type: ignore[arg-type]
                        f"{'[' + _pct(ci_low) + ', ' + _pct(ci_high) + ']':>17} "
                        f"{_num(r['mean_looks']) + ' / ' + _num(r['median_looks']):>15} "  # type: ignore[arg-type]
                        f"{_num(r['mean_requests']) + ' / ' + _num(r['median_requests']):>20}"  # type: ignore[arg-type]
                    )
            scale = by_scenario["healthy"]["matched"]["scale"]
            print(f"matched gate: margin {FIXED_MARGIN * scale:.2%}, latency factor "  # type: ignore[operator]
                  f"{1 + (FIXED_LATENCY_FACTOR - 1) * scale:.2f} (x{scale} of the fixed gate)")  # type: ignore[operator]
            print("detection as a ratio of the oracle's (same false rollbacks), delay in looks / canary requests "
                  "(mean over detected):")
            for scenario_name, by_method in by_scenario.items():
                if scenario_name in HEALTHY:
                    continue
                k, o = by_method["kaiops"], by_method["oracle"]
                kl, ol = by_method["kaiops-live"], by_method["oracle-live"]
                print(f"  {scenario_name:<13} kaiops/oracle {_ratio(k['rate'], o['rate'])} "  # type: ignore[arg-type]
                      f"(kaiops-live/oracle-live {_ratio(kl['rate'], ol['rate'])}); "  # type: ignore[arg-type]
                      f"looks {_num(k['mean_looks'])} vs oracle {_num(o['mean_looks'])}; "  # type: ignore[arg-type]
                      f"requests {_num(k['mean_requests'])} vs oracle {_num(o['mean_requests'])}")  # type: ignore[arg-type]
            for baseline in ("fixed", "matched"):
                print(f"ratios kaiops / {baseline}:", end="")
                for scenario_name, by_method in by_scenario.items():
                    label = "false rollbacks" if scenario_name in HEALTHY else "detection"
                    ratio = _ratio(by_method["kaiops"]["rate"], by_method[baseline]["rate"])  # type: ignore[arg-type]
                    print(f" {label} {scenario_name} {ratio};", end="")
                print()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print, and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="healthy canaries per cell (others: /4)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--json", type=Path, help="write results here, e.g. bench/results/canary_analysis.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run(args.trials, args.seed)
    elapsed = time.perf_counter() - started
    print_table(results)
    print(
        f"\n{args.trials} healthy + {max(1, args.trials // 4)} per other scenario per regime and schedule, "
        f"seed {args.seed}, "
        f"{elapsed:.1f}s"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"trials": args.trials, "seed": args.seed, "seconds": elapsed, "results": results}
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
