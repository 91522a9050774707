"""Sustained load: the real `paramadapt run` in Socket Mode against the fake Slack, the
simulated engine (bot.simulate) reporting blocked and closed trades at a steady rate, and
`/param show` slash commands in parallel.

Reports errors (bot refusals, 5xx retries, unanswered commands, ERROR lines in the bot's log:
all must be 0), p50/p99 latency of ingest requests and of command acks, the bot's RSS over
time, and whether everything the bot acknowledged was stored and alerted. The optimizer's
trade-count trigger is set out of reach: this measures ingest, alerts and commands.

Usage, from the repository root:
  .venv/bin/python bench/bench_load.py [--minutes 10] [--rate 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

from bot.simulate import SimulateOptions, SimulationStopped, Simulator, Tally, sim_symbols
from storage.db import create_engine
from tests.e2e.conftest import APP_TOKEN, BOT_TOKEN, RISK, VIEWER
from tests.fakeslack import FakeSlack
from tests.process import BotProcess, free_port

ENGINE_TOKEN = "load-engine-token-0123456789"
CONFIG = f"""
[slack]
risk_channel = "{RISK}"

[roles]
viewer = ["{VIEWER}"]

[[api_tokens]]
name = "engine"
token_env = "ENGINE_API_TOKEN"
scopes = ["engine"]

[optimizer]
trade_threshold = 100000000        # no optimizer runs: ingest, alerts and commands only
"""
SYMBOLS = ("BTC-SIM", "ETH-SIM", "EUR-SIM", "SOL-SIM", "GBP-SIM", "XAU-SIM")
INGEST_PATHS = ("/blocked-trades", "/trades")
RSS_SECONDS = 5.0
CONNECTIONS = 4  # as an engine with a few workers: the rate holds when a request is slow
DRAIN_SECONDS = 120.0


@dataclass
class LoadReport:
    database: str
    seconds: float = 0.0
    rate: float = 0.0
    blocked_sent: int = 0
    closed_sent: int = 0
    blocked_stored: int = 0
    closed_stored: int = 0
    unalerted: int = 0  # stored blocked trades no Slack message shows
    alert_messages: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    ingest_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)

    @property
    def lost(self) -> int:
        return self.blocked_sent - self.blocked_stored + self.closed_sent - self.closed_stored

    def rss_by_minute(self) -> list[tuple[int, float]]:
        """The largest sample of each minute."""
        minutes: dict[int, float] = {}
        for seconds, megabytes in self.rss_mb:
            minute = int(seconds // 60)
            minutes[minute] = max(minutes.get(minute, 0.0), megabytes)
        return sorted(minutes.items())

    def lines(self) -> list[str]:
        sent = self.blocked_sent + self.closed_sent
        return [
            f"load on {self.database}: {self.seconds:.0f} s at {sent / self.seconds:.1f} "
            f"events/s (asked {self.rate:g}), {len(self.ack_ms)} /param show commands",
            f"  errors {len(self.errors)}, retries (429/503) {self.retries}",
            *(f"    {error}" for error in self.errors[:10]),
            f"  blocked trades: sent {self.blocked_sent}, stored {self.blocked_stored}, "
            f"without an alert {self.unalerted} ({self.alert_messages} alert messages)",
            f"  closed trades:  sent {self.closed_sent}, stored {self.closed_stored}",
            f"  ingest latency  {_percentiles(self.ingest_ms)}",
            f"  command ack     {_percentiles(self.ack_ms)}",
            "  minute  RSS MB",
            *(f"  {minute:6d}  {mb:6.1f}" for minute, mb in self.rss_by_minute()),
        ]


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms, max {max(values):.1f} ms"


async def run_load(
    database_url: str, workdir: Path, minutes: float, rate: float, command_every: float = 1.0
) -> LoadReport:
    report = LoadReport(database=database_url.split(":", 1)[0], rate=rate)
    config = workdir / "load.toml"
    config.write_text(CONFIG)
    async with FakeSlack() as slack:
        port = free_port()
        env = {
            "DATABASE_URL": database_url,
            "BACKUP_DIR": str(workdir / "backups"),
            "PORT": str(port),
            "PARAMADAPT_CONFIG": str(config),
            "ENGINE_API_TOKEN": ENGINE_TOKEN,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.api_url,
            "LOG_LEVEL": "INFO",
        }
        bot = BotProcess("run", env=env)
        try:
            await asyncio.to_thread(bot.wait_for, "Slack: connected in Socket Mode", 60)
            tally, run_id = await _drive(report, slack, bot, f"http://127.0.0.1:{port}", minutes)
            await _check_stored(report, database_url, run_id, tally)
            report.alert_messages = len(slack.messages(RISK))
            exit_code = await asyncio.to_thread(bot.stop, signal.SIGTERM, 30)
            if exit_code != 0:
                report.errors.append(f"the bot exited with status {exit_code}")
        finally:
            if bot.proc.poll() is None:
                bot.kill()
    report.errors += [line for line in bot.lines if " ERROR " in line or "Traceback" in line]
    return report


async def _drive(
    report: LoadReport, slack: FakeSlack, bot: BotProcess, url: str, minutes: float
) -> tuple[Tally, str]:
    """The engine, the commands and the RSS sampler together, for `minutes`."""
    stop = asyncio.Event()
    options = SimulateOptions(
        url=url,
        token=ENGINE_TOKEN,
        rate=report.rate,
        symbols=sim_symbols([(name, None) for name in SYMBOLS]),
        minutes=minutes,
        seed=1,
        history_days=1,
        connections=CONNECTIONS,
        quiet=True,
    )
    simulator = Simulator(options, stop)
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        engine = asyncio.create_task(simulator.run(http))
        side_tasks = [
            asyncio.create_task(_commands(report, slack, engine)),
            asyncio.create_task(_sample_rss(report, bot.proc.pid, engine, started)),
        ]
        try:
            await engine
        except SimulationStopped as error:
            report.errors.append(f"the simulated engine stopped: {error}")
        finally:
            stop.set()
            await asyncio.gather(*side_tasks)
    report.seconds = time.monotonic() - started
    tally = simulator.tally
    report.blocked_sent, report.closed_sent = len(tally.blocked), len(tally.closed)
    report.retries = tally.retries
    report.ingest_ms = [1000 * s for path in INGEST_PATHS for s in tally.latencies.get(path, [])]
    return tally, simulator.run_id


async def _commands(report: LoadReport, slack: FakeSlack, engine: asyncio.Task[Tally]) -> None:
    while not engine.done():
        try:
            ack = await slack.slash_command("/param", "show", user_id=VIEWER, timeout=10)
            report.ack_ms.append(1000 * ack.latency)
        except (TimeoutError, AssertionError) as error:
            report.errors.append(f"/param show not acknowledged: {error!r}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(engine), 1.0)


async def _sample_rss(
    report: LoadReport, pid: int, engine: asyncio.Task[Tally], started: float
) -> None:
    while not engine.done():
        status = Path(f"/proc/{pid}/status").read_text()
        kilobytes = next(int(line.split()[1]) for line in status.splitlines() if "VmRSS" in line)
        report.rss_mb.append((time.monotonic() - started, kilobytes / 1024))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(engine), RSS_SECONDS)


async def _check_stored(report: LoadReport, database_url: str, run_id: str, tally: Tally) -> None:
    """Counts the run's rows; waits for the outbox to bring every blocked trade to Slack."""
    engine = create_engine(database_url)
    prefix = {"prefix": f"{run_id}-%"}
    try:
        async with engine.connect() as connection:
            deadline = time.monotonic() + DRAIN_SECONDS
            while True:
                report.blocked_stored, report.unalerted = (
                    await connection.execute(
                        text(
                            "SELECT count(*), count(*) - count(alert_ts) FROM blocked_trades "
                            "WHERE event_id LIKE :prefix"
                        ),
                        prefix,
                    )
                ).one()
                await connection.rollback()  # a fresh snapshot on the next round
                if report.unalerted == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            report.closed_stored = (
                await connection.execute(
                    text("SELECT count(*) FROM trades WHERE trade_id LIKE :prefix"), prefix
                )
            ).scalar_one()
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="duration (10)")
    parser.add_argument("--rate", type=float, default=50.0, help="engine events per second (50)")
    parser.add_argument(
        "--database-url", help="e.g. postgresql://postgres@127.0.0.1:5432/load (default: SQLite)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/load.db"
        report = asyncio.run(run_load(url, Path(tmp), args.minutes, args.rate))
    print("\n".join(report.lines()))
    sys.exit(1 if report.errors or report.lost or report.unalerted else 0)


if __name__ == "__main__":
    main()
