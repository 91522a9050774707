"""Engine events and overrides on SQLAlchemy; implements core.trades.TradeStore."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import ConflictError
from core.models import (
    AuditEntry,
    BlockedStats,
    BlockedTrade,
    BlockedTradeEvent,
    ClosedTradeEvent,
    Ingested,
    NewOverride,
    Override,
    OverrideStatus,
    Side,
)
from storage.config_store import audit_row
from storage.db import dialect_insert
from storage.outbox import enqueue, enqueue_many
from storage.tables import (
    BlockedTradeRow,
    LearningSessionRow,
    OverrideRow,
    TradeCounterRow,
    TradeRow,
)

ALERT_TOPIC = "slack.blocked_trade"
OVERRIDE_PUSH_TOPIC = "engine.override"
DECISION_TOPIC = "slack.override_decision"  # every override granted, approved or denied
DEFAULT_TRADE_THRESHOLD = 200


class SqlTradeStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], push_to_engine: bool = False
    ) -> None:
        self._sessions = sessions
        self._push = push_to_engine

    async def add_blocked_trades(
        self, events: Sequence[BlockedTradeEvent], received_at: datetime
    ) -> list[Ingested]:
        rows = [_blocked_values(event, received_at) for event in events]
        async with self._sessions.begin() as session:
            ids, created = await _insert_new(session, BlockedTradeRow, "event_id", rows)
            results = _ingested([e.event_id for e in events], ids, created)
            alerts = [{"blocked_trade_id": r.id} for r in results if r.created]
            await enqueue_many(session, ALERT_TOPIC, alerts, received_at)
        return results

    async def add_trades(
        self, events: Sequence[ClosedTradeEvent], received_at: datetime
    ) -> list[Ingested]:
        async with self._sessions.begin() as session:
            session_start = await _running_learning_session(session)
            rows = [_trade_values(e, received_at, session_start) for e in events]
            ids, created = await _insert_new(session, TradeRow, "trade_id", rows)
            results = _ingested([e.trade_id for e in events], ids, created)
            new = [e for e, r in zip(events, results, strict=True) if r.created]
            await _count_trades(session, new, received_at)
        return results

    async def blocked_trade(self, trade_id: int) -> BlockedTrade | None:
        async with self._sessions() as session:
            row = await session.get(BlockedTradeRow, trade_id)
        return blocked_from_row(row) if row else None

    async def blocked_stats(
        self, since: datetime, until: datetime, limit: int, offset: int
    ) -> BlockedStats:
        window = (BlockedTradeRow.timestamp >= since, BlockedTradeRow.timestamp < until)
        async with self._sessions() as session:
            counts = {
                column.key: await _counts(session, column, window)
                for column in (
                    BlockedTradeRow.block_reason,
                    BlockedTradeRow.symbol,
                    BlockedTradeRow.signal,
                )
            }
            recent = (
                await session.execute(
                    select(BlockedTradeRow)
                    .where(*window)
                    .order_by(BlockedTradeRow.timestamp.desc(), BlockedTradeRow.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).scalars()
            items = [blocked_from_row(row) for row in recent]
        return BlockedStats(
            total=sum(counts["signal"].values()),
            by_reason=counts["block_reason"],
            by_symbol=counts["symbol"],
            by_signal=counts["signal"],
            recent=items,
        )

    async def blocked_trades(
        self, since: datetime, until: datetime, limit: int
    ) -> list[BlockedTrade]:
        newest = (
            select(BlockedTradeRow)
            .where(BlockedTradeRow.timestamp >= since, BlockedTradeRow.timestamp < until)
            .order_by(BlockedTradeRow.timestamp.desc(), BlockedTradeRow.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(newest)).scalars().all()
        return [blocked_from_row(row) for row in reversed(rows)]

    async def add_override(self, new: NewOverride, audit: AuditEntry) -> Override:
        row = OverrideRow(
            symbol=new.symbol,
            side=new.side.value,
            reason=new.reason,
            blocked_trade_id=new.blocked_trade_id,
            status=new.status.value,
            requested_by=new.requested_by,
            decided_by=new.decided_by,
            decided_at=new.created_at,
            expires_at=new.expires_at,
            created_at=new.created_at,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(row)
                await session.flush()
                session.add(audit_row(audit, {"override_id": row.id}))
                if self._push and new.status is OverrideStatus.APPROVED:
                    enqueue(session, OVERRIDE_PUSH_TOPIC, _override_payload(row), new.created_at)
                enqueue(session, DECISION_TOPIC, {"override_id": row.id}, new.created_at)
        except IntegrityError:
            earlier = await self.override_for_blocked_trade(new.blocked_trade_id or 0)
            verb = earlier.status.value.lower() if earlier else "decided"
            who = f" by <@{earlier.decided_by}>" if earlier else ""
            raise ConflictError(f"already {verb}{who}; nothing was changed") from None
        return override_from_row(row)

    async def override(self, override_id: int) -> Override | None:
        async with self._sessions() as session:
            row = await session.get(OverrideRow, override_id)
        return override_from_row(row) if row else None

    async def override_for_blocked_trade(self, blocked_trade_id: int) -> Override | None:
        query = select(OverrideRow).where(OverrideRow.blocked_trade_id == blocked_trade_id)
        async with self._sessions() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        return override_from_row(row) if row else None

    async def active_overrides(
        self, symbol: str | None, side: Side | None, now: datetime
    ) -> list[Override]:
        query = _usable(select(OverrideRow), now)
        if symbol:
            query = query.where(OverrideRow.symbol == symbol.upper())
        if side:
            query = query.where(OverrideRow.side == side.value)
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(OverrideRow.id))).scalars().all()
        return [override_from_row(row) for row in rows]

    async def overrides(self, since: datetime, until: datetime) -> list[Override]:
        query = (
            select(OverrideRow)
            .where(OverrideRow.created_at >= since, OverrideRow.created_at < until)
            .order_by(OverrideRow.created_at, OverrideRow.id)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [override_from_row(row) for row in rows]

    async def consume_override(self, override_id: int, now: datetime) -> Override | None:
        async with self._sessions.begin() as session:
            result = await session.execute(
                _usable(update(OverrideRow), now)
                .where(OverrideRow.id == override_id)
                .values(status=OverrideStatus.CONSUMED.value, consumed_at=now)
                .returning(OverrideRow)
            )
            row = result.scalar_one_or_none()
        return override_from_row(row) if row else None


def _usable(query: Any, now: datetime) -> Any:
    """Approved and not expired: the one condition under which an override may be used."""
    return query.where(
        OverrideRow.status == OverrideStatus.APPROVED.value,
        (OverrideRow.expires_at.is_(None)) | (OverrideRow.expires_at > now),
    )


async def _insert_new(
    session: AsyncSession, table: Any, key: str, rows: list[dict[str, Any]]
) -> tuple[dict[str, int], set[str]]:
    """Insert the rows whose key is new. Returns every row's id by key, and the new keys.
    A key repeated in `rows` is inserted from its first row; the later ones are not stored."""
    first: dict[str, dict[str, Any]] = {}
    for row in rows:
        first.setdefault(row[key], row)
    rows = list(first.values())
    column = getattr(table, key)
    # Rows go as parameters, not into the statement, so its compiled form is cached.
    statement = (
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=[key])
        .returning(column, table.id)
    )
    ids: dict[str, int] = {k: i for k, i in (await session.execute(statement, rows)).all()}
    created = set(ids)
    known = [row[key] for row in rows if row[key] not in created]
    if known:
        found = await session.execute(select(column, table.id).where(column.in_(known)))
        ids.update({k: i for k, i in found.all()})
    return ids, created


def _ingested(keys: Sequence[str], ids: dict[str, int], created: set[str]) -> list[Ingested]:
    """One result per event, in order. A key the batch repeats was created by its first
    occurrence only: a later one answers as a retry would (created false, the same id)."""
    results: list[Ingested] = []
    seen: set[str] = set()
    for key in keys:
        results.append(Ingested(key, ids[key], key in created and key not in seen))
        seen.add(key)
    return results


async def _counts(session: AsyncSession, column: Any, window: tuple[Any, ...]) -> dict[str, int]:
    query: Select[Any] = (
        select(column, func.count()).where(*window).group_by(column).order_by(func.count().desc())
    )
    return {k: n for k, n in (await session.execute(query)).all()}


async def _running_learning_session(session: AsyncSession) -> tuple[int, datetime] | None:
    query = select(LearningSessionRow.id, LearningSessionRow.started_at).where(
        LearningSessionRow.status == "ACTIVE"
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def _count_trades(
    session: AsyncSession, created: list[ClosedTradeEvent], now: datetime
) -> None:
    per_level: dict[str, int] = {}
    for event in created:
        if event.volatility_level is not None:
            level = event.volatility_level.value
            per_level[level] = per_level.get(level, 0) + 1
    for level, count in per_level.items():
        statement = dialect_insert(session, TradeCounterRow).values(
            volatility_level=level, count=count, threshold=DEFAULT_TRADE_THRESHOLD, updated_at=now
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["volatility_level"],
                set_={"count": TradeCounterRow.count + count, "updated_at": now},
            )
        )


def _blocked_values(event: BlockedTradeEvent, received_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "timestamp": event.timestamp,
        "symbol": event.symbol,
        "signal": event.signal.value,
        "block_reason": event.block_reason,
        "rsi": event.rsi,
        "price": event.price,
        "confidence": event.confidence,
        "risk_level": event.risk_level,
        "data": event.data,
        "received_at": received_at,
    }


def _trade_values(
    event: ClosedTradeEvent, received_at: datetime, learning: tuple[int, datetime] | None
) -> dict[str, Any]:
    tagged = learning is not None and event.exit_time >= learning[1]
    return {
        "trade_id": event.trade_id,
        "symbol": event.symbol,
        "side": event.side.value,
        "entry_time": event.entry_time,
        "exit_time": event.exit_time,
        "entry_price": event.entry_price,
        "exit_price": event.exit_price,
        "quantity": event.quantity,
        "pnl": event.pnl,
        "pnl_pct": event.pnl_pct,
        "volatility_level": event.volatility_level.value if event.volatility_level else None,
        "config_version": event.config_version,
        "learning_session_id": learning[0] if learning and tagged else None,
        "received_at": received_at,
    }


def blocked_from_row(row: BlockedTradeRow) -> BlockedTrade:
    return BlockedTrade(
        id=row.id,
        event_id=row.event_id,
        timestamp=row.timestamp,
        symbol=row.symbol,
        signal=Side(row.signal),
        block_reason=row.block_reason,
        rsi=row.rsi,
        price=row.price,
        confidence=row.confidence,
        risk_level=row.risk_level,
        data=row.data,
        received_at=row.received_at,
        alert_channel=row.alert_channel,
        alert_ts=row.alert_ts,
    )


def override_from_row(row: OverrideRow) -> Override:
    return Override(
        id=row.id,
        symbol=row.symbol,
        side=Side(row.side),
        reason=row.reason,
        status=OverrideStatus(row.status),
        requested_by=row.requested_by,
        created_at=row.created_at,
        blocked_trade_id=row.blocked_trade_id,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        expires_at=row.expires_at,
        consumed_at=row.consumed_at,
    )


def _override_payload(row: OverrideRow) -> dict[str, Any]:
    return {
        "override_id": row.id,
        "symbol": row.symbol,
        "side": row.side,
        "reason": row.reason,
        "approved_by": row.decided_by,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }
