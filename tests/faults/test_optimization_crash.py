"""SIGKILL `paramadapt optimize` in the middle of a run (its workers too): nothing of the
scope changed, and the RUNNING row the dead process left is taken over by the next run
once `run_timeout_minutes` says its process is gone; that run ends cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from storage.db import create_engine
from storage.tables import OptimizationRunRow
from tests.e2e.conftest import until
from tests.fuzz.stored import row_counts
from tests.process import BIN, BotProcess

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
UNTIL = "2018-01-30T04:55Z"
CONFIG = """
[optimizer]
lookback_days = 19
seed = 11
grid = "full"
run_timeout_minutes = 120

[optimizer.symbols]
ETH_BTC = "HIGH"
LTC_BTC = "HIGH"
"""
CHANGES = ("config_versions", "parameter_changes", "config_backups")


def environment(tmp_path: Path, database_url: str) -> dict[str, str]:
    config = tmp_path / "paramadapt.toml"
    config.write_text(CONFIG)
    return {
        "DATABASE_URL": database_url,
        "BACKUP_DIR": str(tmp_path / "backups"),
        "MARKET_DATA_DIR": str(DATA),
        "PARAMADAPT_CONFIG": str(config),
    }


def optimize(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN), "optimize", "--scope", "HIGH", "--until", UNTIL]
    return subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def kill_with_children(pid: int) -> None:
    """SIGKILL the process and the worker processes it started: no one finishes the run."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    workers = [int(c) for c in children.read_text().split()] if children.exists() else []
    for target in [pid, *workers]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)


async def runs(database_url: str) -> list[Any]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = select(OptimizationRunRow).order_by(OptimizationRunRow.id)
            return list((await connection.execute(query)).all())
    finally:
        await engine.dispose()


async def changes(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        return await row_counts(engine, CHANGES)
    finally:
        await engine.dispose()


async def backdate(database_url: str, run: Any, by: timedelta) -> None:
    """As if the process had died `by` ago: what `run_timeout_minutes` waits for."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            row = OptimizationRunRow
            await connection.execute(
                update(row).where(row.run_id == run.run_id).values(started_at=run.started_at - by)
            )
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_a_run_killed_midway_changes_nothing_and_is_taken_over(
    tmp_path: Path, database_url: str
) -> None:
    env = environment(tmp_path, database_url)
    assert (await asyncio.to_thread(optimize, env)).returncode == 0  # creates the schema
    before = await changes(database_url)
    process = BotProcess("optimize", "--scope", "HIGH", "--until", UNTIL, env=env)

    async def running() -> bool:
        return any(run.status == "RUNNING" for run in await runs(database_url))

    await until(running, "the run to be claimed", timeout=60)
    kill_with_children(process.proc.pid)
    process.proc.wait(10)

    [*_, killed] = await runs(database_url)
    assert killed.status == "RUNNING"  # the dead process could not say otherwise
    assert await changes(database_url) == before  # no version, change or backup of it
    refused = await asyncio.to_thread(optimize, env)
    assert refused.returncode != 0 and "already" in refused.stderr  # within the timeout
    await backdate(database_url, killed, timedelta(minutes=121))

    taken_over = await asyncio.to_thread(optimize, env)

    assert taken_over.returncode == 0, taken_over.stderr
    by_id = {run.run_id: run for run in await runs(database_url)}
    assert by_id[killed.run_id].status == "FAILED"
    assert "interrupted" in (by_id[killed.run_id].error or "")
    assert [run.status for run in by_id.values()].count("RUNNING") == 0
    [*_, latest] = by_id.values()
    applied = latest.status == "APPLIED"
    expected = {"config_versions": 1, "parameter_changes": 4, "config_backups": 1}
    assert await changes(database_url) == (
        {k: before[k] + expected[k] for k in CHANGES} if applied else before
    )
