"""Where each blocked trade's alert is in Slack: channel, message ts and status.

A trade without an alert status has not reached Slack yet. A message stands for every
trade that carries its channel and ts (see core.alerts for how trades are coalesced).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.alerts import AlertGroup, AlertKey, AlertStatus
from core.models import BlockedTrade
from storage.tables import BlockedTradeRow, OverrideRow
from storage.trade_store import blocked_from_row, override_from_row


class SqlAlertStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def needs_alert(self, trade_id: int) -> bool:
        """True while the trade exists and no alert shows it."""
        query = select(BlockedTradeRow.alert_status).where(BlockedTradeRow.id == trade_id)
        async with self._sessions() as session:
            found = (await session.execute(query)).first()
        return found is not None and found[0] is None

    async def pending(self, limit: int = 1000) -> list[BlockedTrade]:
        """Trades no alert shows yet, oldest first."""
        query = (
            select(BlockedTradeRow)
            .where(BlockedTradeRow.alert_status.is_(None))
            .order_by(BlockedTradeRow.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [blocked_from_row(row) for row in rows]

    async def open_group(self, key: AlertKey) -> AlertGroup | None:
        """The undecided, unexpired message that trades of this key are added to, if any."""
        symbol, signal, reason = key
        query = (
            select(BlockedTradeRow.alert_channel, BlockedTradeRow.alert_ts)
            .where(
                BlockedTradeRow.symbol == symbol,
                BlockedTradeRow.signal == signal.value,
                BlockedTradeRow.block_reason == reason,
                BlockedTradeRow.alert_status == AlertStatus.POSTED.value,
            )
            .order_by(BlockedTradeRow.id.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            found = (await session.execute(query)).first()
        if found is None or found[0] is None or found[1] is None:
            return None
        group = await self.group(found[0], found[1])
        return group if group and group.shown_status is AlertStatus.POSTED else None

    async def group(self, channel: str, ts: str) -> AlertGroup | None:
        """The message's trades (count, first, newest), status and decision."""
        where = (BlockedTradeRow.alert_channel == channel, BlockedTradeRow.alert_ts == ts)
        async with self._sessions() as session:
            count, first_at, latest_id = (
                await session.execute(
                    select(
                        func.count(),
                        func.min(BlockedTradeRow.received_at),
                        func.max(BlockedTradeRow.id),
                    ).where(*where)
                )
            ).one()
            if not count:
                return None
            statuses = set(
                (
                    await session.execute(
                        select(BlockedTradeRow.alert_status).where(*where).distinct()
                    )
                )
                .scalars()
                .all()
            )
            latest = await session.get(BlockedTradeRow, latest_id)
            decision = (
                await session.execute(
                    select(OverrideRow)
                    .where(
                        OverrideRow.blocked_trade_id.in_(select(BlockedTradeRow.id).where(*where))
                    )
                    .order_by(OverrideRow.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
        assert latest is not None
        return AlertGroup(
            latest=blocked_from_row(latest),
            count=count,
            first_at=first_at,
            status=_status(statuses),
            decision=override_from_row(decision) if decision else None,
            channel=channel,
            ts=ts,
        )

    async def attach(
        self, trade_ids: Sequence[int], channel: str, ts: str, status: AlertStatus
    ) -> None:
        """Record that the message now shows these trades (only trades no alert shows yet)."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(BlockedTradeRow)
                .where(BlockedTradeRow.id.in_(trade_ids), BlockedTradeRow.alert_status.is_(None))
                .values(alert_channel=channel, alert_ts=ts, alert_status=status.value)
            )

    async def mark(self, channel: str, ts: str, status: AlertStatus) -> int:
        """Close a waiting message as DECIDED or EXPIRED; returns how many trades changed."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(BlockedTradeRow)
                .where(
                    BlockedTradeRow.alert_channel == channel,
                    BlockedTradeRow.alert_ts == ts,
                    BlockedTradeRow.alert_status == AlertStatus.POSTED.value,
                )
                .values(alert_status=status.value)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def longest_waiting(self) -> datetime | None:
        """When the message waiting longest got its newest trade: it expires a TTL later."""
        newest = (
            select(func.max(BlockedTradeRow.received_at).label("at"))
            .where(BlockedTradeRow.alert_status == AlertStatus.POSTED.value)
            .group_by(BlockedTradeRow.alert_channel, BlockedTradeRow.alert_ts)
            .subquery()
        )
        async with self._sessions() as session:
            found: datetime | None = (
                await session.execute(select(func.min(newest.c.at)))
            ).scalar_one_or_none()
        return found

    async def due_for_expiry(self, arrived_before: datetime) -> list[tuple[str, str]]:
        """Waiting messages whose newest trade arrived before the cutoff."""
        query = (
            select(BlockedTradeRow.alert_channel, BlockedTradeRow.alert_ts)
            .where(BlockedTradeRow.alert_status == AlertStatus.POSTED.value)
            .group_by(BlockedTradeRow.alert_channel, BlockedTradeRow.alert_ts)
            .having(func.max(BlockedTradeRow.received_at) <= arrived_before)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [(channel, ts) for channel, ts in rows if channel and ts]


def _status(statuses: set[str | None]) -> AlertStatus:
    for status in (AlertStatus.DECIDED, AlertStatus.EXPIRED):
        if status.value in statuses:
            return status
    return AlertStatus.POSTED
