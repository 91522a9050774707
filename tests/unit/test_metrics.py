"""Statistics and fitness scores, computed from hand-made equity curves and trades."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pytest

from core import metrics
from core.metrics import (
    PROFIT_FACTOR_CAP,
    WORST_FITNESS,
    ClosedTrades,
    EquitySummary,
    Stats,
    compute_stats,
    fitness,
    fitness_names,
    max_drawdown,
    register_fitness,
    return_periods,
)

DAY = np.timedelta64(1, "D")
MONDAY = np.datetime64("2024-01-01T00:00", "ns")


def stats_of(
    equity: Sequence[float],
    times: np.typing.NDArray[np.datetime64] | None = None,
    trade_returns: Sequence[float] = (),
    bars_in_position: int = 0,
) -> Stats:
    """Statistics of one backtest; each trade's cash profit is its return times 1,000."""
    curve = np.array([equity], dtype=np.float64)
    times = MONDAY + np.arange(len(equity)) * DAY if times is None else times
    periods = return_periods(times)
    returns = np.array(trade_returns, dtype=np.float64)
    closed = ClosedTrades(np.zeros(len(returns), dtype=np.int64), returns * 1_000, returns)
    summary = EquitySummary(
        equity[0], curve[:, periods.ends], periods.per_year, max_drawdown(curve)
    )
    return compute_stats(closed, summary, np.array([bars_in_position]), len(equity))[0]


def test_max_drawdown_is_a_positive_percentage_of_the_peak() -> None:
    assert stats_of([100, 120, 90, 130, 117]).max_drawdown == pytest.approx(25.0)


def test_roi_is_the_change_from_the_first_to_the_last_equity() -> None:
    assert stats_of([100, 150, 110]).roi == pytest.approx(10.0)


def test_trade_statistics_come_from_closed_trade_returns() -> None:
    stats = stats_of([100, 100], trade_returns=[0.10, -0.05, 0.02, -0.03])
    assert stats.trades == 4
    assert stats.win_rate == pytest.approx(50.0)
    assert stats.profit_factor == pytest.approx(0.12 / 0.08)
    assert stats.expectancy == pytest.approx(1.0)


def test_profit_factor_is_capped_without_losing_trades() -> None:
    assert stats_of([100, 100], trade_returns=[0.10, 0.02]).profit_factor == PROFIT_FACTOR_CAP


def test_trade_statistics_are_undefined_without_trades() -> None:
    stats = stats_of([100, 100])
    assert stats.trades == 0
    assert all(
        math.isnan(value) for value in (stats.win_rate, stats.profit_factor, stats.expectancy)
    )


def test_exposure_is_the_share_of_bars_in_a_position() -> None:
    assert stats_of([100] * 8, bars_in_position=2).exposure == pytest.approx(25.0)


def annualized_and_ratios(returns: list[float], per_year: int) -> tuple[float, float, float]:
    """The module docstring's definitions, written out for a handful of daily returns."""
    count = len(returns)
    geometric_mean = math.prod(1 + r for r in returns) ** (1 / count) - 1
    annualized = (1 + geometric_mean) ** per_year - 1
    mean = sum(returns) / count
    variance = sum((r - mean) ** 2 for r in returns) / (count - 1)
    volatility = math.sqrt(
        (variance + (1 + geometric_mean) ** 2) ** per_year - (1 + geometric_mean) ** (2 * per_year)
    )
    downside = math.sqrt(sum(min(r, 0) ** 2 for r in returns) / count)
    return annualized, annualized / volatility, annualized / (downside * math.sqrt(per_year))


def test_sharpe_and_sortino_annualize_daily_returns_over_252_days_without_weekends() -> None:
    equity = [100, 101, 99, 102, 103]  # Monday to Friday
    annualized, sharpe, sortino = annualized_and_ratios([0.01, -2 / 101, 3 / 99, 1 / 102], 252)
    stats = stats_of(equity)
    assert stats.annualized_return == pytest.approx(annualized * 100, rel=1e-9)
    assert stats.sharpe == pytest.approx(sharpe, rel=1e-9)
    assert stats.sortino == pytest.approx(sortino, rel=1e-9)


def test_markets_open_at_weekends_annualize_over_365_days() -> None:
    equity = [100, 101, 99, 102, 103, 101, 104]  # Monday to Sunday
    returns = [b / a - 1 for a, b in itertools.pairwise(equity)]
    _, sharpe, _ = annualized_and_ratios(returns, 365)
    assert stats_of(equity).sharpe == pytest.approx(sharpe, rel=1e-9)


def test_intraday_bars_use_the_last_equity_of_each_day() -> None:
    times = MONDAY + np.arange(6) * np.timedelta64(8, "h")  # three bars a day, two days
    stats = stats_of([100, 90, 110, 95, 130, 121], times)
    only_return = 121 / 110 - 1
    assert stats.annualized_return == pytest.approx(((1 + only_return) ** 252 - 1) * 100)
    assert math.isnan(stats.sharpe)  # a single daily return has no variance


def test_sharpe_is_undefined_for_a_flat_equity_curve() -> None:
    assert math.isnan(stats_of([100] * 5).sharpe)


def test_weekly_bars_give_weekly_periods() -> None:
    times = MONDAY + np.arange(4) * 7 * DAY
    assert return_periods(times).per_year == 52


SAMPLE = {
    "trades": 10,
    "win_rate": 60.0,
    "profit_factor": 2.0,
    "expectancy": 1.0,
    "roi": 20.0,
    "annualized_return": 12.0,
    "max_drawdown": 8.0,
    "sharpe": 1.5,
    "sortino": 2.0,
    "exposure": 30.0,
}


def sample_stats(**changes: float) -> Stats:
    return Stats(**{**SAMPLE, **changes})  # type: ignore[arg-type]


def test_spec_fitness_weighs_the_statistics_with_drawdown_as_a_penalty() -> None:
    expected = 60 * 0.3 + 2 * 20 * 0.25 + 1.5 * 33.33 * 0.2 + 20 * 0.15 - 8 * 0.1
    assert fitness(sample_stats()) == pytest.approx(expected)


def test_spec_fitness_caps_profit_factor_sharpe_and_roi() -> None:
    capped = sample_stats(profit_factor=PROFIT_FACTOR_CAP, sharpe=9.0, roi=400.0)
    at_caps = sample_stats(profit_factor=5.0, sharpe=3.0, roi=100.0)
    assert fitness(capped) == pytest.approx(fitness(at_caps))


def test_spec_fitness_counts_an_undefined_sharpe_or_profit_factor_as_zero() -> None:
    undefined = sample_stats(sharpe=math.nan, profit_factor=math.nan)
    assert fitness(undefined) == pytest.approx(fitness(sample_stats(sharpe=0.0, profit_factor=0.0)))


@pytest.mark.parametrize("name", fitness_names())
def test_every_fitness_ranks_a_candidate_without_trades_last(name: str) -> None:
    assert fitness(sample_stats(trades=0, win_rate=math.nan), name) == WORST_FITNESS


def test_an_undefined_score_ranks_last_instead_of_being_nan() -> None:
    assert fitness(sample_stats(sharpe=math.nan), "sharpe") == WORST_FITNESS


def test_calmar_divides_the_annualized_return_by_the_drawdown() -> None:
    assert fitness(sample_stats(), "calmar") == pytest.approx(12.0 / 8.0)


def test_alternative_fitness_functions_are_chosen_by_name() -> None:
    stats = sample_stats()
    assert (fitness(stats, "sharpe"), fitness(stats, "sortino"), fitness(stats, "roi")) == (
        1.5,
        2.0,
        20.0,
    )


def test_an_unknown_fitness_name_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match="available: calmar, roi, sharpe, sortino, spec"):
        fitness(sample_stats(), "sortino ratio")


def test_a_registered_fitness_function_is_available_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "_FITNESS_FUNCTIONS", dict(metrics._FITNESS_FUNCTIONS))
    register_fitness("test_exposure_weighted", lambda stats: stats.roi / stats.exposure)
    assert fitness(sample_stats(), "test_exposure_weighted") == pytest.approx(20.0 / 30.0)


def test_a_fitness_name_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_fitness("spec", lambda stats: 0.0)


def test_stats_convert_to_a_dict_by_name() -> None:
    assert sample_stats().as_dict() == SAMPLE
