"""Bars the engine reports, symbol names, and volatility levels from the ATR, on real data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from backtesting.test import EURUSD, GOOG

from core.backtest import Candles
from core.errors import ValidationError
from core.market import (
    Bar,
    VolatilityCutoffs,
    check_bars,
    daily_atr_percent,
    symbol_key,
    volatility_level,
)
from core.params import Scope
from storage.marketdata import load_candles

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def bar(minute: int, low: float = 1.0, high: float = 2.0) -> Bar:
    return Bar(datetime(2026, 3, 2, 10, minute, tzinfo=UTC), 1.5, high, low, 1.5, 10.0)


def test_bars_on_the_grid_with_consistent_prices_pass() -> None:
    check_bars("ETH/BTC", "5m", [bar(0), bar(5)])


@pytest.mark.parametrize(
    ("bad", "problem"),
    [(bar(3), "not on the 5m grid"), (bar(5, low=1.6), "low <= open"), (bar(5, high=1.4), "high")],
)
def test_a_bar_off_the_grid_or_with_contradicting_prices_is_refused(bad: Bar, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        check_bars("ETH/BTC", "5m", [bar(0), bad])


def test_spellings_of_a_pair_share_one_key() -> None:
    assert symbol_key("ETH/BTC") == symbol_key("eth_btc") == symbol_key("ETHBTC") == "ETHBTC"


def frame_candles(frame: object, timeframe: str) -> Candles:
    columns = (
        frame[name].to_numpy(dtype=np.float64)
        for name in ("Open", "High", "Low", "Close", "Volume")
    )  # type: ignore[index]
    times = frame.index.to_numpy().astype("datetime64[ns]")  # type: ignore[attr-defined]
    return Candles("TEST", timeframe, times, *columns)


def test_levels_from_the_daily_atr_of_real_markets() -> None:
    """Per-bar ATR % scaled to a day: crypto 5-minute bars ~7 %, GOOG daily ~2.6 %, EURUSD
    hourly ~0.6 %: HIGH, MEDIUM and LOW with the default cut-offs of 2 % and 5 %."""
    cutoffs = VolatilityCutoffs()
    eth = load_candles(DATA / "ETH_BTC-5m.feather").candles
    assert volatility_level(daily_atr_percent(eth), cutoffs) is Scope.HIGH
    assert volatility_level(daily_atr_percent(frame_candles(GOOG, "1d")), cutoffs) is Scope.MEDIUM
    assert volatility_level(daily_atr_percent(frame_candles(EURUSD, "1h")), cutoffs) is Scope.LOW


def test_the_cut_offs_bound_the_levels() -> None:
    cutoffs = VolatilityCutoffs(low_below=1.0, high_from=3.0)
    assert [volatility_level(pct, cutoffs) for pct in (0.99, 1.0, 2.99, 3.0)] == [
        Scope.LOW, Scope.MEDIUM, Scope.MEDIUM, Scope.HIGH,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="cut-offs"):
        VolatilityCutoffs(low_below=3.0, high_from=1.0)
