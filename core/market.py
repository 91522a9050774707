"""Market data as core sees it: candles with the gaps that were filled in them, the error for
data that cannot be used, bars the engine reports, and a symbol's volatility level.

A symbol's volatility level comes from the configuration when it names one, or else from its
average true range: the mean ATR(14) over the recent bars as a percentage of the close, scaled
to a day (× √(bars per day), so 5-minute and daily bars compare), against two cut-offs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from core.backtest import Candles, timeframe_seconds
from core.errors import NotFoundError, ValidationError
from core.indicators import atr
from core.params import Scope

_DAY_SECONDS = 86_400


class MarketDataError(ValidationError):
    """Market data that cannot be used as asked; the message names the symbol and the range."""


class MarketDataNotFoundError(MarketDataError, NotFoundError):
    """Nothing holds the requested symbol and timeframe."""


@dataclass(frozen=True)
class Gap:
    """A run of missing bars, filled at the previous close."""

    start: datetime  # open time of the first missing bar (UTC)
    end: datetime  # open time of the last missing bar (UTC)
    bars: int


class LoadedCandles(NamedTuple):
    candles: Candles
    gaps: tuple[Gap, ...]  # filled gaps that overlap the returned range


@dataclass(frozen=True)
class Bar:
    """One OHLCV bar as the engine reports it; `time` is the bar's open time."""

    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


def check_bars(symbol: str, timeframe: str, bars: Sequence[Bar]) -> None:
    """Refuse bars off the timeframe's grid or with prices that contradict each other."""
    step = timeframe_seconds(timeframe)
    for bar in bars:
        at = f"{symbol} {timeframe} bar at {bar.time:%Y-%m-%d %H:%M} UTC"
        if int(bar.time.astimezone(UTC).timestamp()) % step or bar.time.microsecond:
            raise ValidationError(f"{at}: not on the {timeframe} grid (bars open at multiples)")
        if not bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high:
            raise ValidationError(f"{at}: needs low <= open, close <= high")


def symbol_key(symbol: str) -> str:
    """ETH/BTC, eth_btc and ETHBTC name the same pair."""
    return re.sub(r"[^A-Z0-9]", "", symbol.upper())


@dataclass(frozen=True)
class VolatilityCutoffs:
    """Daily ATR % below `low_below` is LOW, from `high_from` on HIGH, MEDIUM between."""

    low_below: float = 2.0
    high_from: float = 5.0
    lookback_days: int = 7

    def __post_init__(self) -> None:
        if not 0 < self.low_below <= self.high_from:
            raise ValueError("the volatility cut-offs need 0 < low_below <= high_from")


def daily_atr_percent(candles: Candles) -> float:
    """Mean ATR(14) as a percentage of the close, scaled to a day; NaN when too short."""
    if len(candles) < 16:  # ATR(14) is defined from bar 14
        return math.nan
    percent = atr(candles.high, candles.low, candles.close) / candles.close * 100
    bars_per_day = _DAY_SECONDS / candles.bar_seconds
    return float(np.nanmean(percent)) * math.sqrt(bars_per_day)


def volatility_level(daily_atr_pct: float, cutoffs: VolatilityCutoffs) -> Scope:
    if daily_atr_pct < cutoffs.low_below:
        return Scope.LOW
    return Scope.HIGH if daily_atr_pct >= cutoffs.high_from else Scope.MEDIUM
