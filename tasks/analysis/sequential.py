"""Anytime-valid statistics: evidence that stays valid however often, and whenever, you look.

Why: a fixed-sample test (z-test, Mann-Whitney U) at alpha=0.05 checked at 20 looks falsely rejects far
more often than 5 %. The tools below are **test supermartingales** (e-processes): under the null
hypothesis their expected value never grows, so by **Ville's inequality** (1939)

    P(there is ANY look t at which E_t >= 1/alpha) <= alpha,

for every number of looks, chosen in advance or not (Ramdas, Grunwald, Vovk, Shafer 2023, "Game-theoretic
statistics and safe anytime-valid inference", Statistical Science 38(4)). Confidence sequences are the
sets of parameters such an e-process has not rejected (Howard, Ramdas, McAuliffe, Sekhon 2021,
"Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of Statistics 49(2)).

Four tools, all exact (no normal approximation):

1. :class:`OddsRatioEvidence` - canary error rate worse than baseline's? Between two looks the router sends
   ``n_c`` requests to the canary and ``n_b`` to the baseline and ``k`` of them fail. Conditional on
   ``(n_c, n_b, k)`` the number of canary failures is hypergeometric when both error rates are equal and
   Fisher noncentral hypergeometric with odds ratio ``psi`` otherwise - the unknown baseline rate drops
   out (the conditioning behind Fisher's exact test). The likelihood ratio of ``psi > 1`` against
   ``psi = 1``, multiplied over looks and mixed over a grid of ``psi``, is a test martingale under
   "equal rates" and, by the monotone likelihood ratio of this exponential family, a supermartingale under
   "canary no worse" (``psi <= 1``). Guarantee: P(it ever reaches 1/alpha | canary no worse) <= alpha.
   Assumptions: requests are independent Bernoulli trials with a constant rate per arm (within the
   canary's lifetime), and the traffic split does not depend on which requests fail. Changing traffic
   shares between steps is fine. This is a mixture sequential probability ratio test (Robbins 1970;
   Johari, Koomen, Pekelis, Walsh 2017 "Peeking at A/B tests", KDD) made exact by conditioning.

2. :func:`binomial_confidence_sequence` - time-uniform confidence interval for one error rate from its
   cumulative counts: beta-binomial mixture martingale (Robbins 1970; Howard et al. 2021, section 3.1).
   Guarantee: P(the true rate is outside the interval at ANY look) <= alpha. Used for the absolute and
   baseline-relative thresholds of ratio metrics and for the human-readable CI of the difference.

3. :func:`sign_test_log_e` - latency: for paired windows (canary and baseline over the same seconds) a
   sequential sign test. If canary and baseline latency come from the same distribution, "canary window
   worse" is a fair coin given the past; the mixture over coins biased towards "worse" is a test
   martingale. Guarantee: P(ever >= 1/alpha | same distribution) <= alpha. Caveat: a high quantile
   estimated from fewer requests (the canary at 10 % traffic) is biased low, which makes the test
   conservative for p95/p99 (never anti-conservative); for low quantiles the bias runs the other way.

4. :func:`reference_log_e` and :func:`reference_upper_bound` - canary error rate worse than the stable
   revision's own *history* (its requests in a window before the rollout started)? The history gives a
   one-shot (1 - a_ref) upper confidence bound ``p0`` of the stable rate (Clopper and Pearson 1934,
   "The use of confidence or fiducial limits illustrated in the case of the binomial", Biometrika 26(4)).
   With ``p0`` fixed before any canary request is seen, the likelihood ratio of Bernoulli(q) against
   Bernoulli(p0) over the canary's cumulative counts, mixed over ``q`` at the odds ratios
   :data:`ALTERNATIVE_ODDS_RATIOS` above ``p0``, is a test martingale when the canary rate is ``p0`` and,
   by monotone likelihood ratio, a supermartingale when it is lower (Wald 1945 "Sequential tests of
   statistical hypotheses", Ann. Math. Statist. 16(2); Robbins 1970 "Statistical methods related to the
   law of the iterated logarithm", Ann. Math. Statist. 41(5), section 3 for the mixture). So
   P(it ever reaches 1/a | canary rate <= stable rate) <= a + a_ref, at every look, also while the
   canary takes 100 % of the traffic and no live baseline is left to compare with. Assumption on top of
   (1): the stable revision's rate during the rollout equals its rate in the history window
   (stationarity); the analysis checks it with the same e-process on the live baseline's counts against
   ``p0`` (the drift guard) and stops using the history once that guard fires.

All numbers are fractions 0..1 or counts; nothing here knows about Prometheus or Kubernetes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import betaln, gammaln
from scipy.stats import beta as beta_dist

#: Alternatives of the odds-ratio mixture (canary error odds / baseline error odds), equal prior weight.
#: Spread from "a little worse" to "broken" so both small and large regressions gather evidence quickly:
#: 30 and 100 let a few dozen requests of a broken canary against a baseline without errors decide the
#: first look; each alternative costs log(len) of evidence, which bench/canary_analysis.py weighed (1.25
#: dropped: it gained nothing in the simulated traffic).
ALTERNATIVE_ODDS_RATIOS: tuple[float, ...] = (1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0)
_THETAS = np.log(np.array(ALTERNATIVE_ODDS_RATIOS))
_LOG_WEIGHT = -math.log(len(ALTERNATIVE_ODDS_RATIOS))

#: Alternatives of the sign-test mixture: P(canary window worse), equal prior weight.
SIGN_ALTERNATIVES: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9, 0.97)
_SIGN_Q = np.array(SIGN_ALTERNATIVES)

#: Beta prior of the binomial confidence sequence (Jeffreys).
_BETA_PRIOR = (0.5, 0.5)


def _logsumexp(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``log(sum(exp(values)))`` without overflow (numpy only; scipy's version is slow for tiny arrays)."""
    top = np.max(values, axis=axis, keepdims=True)
    out: np.ndarray = np.squeeze(top + np.log(np.sum(np.exp(values - top), axis=axis, keepdims=True)), axis=axis)
    return out


def _log_comb(n: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
    """Natural log of the binomial coefficient C(n, k), elementwise."""
    out: np.ndarray = gammaln(np.add(n, 1)) - gammaln(np.add(k, 1)) - gammaln(np.subtract(n, k) + 1)
    return out


def hypergeometric_log_mgf(canary_n: int, baseline_n: int, bad: int, thetas: np.ndarray) -> np.ndarray:
    """Return ``log E[exp(theta * Y)]`` for each theta, ``Y`` = canary failures under equal rates.

    Args:
        canary_n: requests to the canary in the batch (>= 0).
        baseline_n: requests to the baseline in the batch (>= 0).
        bad: failed requests in the batch, both arms together (0..canary_n + baseline_n).
        thetas: log odds ratios, shape (m,).

    Returns:
        shape (m,): the log moment generating function of Hypergeometric(N, canary_n, bad), which is also
        ``log Z(psi) - log Z(1)`` of the Fisher noncentral hypergeometric normaliser.
    """
    y = np.arange(max(0, bad - baseline_n), min(bad, canary_n) + 1)
    log_pmf = _log_comb(canary_n, y) + _log_comb(baseline_n, bad - y) - _log_comb(canary_n + baseline_n, bad)
    return _logsumexp(log_pmf[None, :] + thetas[:, None] * y[None, :], axis=1)


@dataclass(frozen=True)
class OddsRatioEvidence:
    """Mixture e-process for H0 "canary error odds <= baseline error odds" from batches of counts.

    Attributes:
        canary_bad: canary failures summed over the batches seen.
        log_mgf_sums: per alternative in :data:`ALTERNATIVE_ODDS_RATIOS`, the summed
            :func:`hypergeometric_log_mgf` of every batch.

    The e-value for alternative ``psi`` is ``psi ** canary_bad / prod(batch normalisers)``, the product of
    the per-batch likelihood ratios; the mixture averages over the alternatives.
    """

    canary_bad: int = 0
    log_mgf_sums: tuple[float, ...] = (0.0,) * len(ALTERNATIVE_ODDS_RATIOS)

    def update(self, canary_n: int, canary_bad: int, baseline_n: int, baseline_bad: int) -> OddsRatioEvidence:
        """Return the evidence after one more batch (counts since the previous batch, not cumulative)."""
        bad = canary_bad + baseline_bad
        if canary_n == 0 or baseline_n == 0 or bad == 0:
            return self  # the batch cannot tell the arms apart: likelihood ratio 1
        mgf = hypergeometric_log_mgf(canary_n, baseline_n, bad, _THETAS)
        sums = tuple(float(s + m) for s, m in zip(self.log_mgf_sums, mgf, strict=True))
        return OddsRatioEvidence(self.canary_bad + canary_bad, sums)

    def log_e_value(self) -> float:
        """Natural log of the mixture e-value (0 at the start; >= log(1/alpha) rejects H0)."""
        per_alt = self.canary_bad * _THETAS - np.array(self.log_mgf_sums)
        return float(_logsumexp(per_alt + _LOG_WEIGHT))


def binomial_log_e(bad: int, n: int, rate: float) -> float:
    """Log of the beta-binomial mixture e-value against "the true rate is ``rate``".

    Args:
        bad: failures seen (cumulative), 0..n.
        n: trials seen (cumulative).
        rate: hypothesised rate, a fraction strictly between 0 and 1.
    """
    a, b = _BETA_PRIOR
    return float(betaln(a + bad, b + n - bad) - betaln(a, b) - bad * math.log(rate) - (n - bad) * math.log1p(-rate))


@functools.lru_cache(maxsize=4096)
def binomial_confidence_sequence(bad: int, n: int, alpha: float) -> tuple[float, float]:
    """Time-uniform (1 - alpha) confidence interval for a rate from cumulative counts.

    Args:
        bad: failures seen (cumulative), 0..n.
        n: trials seen (cumulative).
        alpha: miscoverage allowed over ALL looks together, fraction in (0, 1).

    Returns:
        ``(low, high)`` fractions 0..1: the rates whose mixture e-value is still below 1/alpha. Cached: the
        baseline's counts stop changing at the 100 % step and are asked for again at every look.
    """
    if n <= 0:
        return 0.0, 1.0
    level = math.log(1.0 / alpha)
    eps = 1e-12
    mle = min(max(bad / n, eps), 1.0 - eps)

    def excess(rate: float) -> float:
        return binomial_log_e(bad, n, rate) - level

    low = 0.0 if bad == 0 or excess(eps) < 0 else brentq(excess, eps, mle, xtol=1e-9)
    high = 1.0 if bad == n or excess(1.0 - eps) < 0 else brentq(excess, mle, 1.0 - eps, xtol=1e-9)
    return float(low), float(high)


def sign_test_log_e(worse: int, better: int) -> float:
    """Log of the sign-test mixture e-value against "canary window worse is a fair coin".

    Args:
        worse: paired windows where the canary was worse than the baseline (cumulative).
        better: paired windows where the canary was better (ties are left out; cumulative).
    """
    per_alt = worse * np.log(2 * _SIGN_Q) + better * np.log(2 * (1 - _SIGN_Q))
    return float(_logsumexp(per_alt) - math.log(len(SIGN_ALTERNATIVES)))


def reference_upper_bound(bad: int, n: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson upper confidence bound of a rate seen once (one look).

    Args:
        bad: failures in the window (0..n).
        n: trials in the window (> 0).
        alpha: miscoverage, fraction in (0, 1).

    Returns:
        the bound, a fraction in (0, 1] (1.0 when every trial failed).

    Raises:
        ValueError: ``n <= 0`` or ``bad`` outside 0..n.
    """
    if n <= 0 or not 0 <= bad <= n:
        raise ValueError(f"need 0 <= bad <= n and n > 0, got bad={bad}, n={n}")
    if bad == n:
        return 1.0
    return float(beta_dist.ppf(1.0 - alpha, bad + 1, n - bad))


def reference_log_e(bad: int | np.ndarray, n: int | np.ndarray, rate: float) -> float | np.ndarray:
    """Log of the mixture e-value against H0 "the true rate is at most ``rate``" from cumulative counts.

    Args:
        bad: failures seen (cumulative), 0..n; an array gives an array of e-values (same shape as ``n``).
        n: trials seen (cumulative).
        rate: the reference rate ``p0``, fixed before the first trial counted here; a fraction in (0, 1)
            (``1.0`` gives 0: nothing can be worse).

    Returns:
        ``log(mean_psi LR(q_psi))`` with ``q_psi`` the rate at odds ratio ``psi`` over ``rate`` for each
        ``psi`` in :data:`ALTERNATIVE_ODDS_RATIOS`; 0 before any trial.
    """
    k, m = np.asarray(bad, dtype=float)[..., None], np.asarray(n, dtype=float)[..., None]
    if rate >= 1.0:
        return 0.0 if k.ndim == 1 else np.zeros(k.shape[:-1])
    p0 = max(rate, 1e-12)
    q = np.exp(_THETAS) * p0 / (1.0 - p0 + np.exp(_THETAS) * p0)
    per_alt = k * (np.log(q) - math.log(p0)) + (m - k) * (np.log1p(-q) - math.log1p(-p0))
    result = _logsumexp(per_alt + _LOG_WEIGHT, axis=-1)
    return float(result) if np.ndim(result) == 0 else result
