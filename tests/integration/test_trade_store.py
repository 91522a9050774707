"""Engine events stored once, on SQLite and PostgreSQL: also when one batch repeats a key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.runtime import Runtime
from core.models import BlockedTradeEvent, ClosedTradeEvent, Ingested, Side
from core.params import Scope
from storage.tables import BlockedTradeRow, OutboxRow, TradeCounterRow, TradeRow

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def closed(trade_id: str, pnl: float = 45.0) -> ClosedTradeEvent:
    return ClosedTradeEvent(
        trade_id=trade_id,
        symbol="ETHUSDC",
        side=Side.BUY,
        entry_time=T0,
        exit_time=T0 + timedelta(hours=1),
        entry_price=3000.0,
        exit_price=3030.0,
        quantity=1.5,
        pnl=pnl,
        pnl_pct=1.0,
        volatility_level=Scope.HIGH,
    )


def blocked(event_id: str, price: float = 97000.0) -> BlockedTradeEvent:
    return BlockedTradeEvent(event_id, T0, "BTCUSDC", Side.BUY, "min_confidence", price=price)


async def count(runtime: Runtime, table: type) -> int:
    async with runtime.engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def high_trades_counted(runtime: Runtime) -> int:
    async with runtime.engine.connect() as connection:
        query = select(TradeCounterRow.count).where(TradeCounterRow.volatility_level == "HIGH")
        return int((await connection.execute(query)).scalar_one())


async def test_a_trade_repeated_in_one_batch_is_stored_and_counted_once(runtime: Runtime) -> None:
    results = await runtime.trades.add_trades([closed("t2"), closed("t2", pnl=-1.0)], T0)
    assert results == [Ingested("t2", results[0].id, True), Ingested("t2", results[0].id, False)]
    assert await count(runtime, TradeRow) == 1
    assert await high_trades_counted(runtime) == 1


async def test_the_first_occurrence_of_a_repeated_trade_is_the_one_stored(
    runtime: Runtime,
) -> None:
    await runtime.trades.add_trades([closed("t2", pnl=45.0), closed("t2", pnl=-1.0)], T0)
    async with runtime.engine.connect() as connection:
        assert (await connection.execute(select(TradeRow.pnl))).scalar_one() == 45.0


async def test_a_batch_repeating_a_known_trade_creates_nothing(runtime: Runtime) -> None:
    (first,) = await runtime.trades.add_trades([closed("t1")], T0)
    again = await runtime.trades.add_trades([closed("t1"), closed("t1")], T0)
    assert [(r.id, r.created) for r in again] == [(first.id, False), (first.id, False)]
    assert await high_trades_counted(runtime) == 1


async def test_a_blocked_trade_repeated_in_one_batch_is_stored_and_alerted_once(
    runtime: Runtime,
) -> None:
    batch = [blocked("e1"), blocked("e2"), blocked("e1", price=1.0)]
    results = await runtime.trades.add_blocked_trades(batch, T0)
    assert [(r.key, r.created) for r in results] == [("e1", True), ("e2", True), ("e1", False)]
    assert results[2].id == results[0].id
    assert await count(runtime, BlockedTradeRow) == 2
    assert await count(runtime, OutboxRow) == 2  # one alert per stored blocked trade
