"""Slash-command ack latency: envelope sent by Slack -> ack received, over Socket Mode.

The real bot (Bolt AsyncApp, role middleware, SQLite runtime, outbox dispatcher) against the
fake Slack on 127.0.0.1; `/param show` commands one after another, p50/p99 twice:

- idle: nothing else runs (target p99 < 20 ms);
- during optimization: optimization cycles of HIGH (the spec grid, on the real candles of
  ../shared/data) run back to back in the process pool, each concluded, stored and
  announced with its equity chart, while the commands come in (target p99 < 100 ms).

Run from the repo root: `.venv/bin/python bench/bench_slack_ack.py [COUNT]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

from bot.app import SlackTiming
from bot.config import Settings
from bot.optimizer_config import OptimizerSettings
from bot.runtime import Runtime, open_runtime
from core import optimization, services
from core.params import Scope
from tests.clock import MovableClock
from tests.e2e.conftest import (
    APP_TOKEN,
    BOT_TOKEN,
    ROLES,
    TRADER,
    TRADERS,
    VIEWER,
    running_bot,
)
from tests.fakeslack import FakeSlack
from tests.integration.test_optimization import ADMIN, BASELINE, DATA, HIGH, NOW, POLICY

TARGETS = {"idle": 20.0, "during optimization": 100.0}  # p99, ms


async def acks(slack: FakeSlack, count: int) -> list[float]:
    """Latencies (ms) of `count` slash commands sent one after another."""
    latencies = []
    for _ in range(count):
        ack = await slack.slash_command("/param", "show", user_id=VIEWER)
        latencies.append(ack.latency * 1000)
    return latencies


@contextlib.asynccontextmanager
async def optimizing(runtime: Runtime) -> AsyncIterator[list[str]]:
    """Optimization cycles back to back until the block ends; yields the runs finished."""
    finished: list[str] = []
    stop = asyncio.Event()

    async def cycles() -> None:
        while not stop.is_set():
            report = await optimization.optimize(runtime.deps, ADMIN, HIGH)
            assert report.run is not None
            finished.append(report.run.run_id)
            runtime.wake_dispatchers()

    task = asyncio.create_task(cycles())
    try:
        yield finished
    finally:
        stop.set()
        await task


async def measure(count: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSlack() as slack:
            slack.set_usergroup(TRADERS, [TRADER])
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
                backup_dir=Path(tmp) / "backups",
                slack_bot_token=BOT_TOKEN,
                slack_app_token=APP_TOKEN,
                slack_api_url=slack.api_url,
                roles=ROLES,
                market_data_dir=DATA,
                optimizer=OptimizerSettings(POLICY),
            )
            async with open_runtime(settings) as runtime:
                runtime.deps = dataclasses.replace(runtime.deps, clock=MovableClock(NOW))
                for name, value in BASELINE.items():
                    await services.set_parameter(
                        runtime.deps, ADMIN, Scope.HIGH, name, value, "bench"
                    )
                async with running_bot(runtime, SlackTiming()):
                    await slack.wait_for_connections(1)
                    await slack.slash_command("/param", "show", user_id=VIEWER)  # warm-up
                    idle = await acks(slack, count)
                    async with optimizing(runtime) as runs:
                        during = await acks(slack, count)
                    print(f"{len(runs)} optimization cycles ran during the second measurement")
    return {"idle": idle, "during optimization": during}


def report(label: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
    verdict = "ok" if p99 < TARGETS[label] else "OVER TARGET"
    print(
        f"  {label:<20} p50 {p50:6.2f}  p99 {p99:6.2f}  max {ordered[-1]:6.2f}  "
        f"mean {statistics.fmean(ordered):6.2f}  (p99 target < {TARGETS[label]:g}: {verdict})"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    measured = asyncio.run(measure(count))
    print(f"slash-command ack latency over {count} commands each (ms)")
    for label, latencies in measured.items():
        report(label, latencies)


if __name__ == "__main__":
    main()
