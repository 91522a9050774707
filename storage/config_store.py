"""The versioned config store and audit log on SQLAlchemy (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import StaleVersionError
from core.models import (
    AuditEntry,
    BackupRecord,
    ConfigVersion,
    NewVersion,
    Outcome,
    ParamChange,
    ParamChangeRecord,
    Source,
    VersionStatus,
)
from core.params import Scope
from storage.outbox import enqueue
from storage.tables import AuditLogRow, ConfigBackupRow, ConfigVersionRow, ParameterChangeRow

PARAMETERS_PUSH_TOPIC = "engine.parameters"
ANNOUNCE_TOPIC = "slack.parameter_change"
# Versions their own announcement already shows: a learning session's start and end
# (bot.announcements), an optimization run's report and its rollback (bot.optimization_announcer).
ANNOUNCED_ELSEWHERE = frozenset({Source.LEARNING, Source.OPTIMIZER})


class SqlConfigStore:
    """Implements core.ports.ConfigStore and core.ports.AuditLog."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], push_to_engine: bool = False
    ) -> None:
        self._sessions = sessions
        self._push = push_to_engine

    async def active(self, scope: Scope) -> ConfigVersion | None:
        query = select(ConfigVersionRow).where(
            ConfigVersionRow.scope == scope.value,
            ConfigVersionRow.status == VersionStatus.ACTIVE.value,
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        return version_from_row(row) if row else None

    async def get_version(self, scope: Scope, version: int) -> ConfigVersion | None:
        query = select(ConfigVersionRow).where(
            ConfigVersionRow.scope == scope.value, ConfigVersionRow.version == version
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        return version_from_row(row) if row else None

    async def list_versions(self, scope: Scope, limit: int) -> list[ConfigVersion]:
        query = (
            select(ConfigVersionRow)
            .where(ConfigVersionRow.scope == scope.value)
            .order_by(ConfigVersionRow.version.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [version_from_row(row) for row in rows]

    async def live_versions(
        self, scope: Scope, since: datetime, until: datetime
    ) -> list[ConfigVersion]:
        went_live = or_(
            ConfigVersionRow.status == VersionStatus.ACTIVE.value,
            exists().where(
                ParameterChangeRow.scope == ConfigVersionRow.scope,
                ParameterChangeRow.to_version == ConfigVersionRow.version,
            ),
        )
        live = select(ConfigVersionRow).where(ConfigVersionRow.scope == scope.value, went_live)
        newest_first = (ConfigVersionRow.created_at.desc(), ConfigVersionRow.version.desc())
        live_at_since = live.where(ConfigVersionRow.created_at <= since).order_by(*newest_first)
        later = live.where(
            ConfigVersionRow.created_at > since, ConfigVersionRow.created_at <= until
        ).order_by(ConfigVersionRow.created_at, ConfigVersionRow.version)
        async with self._sessions() as session:
            first = (await session.execute(live_at_since.limit(1))).scalars().all()
            rest = (await session.execute(later)).scalars().all()
        return [version_from_row(row) for row in [*first, *rest]]

    async def list_changes(
        self, scope: Scope, parameter: str | None, limit: int
    ) -> list[ParamChangeRecord]:
        query = select(ParameterChangeRow).where(ParameterChangeRow.scope == scope.value)
        if parameter is not None:
            query = query.where(ParameterChangeRow.parameter == parameter)
        query = query.order_by(ParameterChangeRow.id.desc()).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_change_record(row) for row in rows]

    async def changes_between(self, since: datetime, until: datetime) -> list[ParamChangeRecord]:
        query = (
            select(ParameterChangeRow)
            .where(ParameterChangeRow.created_at >= since, ParameterChangeRow.created_at < until)
            .order_by(ParameterChangeRow.id)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_change_record(row) for row in rows]

    async def commit_version(
        self,
        new: NewVersion,
        based_on: int,
        changes: Sequence[ParamChange],
        backup: BackupRecord,
        audit: AuditEntry,
    ) -> ConfigVersion:
        try:
            async with self._sessions.begin() as session:
                await _archive_active(session, new.scope, based_on)
                row = _new_row(new, based_on)
                session.add(row)
                await session.flush()
                session.add_all(_change_rows(new, based_on, changes))
                session.add(_backup_row(backup))
                session.add(audit_row(audit, {"version": row.version}))
                if self._push:
                    enqueue(session, PARAMETERS_PUSH_TOPIC, _push_payload(row), new.created_at)
                if new.source not in ANNOUNCED_ELSEWHERE:
                    announced = _announce_payload(row, changes, backup, audit)
                    enqueue(session, ANNOUNCE_TOPIC, announced, new.created_at)
        except IntegrityError:
            # Another writer created the same version number, or activated one, first.
            raise _stale(new.scope, based_on) from None
        return version_from_row(row)

    async def record_backup(self, backup: BackupRecord, audit: AuditEntry) -> None:
        async with self._sessions.begin() as session:
            session.add(_backup_row(backup))
            session.add(audit_row(audit))

    async def list_backups(self, scope: Scope | None, limit: int) -> list[BackupRecord]:
        query = select(ConfigBackupRow)
        if scope is not None:
            query = query.where(ConfigBackupRow.scope == scope.value)
        query = query.order_by(ConfigBackupRow.created_at.desc()).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_backup_record(row) for row in rows]

    async def has_backup(self, backup_id: str) -> bool:
        query = select(exists().where(ConfigBackupRow.id == backup_id))
        async with self._sessions() as session:
            return bool(await session.scalar(query))

    async def record(self, entry: AuditEntry) -> None:
        async with self._sessions.begin() as session:
            session.add(audit_row(entry))

    async def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        query = select(AuditLogRow).order_by(AuditLogRow.id.desc()).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_audit_entry(row) for row in rows]


async def _archive_active(session: AsyncSession, scope: Scope, based_on: int) -> None:
    """Archive the active version if and only if it is still `based_on`.

    The conditional UPDATE is the optimistic-concurrency check: on PostgreSQL a
    concurrent writer blocks on the row lock and then matches nothing; on SQLite
    writers are serialized by BEGIN IMMEDIATE.
    """
    if based_on == 0:
        exists = await session.scalar(
            select(func.count())
            .select_from(ConfigVersionRow)
            .where(ConfigVersionRow.scope == scope.value)
        )
        if exists:
            raise _stale(scope, based_on)
        return
    result = await session.execute(
        update(ConfigVersionRow)
        .where(
            ConfigVersionRow.scope == scope.value,
            ConfigVersionRow.version == based_on,
            ConfigVersionRow.status == VersionStatus.ACTIVE.value,
        )
        .values(status=VersionStatus.ARCHIVED.value)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise _stale(scope, based_on)


def _push_payload(row: ConfigVersionRow) -> dict[str, Any]:
    """Which version of which scope changed, and by whom. Not the values: the deliverer
    (bot.engine_push) reads the effective ones of every affected scope when it sends."""
    return {"scope": row.scope, "version": row.version, "author": row.author, "reason": row.reason}


def _announce_payload(
    row: ConfigVersionRow, changes: Sequence[ParamChange], backup: BackupRecord, audit: AuditEntry
) -> dict[str, Any]:
    """Who changed what (old and new values), from where (the audit's entry point: a restore's
    source is "restore" whoever asked) and why, as the announcement shows it."""
    return {
        "scope": row.scope,
        "version": row.version,
        "based_on": row.parent_version or 0,
        "author": row.author,
        "source": row.source,
        "via": audit.source,
        "reason": row.reason,
        "backup_id": backup.backup_id,
        "changes": [{"parameter": c.parameter, "old": c.old, "new": c.new} for c in changes],
    }


def _stale(scope: Scope, based_on: int) -> StaleVersionError:
    return StaleVersionError(
        f"{scope} changed since version {based_on}: someone else changed it first. "
        "Review the current values and try again."
    )


def _new_row(new: NewVersion, based_on: int) -> ConfigVersionRow:
    return ConfigVersionRow(
        scope=new.scope.value,
        version=based_on + 1,
        parameters=dict(new.parameters),
        status=new.status.value,
        metrics=new.metrics,
        fitness=new.fitness,
        author=new.author,
        source=new.source.value,
        reason=new.reason,
        parent_version=based_on or None,
        created_at=new.created_at,
        learning_session_id=new.learning_session_id,
    )


def _change_rows(
    new: NewVersion, based_on: int, changes: Sequence[ParamChange]
) -> list[ParameterChangeRow]:
    return [
        ParameterChangeRow(
            scope=new.scope.value,
            parameter=change.parameter,
            old_value=change.old,
            new_value=change.new,
            actor=new.author,
            source=new.source.value,
            reason=new.reason,
            from_version=based_on,
            to_version=based_on + 1,
            created_at=new.created_at,
        )
        for change in changes
    ]


def _backup_row(backup: BackupRecord) -> ConfigBackupRow:
    return ConfigBackupRow(
        id=backup.backup_id,
        scope=backup.scope.value,
        version=backup.version,
        path=backup.path,
        created_at=backup.created_at,
        actor=backup.actor,
        reason=backup.reason,
        parameters=dict(backup.parameters),
    )


def audit_row(entry: AuditEntry, extra: dict[str, Any] | None = None) -> AuditLogRow:
    return AuditLogRow(
        at=entry.at,
        actor=entry.actor,
        source=entry.source,
        action=entry.action,
        target=entry.target,
        outcome=entry.outcome.value,
        detail={**entry.detail, **(extra or {})},
    )


def version_from_row(row: ConfigVersionRow) -> ConfigVersion:
    return ConfigVersion(
        id=row.id,
        scope=Scope(row.scope),
        version=row.version,
        parameters=dict(row.parameters),
        status=VersionStatus(row.status),
        author=row.author,
        source=Source(row.source),
        reason=row.reason,
        parent_version=row.parent_version,
        created_at=row.created_at,
        metrics=row.metrics,
        fitness=row.fitness,
        learning_session_id=row.learning_session_id,
    )


def _change_record(row: ParameterChangeRow) -> ParamChangeRecord:
    return ParamChangeRecord(
        scope=Scope(row.scope),
        parameter=row.parameter,
        old=row.old_value,
        new=row.new_value,
        actor=row.actor,
        source=Source(row.source),
        reason=row.reason,
        from_version=row.from_version,
        to_version=row.to_version,
        created_at=row.created_at,
    )


def _backup_record(row: ConfigBackupRow) -> BackupRecord:
    return BackupRecord(
        backup_id=row.id,
        scope=Scope(row.scope),
        version=row.version,
        path=row.path,
        created_at=row.created_at,
        actor=row.actor,
        reason=row.reason,
        parameters=dict(row.parameters),
    )


def _audit_entry(row: AuditLogRow) -> AuditEntry:
    return AuditEntry(
        at=row.at,
        actor=row.actor,
        source=row.source,
        action=row.action,
        target=row.target,
        outcome=Outcome(row.outcome),
        detail=dict(row.detail),
    )
