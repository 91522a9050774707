"""Pushes to ENGINE_CALLBACK_URL: signed, retried with backoff, delivered after a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.config import Settings
from bot.engine_push import PUSH_TOPICS, EnginePusher
from bot.outbox import OutboxDispatcher
from bot.runtime import Runtime, open_runtime
from bot.webhook.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from core import services, trades
from core.authz import Actor, Role
from core.models import Side
from core.params import Scope

SECRET = "push-secret-eeeeeeeeeeeeeeee"
ADMIN = Actor.having("U0ADMIN", "slack", Role.ADMIN)


class Engine:
    """A stand-in trading engine receiving pushes; can fail on demand."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failures_left = 0
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        problem = verify(
            SECRET,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            raw,
            time.time(),
        )
        if problem:
            return web.json_response({"error": problem}, status=401)
        if self.failures_left:
            self.failures_left -= 1
            return web.json_response({"error": "busy"}, status=503)
        self.received.append(json.loads(raw))
        self.arrived.set()
        return web.json_response({"ok": True})

    async def wait_for(self, count: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def engine() -> AsyncIterator[tuple[Engine, str]]:
    receiver = Engine()
    app = web.Application()
    app.router.add_post("/callback", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield receiver, str(server.make_url("/callback"))
    await server.close()


async def dispatch(runtime: Runtime, url: str, session: aiohttp.ClientSession) -> OutboxDispatcher:
    pusher = EnginePusher(url, SECRET, session)
    dispatcher = OutboxDispatcher(
        runtime.outbox,
        runtime.deps.clock,
        {topic: pusher.deliver for topic in PUSH_TOPICS},
        poll_seconds=0.05,
    )
    await dispatcher.start()
    return dispatcher


def pushing(settings: Settings, url: str) -> Settings:
    return dataclasses.replace(settings, engine_callback_url=url, engine_webhook_secret=SECRET)


async def test_a_parameter_change_is_pushed_signed(
    settings: Settings, engine: tuple[Engine, str]
) -> None:
    receiver, url = engine
    async with open_runtime(pushing(settings, url)) as runtime, aiohttp.ClientSession() as http:
        dispatcher = await dispatch(runtime, url, http)
        await services.set_parameter(
            runtime.deps, ADMIN, Scope.GLOBAL, "min_confidence", "0.6", "r"
        )
        await receiver.wait_for(1)
        await dispatcher.stop()
    (push,) = receiver.received
    assert push["topic"] == "engine.parameters"
    assert push["payload"]["version"] == 1
    assert push["payload"]["parameters"]["min_confidence"] == 0.6


async def test_an_approved_override_is_pushed(
    settings: Settings, engine: tuple[Engine, str]
) -> None:
    receiver, url = engine
    async with open_runtime(pushing(settings, url)) as runtime, aiohttp.ClientSession() as http:
        dispatcher = await dispatch(runtime, url, http)
        operator = Actor.having("U0OPS", "slack", Role.OPERATOR)
        await trades.grant_override(runtime.deps, operator, "BTCUSDC", Side.BUY, "dip")
        await receiver.wait_for(1)
        await dispatcher.stop()
    assert receiver.received[0]["topic"] == "engine.override"
    assert receiver.received[0]["payload"]["approved_by"] == "U0OPS"


async def test_a_failed_push_is_retried_until_it_is_delivered_once(
    settings: Settings, engine: tuple[Engine, str]
) -> None:
    receiver, url = engine
    receiver.failures_left = 1
    async with open_runtime(pushing(settings, url)) as runtime, aiohttp.ClientSession() as http:
        dispatcher = await dispatch(runtime, url, http)
        await services.set_parameter(
            runtime.deps, ADMIN, Scope.GLOBAL, "min_confidence", "0.6", "r"
        )
        await receiver.wait_for(1, timeout=15)  # first retry after 1 s of backoff
        async with asyncio.timeout(15):
            # until it is marked delivered (the Slack announcement has no deliverer here)
            while "engine.parameters" in await runtime.outbox.pending():
                await asyncio.sleep(0.05)
        await dispatcher.stop()
    assert len(receiver.received) == 1


async def test_pushes_queued_while_stopped_are_delivered_in_order_after_a_restart(
    settings: Settings, engine: tuple[Engine, str]
) -> None:
    receiver, url = engine
    async with open_runtime(pushing(settings, url)) as runtime:  # no dispatcher: "down"
        for value in ("0.6", "0.55", "0.5"):
            await services.set_parameter(
                runtime.deps, ADMIN, Scope.GLOBAL, "min_confidence", value, "r"
            )
    async with open_runtime(pushing(settings, url)) as runtime, aiohttp.ClientSession() as http:
        dispatcher = await dispatch(runtime, url, http)
        await receiver.wait_for(3)
        await dispatcher.stop()
    assert [p["payload"]["version"] for p in receiver.received] == [1, 2, 3]
