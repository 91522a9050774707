"""Technical indicators smoothed with J. Welles Wilder's moving average.

All functions take float64 price arrays of equal length and return an array of the same length,
NaN during the warm-up bars. Wilder's average is seeded with the simple mean of its first
``period`` inputs and then follows ``avg[i] = (avg[i-1] * (period - 1) + x[i]) / period``.
The first bar has no previous close, so true range, price changes and directional movement
start at bar 1; with period 14, RSI and ATR are defined from bar 14 and ADX from bar 27.

Degenerate windows never produce NaN after the warm-up (the backtesters skip bars until every
indicator is defined, so a NaN would silently shift the start): RSI is 50 when prices did not
move, the directional indicators are 0 when the true range is 0, and DX is 0 when neither
direction moved.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DEFAULT_PERIOD = 14


def wilder_average(values: FloatArray, period: int, first_input: int) -> FloatArray:
    """Wilder's moving average of ``values[first_input:]`` (earlier inputs are ignored)."""
    if period < 1:
        raise ValueError(f"period must be at least 1, got {period}")
    seed_bar = first_input + period - 1
    if seed_bar >= len(values):
        return np.full(len(values), np.nan)
    average = float(np.mean(values[first_input : seed_bar + 1]))
    averages = [average]
    # The recursion is inherently sequential; a plain loop over Python floats is the fastest
    # exact option without a JIT, and indicators are computed once per symbol.
    for value in values[seed_bar + 1 :].tolist():
        average = (average * (period - 1) + value) / period
        averages.append(average)
    return np.concatenate((np.full(seed_bar, np.nan), averages))


def true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """Largest of high-low and the distances of high and low from the previous close."""
    previous_close = np.concatenate(([np.nan], close[:-1]))
    ranges = np.maximum(high - low, np.abs(high - previous_close))
    ranges = np.maximum(ranges, np.abs(low - previous_close))
    ranges[:1] = np.nan
    return ranges


def atr(
    high: FloatArray, low: FloatArray, close: FloatArray, period: int = DEFAULT_PERIOD
) -> FloatArray:
    """Average true range."""
    return wilder_average(true_range(high, low, close), period, first_input=1)


def rsi(close: FloatArray, period: int = DEFAULT_PERIOD) -> FloatArray:
    """Relative strength index in [0, 100]."""
    change = np.diff(close, prepend=np.nan)
    average_gain = wilder_average(np.maximum(change, 0.0), period, first_input=1)
    average_loss = wilder_average(np.maximum(-change, 0.0), period, first_input=1)
    total = average_gain + average_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        strength = 100.0 * average_gain / total
    return np.where(total == 0.0, 50.0, strength)


def adx(
    high: FloatArray, low: FloatArray, close: FloatArray, period: int = DEFAULT_PERIOD
) -> FloatArray:
    """Average directional index in [0, 100]."""
    up_move = np.diff(high, prepend=np.nan)
    down_move = -np.diff(low, prepend=np.nan)
    plus_movement = np.where((up_move > down_move) & (up_move > 0.0), up_move, 0.0)
    minus_movement = np.where((down_move > up_move) & (down_move > 0.0), down_move, 0.0)
    average_range = atr(high, low, close, period)
    plus_indicator = _percent_of(
        wilder_average(plus_movement, period, first_input=1), average_range
    )
    minus_indicator = _percent_of(
        wilder_average(minus_movement, period, first_input=1), average_range
    )
    directional_index = _percent_of(
        np.abs(plus_indicator - minus_indicator), plus_indicator + minus_indicator
    )
    return wilder_average(directional_index, period, first_input=period)


def _percent_of(part: FloatArray, whole: FloatArray) -> FloatArray:
    """100 * part / whole, 0 where whole is 0 (NaN stays NaN)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(whole == 0.0, 0.0, 100.0 * part / whole)
