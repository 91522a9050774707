"""Scheduled jobs on SQLite and PostgreSQL: the misfire policy at start-up (on a clock the
test moves), one run of a job at a time, and outcomes any process can list."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.jobs import Jobs, job_runs, jobs_overview, overview_lines
from bot.jobs_config import JobsSettings
from bot.runtime import Runtime
from core import learning
from core.alerts import AlertStatus
from core.authz import Actor, Role
from storage.alert_store import SqlAlertStore
from storage.db import sessionmaker
from storage.job_store import Outcome
from tests.clock import MovableClock
from tests.e2e.conftest import block, blocked_event

NOW = datetime(2026, 11, 23, 12, 20, tzinfo=UTC)  # trade_threshold last fell due at 12:10
GRACE = timedelta(minutes=30)


@pytest.fixture
def settings(database_url: str, backup_dir: Path) -> Settings:
    jobs = JobsSettings(misfire_grace_seconds=int(GRACE.total_seconds()))
    return Settings(database_url=database_url, backup_dir=backup_dir, jobs=jobs)


class Calls:
    """Stands in for the use case a job runs: counts its runs, can be held or made to fail."""

    def __init__(self, fail: str = "") -> None:
        self.count = 0
        self.release = asyncio.Event()
        self.release.set()
        self._fail = fail

    async def __call__(self, _runtime: Runtime) -> str:
        self.count += 1
        await self.release.wait()
        if self._fail:
            raise RuntimeError(self._fail)
        return f"run {self.count}"


async def started(calls: Calls) -> None:
    while calls.count == 0:
        await asyncio.sleep(0.01)


def jobs(
    runtime: Runtime, clock: MovableClock, **functions: Callable[[Runtime], Awaitable[str]]
) -> Jobs:
    return Jobs(runtime, "replica-a", clock, functions)


async def ran_before(runtime: Runtime, job: str, at: datetime) -> None:
    """A previous process ran `job` at `at`, then went down."""
    clock = MovableClock(at)
    await jobs(runtime, clock, **{job: Calls()}).run(job)


async def test_a_run_missed_by_less_than_the_grace_period_runs_once_at_start_up(
    runtime: Runtime,
) -> None:
    await ran_before(runtime, "trade_threshold", datetime(2026, 11, 23, 9, 10, tzinfo=UTC))
    calls = Calls()

    # Down from 09:10 to 12:20: the 10:10, 11:10 and 12:10 runs were missed; they coalesce.
    await jobs(runtime, MovableClock(NOW), trade_threshold=calls).catch_up()

    assert calls.count == 1
    last = (await jobs_overview(runtime)).jobs[0].last
    assert last is not None and last.outcome is Outcome.OK
    assert last.scheduled_for == datetime(2026, 11, 23, 12, 10, tzinfo=UTC)


async def test_a_run_missed_by_more_than_the_grace_period_is_skipped_and_recorded(
    runtime: Runtime,
) -> None:
    await ran_before(runtime, "trade_threshold", datetime(2026, 11, 23, 9, 10, tzinfo=UTC))
    calls = Calls()
    late = MovableClock(datetime(2026, 11, 23, 12, 45, tzinfo=UTC))  # 35 min after 12:10

    await jobs(runtime, late, trade_threshold=calls).catch_up()
    await jobs(runtime, late, trade_threshold=calls).catch_up()  # and at the next restart

    assert calls.count == 0
    last = (await jobs_overview(runtime)).jobs[0].last
    assert last is not None and last.outcome is Outcome.SKIPPED
    assert last.message == "missed at 2026-11-23 12:10 UTC"


async def test_a_job_that_never_ran_has_missed_nothing(runtime: Runtime) -> None:
    calls = Calls()
    await jobs(runtime, MovableClock(NOW), trade_threshold=calls).catch_up()
    assert calls.count == 0


async def test_a_job_still_running_is_not_started_again(runtime: Runtime) -> None:
    calls = Calls()
    calls.release.clear()
    scheduler = jobs(runtime, MovableClock(NOW), cleanup=calls)
    first = asyncio.create_task(scheduler.run("cleanup"))
    await asyncio.wait_for(started(calls), timeout=10)

    await scheduler.run("cleanup")  # due again while the first run goes on
    calls.release.set()
    await first

    assert calls.count == 1


async def test_a_failed_run_is_recorded_with_its_error_for_every_replica_to_see(
    runtime: Runtime,
) -> None:
    failing = Calls(fail="the engine is unreachable")
    await jobs(runtime, MovableClock(NOW), performance_monitor=failing).run("performance_monitor")

    lines = overview_lines(await jobs_overview(runtime))

    monitor = next(line for line in lines if line.startswith("performance_monitor"))
    assert "last: error at 2026-11-23 12:20 UTC: RuntimeError: the engine is unreachable" in monitor


async def test_the_overview_lists_every_job_with_its_next_run_and_no_lease_holder(
    runtime: Runtime,
) -> None:
    at_noon = dataclasses.replace(runtime.deps, clock=MovableClock(NOW))
    overview = await jobs_overview(dataclasses.replace(runtime, deps=at_noon))

    next_runs = {job.name: job.next_run for job in overview.jobs}
    assert next_runs == {
        "trade_threshold": datetime(2026, 11, 23, 13, 10, tzinfo=UTC),
        "weekly_optimization": datetime(2026, 11, 29, 3, 0, tzinfo=UTC),
        "performance_monitor": datetime(2026, 11, 23, 18, 0, tzinfo=UTC),
        "daily_digest": datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
        "weekly_digest": datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        "cleanup": datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
    }
    assert overview.lease_holder is None


def test_paramadapt_jobs_lists_every_job(
    database_url: str, backup_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"DATABASE_URL": database_url, "BACKUP_DIR": str(backup_dir)}
    assert main(["jobs"], env) == 0
    out = capsys.readouterr().out
    assert "lease holder: none (no replica runs jobs now); schedules in UTC" in out
    assert "weekly_optimization  0 3 * * sun " in out
    assert out.count("last: never ran") == 7  # six scheduled jobs and the learning-session end
    assert "learning_end         a session's end    next none due" in out


async def test_starting_the_scheduler_catches_up_without_holding_up_the_start(
    runtime: Runtime,
) -> None:
    await ran_before(runtime, "trade_threshold", datetime(2026, 11, 23, 12, 5, tzinfo=UTC))
    calls = Calls()
    calls.release.clear()  # the missed run takes its time
    scheduler = jobs(runtime, MovableClock(NOW), trade_threshold=calls)

    await scheduler.start()  # returns; the missed run goes on in the background
    await asyncio.wait_for(started(calls), timeout=10)
    calls.release.set()
    await scheduler.stop()  # and stopping lets it finish

    last = (await jobs_overview(runtime)).jobs[0].last
    assert last is not None and (last.outcome, last.message) == (Outcome.OK, "run 1")


async def test_the_overview_shows_when_the_running_session_ends_and_an_alert_expires(
    runtime: Runtime,
) -> None:
    admin = Actor.having("U0ADMIN", "slack", Role.ADMIN)
    session = await learning.start_learning_session(runtime.deps, admin, 30, "see")
    [trade] = await block(runtime, blocked_event())
    alerts = SqlAlertStore(sessionmaker(runtime.engine))
    await alerts.attach([trade.id], "C0RISK", "1700000000.000100", AlertStatus.POSTED)

    timers = {timer.name: timer for timer in (await jobs_overview(runtime)).timers}

    assert timers["learning_end"].next_run == session.planned_end_at
    stored = await runtime.deps.trades.blocked_trade(trade.id)
    assert stored is not None
    expires = stored.received_at + runtime.deps.policy.alert_ttl
    assert timers["alert_expiry"].next_run == expires


async def test_the_overview_says_which_session_the_timer_ended_last(runtime: Runtime) -> None:
    admin = Actor.having("U0ADMIN", "slack", Role.ADMIN)
    await learning.start_learning_session(runtime.deps, admin, 30, "see")
    ended = await learning.stop_learning_session(runtime.deps, admin, "enough")

    (learning_end,) = [t for t in (await jobs_overview(runtime)).timers if t.name == "learning_end"]

    assert learning_end.next_run is None
    assert learning_end.last.startswith(f"ended session {ended.id} at ")


async def test_a_skipped_run_says_in_utc_when_it_was_due(runtime: Runtime) -> None:
    runs = job_runs(runtime)
    in_paris = datetime(2026, 3, 29, 8, 0, tzinfo=timezone(timedelta(hours=2)))

    await runs.skipped("daily_digest", "r1", in_paris, NOW)

    assert (await runs.latest())["daily_digest"].message == "missed at 2026-03-29 06:00 UTC"
