"""Backup files: written atomically, removed when their change is not applied, listed even
when the database does not know them. Service-level cases run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import Runtime
from core import services
from core.authz import Actor, Role
from core.errors import ValidationError
from core.models import BackupRecord, Snapshot
from core.params import Scope
from core.ports import ConfigStore, Deps
from storage.backups import FileBackups

ADMIN = Actor.having("U0ADMIN", "slack", Role.ADMIN)
AT = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def files(directory: Path) -> list[str]:
    """Every file under `directory`, temporary ones included."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def snapshot(version: int = 3, **parameters: Any) -> Snapshot:
    return Snapshot(Scope.GLOBAL, version, parameters or {"min_confidence": 0.6})


# --- writing -----------------------------------------------------------------------


async def test_a_backup_file_is_complete_json_under_its_final_name_only(tmp_path: Path) -> None:
    backups = FileBackups(tmp_path)
    record = await backups.write(snapshot(long_rsi_entry=35), AT, "U0ADMIN", "before set")

    assert files(tmp_path) == [record.path] == ["global/20261123T030000000000Z_v3.json"]
    document = json.loads((tmp_path / record.path).read_text())
    assert document == {
        "format": "paramadapt-backup/1",
        "backup_id": "global-20261123T030000000000Z_v3",
        "scope": "global",
        "version": 3,
        "parameters": {"long_rsi_entry": 35},
        "created_at": "2026-11-23T03:00:00+00:00",
        "actor": "U0ADMIN",
        "reason": "before set",
    }
    assert await backups.read(record.backup_id) == record


def test_a_backup_write_that_fails_midway_leaves_no_file_at_all(tmp_path: Path) -> None:
    """The disk fills up (a file size limit) while the backup is written: the write fails,
    no partial file appears under the backup's name, and no temporary file is left."""
    script = textwrap.dedent(
        """
        import asyncio, resource, signal, sys
        from datetime import UTC, datetime
        from pathlib import Path
        from core.models import Snapshot
        from core.params import Scope
        from storage.backups import FileBackups

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))
        big = Snapshot(Scope.GLOBAL, 3, {f"p{i}": "x" * 64 for i in range(100)})
        at = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
        try:
            asyncio.run(FileBackups(Path(sys.argv[1])).write(big, at, "U0ADMIN", "r"))
        except OSError as error:
            print(error.strerror)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert done.stdout.strip() == "File too large"
    assert files(tmp_path) == []


async def test_backups_written_at_the_same_instant_by_concurrent_writers_all_survive(
    tmp_path: Path,
) -> None:
    backups = FileBackups(tmp_path)
    records = await asyncio.gather(
        *(backups.write(snapshot(min_confidence=i / 100), AT, f"U{i}", f"w{i}") for i in range(8))
    )
    assert len({r.backup_id for r in records}) == 8
    assert files(tmp_path) == sorted(r.path for r in records)
    for record in records:
        assert await backups.read(record.backup_id) == record


async def test_discarding_a_backup_removes_its_file(tmp_path: Path) -> None:
    backups = FileBackups(tmp_path)
    kept = await backups.write(snapshot(), AT, "U0ADMIN", "kept")
    dropped = await backups.write(snapshot(), AT, "U0ADMIN", "dropped")
    await backups.discard(dropped.backup_id)
    await backups.discard(dropped.backup_id)  # gone already: nothing to do
    assert files(tmp_path) == [kept.path]


# --- a change whose commit fails -----------------------------------------------------


class CommitFailing:
    """The real config store, whose writes fail with a database error (a lost connection):
    before anything is committed, or after the commit when only the reply was lost."""

    def __init__(self, inner: ConfigStore, *, committed: bool) -> None:
        self._inner, self._committed = inner, committed

    async def commit_version(self, *args: Any) -> Any:
        if self._committed:
            await self._inner.commit_version(*args)
        raise ConnectionResetError(104, "Connection reset by peer")

    async def record_backup(self, *args: Any) -> None:
        if self._committed:
            await self._inner.record_backup(*args)
        raise ConnectionResetError(104, "Connection reset by peer")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _failing(runtime: Runtime, *, committed: bool) -> Deps:
    return dataclasses.replace(
        runtime.deps, config=CommitFailing(runtime.store, committed=committed)
    )


async def _set_through(runtime: Runtime, *, committed: bool) -> None:
    deps = _failing(runtime, committed=committed)
    with pytest.raises(ConnectionResetError):
        await services.set_parameter(deps, ADMIN, Scope.GLOBAL, "min_confidence", "0.5", "r")


async def test_a_change_whose_commit_fails_leaves_no_backup_file(
    runtime: Runtime, backup_dir: Path
) -> None:
    await services.set_parameter(runtime.deps, ADMIN, Scope.GLOBAL, "min_confidence", "0.6", "r")
    before = files(backup_dir)
    await _set_through(runtime, committed=False)
    assert files(backup_dir) == before
    active = await runtime.store.active(Scope.GLOBAL)
    assert active is not None and active.version == 1


async def test_the_backup_stays_when_the_change_was_committed_but_the_reply_was_lost(
    runtime: Runtime, backup_dir: Path
) -> None:
    await _set_through(runtime, committed=True)
    rows = await runtime.store.list_backups(None, 10)
    assert [b.path for b in rows] == files(backup_dir)
    assert len(rows) == 1


async def test_a_manual_backup_whose_row_cannot_be_stored_leaves_no_file(
    runtime: Runtime, backup_dir: Path
) -> None:
    with pytest.raises(ConnectionResetError):
        await services.create_backup(_failing(runtime, committed=False), ADMIN, Scope.GLOBAL)
    assert files(backup_dir) == []
    assert await runtime.store.list_backups(None, 10) == []


# --- listing -------------------------------------------------------------------------


async def _file_without_row(runtime: Runtime, at: datetime, reason: str) -> BackupRecord:
    return await runtime.deps.backups.write(snapshot(), at, "U0ADMIN", reason)


async def test_backup_list_shows_the_files_the_database_does_not_know_as_file_only(
    runtime: Runtime,
) -> None:
    old = await _file_without_row(runtime, AT, "from a lost database")
    await services.create_backup(runtime.deps, ADMIN, Scope.GLOBAL, "recorded")
    listed = await services.list_backups(runtime.deps, ADMIN)
    assert [(b.reason, isinstance(b, services.FileOnlyBackup)) for b in listed] == [
        ("recorded", False),
        ("from a lost database", True),
    ]
    assert dataclasses.asdict(listed[1]) == dataclasses.asdict(old)


async def test_backup_list_keeps_to_the_scope_and_the_limit_newest_first(
    runtime: Runtime,
) -> None:
    for day in (1, 2, 3):
        await _file_without_row(runtime, AT.replace(day=day), f"day {day}")
    await runtime.deps.backups.write(
        Snapshot(Scope.HIGH, 0, {}), AT.replace(day=4), "U0ADMIN", "HIGH"
    )
    listed = await services.list_backups(runtime.deps, ADMIN, Scope.GLOBAL, limit=2)
    assert [b.reason for b in listed] == ["day 3", "day 2"]


async def test_backup_list_skips_a_damaged_file(runtime: Runtime, backup_dir: Path) -> None:
    good = await _file_without_row(runtime, AT, "good")
    (backup_dir / "global" / "20261124T030000000000Z_v3.json").write_text('{"format": ')
    listed = await services.list_backups(runtime.deps, ADMIN)
    assert [b.backup_id for b in listed] == [good.backup_id]


def hand_made(backup_dir: Path, **document: object) -> str:
    """A backup file written by hand under a backup's name; its id."""
    (backup_dir / "global").mkdir(parents=True, exist_ok=True)
    (backup_dir / "global" / "20261124T030000000000Z_v3.json").write_text(json.dumps(document))
    return "global-20261124T030000000000Z_v3"


COMPLETE = {
    "format": "paramadapt-backup/1",
    "scope": "global",
    "version": 3,
    "parameters": {"min_confidence": 0.6},
    "created_at": "2026-11-24T03:00:00+00:00",
    "actor": "U0ADMIN",
    "reason": "by hand",
}


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({k: v for k, v in COMPLETE.items() if k != "created_at"}, "missing created_at"),
        ({k: v for k, v in COMPLETE.items() if k != "actor"}, "missing actor"),
        ({**COMPLETE, "created_at": "yesterday"}, "created_at is not valid: 'yesterday'"),
        ({**COMPLETE, "created_at": 20261124}, "created_at is not valid: 20261124"),
        ({**COMPLETE, "scope": "GLOBAL!"}, "scope is not valid: 'GLOBAL!'"),
        ({**COMPLETE, "version": [3]}, "version is not valid: [3]"),
    ],
)
async def test_a_backup_file_that_is_not_whole_is_refused_naming_the_field(
    tmp_path: Path, document: dict[str, object], problem: str
) -> None:
    backup_id = hand_made(tmp_path, **document)
    with pytest.raises(ValidationError) as refused:
        await FileBackups(tmp_path).read(backup_id)
    assert str(refused.value) == (
        f"backup '{backup_id}' is not a complete paramadapt backup: {problem}"
    )


async def test_backup_list_skips_a_file_missing_a_field_with_a_warning(
    runtime: Runtime, backup_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = await _file_without_row(runtime, AT, "good")
    hand_made(backup_dir, **{k: v for k, v in COMPLETE.items() if k != "created_at"})

    listed = await services.list_backups(runtime.deps, ADMIN)

    assert [b.backup_id for b in listed] == [good.backup_id]
    assert "missing created_at" in caplog.text
