"""How much of a backtest's edge is luck: the Deflated Sharpe Ratio and the Probability of
Backtest Overfitting.

Deflated Sharpe Ratio (Bailey & López de Prado, "The Deflated Sharpe Ratio", 2014): the
probability that the selected strategy's true Sharpe ratio is above what the best of N
unskilled trials would show by chance. With SR, T, γ3, γ4 the selected strategy's per-period
Sharpe ratio, number of returns, skewness and (non-excess) kurtosis, and V the variance of
the trials' Sharpe ratios:

    SR0 = √V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))       γ: Euler–Mascheroni
    DSR = Φ((SR − SR0) √(T − 1) / √(1 − γ3 SR + (γ4 − 1)/4 SR²))

With one trial SR0 = 0 and DSR is the Probabilistic Sharpe Ratio against 0.

Probability of Backtest Overfitting (Bailey, Borwein, López de Prado & Zhu, "The Probability
of Backtest Overfitting", 2015), by combinatorially symmetric cross-validation (CSCV): the
time is cut into S blocks and every candidate scored on each. For each of the C(S, S/2)
ways to pick half of the blocks as in-sample, the candidate best in-sample is ranked among
all candidates on the other half; ω = rank / (N + 1) (average ranks for ties, 1 = worst) and
λ = ln(ω / (1 − ω)). PBO is the share of splits with λ ≤ 0: how often the in-sample winner
is at or below the median out of sample.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def expected_maximum_sharpe(variance: float, trials: int) -> float:
    """SR0: the Sharpe ratio the best of `trials` unskilled strategies shows by luck."""
    if trials < 2 or not variance > 0:
        return 0.0
    quantiles = (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / trials) + EULER_GAMMA * (
        _NORMAL.inv_cdf(1 - 1 / (trials * math.e))
    )
    return math.sqrt(variance) * quantiles


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, observations: int, skewness: float, kurtosis: float
) -> float | None:
    """P(true Sharpe > benchmark) given the estimate from `observations` returns; None when
    the returns' shape leaves the estimate's variance undefined."""
    spread = 1 - skewness * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if observations < 2 or not spread > 0:
        return None
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread))


def deflated_sharpe_ratio(
    returns: FloatArray, trial_sharpes: Sequence[float], trials: int
) -> float | None:
    """DSR of the strategy with these per-period `returns`, selected among `trials` trials
    whose per-period Sharpe ratios are `trial_sharpes` (undefined ones, NaN, left out of the
    variance). None for fewer than 3 returns or returns that never vary."""
    values = returns[np.isfinite(returns)]
    if len(values) < 3 or np.ptp(values) == 0:
        return None
    deviations = values - values.mean()
    second = float(np.mean(deviations**2))
    skewness = float(np.mean(deviations**3)) / second**1.5
    kurtosis = float(np.mean(deviations**4)) / second**2
    sharpe = float(values.mean() / values.std(ddof=1))
    finite = [value for value in trial_sharpes if math.isfinite(value)]
    variance = float(np.var(finite, ddof=1)) if len(finite) > 1 else 0.0
    benchmark = expected_maximum_sharpe(variance, trials)
    return probabilistic_sharpe_ratio(sharpe, benchmark, len(values), skewness, kurtosis)


def probability_of_backtest_overfitting(performance: FloatArray) -> float | None:
    """PBO by CSCV of a (blocks × candidates) matrix of scores, higher better; -inf allowed
    (a candidate that did not trade in a block), NaN counts as -inf. None with fewer than
    two candidates or an odd or too small number of blocks."""
    blocks, candidates = performance.shape
    if candidates < 2 or blocks < 2 or blocks % 2:
        return None
    scores = np.where(np.isnan(performance), -np.inf, performance)
    overfit = 0
    splits = list(itertools.combinations(range(blocks), blocks // 2))
    for in_sample in splits:
        out_of_sample = [block for block in range(blocks) if block not in in_sample]
        best = int(np.argmax(_mean_per_candidate(scores[list(in_sample)])))
        later = _mean_per_candidate(scores[out_of_sample])
        rank = np.sum(later < later[best]) + (np.sum(later == later[best]) + 1) / 2
        relative = rank / (candidates + 1)
        overfit += math.log(relative / (1 - relative)) <= 0
    return overfit / len(splits)


def _mean_per_candidate(scores: FloatArray) -> FloatArray:
    """Mean over blocks; undefined (+inf and -inf together) counts as -inf."""
    with np.errstate(invalid="ignore"):
        means = scores.mean(axis=0)
    return np.where(np.isnan(means), -np.inf, means)
