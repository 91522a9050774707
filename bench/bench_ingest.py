"""Sustained engine ingest over loopback, against the real `paramadapt run` process.

Single events with keep-alive (events/s, p50/p99 latency) and batches of 100, on SQLite
and on PostgreSQL (when reachable). Usage: python bench/bench_ingest.py [--events N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.process import BotProcess, free_port

TOKEN = "bench-engine-token-0123456789"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def event(n: int, run: str) -> dict[str, object]:
    return {
        "event_id": f"{run}-{n}",
        "timestamp": "2026-11-23T03:00:00+00:00",
        "symbol": "BTCUSDC",
        "signal": "BUY",
        "block_reason": "min_confidence",
        "confidence": 0.61,
        "price": 97000.0,
    }


async def single_events(url: str, count: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    run = uuid.uuid4().hex[:6]
    numbers = iter(range(count))
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def client(http: aiohttp.ClientSession) -> None:
        for n in numbers:
            started = time.perf_counter()
            async with http.post(url, json=event(n, run), headers=headers) as response:
                assert response.status == 201, await response.text()
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)  # keep-alive connections
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return count / (time.perf_counter() - started), latencies


async def batches(url: str, count: int, size: int) -> float:
    run = uuid.uuid4().hex[:6]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        for first in range(0, count, size):
            body = {"events": [event(n, run) for n in range(first, first + size)]}
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == 201, await response.text()
        return count / (time.perf_counter() - started)


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] * 1000


async def measure(name: str, database_url: str, events: int, workdir: Path) -> None:
    port = free_port()
    config = workdir / f"{name}.toml"
    config.write_text('[[api_tokens]]\nname = "engine"\ntoken_env = "T"\nscopes = ["engine"]\n')
    env = {
        "DATABASE_URL": database_url,
        "BACKUP_DIR": str(workdir / "backups"),
        "PORT": str(port),
        "PARAMADAPT_CONFIG": str(config),
        "T": TOKEN,
    }
    bot = BotProcess("run", env=env)
    try:
        bot.wait_for("paramadapt listening")
        url = f"http://127.0.0.1:{port}/blocked-trades"
        for concurrency in (1, 8):
            rate, latencies = await single_events(url, events, concurrency)
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            print(
                f"{name:10s} single events, {concurrency} connection(s): {rate:7.0f} events/s"
                f"  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
            )
        rate = await batches(url, events * 4, 100)
        print(f"{name:10s} batches of 100:              {rate:7.0f} events/s")
    finally:
        bot.stop()


async def postgres_database() -> str | None:
    try:
        connection = await asyncpg.connect(POSTGRES, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    name = f"pa_bench_{uuid.uuid4().hex[:8]}"
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return name


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="300 events")
    args = parser.parse_args()
    events = 300 if args.quick else args.events
    print(f"ingest benchmark: {events} single events per run, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        await measure("sqlite", f"sqlite+aiosqlite:///{workdir / 'bench.db'}", events, workdir)
        database = await postgres_database()
        if database is None:
            print("postgresql not reachable: skipped")
            return
        try:
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
            await measure("postgresql", url, events, workdir)
        finally:
            connection = await asyncpg.connect(POSTGRES)
            await connection.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
            await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
