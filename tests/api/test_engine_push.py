"""Pushes to ENGINE_CALLBACK_URL: signed, retried with backoff, delivered after a restart;
a parameter push carries what GET /parameters answers for every scope the change affected."""

from __future__ import annotations

import asyncio
import contextlib
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
from tests.api.conftest import Api, api_settings, serve_runtime

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
    pusher = EnginePusher(url, SECRET, session, runtime.deps)
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
    assert (push["payload"]["scope"], push["payload"]["version"]) == ("global", 1)
    assert push["payload"]["effective"]["global"]["parameters"]["min_confidence"] == 0.6


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


@contextlib.asynccontextmanager
async def pushing_api(settings: Settings, url: str) -> AsyncIterator[Api]:
    """The HTTP API (to read what the engine would GET) of a runtime whose changes are pushed."""
    async with (
        open_runtime(api_settings(pushing(settings, url))) as runtime,
        aiohttp.ClientSession() as http,
    ):
        dispatcher = await dispatch(runtime, url, http)
        try:
            async for api in serve_runtime(runtime):
                yield api
        finally:
            await dispatcher.stop()


async def change(api: Api, scope: Scope, name: str, value: str) -> None:
    await services.set_parameter(api.runtime.deps, ADMIN, scope, name, value, "r")


async def read(api: Api, scope: str) -> dict[str, Any]:
    """GET /parameters?scope=S as the engine reads it (with a viewer token: no signing)."""
    status, body, _ = await api.call("GET", f"/parameters?scope={scope}", "viewer")
    assert status == 200
    return dict(body)


async def test_a_level_change_pushes_the_levels_effective_values_inherited_ones_included(
    settings: Settings, engine: tuple[Engine, str]
) -> None:
    receiver, url = engine
    async with pushing_api(settings, url) as api:
        await change(api, Scope.GLOBAL, "long_rsi_entry", "35")
        await change(api, Scope.HIGH, "min_confidence", "0.7")
        await receiver.wait_for(2)
        high = await read(api, "HIGH")
    pushed = receiver.received[1]["payload"]
    assert (pushed["scope"], pushed["version"]) == ("HIGH", 1)
    assert pushed["effective"] == {"HIGH": high}
    assert high["parameters"]["long_rsi_entry"] == 35  # inherited from global
    assert high["parameters"]["min_confidence"] == 0.7


async def test_a_global_change_pushes_global_and_every_level(
    settings: Settings, engine: tuple[Engine, str]
) -> None:
    receiver, url = engine
    async with pushing_api(settings, url) as api:
        await change(api, Scope.HIGH, "min_confidence", "0.7")
        await change(api, Scope.GLOBAL, "long_rsi_entry", "35")
        await receiver.wait_for(2)
        current = {scope.value: await read(api, scope.value) for scope in Scope}
    pushed = receiver.received[1]["payload"]
    assert (pushed["scope"], pushed["version"]) == ("global", 1)
    assert pushed["effective"] == current
    assert {s: v["parameters"]["long_rsi_entry"] for s, v in current.items()} == {
        "global": 35,
        "HIGH": 35,
        "MEDIUM": 35,
        "LOW": 35,
    }


async def test_a_restore_pushes_the_effective_values_not_an_empty_set(
    settings: Settings, engine: tuple[Engine, str]
) -> None:
    receiver, url = engine
    async with pushing_api(settings, url) as api:
        await change(api, Scope.HIGH, "min_confidence", "0.7")
        await services.restore_version(api.runtime.deps, ADMIN, Scope.HIGH, 0, "back to global")
        await receiver.wait_for(2)
        high = await read(api, "HIGH")
    pushed = receiver.received[1]["payload"]
    assert (pushed["scope"], pushed["version"]) == ("HIGH", 2)
    assert pushed["effective"] == {"HIGH": high}
    assert high["parameters"]["min_confidence"] == 0.65  # global's again: HIGH sets nothing


async def test_a_push_sent_late_carries_the_values_current_when_it_is_sent(
    settings: Settings, engine: tuple[Engine, str]
) -> None:
    receiver, url = engine
    async with open_runtime(pushing(settings, url)) as runtime:  # no dispatcher: "down"
        for value in ("0.6", "0.55"):
            await services.set_parameter(
                runtime.deps, ADMIN, Scope.GLOBAL, "min_confidence", value, "r"
            )
    async with open_runtime(pushing(settings, url)) as runtime, aiohttp.ClientSession() as http:
        dispatcher = await dispatch(runtime, url, http)
        await receiver.wait_for(2)
        await dispatcher.stop()
    first = receiver.received[0]["payload"]
    assert first["version"] == 1  # the change it reports
    assert first["effective"]["global"]["version"] == 2  # the values the engine must use now
    assert first["effective"]["global"]["parameters"]["min_confidence"] == 0.55
