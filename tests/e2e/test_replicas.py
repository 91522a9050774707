"""Two real `paramadapt run` processes on one PostgreSQL and one fake Slack.

Slack hands each event to one of the app's Socket Mode connections (the fake: round-robin),
so commands reach both replicas; only the replica holding the lease runs the jobs, timers
and outbox dispatchers. SIGKILL the holder and the other takes over within the lease time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.cli import main
from storage.db import create_engine, sessionmaker
from storage.outbox import SqlOutbox
from tests.e2e.conftest import ADMIN, APP_TOKEN, RISK, param
from tests.e2e.test_slack_run import CONFIG, ENGINE_TOKEN, environment, started, stopped
from tests.fakeslack import FakeSlack
from tests.process import BotProcess, free_port

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

LEASE_SECONDS = 3
LEADS = r"lease: replica (\S+) holds the lease"
STANDBY = r"lease: replica (\S+) is on standby"
SYMBOLS = ("AAAUSD", "BBBUSD", "CCCUSD")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def replica_env(tmp_path: Path, database_url: str, slack: FakeSlack) -> dict[str, str]:
    env = {**environment(tmp_path, database_url, slack), "SLACK_APP_TOKEN": APP_TOKEN}
    config = tmp_path / "replicas.toml"
    config.write_text(f"{CONFIG}\n[jobs]\nlease_seconds = {LEASE_SECONDS}\n")
    return {**env, "PARAMADAPT_CONFIG": str(config)}


@dataclass
class Replica:
    process: BotProcess
    url: str


async def replica(env: dict[str, str], role: str) -> Replica:
    """Start a replica on its own port; wait until it leads or stands by."""
    port = str(free_port())
    bot = await started({**env, "PORT": port}, LEADS if role == "leader" else STANDBY)
    await asyncio.to_thread(bot.wait_for, "Slack: connected in Socket Mode")
    return Replica(bot, f"http://127.0.0.1:{port}")


async def report(http: aiohttp.ClientSession, base: str, event_id: str, symbol: str) -> int:
    event = {
        "event_id": event_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "symbol": symbol,
        "signal": "BUY",
        "block_reason": "min_confidence",
    }
    headers = {"Authorization": f"Bearer {ENGINE_TOKEN}"}
    async with http.post(f"{base}/blocked-trades", json=event, headers=headers) as response:
        return response.status


async def lease_of(http: aiohttp.ClientSession, replica: Replica) -> Any:
    async with http.get(f"{replica.url}/readyz") as ready:
        return (await ready.json())["lease"]


async def delivered(database_url: str) -> None:
    """Every outbox message delivered and recorded as such."""
    engine = create_engine(database_url)
    outbox = SqlOutbox(sessionmaker(engine))
    try:
        for _ in range(200):
            if not await outbox.pending():
                return
            await asyncio.sleep(0.05)
        pytest.fail("the outbox was not drained")
    finally:
        await engine.dispose()


def alerted_symbols(slack: FakeSlack) -> Counter[str]:
    """How many alert messages show each symbol."""
    shown = [str(message) for message in slack.messages(RISK)]
    return Counter(symbol for text in shown for symbol in SYMBOLS if symbol in text)


@pytest.fixture
async def replicas(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> AsyncIterator[tuple[Replica, Replica]]:
    """The leader (started first) and a replica on standby, both connected to Slack."""
    env = replica_env(tmp_path, database_url, slack)
    leader = await replica(env, "leader")
    standby = await replica(env, "standby")
    try:
        await slack.wait_for_connections(2, timeout=10)
        yield leader, standby
    finally:
        if leader.process.proc.poll() is None:
            await stopped(leader.process)
        assert await stopped(standby.process) == 0


async def test_events_spread_over_both_replicas_are_each_handled_once(
    replicas: tuple[Replica, Replica],
    database_url: str,
    slack: FakeSlack,
    http: aiohttp.ClientSession,
) -> None:
    leader, standby = replicas
    answers = [await param(slack, "show min_confidence", ADMIN) for _ in range(6)]
    # One blocked trade to each replica, and one the engine sends to both at once.
    assert await report(http, leader.url, "r-1", "AAAUSD") == 201
    assert await report(http, standby.url, "r-2", "BBBUSD") == 201
    both = await asyncio.gather(
        report(http, leader.url, "r-3", "CCCUSD"), report(http, standby.url, "r-3", "CCCUSD")
    )
    await delivered(database_url)

    assert [len(slack.responses(a.response_url)) for a in answers] == [1] * 6
    assert len({ack.connection_id for ack in slack.acks()}) == 2  # both replicas answered
    assert sorted(both) == [200, 201]  # the same event id stored once
    assert alerted_symbols(slack) == Counter({"AAAUSD": 1, "BBBUSD": 1, "CCCUSD": 1})
    assert (await lease_of(http, leader), await lease_of(http, standby)) == ("held", "standby")


async def test_when_the_leader_is_killed_the_other_replica_takes_its_work_over(
    replicas: tuple[Replica, Replica],
    database_url: str,
    slack: FakeSlack,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    leader, standby = replicas
    await asyncio.to_thread(leader.process.kill)  # SIGKILL: the lease is not released
    took_over = await asyncio.to_thread(standby.process.wait_for, LEADS, LEASE_SECONDS + 10)
    assert await report(http, standby.url, "r-1", "AAAUSD") == 201
    await delivered(database_url)  # only the lease holder delivers alerts

    assert alerted_symbols(slack) == Counter({"AAAUSD": 1})
    assert await lease_of(http, standby) == "held"
    assert await asyncio.to_thread(main, ["jobs"], {"DATABASE_URL": database_url}) == 0
    assert f"lease holder: {took_over[1]};" in capsys.readouterr().out
