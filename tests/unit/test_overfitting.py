"""The Deflated Sharpe Ratio and the Probability of Backtest Overfitting, against values
computed by hand and against the properties that define them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.overfitting import (
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)

# --- Deflated Sharpe Ratio ---------------------------------------------------------------


def test_the_best_of_two_unskilled_trials_is_expected_at_about_half_a_standard_deviation() -> None:
    # (1 - γ) Φ⁻¹(1/2) + γ Φ⁻¹(1 - 1/(2e)) = 0 + 0.5772157 × 0.9004526
    assert expected_maximum_sharpe(variance=1.0, trials=2) == pytest.approx(0.519755, abs=1e-6)


def test_one_trial_or_no_spread_between_trials_sets_no_bar_to_beat() -> None:
    assert expected_maximum_sharpe(variance=1.0, trials=1) == 0.0
    assert expected_maximum_sharpe(variance=0.0, trials=100) == 0.0


def test_the_probabilistic_sharpe_ratio_of_normal_returns() -> None:
    # Φ(0.1 × √100 / √(1 − 0 + (3 − 1)/4 × 0.01)) = Φ(0.997509)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101, 0.0, 3.0) == pytest.approx(0.840741, abs=1e-6)


def test_the_papers_numerical_example() -> None:
    """Bailey & López de Prado (2014): annualized SR 2.5 over 1,250 daily returns with skewness
    -3 and kurtosis 10, the best of 100 trials whose annualized Sharpe ratios vary by 0.5:
    SR0 ≈ 1.79 annualized and DSR ≈ 0.90 (the paper prints 0.9004 from rounded steps)."""
    benchmark = expected_maximum_sharpe(variance=0.5 / 252, trials=100)
    assert benchmark * math.sqrt(252) == pytest.approx(1.7894, abs=1e-3)
    dsr = probabilistic_sharpe_ratio(2.5 / math.sqrt(252), benchmark, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=2e-3)


def test_the_deflated_sharpe_ratio_of_returns_computed_by_hand() -> None:
    """Returns 0, 1 %, 2 %: mean 1 %, sample deviation 1 %, so SR = 1; skewness 0;
    kurtosis (2e-8/3) / (2e-4/3)² = 1.5.

    One trial:  Φ(1 × √2 / √(1 + (1.5 − 1)/4)) = Φ(1.333333) = 0.908789.
    Two trials with Sharpe ratios 0 and 1 (variance 0.5): SR0 = √0.5 × 0.519755 = 0.367522,
    Φ((1 − 0.367522) × √2 / √1.125) = Φ(0.843304) = 0.800464."""
    returns = np.array([0.0, 0.01, 0.02])
    assert deflated_sharpe_ratio(returns, [1.0], trials=1) == pytest.approx(0.908789, abs=1e-6)
    assert deflated_sharpe_ratio(returns, [0.0, 1.0], trials=2) == pytest.approx(0.800464, abs=1e-5)


def test_every_further_trial_deflates_the_same_sharpe_ratio() -> None:
    returns = np.random.default_rng(3).normal(0.002, 0.01, 250)
    sharpes = list(np.random.default_rng(4).normal(0.0, 0.1, 50))
    values = [deflated_sharpe_ratio(returns, sharpes, trials) for trials in (1, 2, 10, 100, 1000)]
    assert values == sorted(values, reverse=True)
    assert values[0] > 0.9 > values[-1]


def test_returns_that_never_vary_or_are_too_few_have_no_deflated_sharpe_ratio() -> None:
    assert deflated_sharpe_ratio(np.full(30, 0.01), [0.1, 0.2], 2) is None
    assert deflated_sharpe_ratio(np.array([0.01, 0.02]), [0.1, 0.2], 2) is None


# --- Probability of Backtest Overfitting -------------------------------------------------


def test_pbo_of_a_small_matrix_computed_by_hand() -> None:
    """Candidate 0 is better in blocks 0, 1 and 3, candidate 1 in block 2. Of the six ways to
    pick two of the four blocks as in-sample:

    in-sample  best  out-of-sample means (c0, c1)  best's rank  overfit
    {0, 1}     c0    (1.0, 0.75)                   2 of 2       no
    {0, 2}     c1    (1.5, 0.0)                    1            yes
    {0, 3}     c0    (0.5, 0.75)                   1            yes
    {1, 2}     c1    (1.5, 0.0)                    1            yes
    {1, 3}     c0    (0.5, 0.75)                   1            yes
    {2, 3}     c0    (1.0, 0.0)                    2            no
    → PBO = 4/6."""
    performance = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.5], [2.0, 0.0]])
    assert probability_of_backtest_overfitting(performance) == pytest.approx(4 / 6)


def test_a_candidate_best_in_every_block_never_overfits() -> None:
    performance = np.random.default_rng(1).normal(size=(10, 20))
    performance[:, 7] = performance.max(axis=1) + 1
    assert probability_of_backtest_overfitting(performance) == 0.0


def test_a_winner_at_the_median_out_of_sample_counts_as_overfit() -> None:
    # Three candidates: the in-sample best ranks 2 of 3 out of sample, so ω = 1/2, λ = 0.
    performance = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    assert probability_of_backtest_overfitting(performance) == 1.0


def test_noise_overfits_about_half_the_time() -> None:
    performance = np.random.default_rng(2026).normal(size=(12, 100))
    assert probability_of_backtest_overfitting(performance) == pytest.approx(0.5, abs=0.2)


def test_a_block_where_a_candidate_did_not_trade_ranks_it_last() -> None:
    """Candidate 0 leads by far except in block 1, where it made no trade (-inf). Halves with
    block 1 in-sample pick candidate 1, which then trails; halves with block 1 out of sample
    pick candidate 0, which then ranks last: every split overfits."""
    performance = np.array([[5.0, 1.0], [-np.inf, 1.0], [5.0, 1.0], [5.0, 1.0]])
    assert probability_of_backtest_overfitting(performance) == 1.0


def test_pbo_needs_an_even_number_of_blocks_and_two_candidates() -> None:
    assert probability_of_backtest_overfitting(np.zeros((5, 3))) is None
    assert probability_of_backtest_overfitting(np.zeros((4, 1))) is None
