"""The outbox: messages written in the transaction of the event that caused them,
delivered in order per topic, retried with backoff, marked when delivered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.tables import OutboxRow


def enqueue(session: AsyncSession, topic: str, payload: dict[str, Any], now: datetime) -> None:
    session.add(
        OutboxRow(topic=topic, payload=payload, created_at=now, attempts=0, next_attempt_at=now)
    )


async def enqueue_many(
    session: AsyncSession, topic: str, payloads: list[dict[str, Any]], now: datetime
) -> None:
    """One multi-row INSERT for a batch of messages of one topic."""
    if payloads:
        rows = [
            {"topic": topic, "payload": p, "created_at": now, "attempts": 0, "next_attempt_at": now}
            for p in payloads
        ]
        await session.execute(insert(OutboxRow), rows)


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    topic: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


class SqlOutbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, topic: str, payload: dict[str, Any], now: datetime) -> None:
        async with self._sessions.begin() as session:
            enqueue(session, topic, payload, now)

    async def head(self, topic: str, now: datetime) -> OutboxMessage | None:
        """The oldest undelivered message of a topic, if it is due (order is kept per topic)."""
        query = (
            select(OutboxRow)
            .where(OutboxRow.topic == topic, OutboxRow.delivered_at.is_(None))
            .order_by(OutboxRow.id)
            .limit(1)
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        if row is None or row.next_attempt_at > now:
            return None
        return OutboxMessage(row.id, row.topic, dict(row.payload), row.attempts, row.created_at)

    async def delivered(self, message_id: int, now: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxRow).where(OutboxRow.id == message_id).values(delivered_at=now)
            )

    async def failed(self, message_id: int, error: str, retry_at: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id)
                .values(
                    attempts=OutboxRow.attempts + 1,
                    last_error=error[:2000],
                    next_attempt_at=retry_at,
                )
            )

    async def pending(self) -> dict[str, int]:
        """Undelivered messages per topic: a queue depth for /metrics."""
        query = (
            select(OutboxRow.topic, func.count())
            .where(OutboxRow.delivered_at.is_(None))
            .group_by(OutboxRow.topic)
        )
        async with self._sessions() as session:
            return {t: n for t, n in (await session.execute(query)).all()}


def backoff(attempts: int, base: float = 1.0, cap: float = 300.0) -> timedelta:
    """1 s, 2 s, 4 s … capped at 5 minutes."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts)))
