"""Use cases: one function per thing a person or the engine can do.

Every entry point (Slack, HTTP, CLI, console, scheduled job) calls these, so
authorization, validation, backup-before-change and the audit trail are written once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from core.authz import Action, Actor, require
from core.commands import MAX_WHOLE
from core.errors import (
    BackupFailedError,
    ConflictError,
    NotFoundError,
    StaleVersionError,
    UserError,
    ValidationError,
)
from core.models import (
    AuditEntry,
    BackupRecord,
    ConfigVersion,
    NewVersion,
    Outcome,
    ParamChange,
    ParamChangeRecord,
    Snapshot,
    Source,
    VersionStatus,
)
from core.params import Params, ParamSchema, ParamSpec, ParamValue, Scope, effective_params
from core.ports import Deps

log = logging.getLogger(__name__)
Stored = TypeVar("Stored")

# Version 0 of every scope is implicit, never stored: what the scope holds before its first
# change (the schema's defaults in `global`; nothing of its own, so all inherited, in a level).
DEFAULTS_VERSION = 0
_BEFORE_ANY_CHANGE = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ParamRow:
    spec: ParamSpec
    value: ParamValue
    origin: str  # "default", "global" or the level scope that sets it

    def inherited_in(self, scope: Scope) -> bool:
        return self.origin != scope.value


@dataclass(frozen=True)
class ScopeView:
    scope: Scope
    version: int
    rows: list[ParamRow]


@dataclass(frozen=True)
class ChangeResult:
    scope: Scope
    outcome: Outcome
    changes: list[ParamChange]
    version: ConfigVersion | None
    backup: BackupRecord | None
    based_on: int


@dataclass(frozen=True)
class VersionDiff:
    scope: Scope
    old: ConfigVersion
    new: ConfigVersion
    changes: list[ParamChange]


@dataclass(frozen=True)
class FileOnlyBackup(BackupRecord):
    """A backup file in the backup directory that the database has no row for (the database
    was lost or replaced, or a change was interrupted after its backup): restorable by its id
    all the same, since the file is complete on its own."""


# --- reading -----------------------------------------------------------------------


async def show_parameters(
    deps: Deps, actor: Actor, scope: Scope, name: str | None = None
) -> ScopeView:
    require(actor, Action.READ)
    spec = deps.schema.spec(name) if name else None
    glob = await deps.config.active(Scope.GLOBAL)
    own = glob if scope is Scope.GLOBAL else await deps.config.active(scope)
    layers: list[tuple[str, Params]] = [("global", glob.parameters if glob else {})]
    if scope is not Scope.GLOBAL:
        layers.append((scope.value, own.parameters if own else {}))
    rows = [_row(s, layers) for s in deps.schema if spec is None or s.name == spec.name]
    return ScopeView(scope, own.version if own else 0, rows)


def _row(spec: ParamSpec, layers: list[tuple[str, Params]]) -> ParamRow:
    row = ParamRow(spec, spec.default, "default")
    for origin, values in layers:
        if spec.name in values:
            row = ParamRow(spec, values[spec.name], origin)
    return row


async def effective_parameters(deps: Deps, scope: Scope) -> tuple[Params, int]:
    """What the engine must use now in `scope`, and the scope's active version."""
    glob = await deps.config.active(Scope.GLOBAL)
    layers = [glob.parameters] if glob else []
    version = glob.version if glob else 0
    if scope is not Scope.GLOBAL:
        own = await deps.config.active(scope)
        layers.append(own.parameters if own else {})
        version = own.version if own else 0
    return effective_params(deps.schema, layers), version


async def parameter_history(
    deps: Deps, actor: Actor, scope: Scope, parameter: str | None = None, limit: int = 20
) -> list[ParamChangeRecord]:
    require(actor, Action.READ)
    if parameter is not None:
        deps.schema.spec(parameter)
    if not 1 <= limit <= 1000:
        raise ValidationError(f"limit must be between 1 and 1000; got {limit}")
    return await deps.config.list_changes(scope, parameter, limit)


async def diff_versions(
    deps: Deps, actor: Actor, scope: Scope, old_version: int, new_version: int
) -> VersionDiff:
    require(actor, Action.READ)
    old = await _existing_version(deps, scope, old_version)
    new = await _existing_version(deps, scope, new_version)
    return VersionDiff(scope, old, new, _changes(old.parameters, new.parameters))


async def _existing_version(deps: Deps, scope: Scope, version: int) -> ConfigVersion:
    if version == DEFAULTS_VERSION:
        return await _defaults_version(deps, scope)
    # a number no version can have (negative, or beyond the stored column) is not looked up
    found = await deps.config.get_version(scope, version) if 0 < version <= MAX_WHOLE else None
    if found is None:
        latest = await deps.config.active(scope)
        have = f"the active version is {latest.version}" if latest else "it has no versions yet"
        raise NotFoundError(f"{scope} has no version {version}; {have}")
    return found


async def _defaults_version(deps: Deps, scope: Scope) -> ConfigVersion:
    """Version 0, as `show` reports it on a scope that never changed: usable like any other
    in a diff or a restore."""
    active = await deps.config.active(scope)
    return ConfigVersion(
        scope=scope,
        version=DEFAULTS_VERSION,
        parameters=_snapshot(deps.schema, scope, None).parameters,
        status=VersionStatus.ARCHIVED if active else VersionStatus.ACTIVE,
        author="paramadapt",
        source=Source.CLI,
        reason="the defaults, before any change",
        parent_version=None,
        created_at=_BEFORE_ANY_CHANGE,
    )


async def list_backups(
    deps: Deps, actor: Actor, scope: Scope | None = None, limit: int = 50
) -> list[BackupRecord]:
    """The newest `limit` backups, newest first: those the database records, and the backup
    files it does not know (as FileOnlyBackup), e.g. after the database was lost."""
    require(actor, Action.READ)
    if not 1 <= limit <= 1000:
        raise ValidationError(f"limit must be between 1 and 1000; got {limit}")
    recorded = await deps.config.list_backups(scope, limit)
    try:
        files = await deps.backups.newest(scope, limit)
    except OSError as error:
        log.warning("backup directory not listed, showing recorded backups only: %s", error)
        files = []
    # A file among the newest `limit` that is not among the newest `limit` rows either has no
    # row, or its row is older than all of them (or tied, and listed after them): it never
    # makes the cut then. Rows go first, so that the stable sort keeps them first on a tie.
    known = {backup.backup_id for backup in recorded}
    file_only = [FileOnlyBackup(**vars(b)) for b in files if b.backup_id not in known]
    listed = sorted([*recorded, *file_only], key=lambda b: b.created_at, reverse=True)
    return listed[:limit]


# --- changing ----------------------------------------------------------------------

# A change made without a reason is recorded with "" and shown as this.
NO_REASON = "no reason given"
# Where a person may leave the reason out: Slack (/param set, learning start, the form), as
# the /param grammar promises. The CLI, the HTTP API and the system always say why.
_REASON_OPTIONAL = frozenset({Source.SLACK.value})


def needs_reason(actor: Actor, reason: str, ask: str) -> None:
    """The one rule on a reason, for every entry point: refuse an empty one unless the
    change comes from where a reason is optional. `ask` says what the reason should say."""
    if not reason.strip() and actor.source not in _REASON_OPTIONAL:
        raise ValidationError(f"a reason is required: {ask}")


async def set_parameter(
    deps: Deps,
    actor: Actor,
    scope: Scope,
    name: str,
    raw_value: object,
    reason: str,
    based_on: int | None = None,
) -> ChangeResult:
    def compute(current: Params) -> Params:
        needs_reason(actor, reason, "say why the value changes")
        value = deps.schema.spec(name).parse(raw_value)
        return {**current, name: value}

    detail = {"parameter": name, "value": str(raw_value), "reason": reason}
    return await apply_change(deps, actor, Action.SET, scope, based_on, compute, reason, detail)


async def reset_parameter(
    deps: Deps,
    actor: Actor,
    scope: Scope,
    name: str,
    reason: str = "",
    based_on: int | None = None,
) -> ChangeResult:
    def compute(current: Params) -> Params:
        spec = deps.schema.spec(name)
        if scope is Scope.GLOBAL:
            return {**current, name: spec.default}
        return {k: v for k, v in current.items() if k != name}

    why = reason.strip() or f"reset {name} to its default"
    detail = {"parameter": name, "reason": why}
    return await apply_change(deps, actor, Action.RESET, scope, based_on, compute, why, detail)


async def restore_version(
    deps: Deps,
    actor: Actor,
    scope: Scope,
    version: int,
    reason: str = "",
    based_on: int | None = None,
) -> ChangeResult:
    why = reason.strip() or f"restore {scope} version {version}"
    detail = {"version": version, "reason": why}
    try:
        require(actor, Action.RESTORE)  # before the lookup, so a refusal reveals nothing
        target = await _existing_version(deps, scope, version)
    except UserError as error:
        await refuse_change(deps, actor, Action.RESTORE, scope, detail, error)
        raise
    params = target.parameters
    return await apply_change(
        deps,
        actor,
        Action.RESTORE,
        scope,
        based_on,
        lambda _current: deps.schema.validate(params),
        why,
        detail,
        source=Source.RESTORE,
    )


async def restore_backup(
    deps: Deps, actor: Actor, backup_id: str, reason: str = "", based_on: int | None = None
) -> ChangeResult:
    """Restore from the backup file alone: works even when the database was lost."""
    detail = {"backup_id": backup_id}
    try:
        require(actor, Action.RESTORE)
        backup = await deps.backups.read(backup_id)
    except UserError as error:
        await refuse_change(deps, actor, Action.RESTORE, "backup", detail, error)
        raise
    why = reason.strip() or f"restore backup {backup_id} ({backup.scope} v{backup.version})"
    return await apply_change(
        deps,
        actor,
        Action.RESTORE,
        backup.scope,
        based_on,
        lambda _current: deps.schema.validate(backup.parameters),
        why,
        {**detail, "reason": why},
        source=Source.RESTORE,
    )


async def apply_session_values(
    deps: Deps,
    actor: Actor,
    scope: Scope,
    values: Mapping[str, ParamValue],
    session_id: int,
    reason: str,
    based_on: int | None = None,
) -> ChangeResult:
    """Set `values` in `scope` as learning session `session_id` relaxes or restores them
    (core.learning); the new version is tagged with the session. The values are not
    validated again: relaxed ones are computed within bounds, and original ones must come
    back exactly, even if the schema has been narrowed since."""
    detail = {"learning_session": session_id, "values": dict(values), "reason": reason}
    return await apply_change(
        deps,
        actor,
        Action.LEARNING,
        scope,
        based_on,
        lambda current: {**current, **values},
        reason,
        detail,
        source=Source.LEARNING,
        learning_session_id=session_id,
    )


async def create_backup(deps: Deps, actor: Actor, scope: Scope, reason: str = "") -> BackupRecord:
    why = reason.strip() or "manual backup"
    try:
        require(actor, Action.BACKUP)
        current = await deps.config.active(scope)
        snapshot = _snapshot(deps.schema, scope, current)
        backup = await _write_backup(deps, actor, snapshot, why)
    except UserError as error:
        await refuse_change(deps, actor, Action.BACKUP, scope, {"reason": why}, error)
        raise
    audit = _audit(deps, actor, Action.BACKUP, scope, Outcome.APPLIED, {"id": backup.backup_id})
    await _stored_or_discarded(deps, backup, lambda: deps.config.record_backup(backup, audit))
    return backup


async def apply_change(
    deps: Deps,
    actor: Actor,
    action: Action,
    scope: Scope,
    based_on: int | None,
    compute: Callable[[Params], Params],
    reason: str,
    detail: Mapping[str, object],
    source: Source | None = None,
    learning_session_id: int | None = None,
) -> ChangeResult:
    """The one path by which a scope's parameters change: check, back up, then commit."""
    try:
        require(actor, action)
        current = await deps.config.active(scope)
        snapshot = _snapshot(deps.schema, scope, current)
        await _check_base(deps, scope, based_on, snapshot.version)
        new_params = compute(dict(snapshot.parameters))
        changes = _changes(snapshot.parameters, new_params)
        if learning_session_id is None:
            await _refuse_relaxed(deps, changes)
        if not changes:
            await deps.audit.record(_audit(deps, actor, action, scope, Outcome.UNCHANGED, detail))
            return ChangeResult(scope, Outcome.UNCHANGED, [], current, None, snapshot.version)
        why = reason.strip() or NO_REASON
        backup = await _write_backup(deps, actor, snapshot, f"before {action.value}: {why}")
        new = NewVersion(
            scope=scope,
            parameters=new_params,
            author=actor.id,
            source=source or Source(actor.source),
            reason=reason,
            created_at=deps.clock.now(),
            learning_session_id=learning_session_id,
        )
        audit = _audit(deps, actor, action, scope, Outcome.APPLIED, detail)
        version = await _stored_or_discarded(
            deps,
            backup,
            lambda: deps.config.commit_version(new, snapshot.version, changes, backup, audit),
        )
    except UserError as error:
        await refuse_change(deps, actor, action, scope, detail, error)
        raise
    return ChangeResult(scope, Outcome.APPLIED, changes, version, backup, snapshot.version)


async def _stored_or_discarded(
    deps: Deps, backup: BackupRecord, store: Callable[[], Awaitable[Stored]]
) -> Stored:
    """Store what `backup` was written for (a change, or the backup's own row), or remove its
    file: a refused change leaves the backup directory as it was. When storing failed with an
    error of the database rather than a refusal, it may have gone through all the same (a lost
    connection during COMMIT): the file goes only if the database answers that it has no row
    for it. A file without a row is listed and restorable; a row whose file is gone is not."""
    try:
        return await store()
    except UserError:  # refused (stale): the transaction was rolled back
        await _discard_backup(deps, backup)
        raise
    except Exception:  # not on cancellation: the file stays, as the outcome is unknown
        if not await _maybe_committed(deps, backup):
            await _discard_backup(deps, backup)
        raise


async def _maybe_committed(deps: Deps, backup: BackupRecord) -> bool:
    try:
        return await deps.config.has_backup(backup.backup_id)
    except Exception as error:
        log.warning(
            "backup %s kept: the change may have been applied (%s)", backup.backup_id, error
        )
        return True


async def _discard_backup(deps: Deps, backup: BackupRecord) -> None:
    try:
        await deps.backups.discard(backup.backup_id)
    except OSError as error:  # the change stays refused; the file is only listed as file-only
        log.warning("backup %s of a change not applied not removed: %s", backup.backup_id, error)


def _snapshot(schema: ParamSchema, scope: Scope, current: ConfigVersion | None) -> Snapshot:
    if current is None:
        initial = schema.defaults() if scope is Scope.GLOBAL else {}
        return Snapshot(scope, 0, initial)
    params = current.parameters
    if scope is Scope.GLOBAL:  # a parameter added to the schema later starts at its default
        params = effective_params(schema, [params])
    return Snapshot(scope, current.version, params)


async def _refuse_relaxed(deps: Deps, changes: Sequence[ParamChange]) -> None:
    """While a learning session runs, the values it relaxed change only through it: the
    session restores them at its end, which would silently undo any other change."""
    session = await deps.learning.active() if changes else None
    if session is None:
        return
    held = [c.parameter for c in changes if c.parameter in session.relaxed_names]
    if held:
        raise ConflictError(
            f"{', '.join(held)} {'is' if len(held) == 1 else 'are'} relaxed by learning "
            f"session {session.id} until {session.planned_end_at:%H:%M} UTC; stop the session "
            "first (it restores the original values), then change it"
        )


async def _check_base(deps: Deps, scope: Scope, based_on: int | None, active: int) -> None:
    """A change based on `based_on` goes ahead only if that is still the active version; one
    the scope never had is not found (as diff and restore say), not stale."""
    if based_on is not None and based_on != active:
        await _existing_version(deps, scope, based_on)
        raise StaleVersionError(
            f"{scope} changed since version {based_on}: the active version is {active}. "
            "Review the current values and try again."
        )


async def _write_backup(deps: Deps, actor: Actor, snapshot: Snapshot, reason: str) -> BackupRecord:
    try:
        return await deps.backups.write(snapshot, deps.clock.now(), actor.id, reason)
    except OSError as error:
        raise BackupFailedError(
            f"the backup of {snapshot.scope} could not be written ({error.strerror or error}); "
            "nothing was changed"
        ) from error


def _changes(old: Params, new: Params) -> list[ParamChange]:
    names = list(old) + [n for n in new if n not in old]
    return [
        ParamChange(name, old.get(name), new.get(name))
        for name in names
        if old.get(name) != new.get(name)
    ]


def _audit(
    deps: Deps,
    actor: Actor,
    action: str,
    target: object,
    outcome: Outcome,
    detail: Mapping[str, object],
) -> AuditEntry:
    return AuditEntry(
        at=deps.clock.now(),
        actor=actor.id,
        source=actor.source,
        action=str(action),  # an Action's value
        target=str(target),
        outcome=outcome,
        detail=dict(detail),
    )


async def refuse_change(
    deps: Deps,
    actor: Actor,
    action: str,
    target: object,
    detail: Mapping[str, object],
    error: UserError | str,
) -> None:
    """Record a refused change: the one audit row of every refusal, whether a use case here
    refused it or an entry point did before reaching one (a malformed command line).
    `action` is what the change is audited as: an Action, or e.g. "learning.start"."""
    entry = _audit(deps, actor, action, target, Outcome.REFUSED, {**detail, "error": str(error)})
    await deps.audit.record(entry)
