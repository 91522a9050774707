"""Slash-command ack latency: envelope sent by Slack -> ack received, over Socket Mode.

The real bot (Bolt AsyncApp, role middleware, SQLite runtime) against the fake Slack on
127.0.0.1; 500 `/param show` commands one after another, then p50/p99. Run from the repo
root: `.venv/bin/python bench/bench_slack_ack.py [COUNT]`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

from bot.app import SlackTiming
from bot.config import Settings
from bot.runtime import open_runtime
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


async def measure(count: int) -> list[float]:
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
            )
            async with open_runtime(settings) as runtime, running_bot(runtime, SlackTiming()):
                await slack.wait_for_connections(1)
                await slack.slash_command("/param", "show", user_id=VIEWER)  # warm-up
                acks = [
                    await slack.slash_command("/param", "show", user_id=VIEWER)
                    for _ in range(count)
                ]
    return [ack.latency * 1000 for ack in acks]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    latencies = sorted(asyncio.run(measure(count)))
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * len(latencies)) - 1)]
    print(f"slash-command ack latency over {count} commands (ms)")
    mean = statistics.fmean(latencies)
    print(f"  p50 {p50:.2f}  p99 {p99:.2f}  max {latencies[-1]:.2f}  mean {mean:.2f}")


if __name__ == "__main__":
    main()
