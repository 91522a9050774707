"""Optimization runs, their candidates and the trade counters, on SQLAlchemy; implements
core.ports.OptimizationStore. storage.run_store reads the latest run for the App Home.

One run per scope at a time is the partial unique index on RUNNING rows: a claim inserts the
row, so of two concurrent claims (in any processes) exactly one commits.

A run's end (any status) and its rollback are queued for Slack (ANNOUNCE_TOPIC) in the
transaction that records them, so each is announced once, whichever process ran it. Only a
RUNNING run ends: a run taken over after its timeout keeps the end its taker recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from core.errors import ConflictError
from core.models import AuditEntry, ClosedTradeEvent, ConfigVersion, VersionStatus
from core.optimization_model import (
    DataRange,
    NewRun,
    OptimizationRun,
    RunCandidate,
    RunEnd,
    RunStatus,
    TradeCounter,
    Trigger,
)
from core.optimizer import Method
from core.params import Scope
from storage.config_store import audit_row
from storage.config_store import version_from_row as version_record
from storage.db import dialect_insert
from storage.learning_store import closed_trade_from_row as closed_trade
from storage.outbox import enqueue
from storage.tables import (
    ConfigVersionRow,
    OptimizationCandidateRow,
    OptimizationRunRow,
    TradeCounterRow,
    TradeRow,
)
from storage.trade_store import DEFAULT_TRADE_THRESHOLD

Run = OptimizationRunRow
Candidate = OptimizationCandidateRow
_PENDING_WINNER = (VersionStatus.TESTING.value, VersionStatus.ACTIVE.value)
# The winning candidate's status in each run status; ARCHIVED in any other.
_WINNER_STATUS = {
    RunStatus.APPLIED: VersionStatus.ACTIVE,
    RunStatus.PENDING_APPROVAL: VersionStatus.TESTING,
}
# One topic for both events: the outbox keeps order within a topic, so a rollback is never
# announced before the run it undoes.
ANNOUNCE_TOPIC = "slack.optimization"


class SqlOptimizationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def claim(
        self, new: NewRun, stale_before: datetime, audit: AuditEntry
    ) -> OptimizationRun:
        row = Run(
            run_id=new.run_id,
            trigger=new.trigger.value,
            scope=new.scope.value,
            method=new.method.value,
            status=RunStatus.RUNNING.value,
            improvement_found=False,
            candidates_tested=0,
            data_range=_range_json(new.data_range),
            seed=new.seed,
            code_version=new.code_version,
            started_at=new.started_at,
            requested_by=new.requested_by,
        )
        try:
            async with self._sessions.begin() as session:
                await _fail_stale(session, new.scope, stale_before, new.started_at)
                session.add(row)
                await session.flush()
                if new.scope is not Scope.GLOBAL:
                    await _reset_counter(session, new.scope, new.started_at)
                session.add(audit_row(audit))
        except IntegrityError:
            raise ConflictError(await self._already_running(new.scope)) from None
        return _run(row)

    async def _already_running(self, scope: Scope) -> str:
        query = select(Run).where(Run.scope == scope.value, Run.status == RunStatus.RUNNING.value)
        async with self._sessions() as session:
            running = (await session.execute(query)).scalar_one_or_none()
        if running is None:  # it finished in the meantime
            return f"an optimization of {scope} was already running; try again"
        return (
            f"an optimization of {scope} is already running: {running.run_id}, started "
            f"{running.started_at:%Y-%m-%d %H:%M:%S} UTC by {running.requested_by}"
        )

    async def finish(self, run_id: str, end: RunEnd) -> OptimizationRun:
        async with self._sessions.begin() as session:
            row = await _end_running(session, run_id, end.status)
            _record_end(row, end)
            session.add_all(_candidate_row(run_id, c) for c in end.candidates)
            await session.flush()
            if end.winner_version is not None:
                await _annotate_winner(session, row, end.winner_version)
            if end.status is not RunStatus.FAILED:
                await _supersede_pending(session, row)
            _announce_end(session, run_id, end.finished_at)
        return _run(row)

    async def transition(
        self,
        run_id: str,
        before: RunStatus,
        after: RunStatus,
        audit: AuditEntry | None,
        winner_version: int | None = None,
    ) -> OptimizationRun | None:
        changes: dict[str, Any] = {"status": after.value}
        if winner_version is not None:
            changes["winner_version"] = winner_version
        statement = (
            update(Run)
            .where(Run.run_id == run_id, Run.status == before.value)
            .values(**changes)
            .returning(Run)
        )
        async with self._sessions.begin() as session:
            row = (await session.execute(statement)).scalar_one_or_none()
            if row is None:
                return None
            await _set_winner_status(
                session, [run_id], _WINNER_STATUS.get(after, VersionStatus.ARCHIVED)
            )
            if after is RunStatus.APPLIED and winner_version is not None:
                await _annotate_winner(session, row, winner_version)
            if audit is not None:  # None: a step of a decision audited once it is complete
                session.add(audit_row(audit))
            if after is RunStatus.ROLLED_BACK:
                assert audit is not None, "a rollback is announced with its audited reason"
                enqueue(session, ANNOUNCE_TOPIC, _rollback_payload(run_id, audit), audit.at)
        return _run(row)

    async def run(self, run_id: str) -> OptimizationRun | None:
        async with self._sessions() as session:
            row = (
                await session.execute(select(Run).where(Run.run_id == run_id))
            ).scalar_one_or_none()
        return _run(row) if row else None

    async def candidates(self, run_id: str) -> list[RunCandidate]:
        query = select(Candidate).where(Candidate.run_id == run_id).order_by(Candidate.position)
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_candidate(row) for row in rows]

    async def runs(
        self, since: datetime | None, scope: Scope | None, limit: int
    ) -> list[OptimizationRun]:
        query = select(Run).options(defer(Run.results))
        if since is not None:
            query = query.where(Run.started_at >= since)
        if scope is not None:
            query = query.where(Run.scope == scope.value)
        query = query.order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_run(row, with_results=False) for row in rows]

    async def counters(self) -> list[TradeCounter]:
        async with self._sessions() as session:
            rows = (await session.execute(select(TradeCounterRow))).scalars().all()
        return [
            TradeCounter(Scope(r.volatility_level), r.count, r.threshold, r.last_optimization)
            for r in rows
        ]

    async def version_by_id(self, version_id: int) -> ConfigVersion | None:
        async with self._sessions() as session:
            row = await session.get(ConfigVersionRow, version_id)
        return version_record(row) if row else None

    async def versions(
        self, scope: Scope | None, status: VersionStatus | None, limit: int
    ) -> list[ConfigVersion]:
        query = select(ConfigVersionRow)
        if scope is not None:
            query = query.where(ConfigVersionRow.scope == scope.value)
        if status is not None:
            query = query.where(ConfigVersionRow.status == status.value)
        query = query.order_by(ConfigVersionRow.created_at.desc(), ConfigVersionRow.id.desc())
        async with self._sessions() as session:
            rows = (await session.execute(query.limit(limit))).scalars().all()
        return [version_record(row) for row in rows]

    async def count_versions(self) -> tuple[int, int]:
        active = func.count().filter(ConfigVersionRow.status == VersionStatus.ACTIVE.value)
        query = select(func.count(), active).select_from(ConfigVersionRow)
        async with self._sessions() as session:
            total, active_count = (await session.execute(query)).one()
        return int(total), int(active_count)

    async def run_of_version(self, scope: Scope, version: int) -> OptimizationRun | None:
        return await self._latest(
            select(Run).where(Run.scope == scope.value, Run.winner_version == version)
        )

    async def latest_baseline_run(self, scope: Scope, version: int) -> OptimizationRun | None:
        return await self._latest(
            select(Run).where(
                Run.scope == scope.value,
                Run.baseline_version == version,
                Run.baseline_score.is_not(None),
            )
        )

    async def _latest(self, query: Select[Run]) -> OptimizationRun | None:
        query = query.options(defer(Run.results)).order_by(Run.started_at.desc()).limit(1)
        async with self._sessions() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        return _run(row, with_results=False) if row else None

    async def live_trades(
        self, level: Scope | None, since: datetime, limit: int
    ) -> list[ClosedTradeEvent]:
        query = select(TradeRow).where(TradeRow.exit_time >= since)
        if level is not None:
            query = query.where(TradeRow.volatility_level == level.value)
        query = query.order_by(TradeRow.exit_time.desc(), TradeRow.id.desc()).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [closed_trade(row) for row in reversed(rows)]

    async def clean_up(
        self, runs_before: datetime, failed_before: datetime, audit: AuditEntry
    ) -> tuple[int, int]:
        unimproved = select(Run.run_id).where(
            Run.improvement_found.is_(False),
            Run.status != RunStatus.RUNNING.value,
            Run.started_at < runs_before,
        )
        failed = (ConfigVersionRow.status == VersionStatus.FAILED.value) & (
            ConfigVersionRow.created_at < failed_before
        )
        async with self._sessions.begin() as session:
            await session.execute(delete(Candidate).where(Candidate.run_id.in_(unimproved)))
            deleted = await session.execute(delete(Run).where(Run.run_id.in_(unimproved)))
            archived = await session.execute(
                update(ConfigVersionRow).where(failed).values(status=VersionStatus.ARCHIVED.value)
            )
            counts = (getattr(deleted, "rowcount", 0), getattr(archived, "rowcount", 0))
            session.add(
                audit_row(audit, {"runs_deleted": counts[0], "versions_archived": counts[1]})
            )
        return counts


def _rollback_payload(run_id: str, audit: AuditEntry) -> dict[str, Any]:
    """Why and to which version, as core recorded them in the rollback's audit entry."""
    return {
        "run_id": run_id,
        "event": "rolled_back",
        "reason": audit.detail.get("reason", ""),
        "version": audit.detail.get("version"),
    }


def _announce_end(session: AsyncSession, run_id: str, at: datetime) -> None:
    enqueue(session, ANNOUNCE_TOPIC, {"run_id": run_id, "event": "finished"}, at)


async def _end_running(session: AsyncSession, run_id: str, status: RunStatus) -> Run:
    """The run, its status set, if it was still RUNNING: a run taken over (ended FAILED by
    the next claim after its timeout) is not ended a second time; ConflictError instead."""
    ended = await session.execute(
        update(Run)
        .where(Run.run_id == run_id, Run.status == RunStatus.RUNNING.value)
        .values(status=status.value)
        .returning(Run)
    )
    row = ended.scalar_one_or_none()
    if row is None:
        current = (await session.execute(select(Run.status).where(Run.run_id == run_id))).scalar()
        raise ConflictError(
            f"optimization {run_id} was already ended as {current}; its {status.value} "
            "result was not recorded"
        )
    return row


async def _fail_stale(
    session: AsyncSession, scope: Scope, stale_before: datetime, now: datetime
) -> None:
    """The scope's run left RUNNING by a process that died ends FAILED, and is announced."""
    interrupted = await session.execute(
        update(Run)
        .where(
            Run.scope == scope.value,
            Run.status == RunStatus.RUNNING.value,
            Run.started_at < stale_before,
        )
        .values(
            status=RunStatus.FAILED.value,
            finished_at=now,
            error="interrupted: no result before the run timeout (its process stopped)",
        )
        .returning(Run.run_id)
        .execution_options(synchronize_session=False)
    )
    for run_id in interrupted.scalars():
        _announce_end(session, run_id, now)


async def _reset_counter(session: AsyncSession, level: Scope, now: datetime) -> None:
    statement = dialect_insert(session, TradeCounterRow).values(
        volatility_level=level.value,
        count=0,
        threshold=DEFAULT_TRADE_THRESHOLD,
        last_optimization=now,
        updated_at=now,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["volatility_level"],
            set_={"count": 0, "last_optimization": now, "updated_at": now},
        )
    )


def _record_end(row: OptimizationRunRow, end: RunEnd) -> None:
    row.status = end.status.value
    row.finished_at = end.finished_at
    row.duration_seconds = end.duration_seconds
    if end.data_range is not None:
        row.data_range = _range_json(end.data_range)
    row.baseline_version = end.baseline_version
    row.baseline_score = end.baseline_score
    row.best_score = end.best_score
    row.improvement_pct = end.improvement_pct
    row.improvement_found = end.improvement_found
    row.candidates_tested = max(len(end.candidates) - 1, 0)  # the baseline is no candidate
    row.winner_version = end.winner_version
    row.error = end.error
    row.results = dict(end.results) if end.results is not None else None


async def _annotate_winner(session: AsyncSession, run: OptimizationRunRow, version: int) -> None:
    """The config version the winner became gets its out-of-sample metrics and fitness."""
    winner = (
        await session.execute(
            select(Candidate).where(
                Candidate.run_id == run.run_id, Candidate.status == VersionStatus.ACTIVE.value
            )
        )
    ).scalar_one()
    await session.execute(
        update(ConfigVersionRow)
        .where(ConfigVersionRow.scope == run.scope, ConfigVersionRow.version == version)
        .values(
            metrics=winner.metrics["out_of_sample"],
            fitness=winner.out_of_sample_fitness,
            optimization_run_id=run.run_id,
        )
        .execution_options(synchronize_session=False)
    )


async def _supersede_pending(session: AsyncSession, newer: OptimizationRunRow) -> None:
    """A winner waiting for approval is replaced by a newer run's result."""
    older = select(Run.run_id).where(
        Run.scope == newer.scope,
        Run.status == RunStatus.PENDING_APPROVAL.value,
        Run.started_at < newer.started_at,
    )
    stale = list((await session.execute(older)).scalars())
    if stale:
        await session.execute(
            update(Run)
            .where(Run.run_id.in_(stale))
            .values(status=RunStatus.SUPERSEDED.value)
            .execution_options(synchronize_session=False)
        )
        await _set_winner_status(session, stale, VersionStatus.ARCHIVED)


async def _set_winner_status(
    session: AsyncSession, run_ids: Sequence[str], status: VersionStatus
) -> None:
    """The winning candidate of these runs takes `status`."""
    await session.execute(
        update(Candidate)
        .where(Candidate.run_id.in_(run_ids), Candidate.status.in_(_PENDING_WINNER))
        .values(status=status.value)
        .execution_options(synchronize_session=False)
    )


def _candidate_row(run_id: str, candidate: RunCandidate) -> OptimizationCandidateRow:
    return Candidate(
        run_id=run_id,
        position=candidate.position,
        parameters=dict(candidate.parameters),
        status=candidate.status.value,
        in_sample_fitness=candidate.in_sample_fitness,
        out_of_sample_fitness=candidate.out_of_sample_fitness,
        metrics=dict(candidate.metrics),
    )


def _candidate(row: OptimizationCandidateRow) -> RunCandidate:
    return RunCandidate(
        position=row.position,
        parameters=dict(row.parameters),
        status=VersionStatus(row.status),
        in_sample_fitness=row.in_sample_fitness,
        out_of_sample_fitness=row.out_of_sample_fitness,
        metrics=dict(row.metrics),
    )


def _range_json(data_range: DataRange) -> dict[str, Any]:
    return {
        "start": data_range.start.isoformat(),
        "end": data_range.end.isoformat(),
        "timeframe": data_range.timeframe,
        "symbols": list(data_range.symbols),
    }


def _range(raw: Mapping[str, Any] | None) -> DataRange | None:
    if not raw:
        return None
    return DataRange(
        start=datetime.fromisoformat(raw["start"]),
        end=datetime.fromisoformat(raw["end"]),
        timeframe=raw["timeframe"],
        symbols=tuple(raw.get("symbols", ())),
    )


def _run(row: OptimizationRunRow, with_results: bool = True) -> OptimizationRun:
    return OptimizationRun(
        run_id=row.run_id,
        trigger=Trigger(row.trigger),
        scope=Scope(row.scope),
        method=Method(row.method),
        status=RunStatus(row.status),
        started_at=row.started_at,
        requested_by=row.requested_by or "",
        seed=row.seed,
        code_version=row.code_version,
        data_range=_range(row.data_range),
        finished_at=row.finished_at,
        duration_seconds=row.duration_seconds,
        baseline_version=row.baseline_version,
        baseline_score=row.baseline_score,
        best_score=row.best_score,
        improvement_pct=row.improvement_pct,
        improvement_found=row.improvement_found,
        candidates_tested=row.candidates_tested,
        winner_version=row.winner_version,
        error=row.error,
        results=row.results if with_results else None,
    )
