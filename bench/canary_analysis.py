"""Benchmark: kaiops canary analysis against a fixed-threshold gate and naive repeated tests.

Simulates many canaries, healthy and bad, through two look schedules and runs every method on the *same*
simulated numbers:

- ``kaiops``     :func:`tasks.analysis.analyse_step` with :func:`bench_policy` (anytime-valid comparison);
- ``fixed``      Flagger-style gate at every look, on the look's window: roll back when the canary error
                 rate > baseline + 1 point or > 5 %, or canary p50 latency > baseline x 1.25;
- ``matched``    the same fixed gate with its thresholds widened (margin 1 pt x s, latency factor
                 1 + 0.25 x s, s from 1 in steps of 0.25) until its false-rollback rate on this run's
                 healthy canaries is no higher than kaiops's: detection compared at equal false rollbacks;
- ``naive``      Kayenta-style fixed-sample tests repeated at every look on all data so far: one-sided
                 two-proportion z-test and Mann-Whitney U on window latencies, each at alpha = 0.05.

Simulation (fractions 0..1, seconds): total traffic R ~ U(20, 100) req/s split by the step's canary share;
request counts Poisson, errors Binomial at the arm's rate (baseline rate ~ U(0.5 %, 2 %)); latency
lognormal (median 80 ms, sigma 0.6). Latency is compared per 10 s window by its median (exact order-
statistic draws). At 100 % canary traffic the baseline gets no new requests; every method then compares
with the last baseline values it saw.

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
from scipy.special import ndtri

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
SCENARIOS: dict[str, tuple[float, float]] = {  # (added canary error rate, canary latency factor)
    "healthy": (0.0, 1.0),
    "errors +2pt": (0.02, 1.0),
    "errors +5pt": (0.05, 1.0),
    "errors +20pt": (0.20, 1.0),
    "latency +30%": (0.0, 1.3),
}
METHODS = ("kaiops", "fixed", "matched", "naive")
SCALES = tuple(1.0 + 0.25 * i for i in range(41))  # threshold widening tried for the ``matched`` gate


def bench_policy() -> CanaryAnalysisPolicy:
    """The kaiops policy under test: both metrics critical, thresholds as gross guard rails."""
    return CanaryAnalysisPolicy(
        min_requests_per_step=50,
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


def _median_latency(rng: np.random.Generator, n: np.ndarray, factor: float) -> list[float]:
    """Sample median latency (nearest rank) of n[i] lognormal requests each, drawn exactly via order
    statistics (the k-th of n uniforms is Beta(k, n - k + 1)); NaN where n[i] == 0."""
    k = np.ceil(0.5 * n)
    u = rng.beta(np.maximum(k, 1), np.maximum(n - k + 1, 1))
    values = LATENCY_MEDIAN_S * factor * np.exp(LATENCY_SIGMA * ndtri(u))
    return [float(v) if count else math.nan for v, count in zip(values, n, strict=True)]


def simulate(rng: np.random.Generator, schedule: list[tuple[float, int]], scenario: tuple[float, float]) -> list[Look]:
    """Simulate one canary's looks for a schedule and a scenario (added error rate, latency factor)."""
    rps = rng.uniform(20, 100)
    base_rate = rng.uniform(0.005, 0.02)
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
            )
        )
    return looks


def run_kaiops(policy: CanaryAnalysisPolicy, looks: list[Look]) -> int | None:
    """Return the 1-based look at which kaiops rolls back, or None."""
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
        if c_win and b_win and stats.mannwhitneyu(c_win, b_win, alternative="greater").pvalue < NAIVE_ALPHA:
            return i
    return None


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


def run(trials: int, seed: int) -> dict[str, dict[str, dict[str, dict[str, float | int | None]]]]:
    """Run every schedule x scenario x method; healthy canaries get ``trials``, bad ones ``trials // 4``."""
    policy = bench_policy()
    results: dict[str, dict[str, dict[str, dict[str, float | int | None]]]] = {}
    for s_index, (schedule_name, schedule) in enumerate(SCHEDULES.items()):
        results[schedule_name] = {}
        scale = 1.0
        for c_index, (scenario_name, scenario) in enumerate(SCENARIOS.items()):  # "healthy" first
            rng = np.random.default_rng([seed, s_index, c_index])
            n = trials if scenario_name == "healthy" else max(1, trials // 4)
            simulated = [simulate(rng, schedule, scenario) for _ in range(n)]
            kaiops_at = [run_kaiops(policy, looks) for looks in simulated]
            if scenario_name == "healthy":
                scale = matched_scale(simulated, sum(at is not None for at in kaiops_at))
            tallies = {m: Tally(trials=n) for m in METHODS}
            for looks, k_at in zip(simulated, kaiops_at, strict=True):
                cumulative = np.cumsum([look.c_n for look in looks])
                for method, at in (
                    ("kaiops", k_at),
                    ("fixed", run_fixed(looks)),
                    ("matched", run_fixed(looks, scale)),
                    ("naive", run_naive(looks)),
                ):
                    if at is not None:
                        tallies[method].looks.append(at)
                        tallies[method].requests.append(int(cumulative[at - 1]))
            results[schedule_name][scenario_name] = {m: {**t.summary(), **({"scale": scale} if m == "matched"
                                                                           else {})} for m, t in tallies.items()}
    return results


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def print_table(results: dict[str, dict[str, dict[str, dict[str, float | int | None]]]]) -> None:
    """Print one table per schedule, then the kaiops / fixed ratios."""
    for schedule_name, by_scenario in results.items():
        looks = len(SCHEDULES[schedule_name])
        print(f"\n== schedule {schedule_name} ({looks} looks) ==")
        print(
            f"{'scenario':<14} {'method':<8}{'rollback rate':>13} {'95% CI':>17} "
            f"{'looks mean/med':>15} {'canary req mean/med':>20}"
        )
        for scenario_name, by_method in by_scenario.items():
            for method, r in by_method.items():
                low, high = r["ci95"]  # type: ignore[misc]
                print(
                    f"{scenario_name:<14} {method:<8}{_pct(r['rate']):>13} "  # type: ignore[arg-type]
                    f"{'[' + _pct(low) + ', ' + _pct(high) + ']':>17} "
                    f"{_num(r['mean_looks']) + ' / ' + _num(r['median_looks']):>15} "  # type: ignore[arg-type]
                    f"{_num(r['mean_requests']) + ' / ' + _num(r['median_requests']):>20}"  # type: ignore[arg-type]
                )
        scale = by_scenario["healthy"]["matched"]["scale"]
        print(f"matched gate: margin {FIXED_MARGIN * scale:.2%}, latency factor "  # type: ignore[operator]
              f"{1 + (FIXED_LATENCY_FACTOR - 1) * scale:.2f} (x{scale} of the fixed gate)")  # type: ignore[operator]
        for baseline in ("fixed", "matched"):
            print(f"ratios kaiops / {baseline}:", end="")
            for scenario_name, by_method in by_scenario.items():
                k, f = by_method["kaiops"]["rate"], by_method[baseline]["rate"]
                ratio = "inf" if not f else f"{k / f:.3f}"  # type: ignore[operator]
                label = "false rollbacks" if scenario_name == "healthy" else f"detection {scenario_name}"
                print(f" {label} {ratio};", end="")
            print()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print, and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="healthy canaries per schedule (bad: /4)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--json", type=Path, help="write results here, e.g. bench/results/canary_analysis.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run(args.trials, args.seed)
    elapsed = time.perf_counter() - started
    print_table(results)
    print(
        f"\n{args.trials} healthy + {max(1, args.trials // 4)} per bad scenario per schedule, seed {args.seed}, "
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
