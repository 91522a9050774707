"""Wires storage into core for one process: the engine, the repositories, the Deps."""

from __future__ import annotations

import getpass
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.workers import BackgroundTasks, ProcessPool
from core.authz import Actor, Role
from core.ports import Deps, IdempotencyStore, OptimizerPorts
from storage import migrate
from storage.backups import FileBackups
from storage.candle_store import SqlCandleStore
from storage.config_store import SqlConfigStore
from storage.db import create_engine, sessionmaker
from storage.idempotency import SqlIdempotencyStore
from storage.learning_store import SqlLearningStore
from storage.market_source import MarketDataSource
from storage.optimization_store import SqlOptimizationStore
from storage.outbox import SqlOutbox
from storage.studies import study_storage
from storage.trade_store import SqlTradeStore

SlackStatus = Literal["connected", "disconnected", "not configured"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Runtime:
    """One process's wiring. Components started later (Slack) may set their hooks here."""

    settings: Settings
    engine: AsyncEngine
    store: SqlConfigStore
    trades: SqlTradeStore
    outbox: SqlOutbox
    deps: Deps
    idempotency: IdempotencyStore  # the HTTP API's Idempotency-Key header
    background: BackgroundTasks = field(default_factory=BackgroundTasks)  # optimization runs
    wakers: list[Callable[[], None]] = field(default_factory=list)

    slack_status: Callable[[], SlackStatus] = lambda: "not configured"
    # Whether this replica holds the lease, so runs the jobs and timers (bot.lease).
    holds_lease: Callable[[], bool] = lambda: False

    def wake_dispatchers(self) -> None:
        """Something was enqueued: let the outbox dispatchers look now, not at their next poll."""
        for wake in self.wakers:
            wake()

    async def database_ready(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True


@asynccontextmanager
async def open_runtime(settings: Settings, *, upgrade: bool = True) -> AsyncIterator[Runtime]:
    engine = create_engine(settings.database_url)
    pool, background = ProcessPool(settings.optimizer.workers), BackgroundTasks()
    try:
        if upgrade:
            await migrate.upgrade(engine)
        sessions = sessionmaker(engine)
        push = bool(settings.engine_callback_url)
        store = SqlConfigStore(sessions, push_to_engine=push)
        trades = SqlTradeStore(sessions, push_to_engine=push)
        deps = Deps(
            schema=settings.schema,
            config=store,
            audit=store,
            backups=FileBackups(settings.backup_dir),
            trades=trades,
            clock=SystemClock(),
            learning=SqlLearningStore(sessions),
            policy=settings.policy,
            learning_policy=settings.learning,
            counterfactual=settings.blocked_insights,
            optimizer=_optimizer_ports(settings, sessions, pool, background),
        )
        outbox, keys = SqlOutbox(sessions), SqlIdempotencyStore(sessions)
        yield Runtime(settings, engine, store, trades, outbox, deps, keys, background)
    finally:
        await background.close()  # a run still going records itself as interrupted
        pool.shutdown()
        await engine.dispose()


def _optimizer_ports(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    pool: ProcessPool,
    background: BackgroundTasks,
) -> OptimizerPorts:
    policy = settings.optimizer.policy
    candles = SqlCandleStore(sessions)
    return OptimizerPorts(
        market=MarketDataSource(settings.market_data_dir, candles, policy.max_gap_bars),
        candles=candles,
        runs=SqlOptimizationStore(sessions),
        compute=pool,
        background=background,
        policy=policy,
        study_storage=study_storage(
            settings.database_url, settings.optimizer.journal_path(settings.backup_dir)
        ),
        code_version=code_version(),
    )


@cache
def code_version() -> str:
    """The package version and, in a git checkout, the commit: recorded with each run."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"paramadapt {version('paramadapt')}" + (f" ({commit})" if commit else "")


def cli_actor() -> Actor:
    """Whoever can run the CLI on the host has the database too: they act as admin."""
    return Actor.having(f"cli:{getpass.getuser()}", "cli", Role.ADMIN)
