"""Scheduled jobs on APScheduler's AsyncIOScheduler; only the replica holding the lease
(bot.lease) runs them.

Each job calls the same core use case as every other entry point and returns a one-line
summary. Nothing about the schedule is stored: at start-up it is derived from the [jobs]
settings, and the job_runs table (storage.job_store) says what ran last, so the misfire
policy survives restarts and replacement by another replica:

- a run missed while no replica ran jobs, by less than `misfire_grace_seconds`, runs once
  at start-up (several missed runs of one job coalesce into that one);
- one missed by more is skipped, logged and recorded as skipped;
- a job that never ran has missed nothing.

No job runs twice at the same time: APScheduler coalesces and allows one instance, and
the start-up catch-up goes through the same guard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.event_announcer import report_error
from bot.jobs_config import JobsSettings
from bot.lease import LEADER_LEASE
from bot.runtime import Runtime
from core.digest import PERIODS
from core.optimization import (
    check_live_performance,
    clean_up_history,
    scheduled_optimization,
    start_due_runs,
)
from core.optimization_model import OptimizationRun
from core.ports import Clock
from storage.alert_store import SqlAlertStore
from storage.db import sessionmaker
from storage.job_store import JobRun, Outcome, SqlJobRuns
from storage.leases import SqlLeases

log = logging.getLogger(__name__)

JobFunction = Callable[[Runtime], Awaitable[str]]
_TICK = timedelta(microseconds=1)
_STOP_GRACE_SECONDS = 30.0


async def _trade_threshold(runtime: Runtime) -> str:
    return _started(await start_due_runs(runtime.deps))


async def _weekly_optimization(runtime: Runtime) -> str:
    return _started(await scheduled_optimization(runtime.deps))


async def _performance_monitor(runtime: Runtime) -> str:
    checks = await check_live_performance(runtime.deps)
    found = ", ".join(f"{check.scope}: {check.action.value}" for check in checks)
    return found or "no active versions to check"


async def _cleanup(runtime: Runtime) -> str:
    done = await clean_up_history(runtime.deps)
    return (
        f"{done.runs_deleted} runs without improvement deleted, "
        f"{done.versions_archived} FAILED versions archived"
    )


def _digest(kind: Literal["daily", "weekly"]) -> JobFunction:
    async def post(runtime: Runtime) -> str:
        from bot.digests import post_digest  # loads matplotlib: only once a digest is due

        trigger, now = runtime.settings.jobs.trigger(f"{kind}_digest"), runtime.deps.clock.now()
        since, until = digest_window(trigger, kind, now)
        await post_digest(runtime, kind, since, until)
        return f"{kind} digest of {_shown(since)} to {_shown(until)} posted"

    return post


def digest_window(
    trigger: CronTrigger, kind: Literal["daily", "weekly"], now: datetime
) -> tuple[datetime, datetime]:
    """From the digest's previous scheduled time to its latest one at or before `now`: a run
    caught up late still covers its own period, and consecutive digests neither overlap nor
    leave a gap (across a daylight-saving change too: the schedule's own times)."""
    span = 2 * PERIODS[kind]
    until = latest_fire_time(trigger, now - span, now) or now
    since = latest_fire_time(trigger, until - span, until - _TICK) or until - PERIODS[kind]
    return since.astimezone(UTC), until.astimezone(UTC)


def _started(runs: list[OptimizationRun]) -> str:
    return ", ".join(f"{run.scope} run {run.run_id} started" for run in runs) or "nothing due"


JOBS: Mapping[str, JobFunction] = {
    "trade_threshold": _trade_threshold,
    "weekly_optimization": _weekly_optimization,
    "performance_monitor": _performance_monitor,
    "daily_digest": _digest("daily"),
    "weekly_digest": _digest("weekly"),
    "cleanup": _cleanup,
}


def job_runs(runtime: Runtime) -> SqlJobRuns:
    return SqlJobRuns(sessionmaker(runtime.engine))


class Jobs:
    """The scheduler: a component the lease holder starts and stops."""

    def __init__(
        self,
        runtime: Runtime,
        replica: str,
        clock: Clock | None = None,
        jobs: Mapping[str, JobFunction] = JOBS,
    ) -> None:
        self._runtime = runtime
        self._settings = runtime.settings.jobs
        self._replica = replica
        self._clock = clock or runtime.deps.clock
        self._jobs = dict(jobs)
        self._runs = job_runs(runtime)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self._catching_up: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Each run is logged below with its outcome; APScheduler's own lines would double them.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        scheduler = AsyncIOScheduler(timezone=self._settings.zone)
        for name in self._jobs:
            scheduler.add_job(
                self.run,
                trigger=self._settings.trigger(name),
                args=[name],
                id=name,
                name=name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(1, self._settings.misfire_grace_seconds),
            )
        scheduler.start()
        self._scheduler = scheduler
        # In the background: a missed digest must not hold up the HTTP server's start.
        self._catching_up = asyncio.create_task(self.catch_up(), name="jobs:catch-up")

    async def stop(self) -> None:
        if self._scheduler is None:
            return
        self._scheduler.pause()  # no new runs; those running finish (APScheduler would cancel)
        busy = [*self._running.values(), *([self._catching_up] if self._catching_up else [])]
        if busy:
            await asyncio.wait(busy, timeout=_STOP_GRACE_SECONDS)
        self._scheduler.shutdown(wait=False)
        self._scheduler = self._catching_up = None

    async def catch_up(self) -> None:
        """Apply the misfire policy to runs missed while no replica ran jobs."""
        now = self._clock.now()
        try:
            latest = await self._runs.latest()
        except Exception:
            log.exception("jobs: cannot read past runs; missed runs wait for their next time")
            return
        for name in self._jobs:
            last = latest.get(name)
            missed = None if last is None else self._missed(name, last.scheduled_for, now)
            if missed is None:
                continue
            try:  # one job's trouble must not keep the others from catching up
                await self._catch_up(name, missed, now)
            except Exception as error:
                log.exception("job %s: could not catch up the run missed at %s", name, missed)
                await report_error(self._runtime, f"scheduled job {name}", repr(error))

    async def _catch_up(self, name: str, missed: datetime, now: datetime) -> None:
        if now - missed <= self._settings.misfire_grace:
            log.info("job %s: missed at %s; running it once now", name, _shown(missed))
            await self.run(name, missed)
        else:
            log.warning(
                "job %s: missed at %s, more than %d s ago; skipped until its next time",
                name,
                _shown(missed),
                self._settings.misfire_grace_seconds,
            )
            await self._runs.skipped(name, self._replica, missed, now)

    def _missed(self, name: str, after: datetime, now: datetime) -> datetime | None:
        """The latest time the job was due after `after` and at or before `now`."""
        return latest_fire_time(self._settings.trigger(name), after, now)

    async def run(self, name: str, scheduled_for: datetime | None = None) -> None:
        """Run one job now and record its outcome; refused while it is already running."""
        if name in self._running:
            log.warning("job %s: still running; this run is skipped", name)
            return
        task = asyncio.current_task()
        assert task is not None  # always called from a coroutine the loop runs
        self._running[name] = task
        try:
            await self._execute(name, scheduled_for or self._clock.now())
        finally:
            del self._running[name]

    async def _execute(self, name: str, scheduled_for: datetime) -> None:
        run_id = await self._runs.started(name, self._replica, scheduled_for, self._clock.now())
        try:
            summary = await self._jobs[name](self._runtime)
        except Exception as error:
            log.exception("job %s failed", name)
            outcome, summary = Outcome.ERROR, f"{type(error).__name__}: {error}"
            await report_error(self._runtime, f"scheduled job {name}", summary)
        else:
            log.info("job %s: %s", name, summary)
            outcome = Outcome.OK
        await self._runs.finished(run_id, outcome, summary, self._clock.now())


def latest_fire_time(trigger: CronTrigger, after: datetime, now: datetime) -> datetime | None:
    """The last time `trigger` fires in (after, now], if any."""
    fire = trigger.get_next_fire_time(None, after + _TICK)
    latest = None
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(None, fire + _TICK)
    return latest


# --- what `paramadapt jobs` and `/param jobs` show ----------------------------------------


@dataclass(frozen=True)
class JobStatus:
    name: str
    schedule: str
    next_run: datetime | None
    last: JobRun | None


@dataclass(frozen=True)
class TimerStatus:
    """A timer the lease holder keeps outside the scheduler, read from what it acts on."""

    name: str
    schedule: str
    next_run: datetime | None
    last: str


@dataclass(frozen=True)
class JobsOverview:
    jobs: list[JobStatus]
    timezone: str
    lease_holder: str | None  # None: no replica runs jobs now
    timers: list[TimerStatus] = field(default_factory=list)


async def jobs_overview(runtime: Runtime) -> JobsOverview:
    """Every job with its schedule, next run and last outcome, from any process."""
    settings: JobsSettings = runtime.settings.jobs
    now = runtime.deps.clock.now()
    latest = await job_runs(runtime).latest()
    lease = await SqlLeases(sessionmaker(runtime.engine)).current(LEADER_LEASE)
    jobs = [
        JobStatus(
            name,
            settings.schedules[name],
            settings.trigger(name).get_next_fire_time(None, now),
            latest.get(name),
        )
        for name in JOBS
    ]
    holder = lease.holder if lease is not None and lease.expires_at > now else None
    timers = [await _learning_end(runtime), await _alert_expiry(runtime)]
    return JobsOverview(jobs, settings.timezone, holder, timers)


async def _learning_end(runtime: Runtime) -> TimerStatus:
    store = runtime.deps.learning
    running, ended = await store.active(), await store.last_ended()
    last = "never ran"
    if ended is not None and ended.ended_at is not None:
        last = f"ended session {ended.id} at {_shown(ended.ended_at)} ({ended.ended_by})"
    upcoming = running.planned_end_at if running else None
    return TimerStatus("learning_end", "a session's end", upcoming, last)


async def _alert_expiry(runtime: Runtime) -> TimerStatus:
    ttl = runtime.deps.policy.alert_ttl
    waiting = await SqlAlertStore(sessionmaker(runtime.engine)).longest_waiting()
    minutes = f"{ttl.total_seconds() / 60:g}"  # 15, or 0.5 for a fractional setting
    return TimerStatus(
        "alert_expiry", f"{minutes} min unanswered", waiting + ttl if waiting else None, "not kept"
    )


def _shown(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def overview_lines(overview: JobsOverview) -> list[str]:
    """Plain text, one line per job (the CLI prints it, /param shows it monospaced)."""
    holder = overview.lease_holder or "none (no replica runs jobs now)"
    lines = [f"lease holder: {holder}; schedules in {overview.timezone}"]
    rows = [(job.name, job.schedule, job.next_run, _last(job.last)) for job in overview.jobs]
    rows += [(t.name, t.schedule, t.next_run, t.last) for t in overview.timers]
    width = max(len(name) for name, *_ in rows)
    every = max(len(schedule) for _, schedule, *_ in rows)
    for name, schedule, next_run, last in rows:
        upcoming = _shown(next_run) if next_run else "none due"
        lines.append(f"{name:<{width}}  {schedule:<{every}}  next {upcoming}  last: {last}")
    return lines


def _last(run: JobRun | None) -> str:
    if run is None:
        return "never ran"
    if run.outcome is None:
        return f"running since {_shown(run.started_at)} on {run.replica}"
    return f"{run.outcome.value} at {_shown(run.finished_at or run.started_at)}: {run.message}"
