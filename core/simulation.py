"""A simulated trading engine, for a first run without an engine and for load tests.

Each symbol's market is a seeded random walk whose volatility switches between regimes
(calm, normal, storm: a Markov chain that keeps its regime with probability REGIME_STAY per
bar) around the level of the symbol (LOW, MEDIUM, HIGH). On it the engine trades the
reference strategy of core.backtest (RSI/ADX entries, ATR bracket, the backtester's fill
rules) with the parameters it is given, and a few simple risk rules block some signals.

Pure and deterministic: the same seed, run id and sequence of parameters give the same bars
and the same events. Time is counted in bars; the caller turns bars into times (core has no
wall clock). Everything simulated is marked: symbols end in SIMULATED_SUFFIX and blocked
trades carry `data.simulated = true`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from core.backtest import Candles, RsiAdxStrategy, bracket_exits, timeframe_seconds
from core.market import Bar
from core.params import Scope

FloatArray = npt.NDArray[np.float64]

SIMULATED_SUFFIX = "-SIM"
SOURCE = "paramadapt simulate"
# Standard deviation of a bar's log return per level, for 5-minute bars: a daily ATR % of
# about 1.2 (LOW), 3.5 (MEDIUM) and 8 (HIGH) against the optimizer's cut-offs of 2 and 5.
LEVEL_SIGMA = {Scope.LOW: 0.0004, Scope.MEDIUM: 0.0012, Scope.HIGH: 0.003}
REGIMES = ("calm", "normal", "storm")
REGIME_SCALE = np.array([0.6, 1.0, 1.8])
REGIME_STAY = 0.995
MAX_OPEN_TRADES = 2  # across symbols: a further signal is blocked as max_open_trades
EQUITY = 10_000.0  # the account a position's max_position_size percentage is taken of
# Bars generated at a time, and kept before the current bar for the indicators' warm-up
# (Wilder's averages forget their seed within a few hundred bars) and after it for exits.
_CHUNK = 2048
_WARMUP = 256
_LOOKAHEAD = 576  # two days of 5-minute bars: a trade still open then is closed at the close
_STRATEGY = RsiAdxStrategy()


def simulated_symbol(name: str) -> str:
    """The symbol as the simulation reports it: upper case, ending in -SIM."""
    name = name.upper()
    return name if name.endswith(SIMULATED_SUFFIX) else name + SIMULATED_SUFFIX


@dataclass(frozen=True)
class SimSymbol:
    name: str  # ends in SIMULATED_SUFFIX
    level: Scope
    start_price: float = 100.0


@dataclass(frozen=True, eq=False)
class WalkBars:
    """Consecutive bars of a walk, as columns; `regime` indexes REGIMES."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    regime: npt.NDArray[np.int64]
    noise: FloatArray  # one standard normal draw per bar, for the engine's confidence

    def __len__(self) -> int:
        return len(self.close)

    def then(self, new: WalkBars, dropping: int) -> WalkBars:
        """These bars without the first `dropping`, followed by `new`."""
        return WalkBars(
            *(
                np.concatenate((getattr(self, column.name)[dropping:], getattr(new, column.name)))
                for column in fields(self)
            )
        )


class RandomWalk:
    """OHLCV bars of one symbol: log-normal returns, volatility switching between regimes."""

    def __init__(self, symbol: SimSymbol, seed: int, stream: int) -> None:
        self._rng = np.random.default_rng([seed, stream, *symbol.name.encode()])
        self._sigma = LEVEL_SIGMA[symbol.level]
        self._close = symbol.start_price
        self._regime = 1

    def bars(self, count: int) -> WalkBars:
        regime = self._regimes(count)
        sigma = self._sigma * REGIME_SCALE[regime]
        steps = self._rng.standard_normal(count) * sigma
        close = self._close * np.exp(np.cumsum(steps))
        open_ = np.concatenate(([self._close], close[:-1]))
        wick_up, wick_down = np.abs(self._rng.standard_normal((2, count))) * sigma * 0.5
        high = np.maximum(open_, close) * np.exp(wick_up)
        low = np.minimum(open_, close) * np.exp(-wick_down)
        volume = np.round(self._rng.lognormal(6.0, 0.5, count) * (1 + regime), 2)
        noise = self._rng.standard_normal(count)
        self._close = float(close[-1])
        return WalkBars(open_, high, low, close, volume, regime, noise)

    def _regimes(self, count: int) -> npt.NDArray[np.int64]:
        switches = self._rng.random(count) > REGIME_STAY
        targets = self._rng.integers(0, len(REGIMES), count)
        regime = np.empty(count, dtype=np.int64)
        current, position = self._regime, 0
        for index in np.flatnonzero(switches).tolist():  # runs between switches
            regime[position:index] = current
            current, position = int(targets[index]), index
        regime[position:] = current
        self._regime = current
        return regime


def candle_history(
    symbol: SimSymbol, seed: int, first_open: datetime, timeframe: str, count: int
) -> tuple[RandomWalk, list[Bar]]:
    """`count` bars of the symbol's market from `first_open`, and the walk to continue it."""
    walk = RandomWalk(symbol, seed, stream=1)
    return walk, as_bars(walk.bars(count), first_open, timeframe)


def as_bars(bars: WalkBars, first_open: datetime, timeframe: str) -> list[Bar]:
    step = timedelta(seconds=timeframe_seconds(timeframe))
    columns = zip(bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True)
    return [
        Bar(first_open + index * step, *(round(float(v), 6) for v in values))
        for index, values in enumerate(columns)
    ]


# --- the engine ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SimBlocked:
    key: str
    bar: int
    symbol: str
    level: Scope
    price: float
    rsi: float
    adx: float
    confidence: float
    reason: str
    regime: str

    @property
    def data(self) -> dict[str, object]:
        return {"simulated": True, "source": SOURCE, "regime": self.regime, "adx": self.adx}


@dataclass(frozen=True)
class SimClosed:
    key: str
    bar: int  # the exit bar
    entry_bar: int
    symbol: str
    level: Scope
    entry_price: float
    exit_price: float
    quantity: float
    pnl: float
    pnl_pct: float


SimEvent = SimBlocked | SimClosed


@dataclass
class _Market:
    """A window of one symbol's walk, with the strategy's indicators over it."""

    symbol: SimSymbol
    walk: RandomWalk
    timeframe: str
    base: int = 0  # absolute bar number of the window's first bar
    bars: WalkBars | None = None
    candles: Candles | None = None
    indicators: Mapping[str, FloatArray] = field(default_factory=dict)
    open_until: int = -1  # exit bar of the open position, if any

    def cover(self, bar: int) -> None:
        """Make the window hold `bar` plus the look-ahead needed for exits."""
        while self.bars is None or self.base + len(self.bars) <= bar + _LOOKAHEAD:
            self._extend()

    def _extend(self) -> None:
        new = self.walk.bars(_CHUNK)
        if self.bars is None:
            self.bars = new
        else:
            dropped = max(0, len(self.bars) - _LOOKAHEAD - _WARMUP)
            self.base += dropped
            self.bars = self.bars.then(new, dropping=dropped)
        self.candles = walk_candles(self.symbol.name, self.timeframe, self.bars)
        self.indicators = _STRATEGY.indicators(self.candles, {})

    def at(self, bar: int) -> int:
        return bar - self.base


def walk_candles(symbol: str, timeframe: str, bars: WalkBars) -> Candles:
    """The bars as Candles opening at the Unix epoch: indicators need only their order."""
    step = np.timedelta64(timeframe_seconds(timeframe), "s")
    times = (np.datetime64(0, "s") + np.arange(len(bars)) * step).astype("datetime64[ns]")
    return Candles(
        symbol, timeframe, times, bars.open, bars.high, bars.low, bars.close, bars.volume
    )


class SimulatedEngine:
    """Advances every symbol's market one bar per `step` and reports what the engine did:
    signals blocked by a risk rule, and trades that closed on that bar."""

    def __init__(
        self, symbols: Sequence[SimSymbol], seed: int, run_id: str, timeframe: str = "5m"
    ) -> None:
        self._run_id = run_id
        self._markets = [
            _Market(symbol, RandomWalk(symbol, seed, stream=0), timeframe) for symbol in symbols
        ]
        self._pending: list[SimClosed] = []
        self.bar = 0

    def step(self, params: Mapping[Scope, Mapping[str, float]]) -> list[SimEvent]:
        """One bar: trades exiting on it first, then each symbol's signal, if any. `params`
        holds the effective parameters of each symbol's level."""
        self.bar += 1
        events: list[SimEvent] = [trade for trade in self._pending if trade.bar == self.bar]
        self._pending = [trade for trade in self._pending if trade.bar != self.bar]
        for market in self._markets:
            market.cover(self.bar)
            event = self._signal(market, params[market.symbol.level])
            if event is not None:
                events.append(event)
        return events

    def _signal(self, market: _Market, params: Mapping[str, float]) -> SimBlocked | None:
        """Blocked trades are returned at once; a taken trade is returned when it closes."""
        assert market.bars is not None
        i = market.at(self.bar)
        rsi, adx = float(market.indicators["rsi"][i]), float(market.indicators["adx"][i])
        if market.open_until > self.bar or math.isnan(rsi) or math.isnan(adx):
            return None
        if not (rsi < params["long_rsi_entry"] and adx >= params["long_adx_min"]):
            return None
        confidence = _confidence(rsi, adx, float(market.bars.noise[i]), params)
        reason = self._blocking_rule(confidence, params)
        if reason is None:
            self._take(market, i, params)
            return None
        return SimBlocked(
            key=f"{self._run_id}-{market.symbol.name}-{self.bar}",
            bar=self.bar,
            symbol=market.symbol.name,
            level=market.symbol.level,
            price=round(float(market.bars.close[i]), 6),
            rsi=round(rsi, 2),
            adx=round(adx, 2),
            confidence=confidence,
            reason=reason,
            regime=REGIMES[int(market.bars.regime[i])],
        )

    def _blocking_rule(self, confidence: float, params: Mapping[str, float]) -> str | None:
        if confidence < params["min_confidence"]:
            return "min_confidence"
        open_trades = sum(market.open_until > self.bar for market in self._markets)
        return "max_open_trades" if open_trades >= MAX_OPEN_TRADES else None

    def _take(self, market: _Market, i: int, params: Mapping[str, float]) -> None:
        """Enter at the next bar's open with the strategy's ATR bracket; exit by the
        backtester's fill rules, or at the close of the look-ahead's last bar."""
        assert market.bars is not None and market.candles is not None
        signal = np.array([i])
        bracket = _STRATEGY.bracket(
            market.candles, market.indicators, {k: np.array([v]) for k, v in params.items()}, signal
        )
        close = market.bars.close[i]
        if not 0 < bracket.stop_loss[0] < close < bracket.take_profit[0]:
            return
        end = np.array([i + _LOOKAHEAD])
        exits = bracket_exits(
            market.candles, signal + 1, bracket.stop_loss, bracket.take_profit, end
        )
        entry_price = float(market.bars.open[i + 1])
        exit_price = float(exits.price[0])
        quantity = round(EQUITY * params["max_position_size"] / 100 / entry_price, 6)
        exit_bar = market.base + int(exits.bar[0])
        market.open_until = exit_bar
        self._pending.append(
            SimClosed(
                key=f"{self._run_id}-{market.symbol.name}-{self.bar}",
                bar=exit_bar,
                entry_bar=self.bar + 1,
                symbol=market.symbol.name,
                level=market.symbol.level,
                entry_price=round(entry_price, 6),
                exit_price=round(exit_price, 6),
                quantity=quantity,
                pnl=round((exit_price - entry_price) * quantity, 4),
                pnl_pct=round((exit_price / entry_price - 1) * 100, 4),
            )
        )


def _confidence(rsi: float, adx: float, noise: float, params: Mapping[str, float]) -> float:
    """The engine's confidence in a signal: higher the deeper the dip and the stronger the
    trend, with noise; about half the signals fall below the default min_confidence."""
    depth = (params["long_rsi_entry"] - rsi) / 100
    trend = (adx - params["long_adx_min"]) / 200
    return round(min(0.99, max(0.05, 0.6 + depth + trend + 0.08 * noise)), 3)
