"""The monthly cleanup, on SQLite and PostgreSQL: runs that found no improvement go after
90 days, FAILED versions are archived after 30, improvements are kept forever."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.runtime import Runtime
from core.optimization import clean_up_history
from storage.db import sessionmaker
from storage.tables import (
    AuditLogRow,
    ConfigVersionRow,
    OptimizationCandidateRow,
    OptimizationRunRow,
)
from tests.clock import MovableClock

NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def run_row(run_id: str, days_old: int, improved: bool, status: str = "COMPLETED") -> Any:
    return OptimizationRunRow(
        run_id=run_id, trigger="scheduled", scope="HIGH", method="grid", status=status,
        improvement_found=improved, started_at=NOW - timedelta(days=days_old),
    )  # fmt: skip


def version_row(version: int, status: str, days_old: int) -> Any:
    return ConfigVersionRow(
        scope="LOW", version=version, parameters={}, status=status, author="test",
        source="optimizer", reason="", created_at=NOW - timedelta(days=days_old),
    )  # fmt: skip


async def stored(runtime: Runtime, rows: list[Any]) -> None:
    async with sessionmaker(runtime.engine).begin() as session:
        session.add_all(rows)


async def run_ids(runtime: Runtime) -> set[str]:
    async with sessionmaker(runtime.engine)() as session:
        return set((await session.execute(select(OptimizationRunRow.run_id))).scalars())


async def statuses(runtime: Runtime) -> dict[int, str]:
    query = select(ConfigVersionRow.version, ConfigVersionRow.status).where(
        ConfigVersionRow.scope == "LOW"
    )
    async with sessionmaker(runtime.engine)() as session:
        return {version: status for version, status in (await session.execute(query)).all()}


async def clean_up(runtime: Runtime) -> Any:
    return await clean_up_history(dataclasses.replace(runtime.deps, clock=MovableClock(NOW)))


async def test_runs_without_improvement_are_deleted_after_90_days(runtime: Runtime) -> None:
    await stored(runtime, [run_row("old_flat", 91, False), run_row("recent_flat", 89, False)])
    await stored(runtime, [OptimizationCandidateRow(
        run_id="old_flat", position=0, parameters={}, status="baseline", metrics={}
    )])  # fmt: skip

    done = await clean_up(runtime)

    assert await run_ids(runtime) == {"recent_flat"}
    assert done.runs_deleted == 1


async def test_runs_that_found_an_improvement_are_kept_forever(runtime: Runtime) -> None:
    await stored(runtime, [run_row("old_win", 2000, True)])
    await clean_up(runtime)
    assert await run_ids(runtime) == {"old_win"}


async def test_a_run_still_running_is_never_deleted(runtime: Runtime) -> None:
    await stored(runtime, [run_row("stuck", 200, False, status="RUNNING")])
    await clean_up(runtime)
    assert await run_ids(runtime) == {"stuck"}


async def test_failed_versions_are_archived_after_30_days(runtime: Runtime) -> None:
    await stored(
        runtime,
        [
            version_row(1, "FAILED", 31),
            version_row(2, "FAILED", 29),
            version_row(3, "ARCHIVED", 90),
        ],
    )

    done = await clean_up(runtime)

    assert await statuses(runtime) == {1: "ARCHIVED", 2: "FAILED", 3: "ARCHIVED"}
    assert done.versions_archived == 1


async def test_the_cleanup_is_audited_with_its_counts(runtime: Runtime) -> None:
    await stored(runtime, [run_row("old_flat", 100, False), version_row(1, "FAILED", 40)])
    await clean_up(runtime)
    query = select(AuditLogRow.detail).where(AuditLogRow.action == "optimize.cleanup")
    async with sessionmaker(runtime.engine)() as session:
        details = (await session.execute(query)).scalars().all()
    assert details == [{"runs_deleted": 1, "versions_archived": 1}]
