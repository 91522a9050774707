"""Idempotency keys on SQLAlchemy; implements core.ports.IdempotencyStore.

A key is claimed by inserting its row in a transaction of its own: the primary key
(client, key) lets exactly one of concurrent claims in, on SQLite and on PostgreSQL. The
row then keeps the answer for retries. A key expires KEY_TTL after its claim; every claim
first deletes the expired rows (an indexed range, nearly always empty), so the table holds
about a day of keys and needs no cleanup job.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.ports import KeyHolder, RequestFingerprint, StoredResponse
from storage.db import dialect_insert
from storage.tables import IdempotencyKeyRow as Row

KEY_TTL = timedelta(hours=24)
# A request still "in progress" after this long was abandoned: its process stopped, or the
# database failed before the claim could be released. Handlers answer within seconds.
ABANDONED_AFTER = timedelta(minutes=5)
IN_PROGRESS, DONE = "in_progress", "done"


class SqlIdempotencyStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ttl: timedelta = KEY_TTL,
        abandoned_after: timedelta = ABANDONED_AFTER,
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._abandoned_after = abandoned_after

    async def claim(
        self, client: str, key: str, fingerprint: RequestFingerprint, now: datetime
    ) -> KeyHolder | None:
        this = (Row.client == client, Row.key == key)
        abandoned = delete(Row).where(
            *this,
            Row.status == IN_PROGRESS,
            Row.created_at < now - self._abandoned_after,
            Row.method == fingerprint.method,
            Row.path == fingerprint.path,
            Row.body_sha256 == fingerprint.body_sha256,
        )
        values = {
            "client": client,
            "key": key,
            "method": fingerprint.method,
            "path": fingerprint.path,
            "body_sha256": fingerprint.body_sha256,
            "status": IN_PROGRESS,
            "created_at": now,
        }
        for _ in range(3):  # again only if the holder let go between our insert and select
            async with self._sessions.begin() as session:
                await session.execute(delete(Row).where(Row.created_at < now - self._ttl))
                await session.execute(abandoned)
                insert = (
                    dialect_insert(session, Row)
                    .values(**values)
                    .on_conflict_do_nothing(index_elements=["client", "key"])
                    .returning(Row.key)
                )
                if (await session.execute(insert)).first() is not None:
                    return None
                row = (await session.execute(select(Row).where(*this))).scalar_one_or_none()
            if row is not None:
                return _holder(row)
        return KeyHolder(fingerprint, now, None)  # taken and let go over and over: busy

    async def complete(self, client: str, key: str, response: StoredResponse) -> None:
        statement = (
            update(Row)
            .where(Row.client == client, Row.key == key, Row.status == IN_PROGRESS)
            .values(status=DONE, response_status=response.status, response_body=response.body)
        )
        async with self._sessions.begin() as session:
            await session.execute(statement)

    async def release(self, client: str, key: str) -> None:
        statement = delete(Row).where(
            Row.client == client, Row.key == key, Row.status == IN_PROGRESS
        )
        async with self._sessions.begin() as session:
            await session.execute(statement)


def _holder(row: Row) -> KeyHolder:
    fingerprint = RequestFingerprint(row.method, row.path, row.body_sha256)
    if row.status != DONE or row.response_status is None or row.response_body is None:
        return KeyHolder(fingerprint, row.created_at, None)
    return KeyHolder(
        fingerprint, row.created_at, StoredResponse(row.response_status, row.response_body)
    )
