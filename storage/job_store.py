"""What each scheduled job did, each time it ran: visible from every replica, kept across
restarts, and what the misfire policy reads to find runs missed while no replica ran jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.tables import JobRunRow


class Outcome(StrEnum):
    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"  # missed by more than the grace period while no replica ran jobs


@dataclass(frozen=True)
class JobRun:
    job: str
    replica: str
    scheduled_for: datetime
    started_at: datetime
    finished_at: datetime | None
    outcome: Outcome | None  # None: still running (or its replica died while running it)
    message: str | None


class SqlJobRuns:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def started(self, job: str, replica: str, scheduled_for: datetime, now: datetime) -> int:
        row = JobRunRow(job=job, replica=replica, scheduled_for=scheduled_for, started_at=now)
        async with self._sessions.begin() as session:
            session.add(row)
            await session.flush()
            return row.id

    async def finished(self, run_id: int, outcome: Outcome, message: str, now: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(JobRunRow)
                .where(JobRunRow.id == run_id)
                .values(outcome=outcome.value, message=message[:2000], finished_at=now)
            )

    async def skipped(self, job: str, replica: str, scheduled_for: datetime, now: datetime) -> None:
        run_id = await self.started(job, replica, scheduled_for, now)
        await self.finished(
            run_id,
            Outcome.SKIPPED,
            f"missed at {scheduled_for.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
            now,
        )

    async def latest(self) -> dict[str, JobRun]:
        """The most recent run of each job that ever ran."""
        newest = (
            select(JobRunRow.job, func.max(JobRunRow.id).label("id"))
            .group_by(JobRunRow.job)
            .subquery()
        )
        query = select(JobRunRow).join(newest, JobRunRow.id == newest.c.id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return {row.job: _run(row) for row in rows}


def _run(row: JobRunRow) -> JobRun:
    return JobRun(
        job=row.job,
        replica=row.replica,
        scheduled_for=row.scheduled_for,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=Outcome(row.outcome) if row.outcome else None,
        message=row.message,
    )
