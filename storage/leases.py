"""Named leases in the database: of several replicas, the one holding a lease runs what
must run once (scheduled jobs, timers, outbox delivery).

A holder renews before `expires_at`; a replica that dies (even by SIGKILL) stops renewing,
and another takes the lease once it has expired. Acquiring is one conditional UPDATE, or
an INSERT when the lease never existed, so two replicas racing for it cannot both win on
SQLite or PostgreSQL. Times come from the caller's clock: replicas need synchronised
clocks (NTP), with skew well below the lease time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.tables import LeaseRow


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


class SqlLeases:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def acquire(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Take or renew the lease for `ttl`; False while another holder's lease runs."""
        takeover = (LeaseRow.holder == holder) | (LeaseRow.expires_at <= now)
        renew = (
            update(LeaseRow)
            .where(LeaseRow.name == name, takeover)
            .values(
                holder=holder,
                expires_at=now + ttl,
                acquired_at=case((LeaseRow.holder == holder, LeaseRow.acquired_at), else_=now),
            )
        )
        async with self._sessions.begin() as session:
            result = await session.execute(renew)
            if getattr(result, "rowcount", 0) == 1:
                return True
        try:
            async with self._sessions.begin() as session:
                session.add(
                    LeaseRow(name=name, holder=holder, acquired_at=now, expires_at=now + ttl)
                )
        except IntegrityError:
            return False  # another replica holds it (or just took it)
        return True

    async def take_from(
        self, name: str, previous: str, holder: str, ttl: timedelta, now: datetime
    ) -> bool:
        """Take the lease from `previous`, known to be dead; False if it changed hands."""
        query = (
            update(LeaseRow)
            .where(LeaseRow.name == name, LeaseRow.holder == previous)
            .values(holder=holder, acquired_at=now, expires_at=now + ttl)
        )
        async with self._sessions.begin() as session:
            return getattr(await session.execute(query), "rowcount", 0) == 1

    async def release(self, name: str, holder: str) -> None:
        """Give the lease up at a clean stop, so another replica takes over at once."""
        async with self._sessions.begin() as session:
            await session.execute(
                delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder)
            )

    async def current(self, name: str) -> Lease | None:
        async with self._sessions() as session:
            row = await session.get(LeaseRow, name)
        if row is None:
            return None
        return Lease(row.name, row.holder, row.acquired_at, row.expires_at)
