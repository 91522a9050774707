"""`paramadapt simulate` against the live HTTP server: what it reports is stored, it stops
cleanly, and a token the bot does not accept stops it with a clear error."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot import cli
from bot.simulate import EngineClient, SimulateOptions, Simulator, Tally, sim_symbols
from core.simulation import SIMULATED_SUFFIX
from tests.api.conftest import TOKENS, Api
from tests.process import BotProcess

SYMBOLS = sim_symbols([("BTC-SIM", None), ("ETH-SIM", None), ("EUR-SIM", None)])


def options_at(url: str) -> SimulateOptions:
    return SimulateOptions(
        url=url,
        token=TOKENS["engine"],
        rate=200.0,
        symbols=SYMBOLS,
        seed=7,
        history_days=0.5,
        quiet=True,
    )


async def until(condition: Callable[[], object], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def simulate_until(api: Api, enough: Callable[[Tally], bool]) -> Tally:
    stop = asyncio.Event()
    simulator = Simulator(options_at(api.base), stop)
    running = asyncio.create_task(simulator.run(api.session))
    try:
        await until(lambda: enough(simulator.tally) or running.done())
    finally:
        stop.set()
    return await asyncio.wait_for(running, 30)


async def stored_blocked(api: Api) -> list[dict[str, Any]]:
    status, body, _ = await api.call("GET", "/blocked-trades?window=24h&limit=500", "viewer")
    assert status == 200, body
    return list(body["items"])


async def stored_closed(api: Api) -> int:
    status, body, _ = await api.call("GET", "/api/learning/counters/", "viewer")
    assert status == 200, body
    return sum(counter["count"] for counter in body["counters"])


async def test_what_the_simulator_reports_is_stored(api: Api) -> None:
    tally = await simulate_until(api, lambda t: len(t.blocked) >= 3 and len(t.closed) >= 3)

    blocked = await stored_blocked(api)
    assert sorted(item["event_id"] for item in blocked) == sorted(tally.blocked)
    assert all(str(item["symbol"]).endswith(SIMULATED_SUFFIX) for item in blocked)
    assert all(item["data"]["simulated"] is True for item in blocked)
    assert await stored_closed(api) == len(tally.closed)
    assert api.runtime.deps.optimizer is not None
    now = datetime.now(UTC)
    for symbol in SYMBOLS:
        bars = await api.runtime.deps.optimizer.candles.bars(
            symbol.name, "5m", now - timedelta(days=1), now
        )
        assert bars is not None and len(bars[0]) >= 0.5 * 288 - 1


async def test_a_token_the_bot_does_not_accept_stops_it_with_the_fix(api: Api) -> None:
    simulator = BotProcess(
        "simulate", "--url", api.base, env={"ENGINE_API_TOKEN": "not-the-engine-token-0000"}
    )
    assert await asyncio.to_thread(simulator.proc.wait, 30) == 2
    await asyncio.to_thread(simulator.wait_for, "GET /parameters was refused with HTTP 401")
    await asyncio.to_thread(
        simulator.wait_for, r'\[\[api_tokens\]\] entry with scopes = \["engine"\]'
    )
    assert await stored_blocked(api) == []


def test_without_a_token_it_says_which_variable_to_set(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no var/engine-token of a local bot to fall back on
    assert cli.main(["simulate", "--token-env", "MY_ENGINE_TOKEN"], env={}) == 2
    error = capsys.readouterr().err
    assert "MY_ENGINE_TOKEN is not set" in error
    assert "make demo" in error


async def test_ctrl_c_stops_it_cleanly_with_a_summary_of_what_was_stored(api: Api) -> None:
    simulator = BotProcess(
        "simulate", "--url", api.base, "--rate", "50", "--history-days", "0.2", "--seed", "3",
        env={"ENGINE_API_TOKEN": TOKENS["engine"]},
    )  # fmt: skip
    try:
        blocked: list[dict[str, Any]] = []

        async def some_blocked() -> bool:
            blocked[:] = await stored_blocked(api)
            return bool(blocked)

        async with asyncio.timeout(30):
            while not await some_blocked():
                await asyncio.sleep(0.1)
        assert await asyncio.to_thread(simulator.stop, signal.SIGINT) == 0
    finally:
        if simulator.proc.poll() is None:
            simulator.kill()
    summary = await asyncio.to_thread(
        simulator.wait_for, r"blocked (\d+), closed (\d+) \(PnL [-+]\d+\.\d\d\)"
    )
    assert len(await stored_blocked(api)) == int(summary[1])
    assert await stored_closed(api) == int(summary[2])


async def test_a_busy_bot_is_retried_after_the_time_it_asks_for() -> None:
    """503 with Retry-After (the database unavailable), then success: one event, one retry."""
    seen: list[float] = []

    async def busy_once(request: web.Request) -> web.Response:
        seen.append(time.monotonic())
        if len(seen) == 1:
            return web.json_response({"error": "busy"}, status=503, headers={"Retry-After": "1"})
        return web.json_response({"created": 1}, status=201)

    app = web.Application()
    app.router.add_post("/blocked-trades", busy_once)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            stop, tally = asyncio.Event(), Tally()
            client = EngineClient(http, options_at(str(server.make_url("")).rstrip("/")), stop)
            assert await client.post("/blocked-trades", {"event_id": "e1"}, tally) == {"created": 1}
    finally:
        await server.close()
    assert tally.retries == 1
    assert seen[1] - seen[0] >= 1.0
