"""RSI, ATR and ADX with Wilder's smoothing, checked against textbook formulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backtesting.test import GOOG

from core.indicators import adx, atr, rsi, wilder_average

HIGH = GOOG["High"].to_numpy(dtype=np.float64)
LOW = GOOG["Low"].to_numpy(dtype=np.float64)
CLOSE = GOOG["Close"].to_numpy(dtype=np.float64)
PERIOD = 14


def textbook_true_ranges() -> list[float]:
    return [
        max(HIGH[i] - LOW[i], abs(HIGH[i] - CLOSE[i - 1]), abs(LOW[i] - CLOSE[i - 1]))
        for i in range(1, len(CLOSE))
    ]


def wilder_running_sums(values: list[float]) -> list[float]:
    """Wilder's smoothing in its running-sum form: S = S - S / n + x, seeded with a sum."""
    sums = [sum(values[:PERIOD])]
    for value in values[PERIOD:]:
        sums.append(sums[-1] - sums[-1] / PERIOD + value)
    return sums


def test_wilder_average_is_seeded_with_the_mean_then_weights_new_inputs_by_one_period() -> None:
    averages = wilder_average(np.array([9.0, 1.0, 2.0, 3.0, 6.0]), period=3, first_input=1)
    assert np.isnan(averages[:3]).all()
    assert averages[3:].tolist() == [2.0, (2.0 * 2 + 6.0) / 3]


def test_rsi_matches_wilders_relative_strength_formula() -> None:
    changes = np.diff(CLOSE).tolist()
    gains = wilder_running_sums([max(change, 0.0) for change in changes])
    losses = wilder_running_sums([max(-change, 0.0) for change in changes])
    expected = [100 - 100 / (1 + gain / loss) for gain, loss in zip(gains, losses, strict=True)]
    assert rsi(CLOSE)[PERIOD:] == pytest.approx(expected, rel=1e-9)


def test_atr_matches_the_smoothed_true_range() -> None:
    expected = [total / PERIOD for total in wilder_running_sums(textbook_true_ranges())]
    assert atr(HIGH, LOW, CLOSE)[PERIOD:] == pytest.approx(expected, rel=1e-9)


def test_adx_matches_wilders_directional_movement_system() -> None:
    up = np.diff(HIGH).tolist()
    down = (-np.diff(LOW)).tolist()
    plus = wilder_running_sums(
        [u if u > d and u > 0 else 0.0 for u, d in zip(up, down, strict=True)]
    )
    minus = wilder_running_sums(
        [d if d > u and d > 0 else 0.0 for u, d in zip(up, down, strict=True)]
    )
    ranges = wilder_running_sums(textbook_true_ranges())
    directional = []
    for p, m, r in zip(plus, minus, ranges, strict=True):
        plus_di, minus_di = 100 * p / r, 100 * m / r
        directional.append(100 * abs(plus_di - minus_di) / (plus_di + minus_di))
    expected = [sum(directional[:PERIOD]) / PERIOD]
    for value in directional[PERIOD:]:
        expected.append((expected[-1] * (PERIOD - 1) + value) / PERIOD)
    assert adx(HIGH, LOW, CLOSE)[2 * PERIOD - 1 :] == pytest.approx(expected, rel=1e-9)


def test_warm_up_bars_are_nan_and_every_later_bar_is_defined() -> None:
    for values, first_defined in (
        (rsi(CLOSE), 14),
        (atr(HIGH, LOW, CLOSE), 14),
        (adx(HIGH, LOW, CLOSE), 27),
    ):
        assert np.isnan(values[:first_defined]).all()
        assert not np.isnan(values[first_defined:]).any()


def test_rsi_is_100_for_steady_gains_and_50_for_flat_prices() -> None:
    assert rsi(np.arange(30.0) + 100)[-1] == 100.0
    assert rsi(np.full(30, 100.0))[-1] == 50.0


def test_adx_of_a_steady_trend_is_100_and_of_flat_prices_is_0() -> None:
    close = np.arange(60.0) + 100
    assert adx(close + 0.5, close - 0.5, close)[-1] == pytest.approx(100.0)
    flat = np.full(60, 100.0)
    assert adx(flat, flat, flat)[-1] == 0.0


def test_indicators_of_a_series_shorter_than_the_warm_up_are_all_nan() -> None:
    short = CLOSE[:10]
    assert all(math.isnan(value) for value in rsi(short))
