"""The simulated engine (core.simulation): deterministic by seed, valid and marked data,
the reference strategy's signals with the risk rules applied."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from core.market import VolatilityCutoffs, check_bars, daily_atr_percent, volatility_level
from core.params import Scope, load_schema
from core.simulation import (
    RandomWalk,
    SimBlocked,
    SimClosed,
    SimEvent,
    SimSymbol,
    SimulatedEngine,
    candle_history,
    simulated_symbol,
    walk_candles,
)

SYMBOLS = (
    SimSymbol("BTC-SIM", Scope.HIGH, 100.0),
    SimSymbol("ETH-SIM", Scope.MEDIUM, 200.0),
    SimSymbol("EUR-SIM", Scope.LOW, 300.0),
)
DEFAULTS = {name: float(value) for name, value in load_schema().defaults().items()}
START = datetime(2026, 11, 1, tzinfo=UTC)


def run(seed: int, bars: int = 3000, changes: Mapping[str, float] | None = None) -> list[SimEvent]:
    engine = SimulatedEngine(SYMBOLS, seed, run_id="r1")
    params = {symbol.level: {**DEFAULTS, **(changes or {})} for symbol in SYMBOLS}
    return [event for _ in range(bars) for event in engine.step(params)]


def test_the_same_seed_gives_the_same_events_and_candles() -> None:
    assert run(seed=7) == run(seed=7)
    assert (
        candle_history(SYMBOLS[0], 7, START, "5m", 500)[1]
        == (candle_history(SYMBOLS[0], 7, START, "5m", 500)[1])
    )


def test_another_seed_gives_another_market() -> None:
    assert run(seed=7) != run(seed=8)


def test_the_engine_both_blocks_signals_and_closes_trades_on_every_level() -> None:
    events = run(seed=7)
    for symbol in SYMBOLS:
        kinds = {type(event) for event in events if event.symbol == symbol.name}
        assert kinds == {SimBlocked, SimClosed}, symbol


def test_candles_are_valid_bars_on_the_timeframe_grid() -> None:
    _, bars = candle_history(SYMBOLS[0], 7, START, "5m", 2000)
    check_bars("BTC-SIM", "5m", bars)  # raises on a bar off the grid or with crossed prices
    assert [bar.time for bar in bars[:2]] == [START, datetime(2026, 11, 1, 0, 5, tzinfo=UTC)]


@pytest.mark.parametrize("symbol", SYMBOLS, ids=lambda s: s.name)
def test_each_symbols_volatility_is_classified_as_its_level(symbol: SimSymbol) -> None:
    candles = walk_candles(symbol.name, "5m", RandomWalk(symbol, 7, stream=1).bars(7 * 288))
    assert volatility_level(daily_atr_percent(candles), VolatilityCutoffs()) is symbol.level


def test_everything_simulated_is_marked() -> None:
    assert simulated_symbol("btc/usd") == "BTC/USD-SIM"
    assert simulated_symbol("ETH-SIM") == "ETH-SIM"
    blocked = [event for event in run(seed=7) if isinstance(event, SimBlocked)]
    assert all(event.data["simulated"] is True for event in blocked)
    assert {event.data["source"] for event in blocked} == {"paramadapt simulate"}


def test_signals_below_min_confidence_are_blocked() -> None:
    blocked = [event for event in run(seed=7) if isinstance(event, SimBlocked)]
    assert {event.reason for event in blocked} <= {"min_confidence", "max_open_trades"}
    assert all(
        event.confidence < DEFAULTS["min_confidence"]
        for event in blocked
        if event.reason == "min_confidence"
    )


def test_min_confidence_decides_which_signals_are_traded() -> None:
    strict = run(seed=7, changes={"min_confidence": 1.0})
    relaxed = run(seed=7, changes={"min_confidence": 0.0})
    assert not any(isinstance(event, SimClosed) for event in strict)
    assert not any(getattr(event, "reason", "") == "min_confidence" for event in relaxed)


def test_closed_trades_carry_the_pnl_of_their_prices() -> None:
    closed = [event for event in run(seed=7) if isinstance(event, SimClosed)]
    for trade in closed:
        assert trade.bar >= trade.entry_bar
        assert trade.pnl == pytest.approx(
            (trade.exit_price - trade.entry_price) * trade.quantity, abs=0.01
        )
        assert trade.pnl_pct == pytest.approx(
            (trade.exit_price / trade.entry_price - 1) * 100, abs=1e-3
        )
