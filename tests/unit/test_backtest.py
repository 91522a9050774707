"""Fill rules and bookkeeping of the vectorized backtester, on small synthetic markets."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pytest
from backtesting.test import GOOG

from core.backtest import (
    BacktestResult,
    BacktestSettings,
    Bracket,
    Candles,
    ExitReason,
    RsiAdxStrategy,
    evaluate_candidates,
    run_backtest,
)
from core.metrics import PROFIT_FACTOR_CAP, WORST_FITNESS, fitness, max_drawdown

FloatArray = np.typing.NDArray[np.float64]
Bar = tuple[float, float, float, float]  # open, high, low, close
QUIET: Bar = (100.0, 101.0, 99.0, 100.0)


def make_candles(bars: Sequence[Bar], timeframe: str = "1d") -> Candles:
    open_, high, low, close = np.array(bars, dtype=np.float64).T
    times = np.datetime64("2024-01-01", "ns") + np.arange(len(bars)) * np.timedelta64(1, "D")
    return Candles("TEST", timeframe, times, open_, high, low, close, np.ones(len(bars)))


def market(length: int, **changed: Bar) -> Candles:
    """``length`` quiet bars around 100, with the bars named ``bar_<index>`` replaced."""
    bars = [changed.get(f"bar_{index}", QUIET) for index in range(length)]
    return make_candles(bars)


@dataclass(frozen=True)
class ScriptedEntries:
    """Signals an entry on fixed bars, with a fixed stop loss and take profit."""

    bars: tuple[int, ...]
    stop_loss: float = 95.0
    take_profit: float = 110.0
    warm_up_bars: int = 0
    parameter_names: frozenset[str] = field(default=frozenset())
    indicator_parameters: frozenset[str] = field(default=frozenset())

    def indicators(self, candles: Candles, params: Mapping[str, float]) -> dict[str, FloatArray]:
        warm_up = np.zeros(len(candles))
        warm_up[: self.warm_up_bars] = np.nan
        return {"warm_up": warm_up}

    def entries(
        self,
        candles: Candles,
        indicators: Mapping[str, FloatArray],
        params: Mapping[str, FloatArray],
    ) -> np.typing.NDArray[np.bool_]:
        signals = np.zeros((1, len(candles)), dtype=np.bool_)
        signals[0, list(self.bars)] = True
        return signals

    def bracket(
        self,
        candles: Candles,
        indicators: Mapping[str, FloatArray],
        params: Mapping[str, FloatArray],
        signal_bars: np.typing.NDArray[np.int64],
    ) -> Bracket:
        count = len(signal_bars)
        return Bracket(np.full(count, self.stop_loss), np.full(count, self.take_profit))


def backtest(candles: Candles, strategy: ScriptedEntries, **settings: float) -> BacktestResult:
    return run_backtest(candles, {}, BacktestSettings(**settings), strategy)


def test_an_entry_fills_at_the_next_open_with_the_spread_added() -> None:
    candles = market(6, bar_2=(102.0, 103.0, 101.0, 102.0))
    result = backtest(candles, ScriptedEntries(bars=(1,)), spread=0.01)
    (trade,) = result.open_trades
    assert trade.entry_bar == 2
    assert trade.entry_price == pytest.approx(102.0 * 1.01)


def test_the_size_is_the_whole_units_the_cash_buys_commission_included() -> None:
    result = backtest(market(6), ScriptedEntries(bars=(1,)), cash=10_000.0, commission=0.01)
    (trade,) = result.open_trades
    assert trade.size == 99  # 10,000 / (100 + 1% commission) = 99.0099...


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    candles = market(6, bar_3=(90.0, 92.0, 88.0, 91.0))
    (trade,) = backtest(candles, ScriptedEntries(bars=(1,), stop_loss=95.0)).trades
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (3, 90.0, ExitReason.STOP_LOSS)


def test_a_gap_through_the_take_profit_fills_at_the_open() -> None:
    candles = market(6, bar_3=(112.0, 113.0, 111.0, 112.0))
    (trade,) = backtest(candles, ScriptedEntries(bars=(1,), take_profit=110.0)).trades
    assert (trade.exit_price, trade.exit_reason) == (112.0, ExitReason.TAKE_PROFIT)


def test_the_stop_loss_wins_when_both_exits_are_reached_in_one_bar() -> None:
    candles = market(6, bar_3=(100.0, 111.0, 94.0, 105.0))
    (trade,) = backtest(candles, ScriptedEntries(bars=(1,), stop_loss=95.0)).trades
    assert (trade.exit_price, trade.exit_reason) == (95.0, ExitReason.STOP_LOSS)


def test_the_stop_loss_can_trigger_on_the_entry_bar() -> None:
    candles = market(6, bar_2=(100.0, 100.5, 94.0, 96.0))
    (trade,) = backtest(candles, ScriptedEntries(bars=(1,), stop_loss=95.0)).trades
    assert (trade.entry_bar, trade.exit_bar, trade.exit_price) == (2, 2, 95.0)


def test_commission_is_charged_on_entry_and_on_exit() -> None:
    candles = market(6, bar_3=(100.0, 111.0, 100.0, 110.0))
    result = backtest(candles, ScriptedEntries(bars=(1,)), cash=10_000.0, commission=0.01)
    (trade,) = result.trades
    commissions = 99 * 100.0 * 0.01 + 99 * 110.0 * 0.01
    assert trade.pnl == pytest.approx(99 * (110.0 - 100.0) - commissions)
    assert result.equity[-1] == pytest.approx(10_000.0 + trade.pnl)


def test_a_signal_while_in_a_position_is_ignored_but_one_on_the_exit_bar_is_not() -> None:
    candles = market(9, bar_4=(100.0, 111.0, 100.0, 105.0))
    result = backtest(candles, ScriptedEntries(bars=(1, 2, 3, 4)))
    assert [(trade.entry_bar, trade.exit_bar) for trade in result.trades] == [(2, 4)]
    assert [trade.entry_bar for trade in result.open_trades] == [5]


def test_entries_start_one_bar_after_the_indicators_are_defined() -> None:
    # Like backtesting, which starts calling the strategy one bar after its warm-up.
    result = backtest(market(10), ScriptedEntries(bars=tuple(range(10)), warm_up_bars=4))
    (trade,) = result.open_trades
    assert trade.entry_bar == 6


@pytest.mark.parametrize("stop_loss", [0.0, -5.0])
def test_an_entry_whose_stop_would_be_at_or_below_zero_is_skipped(stop_loss: float) -> None:
    result = backtest(market(6), ScriptedEntries(bars=(1,), stop_loss=stop_loss))
    assert (result.trades, result.open_trades) == ((), ())


def test_the_reference_strategy_skips_entries_whose_atr_stop_is_below_zero() -> None:
    candles = goog_candles()
    params = {"long_rsi_entry": 40, "long_adx_min": 15, "sl_atr_multiplier": 2.0}
    trades = run_backtest(candles, {**params, "tp_atr_multiplier": 3.0}).stats.trades
    far_stop = run_backtest(candles, {**params, "tp_atr_multiplier": 3.0, "sl_atr_multiplier": 1e6})
    assert trades > 0
    assert far_stop.stats.trades == 0


def test_a_trade_still_open_at_the_end_is_reported_apart_and_marked_to_the_close() -> None:
    candles = market(6, bar_5=(100.0, 104.0, 99.0, 104.0))
    result = backtest(candles, ScriptedEntries(bars=(1,)), cash=10_000.0)
    (trade,) = result.open_trades
    assert result.trades == ()
    assert (trade.exit_reason, trade.exit_price, trade.size) == (ExitReason.STILL_OPEN, 104.0, 99)
    assert result.stats.trades == 0
    assert result.stats.roi == pytest.approx(99 * 4.0 / 10_000.0 * 100)


def test_cash_for_an_exact_number_of_units_buys_one_unit_less() -> None:
    # backtesting's default order size is (1 - machine epsilon) of the available cash.
    (trade,) = backtest(market(4), ScriptedEntries(bars=(1,)), cash=1_000.0).open_trades
    assert trade.size == 9


def test_the_equity_curve_marks_the_position_to_each_close() -> None:
    candles = market(5, bar_3=(100.0, 102.0, 99.0, 102.0))
    result = backtest(candles, ScriptedEntries(bars=(1,)), cash=1_050.0)
    assert result.equity.tolist() == [1_050.0, 1_050.0, 1_050.0, 1_070.0, 1_050.0]


def test_without_trades_the_statistics_are_neutral_and_fitness_ranks_last() -> None:
    result = backtest(market(6), ScriptedEntries(bars=()))
    stats = result.stats
    assert (stats.trades, stats.roi, stats.max_drawdown, stats.exposure) == (0, 0.0, 0.0, 0.0)
    assert math.isnan(stats.win_rate)
    assert fitness(stats) == WORST_FITNESS


def test_without_a_losing_trade_the_profit_factor_is_capped() -> None:
    candles = market(8, bar_3=(100.0, 111.0, 100.0, 110.0), bar_6=(100.0, 111.0, 100.0, 110.0))
    result = backtest(candles, ScriptedEntries(bars=(1, 4)))
    assert result.stats.trades == 2
    assert result.stats.profit_factor == PROFIT_FACTOR_CAP


def goog_candles() -> Candles:
    open_, high, low, close, volume = (GOOG[name].to_numpy(dtype=np.float64) for name in GOOG)
    times = GOOG.index.to_numpy().astype("datetime64[ns]")
    return Candles("GOOG", "1d", times, open_, high, low, close, volume)


def test_evaluating_many_candidates_gives_the_statistics_of_single_backtests() -> None:
    candles = goog_candles()
    settings = BacktestSettings(cash=100_000.0, commission=0.002, spread=0.0005)
    candidates = [
        {
            "long_rsi_entry": rsi,
            "long_adx_min": adx,
            "sl_atr_multiplier": sl,
            "tp_atr_multiplier": 3.0,
        }
        for rsi in (30, 40, 50)
        for adx in (10, 25)
        for sl in (1.0, 2.5)
    ]
    singles = [run_backtest(candles, candidate, settings).stats for candidate in candidates]
    assert evaluate_candidates(candles, candidates, settings) == singles


@dataclass
class PeriodRsiStrategy(RsiAdxStrategy):
    """The reference strategy with a parameter that changes its indicators; counts their runs."""

    indicator_runs: int = 0
    parameter_names = RsiAdxStrategy.parameter_names | {"period"}
    indicator_parameters = frozenset({"period"})

    def indicators(self, candles: Candles, params: Mapping[str, float]) -> dict[str, FloatArray]:
        self.indicator_runs += 1
        return super().indicators(candles, params)


def test_indicators_are_computed_once_per_value_of_the_parameters_that_change_them() -> None:
    strategy = PeriodRsiStrategy()
    base = {"long_rsi_entry": 30, "long_adx_min": 20, "sl_atr_multiplier": 2.0}
    candidates = [
        {**base, "tp_atr_multiplier": tp, "period": period}
        for tp in (2.0, 3.0, 4.0)
        for period in (14, 21)
    ]
    evaluate_candidates(goog_candles(), candidates, strategy=strategy)
    assert strategy.indicator_runs == 2


def test_a_candidate_with_missing_or_unknown_parameters_is_rejected() -> None:
    params = {"long_rsi_entry": 30, "long_adx_min": 20, "sl_atr_multiplier": 2.0, "tp_atr": 3.0}
    with pytest.raises(
        ValueError, match=r"missing \['tp_atr_multiplier'\], unexpected \['tp_atr'\]"
    ):
        evaluate_candidates(goog_candles(), [params])


def test_candles_reject_columns_of_different_lengths() -> None:
    times = np.datetime64("2024-01-01", "ns") + np.arange(3) * np.timedelta64(1, "D")
    with pytest.raises(ValueError, match="differ in length"):
        Candles("X", "1d", times, *(np.ones(3) for _ in range(4)), np.ones(2))


@pytest.mark.parametrize(
    ("timeframe", "seconds"), [("5m", 300), ("30m", 1800), ("1h", 3600), ("1d", 86400)]
)
def test_bar_length_follows_the_timeframe(timeframe: str, seconds: int) -> None:
    assert make_candles([QUIET], timeframe).bar_seconds == seconds


def test_settings_reject_a_non_positive_cash() -> None:
    with pytest.raises(ValueError, match="cash"):
        BacktestSettings(cash=0.0)


def test_the_reported_drawdown_is_that_of_the_equity_curve() -> None:
    candles = goog_candles()
    for rsi_entry, stop in [(30, 1.0), (45, 2.0), (60, 3.0)]:
        params = {
            "long_rsi_entry": rsi_entry,
            "long_adx_min": 15,
            "sl_atr_multiplier": stop,
            "tp_atr_multiplier": 2.0,
        }
        result = run_backtest(candles, params, BacktestSettings(cash=100_000.0, commission=0.001))
        assert result.stats.max_drawdown == max_drawdown(result.equity[None, :])[0]


def test_whole_number_settings_give_the_same_results_as_floats() -> None:
    params = {
        "long_rsi_entry": 40,
        "long_adx_min": 15,
        "sl_atr_multiplier": 2,
        "tp_atr_multiplier": 3,
    }
    whole = run_backtest(goog_candles(), params, BacktestSettings(cash=100_000, commission=0))
    floats = run_backtest(goog_candles(), params, BacktestSettings(cash=100_000.0, commission=0.0))
    assert whole.stats == floats.stats


def test_trades_report_their_times_in_utc() -> None:
    (trade,) = backtest(market(6), ScriptedEntries(bars=(1,))).open_trades
    assert trade.entry_time == datetime(2024, 1, 3, tzinfo=UTC)
