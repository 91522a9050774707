"""The versioned config store through the use cases, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.runtime import Runtime, open_runtime
from core import services
from core.authz import Actor, Role
from core.errors import BackupFailedError, PermissionDeniedError, StaleVersionError
from core.models import Outcome, VersionStatus
from core.params import Scope
from storage.db import SQLITE_BUSY_TIMEOUT_MS
from storage.tables import ConfigVersionRow

ADMIN = Actor.having("U0ADMIN", "slack", Role.ADMIN)


async def _set(
    runtime: Runtime,
    name: str,
    value: object,
    scope: Scope = Scope.GLOBAL,
    based_on: int | None = None,
) -> services.ChangeResult:
    return await services.set_parameter(runtime.deps, ADMIN, scope, name, value, "test", based_on)


async def test_a_change_creates_the_next_version_and_archives_the_previous(
    runtime: Runtime,
) -> None:
    await _set(runtime, "min_confidence", "0.6")
    await _set(runtime, "min_confidence", "0.55")
    versions = await runtime.store.list_versions(Scope.GLOBAL, 10)
    assert [(v.version, v.status, v.parent_version) for v in versions] == [
        (2, VersionStatus.ACTIVE, 1),
        (1, VersionStatus.ARCHIVED, None),
    ]
    assert versions[0].parameters["min_confidence"] == 0.55
    assert versions[0].author == "U0ADMIN"


async def test_global_versions_hold_every_parameter(runtime: Runtime) -> None:
    result = await _set(runtime, "min_confidence", "0.6")
    assert result.version is not None
    assert set(result.version.parameters) == set(runtime.deps.schema.names)


async def test_set_history_diff_restore_gives_back_the_earlier_parameters(runtime: Runtime) -> None:
    await _set(runtime, "min_confidence", "0.6")
    first = await runtime.store.active(Scope.GLOBAL)
    await _set(runtime, "long_rsi_entry", "35")
    await _set(runtime, "sl_atr_multiplier", "1.7")

    history = await services.parameter_history(runtime.deps, ADMIN, Scope.GLOBAL)
    assert [(r.parameter, r.old, r.new, r.to_version) for r in history] == [
        ("sl_atr_multiplier", 1.5, 1.7, 3),
        ("long_rsi_entry", 30, 35, 2),
        ("min_confidence", 0.65, 0.6, 1),
    ]
    diff = await services.diff_versions(runtime.deps, ADMIN, Scope.GLOBAL, 1, 3)
    assert {c.parameter for c in diff.changes} == {"long_rsi_entry", "sl_atr_multiplier"}

    restored = await services.restore_version(runtime.deps, ADMIN, Scope.GLOBAL, 1)
    assert first is not None and restored.version is not None
    assert restored.version.version == 4
    assert restored.version.parameters == first.parameters
    assert restored.version.source.value == "restore"


async def test_every_change_is_backed_up_first(runtime: Runtime, backup_dir: Path) -> None:
    await _set(runtime, "min_confidence", "0.6")
    result = await _set(runtime, "min_confidence", "0.5")
    assert result.backup is not None
    assert result.backup.version == 1
    assert result.backup.parameters["min_confidence"] == 0.6
    assert (backup_dir / result.backup.path).is_file()
    assert result.backup.path.startswith("global/") and result.backup.path.endswith("_v1.json")


async def test_backup_files_alone_restore_after_the_database_is_lost(
    runtime: Runtime, backup_dir: Path, tmp_path: Path
) -> None:
    await _set(runtime, "min_confidence", "0.6")
    await _set(runtime, "long_adx_min", "20")
    wanted = await runtime.store.active(Scope.GLOBAL)
    result = await _set(runtime, "min_confidence", "0.9")  # backs up version 2
    assert result.backup is not None and wanted is not None

    fresh = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'new.db'}", backup_dir=backup_dir
    )
    async with open_runtime(fresh) as rebuilt:
        restored = await services.restore_backup(rebuilt.deps, ADMIN, result.backup.backup_id)
        active = await rebuilt.store.active(Scope.GLOBAL)
    assert active is not None and restored.version is not None
    assert active.parameters == wanted.parameters


async def test_a_level_scope_stores_only_its_own_values_and_inherits_the_rest(
    runtime: Runtime,
) -> None:
    await _set(runtime, "min_confidence", "0.6")
    await _set(runtime, "long_rsi_entry", "35", scope=Scope.HIGH)
    view = await services.show_parameters(runtime.deps, ADMIN, Scope.HIGH)
    rows = {row.spec.name: row for row in view.rows}
    assert (rows["long_rsi_entry"].value, rows["long_rsi_entry"].origin) == (35, "HIGH")
    assert (rows["min_confidence"].value, rows["min_confidence"].origin) == (0.6, "global")
    assert rows["min_confidence"].inherited_in(Scope.HIGH)
    high = await runtime.store.active(Scope.HIGH)
    assert high is not None and high.parameters == {"long_rsi_entry": 35}


async def test_reset_on_a_level_returns_to_inheriting(runtime: Runtime) -> None:
    await _set(runtime, "long_rsi_entry", "35", scope=Scope.HIGH)
    await services.reset_parameter(runtime.deps, ADMIN, Scope.HIGH, "long_rsi_entry")
    params, _ = await services.effective_parameters(runtime.deps, Scope.HIGH)
    assert params["long_rsi_entry"] == runtime.deps.schema.spec("long_rsi_entry").default


async def test_reset_on_global_returns_to_the_default(runtime: Runtime) -> None:
    await _set(runtime, "long_rsi_entry", "35")
    result = await services.reset_parameter(runtime.deps, ADMIN, Scope.GLOBAL, "long_rsi_entry")
    assert result.version is not None and result.version.parameters["long_rsi_entry"] == 30


async def test_setting_the_current_value_changes_nothing(
    runtime: Runtime, backup_dir: Path
) -> None:
    await _set(runtime, "min_confidence", "0.6")
    result = await _set(runtime, "min_confidence", "0.6")
    assert result.outcome is Outcome.UNCHANGED
    assert len(await runtime.store.list_versions(Scope.GLOBAL, 10)) == 1
    assert len(list((backup_dir / "global").iterdir())) == 1


async def test_a_write_based_on_a_stale_version_is_refused(runtime: Runtime) -> None:
    await _set(runtime, "min_confidence", "0.6")
    await _set(runtime, "min_confidence", "0.55")
    with pytest.raises(StaleVersionError, match="active version is 2"):
        await _set(runtime, "min_confidence", "0.5", based_on=1)
    active = await runtime.store.active(Scope.GLOBAL)
    assert active is not None and active.parameters["min_confidence"] == 0.55


def backup_files(backup_dir: Path) -> set[str]:
    """Every file under the backup directory, temporary ones included."""
    return {str(p.relative_to(backup_dir)) for p in backup_dir.rglob("*") if p.is_file()}


async def race_on_version_1(settings: Settings) -> list[services.ChangeResult | None]:
    """Eight processes' worth of writers (own engines and connections) change long_rsi_entry
    based on version 1 at once; None for each writer refused as stale."""

    async def writer(value: int) -> services.ChangeResult | None:
        async with open_runtime(settings, upgrade=False) as mine:
            try:
                return await _set(mine, "long_rsi_entry", str(value), based_on=1)
            except StaleVersionError:
                return None

    return await asyncio.gather(*(writer(v) for v in range(31, 39)))


async def test_concurrent_writers_on_the_same_version_let_exactly_one_through(
    settings: Settings,
) -> None:
    async with open_runtime(settings) as first:
        await _set(first, "long_adx_min", "20")  # version 1 exists

    results = await race_on_version_1(settings)
    assert [r is None for r in results].count(True) == 7
    async with open_runtime(settings, upgrade=False) as after:
        versions = await after.store.list_versions(Scope.GLOBAL, 10)
    assert [v.version for v in versions] == [2, 1]
    assert [v.status for v in versions] == [VersionStatus.ACTIVE, VersionStatus.ARCHIVED]


async def test_writers_refused_in_a_race_leave_no_backup_file_behind(
    settings: Settings, backup_dir: Path
) -> None:
    async with open_runtime(settings) as first:
        await _set(first, "long_adx_min", "20")  # version 1 exists
    before = backup_files(backup_dir)

    results = await race_on_version_1(settings)

    [applied] = [r for r in results if r is not None]
    assert applied.backup is not None
    assert backup_files(backup_dir) == before | {applied.backup.path}
    async with open_runtime(settings, upgrade=False) as after:
        rows = await after.store.list_backups(None, 100)
    assert {b.path for b in rows} == backup_files(backup_dir)


async def test_a_refused_change_leaves_the_backup_directory_as_it_was(
    runtime: Runtime, backup_dir: Path
) -> None:
    await _set(runtime, "min_confidence", "0.6")
    await _set(runtime, "min_confidence", "0.55")
    before = backup_files(backup_dir)
    with pytest.raises(StaleVersionError):
        await _set(runtime, "min_confidence", "0.5", based_on=1)
    assert backup_files(backup_dir) == before


async def test_concurrent_read_modify_write_loops_lose_no_update(settings: Settings) -> None:
    """Four writers each raise max_position_size by 1 five times, retrying when stale."""
    async with open_runtime(settings) as first:
        await _set(first, "max_position_size", "10")

    async def writer() -> int:
        retries = 0
        async with open_runtime(settings, upgrade=False) as mine:
            for _ in range(5):
                while True:
                    current = await mine.store.active(Scope.GLOBAL)
                    assert current is not None
                    value = current.parameters["max_position_size"] + 1
                    try:
                        await _set(mine, "max_position_size", value, based_on=current.version)
                        break
                    except StaleVersionError:
                        retries += 1
        return retries

    await asyncio.gather(*(writer() for _ in range(4)))
    async with open_runtime(settings, upgrade=False) as after:
        active = await after.store.active(Scope.GLOBAL)
    assert active is not None
    assert active.parameters["max_position_size"] == 30
    assert active.version == 21


# --- version 0: the defaults before any change ------------------------------------------


async def test_a_fresh_scope_shows_version_0_with_the_defaults(runtime: Runtime) -> None:
    view = await services.show_parameters(runtime.deps, ADMIN, Scope.GLOBAL)
    assert view.version == 0
    assert {row.spec.name: row.value for row in view.rows} == runtime.deps.schema.defaults()


async def test_diff_from_version_0_shows_every_change_since_the_defaults(
    runtime: Runtime,
) -> None:
    await _set(runtime, "min_confidence", "0.6")
    await _set(runtime, "long_rsi_entry", "35")
    diff = await services.diff_versions(runtime.deps, ADMIN, Scope.GLOBAL, 0, 2)
    assert (diff.old.version, diff.new.version) == (0, 2)
    assert [(c.parameter, c.old, c.new) for c in diff.changes] == [
        ("min_confidence", 0.65, 0.6),
        ("long_rsi_entry", 30, 35),
    ]


async def test_diff_0_1_history_and_show_agree_on_version_0(runtime: Runtime) -> None:
    shown = await services.show_parameters(runtime.deps, ADMIN, Scope.GLOBAL, "min_confidence")
    await _set(runtime, "min_confidence", "0.6")
    diff = await services.diff_versions(runtime.deps, ADMIN, Scope.GLOBAL, 0, 1)
    (change,) = await services.parameter_history(runtime.deps, ADMIN, Scope.GLOBAL)
    assert shown.version == change.from_version == diff.old.version == 0
    assert [(c.parameter, c.old, c.new) for c in diff.changes] == [
        (change.parameter, change.old, change.new)
    ]
    assert change.old == shown.rows[0].value


async def test_diff_from_version_0_of_a_level_shows_its_values_as_once_inherited(
    runtime: Runtime,
) -> None:
    await _set(runtime, "long_rsi_entry", "35", scope=Scope.HIGH)
    diff = await services.diff_versions(runtime.deps, ADMIN, Scope.HIGH, 0, 1)
    assert [(c.parameter, c.old, c.new) for c in diff.changes] == [("long_rsi_entry", None, 35)]


async def test_restore_0_brings_global_back_to_the_defaults_as_a_new_version(
    runtime: Runtime,
) -> None:
    await _set(runtime, "min_confidence", "0.6")
    await _set(runtime, "long_rsi_entry", "35")
    restored = await services.restore_version(runtime.deps, ADMIN, Scope.GLOBAL, 0)
    assert restored.version is not None and restored.backup is not None
    assert restored.version.version == 3
    assert restored.version.parameters == runtime.deps.schema.defaults()
    assert restored.version.source.value == "restore"
    assert restored.backup.version == 2
    view = await services.show_parameters(runtime.deps, ADMIN, Scope.GLOBAL)
    assert {row.origin for row in view.rows} == {"global"}
    assert view.version == 3


async def test_restore_0_makes_a_level_inherit_everything_again(runtime: Runtime) -> None:
    await _set(runtime, "min_confidence", "0.6")
    await _set(runtime, "long_rsi_entry", "35", scope=Scope.HIGH)
    restored = await services.restore_version(runtime.deps, ADMIN, Scope.HIGH, 0)
    assert restored.version is not None and restored.version.parameters == {}
    high, _ = await services.effective_parameters(runtime.deps, Scope.HIGH)
    glob, _ = await services.effective_parameters(runtime.deps, Scope.GLOBAL)
    assert high == glob


async def test_restore_0_on_a_scope_never_changed_changes_nothing(
    runtime: Runtime, backup_dir: Path
) -> None:
    result = await services.restore_version(runtime.deps, ADMIN, Scope.GLOBAL, 0)
    assert result.outcome is Outcome.UNCHANGED
    assert await runtime.store.active(Scope.GLOBAL) is None
    assert not backup_dir.exists()


async def test_the_database_itself_refuses_a_second_active_version(runtime: Runtime) -> None:
    result = await _set(runtime, "min_confidence", "0.6")
    assert result.version is not None
    row = {
        "scope": "global",
        "version": 99,
        "parameters": {},
        "status": "ACTIVE",
        "author": "x",
        "source": "cli",
        "reason": "x",
        "created_at": result.version.created_at,
    }
    with pytest.raises(IntegrityError):
        async with runtime.engine.begin() as connection:
            await connection.execute(insert(ConfigVersionRow), [row])


async def test_a_backup_directory_that_is_a_file_refuses_the_change(
    runtime: Runtime, backup_dir: Path
) -> None:
    backup_dir.parent.mkdir(parents=True, exist_ok=True)
    backup_dir.write_text("not a directory")
    await _assert_backup_refusal(runtime)


async def _assert_backup_refusal(runtime: Runtime) -> None:
    with pytest.raises(BackupFailedError, match="nothing was changed"):
        await _set(runtime, "min_confidence", "0.6")
    assert await runtime.store.active(Scope.GLOBAL) is None
    entries = await runtime.store.audit_entries()
    assert entries[0].outcome is Outcome.REFUSED
    assert "backup" in entries[0].detail["error"]


async def test_refused_attempts_are_audited_with_why(runtime: Runtime) -> None:
    viewer = Actor.having("U0VIEW", "slack", Role.VIEWER)
    with pytest.raises(PermissionDeniedError, match="needs the admin role"):
        await services.set_parameter(
            runtime.deps, viewer, Scope.GLOBAL, "min_confidence", "0.6", "try"
        )
    (entry,) = await runtime.store.audit_entries()
    assert (entry.actor, entry.action, entry.outcome) == ("U0VIEW", "set", Outcome.REFUSED)
    assert "admin role" in entry.detail["error"]
    assert await runtime.store.active(Scope.GLOBAL) is None


async def test_applied_changes_are_audited_with_the_new_version(runtime: Runtime) -> None:
    await _set(runtime, "min_confidence", "0.6")
    (entry,) = await runtime.store.audit_entries()
    assert entry.outcome is Outcome.APPLIED
    assert entry.detail["version"] == 1
    assert entry.detail["parameter"] == "min_confidence"


async def test_parameter_changes_record_old_new_actor_source_reason_and_versions(
    runtime: Runtime,
) -> None:
    await services.set_parameter(
        runtime.deps, ADMIN, Scope.GLOBAL, "stop_loss_pct", "2.5", "volatile week"
    )
    (change,) = await runtime.store.list_changes(Scope.GLOBAL, "stop_loss_pct", 5)
    assert (change.old, change.new, change.actor, change.source.value, change.reason) == (
        2.0,
        2.5,
        "U0ADMIN",
        "slack",
        "volatile week",
    )
    assert (change.from_version, change.to_version) == (0, 1)


async def test_stored_timestamps_come_back_timezone_aware(runtime: Runtime) -> None:
    result = await _set(runtime, "min_confidence", "0.6")
    async with runtime.engine.connect() as connection:
        created = (await connection.execute(select(ConfigVersionRow.created_at))).scalar_one()
    assert result.version is not None
    assert created == result.version.created_at
    assert created.utcoffset() is not None


# --- SQLite connections ------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_connections_use_wal_and_wait_for_a_busy_database(
    runtime: Runtime,
) -> None:
    async with runtime.engine.connect() as connection:
        mode = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        timeout = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
    assert (mode, timeout) == ("wal", SQLITE_BUSY_TIMEOUT_MS)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_sqlite_file_is_in_wal_mode_for_every_other_connection(
    runtime: Runtime, database_url: str
) -> None:
    path = database_url.removeprefix("sqlite+aiosqlite:///")
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        other.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_change_waits_for_another_process_holding_the_sqlite_write_lock(
    runtime: Runtime, database_url: str
) -> None:
    """Another process (the CLI, say) is writing: the change waits its turn instead of
    failing with "database is locked"."""
    other = sqlite3.connect(database_url.removeprefix("sqlite+aiosqlite:///"))
    try:
        other.execute("BEGIN IMMEDIATE")
        change = asyncio.create_task(_set(runtime, "min_confidence", "0.6"))
        await asyncio.sleep(0.5)  # long enough for the change to meet the lock
        assert not change.done()  # waiting in the busy timeout, not failed
        other.rollback()
        result = await asyncio.wait_for(change, timeout=15)
    finally:
        other.close()
    assert result.outcome is Outcome.APPLIED
