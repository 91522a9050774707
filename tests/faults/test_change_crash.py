"""SIGKILL between writing a change's backup and applying the change. The test holds a
lock on config_versions (reads pass, writes wait), so `paramadapt params set` writes its
backup and then blocks in the transaction that applies the change; it is killed there.
Afterwards nothing of the change is applied, the state is consistent, and the next change
goes through as if nothing had happened. PostgreSQL only: SQLite's one write lock would
also stop the reads that come before the backup."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from storage.db import create_engine
from tests.e2e.conftest import until
from tests.fuzz.stored import row_counts
from tests.process import BIN, BotProcess

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

SET = ["params", "set", "min_confidence", "0.6", "--reason", "killed midway"]
CHANGES = ("config_versions", "parameter_changes", "config_backups", "audit_log", "outbox")


def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *argv], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


def dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


async def stored(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        return await row_counts(engine, CHANGES)
    finally:
        await engine.dispose()


def backups(backup_dir: Path) -> list[Path]:
    return sorted(backup_dir.rglob("*.json"))


@pytest.mark.slow
async def test_a_change_killed_after_its_backup_is_not_applied(
    tmp_path: Path, database_url: str
) -> None:
    backup_dir = tmp_path / "backups"
    env = {"DATABASE_URL": database_url, "BACKUP_DIR": str(backup_dir)}
    assert (await asyncio.to_thread(cli, env, "db", "upgrade")).returncode == 0
    before = await stored(database_url)
    lock = await asyncpg.connect(dsn(database_url))
    try:
        async with lock.transaction():
            await lock.execute("LOCK TABLE config_versions IN EXCLUSIVE MODE")
            change = BotProcess(*SET, env=env)

            async def blocked_after_backup() -> bool:
                waiting = await lock.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    " AND relation = 'config_versions'::regclass"
                )
                return bool(backups(backup_dir)) and waiting > 0

            await until(blocked_after_backup, "the change to wait after its backup", 30)
            change.kill()  # SIGKILL
    finally:
        await lock.close()

    [orphan] = backups(backup_dir)  # the backup of version 0, and nothing it backed up
    assert await stored(database_url) == before
    shown = await asyncio.to_thread(cli, env, "params", "show", "min_confidence", "--json")
    assert '"min_confidence"' in shown.stdout and "0.65" in shown.stdout
    again = await asyncio.to_thread(cli, env, *SET)
    assert again.returncode == 0, again.stderr
    assert "global: version 0 → 1" in again.stdout
    assert len(backups(backup_dir)) == 2 and orphan in backups(backup_dir)
