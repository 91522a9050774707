"""SIGKILL the server while the engine sends 5,000 blocked trades with retries: after a
restart every acknowledged event is stored, and every event exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from storage.db import create_engine
from storage.tables import BlockedTradeRow, OutboxRow
from tests.process import BotProcess, free_port

TOKEN = "engine-token-ffffffffffffffff"
EVENTS = 5000
KILL_AFTER = 1500


def start(env: dict[str, str]) -> BotProcess:
    bot = BotProcess("run", env=env)
    bot.wait_for("paramadapt listening")
    return bot


async def send_with_retries(
    http: aiohttp.ClientSession, url: str, event_id: str, acknowledged: set[str]
) -> None:
    body = {
        "event_id": event_id,
        "timestamp": "2026-11-23T03:00:00+00:00",
        "symbol": "BTCUSDC",
        "signal": "BUY",
        "block_reason": "min_confidence",
    }
    while True:
        try:
            async with http.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                if r.status in (200, 201):
                    acknowledged.add(event_id)
                    return
        except (aiohttp.ClientError, ConnectionError):
            pass
        await asyncio.sleep(0.05)  # the server is down: retry, as an engine would


@pytest.mark.slow
async def test_every_acknowledged_event_survives_a_sigkill_exactly_once(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    config = tmp_path / "paramadapt.toml"
    config.write_text('[[api_tokens]]\nname = "engine"\ntoken_env = "T"\nscopes = ["engine"]\n')
    env = {
        "DATABASE_URL": database_url,
        "BACKUP_DIR": str(tmp_path / "backups"),
        "PORT": str(port),
        "PARAMADAPT_CONFIG": str(config),
        "T": TOKEN,
    }
    url = f"http://127.0.0.1:{port}/blocked-trades"
    acknowledged: set[str] = set()
    bot = await asyncio.to_thread(start, env)
    queue = asyncio.Queue[str]()
    for n in range(EVENTS):
        queue.put_nowait(f"ev-{n:05d}")

    async def worker(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            await send_with_retries(http, url, queue.get_nowait(), acknowledged)

    async def killer() -> None:
        nonlocal bot
        while len(acknowledged) < KILL_AFTER:
            await asyncio.sleep(0.01)
        bot.kill()  # SIGKILL: no shutdown, no flush
        bot = await asyncio.to_thread(start, env)

    connector = aiohttp.TCPConnector(limit=8)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(killer(), *(worker(http) for _ in range(8)))
    bot.stop()

    engine = create_engine(database_url)
    async with engine.connect() as connection:
        stored = set((await connection.execute(select(BlockedTradeRow.event_id))).scalars())
        rows = (
            await connection.execute(select(func.count()).select_from(BlockedTradeRow))
        ).scalar()
        alerts = (await connection.execute(select(func.count()).select_from(OutboxRow))).scalar()
    await engine.dispose()
    assert len(acknowledged) == EVENTS
    assert stored == acknowledged
    assert rows == EVENTS
    assert alerts == EVENTS  # each stored event kept exactly one queued alert
