"""Vectorized long-only backtester with the fill rules of the ``backtesting`` package.

A strategy marks, per bar, whether the bar's close signals a long entry and where its stop loss
and take profit go. The simulation then follows ``backtesting``'s defaults
(``trade_on_close=False``, ``exclusive_orders=False``, ``finalize_trades=False``, no margin):

* Signals are considered from the bar after the one where every indicator is first defined
  (backtesting starts one bar after its indicator warm-up).
* An entry signalled on bar t is a market order filled at the open of bar t+1, at
  ``open * (1 + spread)``. A signal while a position is open is ignored; a signal on the bar
  of an exit is not (the exit happens at that bar, before the strategy decides).
* The size is the whole number of units that the cash buys, commission included:
  ``floor(cash * (1 - eps) / (entry_price + open * commission))``, as backtesting's default
  order size does. An order that cannot buy a single unit is dropped.
* An entry whose bracket is not ``0 < stop_loss < close * (1 + spread) < take_profit`` (close of
  the signal bar) is skipped: backtesting rejects such orders, and a stop at or below zero
  could never trigger. The strategy may signal again on the next bar.
* From the entry bar on, the stop loss fills at ``min(open, stop_loss)`` when the low reaches
  it, the take profit at ``max(open, take_profit)`` when the high reaches it, and the stop loss
  wins when both are reached within one bar.
* Commission ``value * commission`` is charged on entry and on exit.
* A trade still open after the last bar is reported separately; it counts in the equity curve
  (marked to the close) but not in the trade statistics.

Equity cannot fall to zero (long only, no leverage, positive prices), so backtesting's
out-of-money stop is not modelled.

``bracket_exits`` applies the same exit rules to trades entered elsewhere (the blocked trades of
core.counterfactual).

Many candidates are evaluated at once: entry masks are numpy arrays with one row per candidate,
and the simulation advances all candidates together, one trade per loop iteration, finding
exits by scanning windows of bars.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from core.indicators import adx, atr, rsi
from core.metrics import (
    ClosedTrades,
    EquitySummary,
    Stats,
    compute_stats,
    return_periods,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
TimeArray = npt.NDArray[np.datetime64]

# backtesting's default order size: all available cash.
_FULL_EQUITY = 1 - sys.float_info.epsilon
# Most trades end within a few bars: exits are searched in windows of 16 bars first, then in
# windows four times wider each round, up to the whole series.
_WINDOW_TABLE_WIDTHS = (16, 64)
# Work is split into batches of candidates to bound memory: entry masks of about this many
# (candidate, bar) cells, and statistics over this many (candidate, return period) cells.
_SIGNAL_BATCH_CELLS = 8_000_000
_STATS_BATCH_CELLS = 250_000
# Candidates whose equity paths share one padded array when computing drawdowns.
_DRAWDOWN_BLOCK_ROWS = 64

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMEFRAME_UNIT_SECONDS = {"m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def timeframe_seconds(timeframe: str) -> int:
    """Length of a bar in seconds for timeframes like ``5m``, ``1h``, ``1d`` or ``1w``."""
    match = re.fullmatch(r"([1-9][0-9]*)([mhdw])", timeframe)
    if match is None:
        raise ValueError(f"unsupported timeframe {timeframe!r}; expected e.g. 5m, 30m, 1h, 1d")
    return int(match[1]) * _TIMEFRAME_UNIT_SECONDS[match[2]]


@dataclass(frozen=True, eq=False)
class Candles:
    """OHLCV bars of one symbol; ``times`` are bar open times as UTC ``datetime64[ns]``."""

    symbol: str
    timeframe: str
    times: TimeArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        timeframe_seconds(self.timeframe)
        if self.times.dtype != np.dtype("datetime64[ns]"):
            raise ValueError(f"{self.symbol}: times must be datetime64[ns], got {self.times.dtype}")
        lengths = {len(column) for column in self._columns()}
        if lengths != {len(self.times)}:
            raise ValueError(f"{self.symbol}: times and OHLCV columns differ in length")

    def __len__(self) -> int:
        return len(self.times)

    @property
    def bar_seconds(self) -> int:
        return timeframe_seconds(self.timeframe)

    def _columns(self) -> Iterator[FloatArray]:
        yield from (self.open, self.high, self.low, self.close, self.volume)


@dataclass(frozen=True)
class BacktestSettings:
    """Account settings; defaults are backtesting's (10,000 cash, no commission or spread)."""

    cash: float = 10_000.0
    commission: float = 0.0  # fraction of the traded value, charged on entry and on exit
    spread: float = 0.0  # fraction added to the entry price

    def __post_init__(self) -> None:
        for name in ("cash", "commission", "spread"):  # ints would make numpy arrays of ints
            object.__setattr__(self, name, float(getattr(self, name)))
        if not self.cash > 0:
            raise ValueError(f"cash must be positive, got {self.cash}")
        if not 0 <= self.commission < 0.1:
            raise ValueError(f"commission must be in [0, 0.1), got {self.commission}")
        if not 0 <= self.spread < 0.1:
            raise ValueError(f"spread must be in [0, 0.1), got {self.spread}")


class Bracket(NamedTuple):
    """Exit prices of entries: one element per entry signal."""

    stop_loss: FloatArray
    take_profit: FloatArray


class Strategy(Protocol):
    """Signal logic that can be plugged into the backtester.

    ``indicators`` is called once per symbol and per distinct value of the parameters named in
    ``indicator_parameters`` (receiving only those); a NaN marks a warm-up bar, and no entry is
    taken before every indicator is defined. ``entries`` receives every parameter as a column
    vector with one row per candidate, so plain numpy broadcasting evaluates a batch of
    candidates at once: it returns a (candidates, bars) mask where True on bar t means "enter
    at the open of bar t+1". ``bracket`` then prices only the signals found: its parameter
    arrays and ``signal_bars`` hold one element per signal.
    """

    @property
    def parameter_names(self) -> frozenset[str]: ...

    @property
    def indicator_parameters(self) -> frozenset[str]: ...

    def indicators(
        self, candles: Candles, params: Mapping[str, float]
    ) -> Mapping[str, FloatArray]: ...

    def entries(
        self,
        candles: Candles,
        indicators: Mapping[str, FloatArray],
        params: Mapping[str, FloatArray],
    ) -> BoolArray: ...

    def bracket(
        self,
        candles: Candles,
        indicators: Mapping[str, FloatArray],
        params: Mapping[str, FloatArray],
        signal_bars: IntArray,
    ) -> Bracket: ...


class RsiAdxStrategy:
    """Reference strategy: buy an oversold dip in a trending market, with an ATR bracket.

    Long entry when RSI(14) < ``long_rsi_entry`` and ADX(14) >= ``long_adx_min``; stop loss at
    close - ``sl_atr_multiplier`` x ATR(14) and take profit at close + ``tp_atr_multiplier`` x
    ATR(14) of the signal bar.
    """

    parameter_names = frozenset(
        {"long_rsi_entry", "long_adx_min", "sl_atr_multiplier", "tp_atr_multiplier"}
    )
    # The indicator periods are fixed at 14, so no parameter changes the indicators.
    indicator_parameters: frozenset[str] = frozenset()

    def indicators(self, candles: Candles, params: Mapping[str, float]) -> dict[str, FloatArray]:
        high, low, close = candles.high, candles.low, candles.close
        return {"rsi": rsi(close), "adx": adx(high, low, close), "atr": atr(high, low, close)}

    def entries(
        self,
        candles: Candles,
        indicators: Mapping[str, FloatArray],
        params: Mapping[str, FloatArray],
    ) -> BoolArray:
        with np.errstate(invalid="ignore"):
            oversold = indicators["rsi"] < params["long_rsi_entry"]
            return oversold & (indicators["adx"] >= params["long_adx_min"])

    def bracket(
        self,
        candles: Candles,
        indicators: Mapping[str, FloatArray],
        params: Mapping[str, FloatArray],
        signal_bars: IntArray,
    ) -> Bracket:
        close, average_range = candles.close[signal_bars], indicators["atr"][signal_bars]
        return Bracket(
            stop_loss=close - params["sl_atr_multiplier"] * average_range,
            take_profit=close + params["tp_atr_multiplier"] * average_range,
        )


class ExitReason(StrEnum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    STILL_OPEN = "open"  # not exited: exit fields show the last bar, marked to its close


@dataclass(frozen=True)
class Trade:
    """One long trade; prices include the spread, ``pnl`` and ``pnl_pct`` all commissions."""

    entry_time: datetime
    exit_time: datetime
    entry_bar: int
    exit_bar: int
    entry_price: float
    exit_price: float
    size: int
    pnl: float
    pnl_pct: float  # percent of the entry value
    exit_reason: ExitReason


@dataclass(frozen=True, eq=False)
class BacktestResult:
    trades: tuple[Trade, ...]  # closed trades, in order
    open_trades: tuple[Trade, ...]  # still open after the last bar (at most one)
    equity: FloatArray  # account equity at the close of every bar
    stats: Stats


def run_backtest(
    candles: Candles,
    params: Mapping[str, float],
    settings: BacktestSettings | None = None,
    strategy: Strategy | None = None,
) -> BacktestResult:
    """Backtest one parameter set, with its trades and equity curve."""
    settings = settings or BacktestSettings()
    strategy = strategy or RsiAdxStrategy()
    _check_parameters(strategy, [params])
    market = _Market(candles)
    ledger = _trades(
        market, strategy, _indicators_for(strategy, candles, params), [params], settings
    )
    pnl, returns = _trade_outcomes(ledger, settings.commission)
    trades = [_trade(candles, ledger, pnl, returns, index) for index in range(len(ledger.owner))]
    return BacktestResult(
        trades=tuple(trade for trade in trades if trade.exit_reason != ExitReason.STILL_OPEN),
        open_trades=tuple(trade for trade in trades if trade.exit_reason == ExitReason.STILL_OPEN),
        equity=_equity_at(candles, ledger, 1, settings.cash, np.arange(len(candles)))[0],
        stats=_stats(market, ledger, 1, settings)[0],
    )


def evaluate_candidates(
    candles: Candles,
    candidates: Sequence[Mapping[str, float]],
    settings: BacktestSettings | None = None,
    strategy: Strategy | None = None,
) -> list[Stats]:
    """Statistics of many parameter sets over the same candles, in the order given.

    Same results as ``run_backtest`` per candidate, computed together: indicators once per
    distinct value of the strategy's indicator parameters, signals and trades for batches of
    candidates at a time.
    """
    settings = settings or BacktestSettings()
    strategy = strategy or RsiAdxStrategy()
    _check_parameters(strategy, candidates)
    market = _Market(candles)
    stats: dict[int, Stats] = {}
    for indicator_params, positions in _group_by_indicator_parameters(strategy, candidates):
        values = _indicators_for(strategy, candles, indicator_params)
        group = [candidates[position] for position in positions]
        ledger = _trades(market, strategy, values, group, settings)
        stats.update(zip(positions, _stats(market, ledger, len(group), settings), strict=True))
    return [stats[position] for position in range(len(candidates))]


class Exits(NamedTuple):
    """How long trades end: one element per trade."""

    bar: IntArray  # the exit bar; for a trade still open, the last bar watched
    price: FloatArray  # the fill; for a trade still open, the close of that last bar
    stop_hit: BoolArray
    still_open: BoolArray


def bracket_exits(
    candles: Candles,
    entry_bar: IntArray,
    stop_loss: FloatArray,
    take_profit: FloatArray,
    end_bar: IntArray,
) -> Exits:
    """Exits of long trades entered at the open of ``entry_bar``, each with its own bracket and
    watched up to the bar before its ``end_bar`` (at most the number of bars), under the fill
    rules of the backtests: from the entry bar on, the stop loss at ``min(open, stop)``, the
    take profit at ``max(open, target)``, the stop loss first when a bar reaches both. A trade
    that neither reaches by then is still open. ``candles`` needs at least 2 bars."""
    exit_bar, stop_hit = _Market(candles).first_exit(entry_bar, stop_loss, take_profit)
    still_open = exit_bar >= end_bar
    bar = np.where(still_open, end_bar - 1, exit_bar)
    fills = _exit_fills(candles, exit_bar, stop_hit, stop_loss, take_profit)
    price = np.where(still_open, candles.close[bar], fills)
    return Exits(bar, price, stop_hit & ~still_open, still_open)


def _trades(
    market: _Market,
    strategy: Strategy,
    indicator_values: Mapping[str, FloatArray],
    candidates: Sequence[Mapping[str, float]],
    settings: BacktestSettings,
) -> _Ledger:
    signals = _entry_signals(market, strategy, indicator_values, candidates, settings.spread)
    return _simulate(market, signals, len(candidates), settings)


def _check_parameters(strategy: Strategy, candidates: Sequence[Mapping[str, float]]) -> None:
    expected = strategy.parameter_names
    for candidate in candidates:
        missing, unexpected = expected - candidate.keys(), candidate.keys() - expected
        if missing or unexpected:
            raise ValueError(
                f"parameters {dict(candidate)} do not fit the strategy: "
                f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )


def _group_by_indicator_parameters(
    strategy: Strategy, candidates: Sequence[Mapping[str, float]]
) -> Iterator[tuple[dict[str, float], list[int]]]:
    """Candidate positions grouped by the values of the strategy's indicator parameters."""
    names = sorted(strategy.indicator_parameters)
    groups: dict[tuple[float, ...], list[int]] = {}
    for position, candidate in enumerate(candidates):
        groups.setdefault(tuple(candidate[name] for name in names), []).append(position)
    for key, positions in groups.items():
        yield dict(zip(names, key, strict=True)), positions


def _indicators_for(
    strategy: Strategy, candles: Candles, params: Mapping[str, float]
) -> Mapping[str, FloatArray]:
    return strategy.indicators(
        candles, {name: params[name] for name in strategy.indicator_parameters}
    )


class _Market:
    """Per-symbol data shared by every candidate."""

    def __init__(self, candles: Candles) -> None:
        if len(candles) < 2:
            raise ValueError(f"{candles.symbol}: a backtest needs at least 2 bars")
        self.candles = candles
        # Sentinel bars after the last one, where no stop or target is ever reached, let a
        # window of up to len(candles) bars start at any bar.
        bars = len(candles)
        self._lows = np.concatenate((candles.low, np.full(bars, np.inf)))
        self._highs = np.concatenate((candles.high, np.full(bars, -np.inf)))
        # The narrow windows most exits are found in, as tables with a row per start bar:
        # taking rows of a table is several times faster than indexing a window per row.
        self._window_tables = {
            width: (
                np.ascontiguousarray(sliding_window_view(self._lows, width)[:bars]),
                np.ascontiguousarray(sliding_window_view(self._highs, width)[:bars]),
            )
            for width in _WINDOW_TABLE_WIDTHS
            if width < bars
        }
        self._close_maxima = _block_extremes(candles.close, np.maximum)
        self._close_minima = _block_extremes(candles.close, np.minimum)

    def highest_close(self, start: IntArray, stop: IntArray) -> FloatArray:
        """Highest close of the bars ``start`` to ``stop - 1`` (at least one), per range."""
        return _range_extreme(self._close_maxima, np.maximum, start, stop)

    def lowest_close(self, start: IntArray, stop: IntArray) -> FloatArray:
        """Lowest close of the bars ``start`` to ``stop - 1`` (at least one), per range."""
        return _range_extreme(self._close_minima, np.minimum, start, stop)

    def first_exit(
        self, start: IntArray, stop: FloatArray, target: FloatArray, width: int = 0
    ) -> tuple[IntArray, BoolArray]:
        """First bar from ``start`` on where the stop or the target is reached (the number of
        bars if never), and whether it was the stop (which wins when both are)."""
        bars = len(self.candles)
        width = min(width or _WINDOW_TABLE_WIDTHS[0], bars)
        lows, highs = self._windows(start, width)
        stop_reached = lows <= stop[:, None]
        reached = stop_reached | (highs >= target[:, None])
        offset = reached.argmax(axis=1)
        rows = np.arange(len(start))
        found = reached[rows, offset]
        exit_bar = np.where(found, start + offset, bars)
        stop_hit = stop_reached[rows, offset]
        later = np.flatnonzero(~found & (start + width < bars))
        if later.size:
            exit_bar[later], stop_hit[later] = self.first_exit(
                start[later] + width, stop[later], target[later], width * 4
            )
        return exit_bar, stop_hit

    def _windows(self, start: IntArray, width: int) -> tuple[FloatArray, FloatArray]:
        """Lows and highs of the ``width`` bars from each start bar, one row per start."""
        if width in self._window_tables:
            low_table, high_table = self._window_tables[width]
            return low_table.take(start, axis=0), high_table.take(start, axis=0)
        bar = start[:, None] + np.arange(width)
        return self._lows.take(bar), self._highs.take(bar)


def _block_extremes(values: FloatArray, combine: np.ufunc) -> FloatArray:
    """Sparse table: row k holds the extreme of the 2**k values from each position on."""
    rows = [values]
    while 2 ** len(rows) <= len(values):
        width, previous = 2 ** (len(rows) - 1), rows[-1]
        row = previous.copy()
        row[:-width] = combine(previous[:-width], previous[width:])
        rows.append(row)
    return np.array(rows)


def _range_extreme(
    table: FloatArray, combine: np.ufunc, start: IntArray, stop: IntArray
) -> FloatArray:
    """Extreme of ``values[start:stop]`` per range, from two overlapping power-of-two blocks."""
    level = np.frexp(stop - start)[1] - 1  # floor(log2(length))
    extreme: FloatArray = combine(table[level, start], table[level, stop - (1 << level)])
    return extreme


@dataclass(frozen=True)
class _EntrySignals:
    """Entry signals of a batch that can become orders, ordered by candidate then bar."""

    keys: IntArray  # candidate * bars + signal bar, then a sentinel past the last candidate
    stop: FloatArray
    target: FloatArray


@dataclass(frozen=True)
class _Ledger:
    """Trades of a batch of candidates as flat arrays, by candidate then time."""

    owner: IntArray  # candidate row
    entry_bar: IntArray
    exit_bar: IntArray  # the last bar for a trade still open
    size: FloatArray
    entry_price: FloatArray
    exit_price: FloatArray  # the last close for a trade still open
    stop_hit: BoolArray
    still_open: BoolArray
    cash_after_entry: FloatArray
    cash_after_exit: FloatArray


def _first_signal_bar(indicator_values: Mapping[str, FloatArray], bars: int) -> int:
    """One bar after every indicator is defined, like backtesting's start after warm-up."""
    first_defined = [
        int(np.argmax(defined)) if defined.any() else bars
        for defined in (~np.isnan(values) for values in indicator_values.values())
    ]
    return 1 + max(first_defined, default=0)


def _entry_signals(
    market: _Market,
    strategy: Strategy,
    indicator_values: Mapping[str, FloatArray],
    candidates: Sequence[Mapping[str, float]],
    spread: float,
) -> _EntrySignals:
    """The strategy's entry signals that can become orders, for every candidate.

    Signals are evaluated for a batch of candidates at a time and only the usable ones kept:
    from the first bar after the indicators' warm-up, before the last bar (which has no next
    bar to fill at), and with a bracket that backtesting accepts.
    """
    candles = market.candles
    bars = len(candles)
    first_bar = _first_signal_bar(indicator_values, bars)
    batch_size = max(1, _SIGNAL_BATCH_CELLS // bars)
    keys, stops, targets = [], [], []
    for first_row in range(0, len(candidates), batch_size):
        batch = candidates[first_row : first_row + batch_size]
        params = {
            name: np.array([[candidate[name]] for candidate in batch], dtype=np.float64)
            for name in strategy.parameter_names
        }
        entries = strategy.entries(candles, indicator_values, params)
        key = np.flatnonzero(np.broadcast_to(entries, (len(batch), bars)))
        row, signal_bar = np.divmod(key, bars)
        in_time = (signal_bar >= first_bar) & (signal_bar < bars - 1)
        key, row, signal_bar = key[in_time], row[in_time], signal_bar[in_time]
        signal_params = {name: column[row, 0] for name, column in params.items()}
        stop, target = strategy.bracket(candles, indicator_values, signal_params, signal_bar)
        reference_price = candles.close[signal_bar] * (1 + spread)
        valid = (stop > 0) & (stop < reference_price) & (reference_price < target)
        keys.append(key[valid] + first_row * bars)
        stops.append(stop[valid])
        targets.append(target[valid])
    keys.append(np.array([len(candidates) * bars]))
    return _EntrySignals(np.concatenate(keys), np.concatenate(stops), np.concatenate(targets))


class _Found(NamedTuple):
    """Trades as the simulation finds them: by loop iteration, then candidate."""

    owner: IntArray
    entry_bar: IntArray
    exit_bar: IntArray  # the number of bars for a trade still open
    size: FloatArray  # 0 for a dropped order
    exit_price: FloatArray
    stop_hit: BoolArray
    cash: FloatArray  # before the entry


def _simulate(
    market: _Market, signals: _EntrySignals, candidates: int, settings: BacktestSettings
) -> _Ledger:
    """Trades of every candidate, found one trade per candidate per loop iteration."""
    candles = market.candles
    bars = len(candles)
    entry_price = candles.open * (1 + settings.spread)
    # Same floating-point operations as backtesting, so that sizes match it exactly.
    unit_cost = entry_price + _FULL_EQUITY * candles.open * settings.commission / _FULL_EQUITY
    rows = np.arange(candidates)
    first_key = rows * bars
    search_from = np.zeros(candidates, dtype=np.int64)
    cash = np.full(candidates, settings.cash)
    found: list[_Found] = []
    while rows.size:
        signal = signals.keys.searchsorted(first_key + search_from)
        entry_bar = signals.keys[signal] - first_key + 1
        if entry_bar.max(initial=0) >= bars:  # candidates without signals left are done
            left = entry_bar < bars
            rows, first_key, cash = rows[left], first_key[left], cash[left]
            signal, entry_bar = signal[left], entry_bar[left]
        cost = unit_cost[entry_bar]
        size = np.floor_divide(cash * _FULL_EQUITY, cost)
        dropped = (size < 1) | (size * cost > cash)
        stop, target = signals.stop[signal], signals.target[signal]
        exit_bar, stop_hit = market.first_exit(entry_bar, stop, target)
        # An order the cash cannot pay is dropped: a trade of size 0 that "exits" on its entry
        # bar, where the strategy may signal again.
        size[dropped], exit_bar[dropped] = 0.0, entry_bar[dropped]
        exit_price = _exit_fills(candles, exit_bar, stop_hit, stop, target)
        found.append(_Found(rows, entry_bar, exit_bar, size, exit_price, stop_hit, cash))
        _, cash = _cash_flow(cash, size, entry_price[entry_bar], exit_price, settings.commission)
        if exit_bar.max(initial=0) >= bars:  # a trade still open ends its candidate's trading
            closed = exit_bar < bars
            rows, first_key, cash, exit_bar = (
                rows[closed], first_key[closed], cash[closed], exit_bar[closed]
            )  # fmt: skip
        search_from = exit_bar
    return _ledger(candles, settings, _Found(*map(np.concatenate, zip(*found, strict=True))))


def _exit_fills(
    candles: Candles, exit_bar: IntArray, stop_hit: BoolArray, stop: FloatArray, target: FloatArray
) -> FloatArray:
    """Fill prices at the exit bars (past the last bar: at the last bar): the stop loss at
    ``min(open, stop)``, the take profit at ``max(open, target)``."""
    exit_open = candles.open[np.minimum(exit_bar, len(candles) - 1)]
    fills: FloatArray = np.where(
        stop_hit, np.minimum(exit_open, stop), np.maximum(exit_open, target)
    )
    return fills


def _cash_flow(
    cash: FloatArray,
    size: FloatArray,
    entry_price: FloatArray,
    exit_price: FloatArray,
    commission: float,
) -> tuple[FloatArray, FloatArray]:
    """Cash after the entry and after the exit, computed as backtesting does."""
    after_entry = cash - size * entry_price * commission
    exit_commission = size * exit_price * commission
    return after_entry, after_entry + (size * (exit_price - entry_price) - exit_commission)


def _ledger(candles: Candles, settings: BacktestSettings, found: _Found) -> _Ledger:
    """The trades of sizes above 0 by candidate then time, with their prices and cash."""
    last_bar = len(candles) - 1
    # Each candidate's trades were found in time order, so a stable sort by candidate suffices.
    order = np.argsort(found.owner, kind="stable")
    order = order[found.size[order] > 0]
    still_open = found.exit_bar[order] > last_bar
    entry_bar, size = found.entry_bar[order], found.size[order]
    entry_price = candles.open[entry_bar] * (1 + settings.spread)
    exit_price = np.where(still_open, candles.close[last_bar], found.exit_price[order])
    cash_after_entry, cash_after_exit = _cash_flow(
        found.cash[order], size, entry_price, exit_price, settings.commission
    )
    return _Ledger(
        owner=found.owner[order],
        entry_bar=entry_bar,
        exit_bar=np.minimum(found.exit_bar[order], last_bar),
        size=size,
        entry_price=entry_price,
        exit_price=exit_price,
        stop_hit=found.stop_hit[order],
        still_open=still_open,
        cash_after_entry=cash_after_entry,
        cash_after_exit=cash_after_exit,
    )


def _stats(
    market: _Market, ledger: _Ledger, candidates: int, settings: BacktestSettings
) -> list[Stats]:
    """Statistics per candidate, computed for a batch of candidates at a time."""
    candles = market.candles
    periods = return_periods(candles.times)
    batch_size = max(1, _STATS_BATCH_CELLS // len(periods.ends))
    stats: list[Stats] = []
    for first_row in range(0, candidates, batch_size):
        rows = min(batch_size, candidates - first_row)
        batch = _trades_of_rows(ledger, first_row, rows)
        at_period_ends = _equity_at(candles, batch, rows, settings.cash, periods.ends)
        equity = EquitySummary(
            initial=settings.cash,
            at_period_ends=at_period_ends,
            periods_per_year=periods.per_year,
            max_drawdown=_max_drawdowns(market, batch, rows, settings.cash),
        )
        pnl, returns = _trade_outcomes(batch, settings.commission)
        closed = ~batch.still_open
        bars_in_position = np.bincount(
            batch.owner, batch.exit_bar - batch.entry_bar + 1, minlength=rows
        ).astype(np.int64)
        stats += compute_stats(
            ClosedTrades(batch.owner[closed], pnl[closed], returns[closed]),
            equity,
            bars_in_position,
            len(candles),
        )
    return stats


def _trades_of_rows(ledger: _Ledger, first_row: int, rows: int) -> _Ledger:
    """The trades of candidates first_row .. first_row + rows - 1, renumbered from 0."""
    start, stop = np.searchsorted(ledger.owner, [first_row, first_row + rows])
    columns = {field.name: getattr(ledger, field.name)[start:stop] for field in fields(_Ledger)}
    columns["owner"] = columns["owner"] - first_row
    return _Ledger(**columns)


def _trade_outcomes(ledger: _Ledger, commission: float) -> tuple[FloatArray, FloatArray]:
    """Profit and return of each trade after commissions, computed as backtesting does."""
    entry_commission = ledger.size * ledger.entry_price * commission
    exit_commission = ledger.size * ledger.exit_price * commission
    commissions = np.where(ledger.still_open, entry_commission, exit_commission + entry_commission)
    pnl = ledger.size * (ledger.exit_price - ledger.entry_price) - commissions
    returns = (ledger.exit_price / ledger.entry_price - 1) - commissions / (
        ledger.size * ledger.entry_price
    )
    return pnl, returns


def _equity_at(
    candles: Candles, ledger: _Ledger, candidates: int, cash: float, sample_bars: IntArray
) -> FloatArray:
    """Equity at the close of the given increasing bars, one row per candidate."""
    samples = len(sample_bars)
    entry_sample = np.searchsorted(sample_bars, ledger.entry_bar)
    exit_sample = np.where(
        ledger.still_open, samples, np.searchsorted(sample_bars, ledger.exit_bar)
    )
    # Out of the market, equity is the cash left by the latest exit. Trades are in time order
    # within a candidate, so a running maximum of trade numbers (0 for none) finds that exit;
    # of several exits before one sample, the last one counts.
    exited = exit_sample < samples
    owner, sample = ledger.owner[exited], exit_sample[exited]
    last = np.ones(len(owner), dtype=np.bool_)
    last[:-1] = (owner[1:] != owner[:-1]) | (sample[1:] != sample[:-1])
    latest_exit = np.zeros((candidates, samples), dtype=np.int32)
    latest_exit[owner[last], sample[last]] = 1 + np.flatnonzero(exited)[last]
    np.maximum.accumulate(latest_exit, axis=1, out=latest_exit)
    equity: FloatArray = np.append(cash, ledger.cash_after_exit)[latest_exit]
    # In the market, equity is marked to the close at the samples from entry to before exit.
    trade, offset = _ranges(exit_sample - entry_sample)
    sample = entry_sample[trade] + offset
    close = candles.close[sample_bars[sample]]
    equity[ledger.owner[trade], sample] = _marked_equity(ledger, trade, close)
    return equity


def _max_drawdowns(market: _Market, ledger: _Ledger, candidates: int, cash: float) -> FloatArray:
    """Maximum drawdown per candidate in percent: ``max_drawdown`` of its equity curve.

    Equity changes only in a position and at exits, and in a position it rises with the close
    (cash + (close * size - size * entry_price) is monotonic in close, rounding included). So
    a trade whose highest close does not lift equity above the peak reached before it draws
    down most at its lowest close, which range queries find; only the bars of trades that set
    a new peak are evaluated one by one.
    """
    in_market_end = np.where(ledger.still_open, len(market.candles), ledger.exit_bar)
    held = np.flatnonzero(in_market_end > ledger.entry_bar)  # not exited on the entry bar
    start, stop = ledger.entry_bar[held], in_market_end[held]
    high = np.full(len(ledger.owner), -np.inf)
    high[held] = _marked_equity(ledger, held, market.highest_close(start, stop))
    low = np.full(len(ledger.owner), np.inf)
    low[held] = _marked_equity(ledger, held, market.lowest_close(start, stop))
    exit_equity = np.where(ledger.still_open, -np.inf, ledger.cash_after_exit)
    peak_before = _peak_before(np.maximum(high, exit_equity), ledger.owner, candidates, cash)

    drawdown = np.maximum(1 - low / peak_before, 0.0)
    new_peak = held[high[held] > peak_before[held]]
    if new_peak.size:
        drawdown[new_peak] = _drawdown_bar_by_bar(market, ledger, new_peak, peak_before)
    peak_at_exit = np.maximum(np.maximum(peak_before, high), exit_equity)
    exit_drawdown = np.where(ledger.still_open, 0.0, 1 - exit_equity / peak_at_exit)
    drawdown = np.maximum(drawdown, exit_drawdown)

    result = np.zeros(candidates)
    with_trades = np.flatnonzero(np.bincount(ledger.owner, minlength=candidates))
    first_trade = np.searchsorted(ledger.owner, with_trades)
    if first_trade.size:
        result[with_trades] = np.maximum.reduceat(drawdown, first_trade)
    percent: FloatArray = result * 100
    return percent


def _peak_before(
    trade_peak: FloatArray, owner: IntArray, candidates: int, cash: float
) -> FloatArray:
    """Highest equity before each trade: the initial cash or an earlier trade's peak."""
    trades_per_candidate = np.bincount(owner, minlength=candidates)
    _, column = _ranges(trades_per_candidate)
    peaks = np.full((candidates, 1 + trades_per_candidate.max(initial=0)), cash)
    peaks[owner, column + 1] = trade_peak
    np.maximum.accumulate(peaks, axis=1, out=peaks)
    before: FloatArray = peaks[owner, column]
    return before


def _drawdown_bar_by_bar(
    market: _Market, ledger: _Ledger, trades: IntArray, peak_before: FloatArray
) -> FloatArray:
    """Largest drawdown over the bars each of ``trades`` holds (it has at least one)."""
    end = np.where(ledger.still_open, len(market.candles), ledger.exit_bar)[trades]
    bars_held = end - ledger.entry_bar[trades]
    item, offset = _ranges(bars_held)
    trade = trades[item]
    start = ledger.entry_bar[trade]
    bar = start + offset
    running_high = _marked_equity(ledger, trade, market.highest_close(start, bar + 1))
    equity = _marked_equity(ledger, trade, market.candles.close[bar])
    drawdown = 1 - equity / np.maximum(peak_before[trade], running_high)
    by_trade: FloatArray = np.maximum.reduceat(drawdown, np.cumsum(bars_held) - bars_held)
    return by_trade


def _ranges(counts: IntArray) -> tuple[IntArray, IntArray]:
    """For ``counts[i]`` cells per item i, in item order: each cell's item and its offset."""
    item = np.repeat(np.arange(len(counts)), counts)
    return item, np.arange(len(item)) - (np.cumsum(counts) - counts)[item]


def _marked_equity(ledger: _Ledger, trade: IntArray, close: FloatArray) -> FloatArray:
    """Equity with ``trade`` open at a ``close``, one element per pair."""
    size = ledger.size[trade]
    # Same operations as backtesting's cash + (close * size - size * entry_price).
    equity: FloatArray = ledger.cash_after_entry[trade] + (
        close * size - (ledger.size * ledger.entry_price)[trade]
    )
    return equity


def _trade(
    candles: Candles, ledger: _Ledger, pnl: FloatArray, returns: FloatArray, index: int
) -> Trade:
    entry_bar, exit_bar = int(ledger.entry_bar[index]), int(ledger.exit_bar[index])
    if ledger.still_open[index]:
        reason = ExitReason.STILL_OPEN
    else:
        reason = ExitReason.STOP_LOSS if ledger.stop_hit[index] else ExitReason.TAKE_PROFIT
    return Trade(
        entry_time=utc_datetime(candles.times[entry_bar]),
        exit_time=utc_datetime(candles.times[exit_bar]),
        entry_bar=entry_bar,
        exit_bar=exit_bar,
        entry_price=float(ledger.entry_price[index]),
        exit_price=float(ledger.exit_price[index]),
        size=int(ledger.size[index]),
        pnl=float(pnl[index]),
        pnl_pct=float(returns[index]) * 100,
        exit_reason=reason,
    )


def utc_datetime(time: np.datetime64) -> datetime:
    """A bar time as a timezone-aware datetime."""
    microseconds = int(time.astype("datetime64[us]").astype(np.int64))
    return _EPOCH + timedelta(microseconds=microseconds)
