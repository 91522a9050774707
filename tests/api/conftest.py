"""The real aiohttp server on a loopback socket, with one token per scope."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import SlackBot, mount
from bot.config import ApiToken, Settings
from bot.runtime import Runtime, open_runtime
from bot.webhook.server import build_http_app
from core.ports import Clock
from tests.fakeslack import FakeSlack

TOKENS = {
    "engine": "engine-token-aaaaaaaaaaaaaaaa",
    "viewer": "viewer-token-bbbbbbbbbbbbbbbb",
    "admin": "admin-token-cccccccccccccccccc",
}
SECRET = "webhook-secret-dddddddddddddddd"


@dataclass
class Api:
    """A client of the live server; `as_(scope)` picks the bearer token."""

    session: aiohttp.ClientSession
    base: str
    runtime: Runtime

    def headers(self, scope: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[scope]}"} if scope else {}

    async def call(
        self, method: str, path: str, scope: str | None = "admin", **kwargs: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = {**self.headers(scope), **kwargs.pop("headers", {})}
        async with self.session.request(method, self.base + path, headers=headers, **kwargs) as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, body, r


def api_settings(settings: Settings, **changes: Any) -> Settings:
    tokens = tuple(
        ApiToken(name=scope, token_env=f"{scope.upper()}_TOKEN", scopes=(scope,), secret=secret)
        for scope, secret in TOKENS.items()
    )
    return dataclasses.replace(settings, api_tokens=tokens, **changes)


async def serve_runtime(runtime: Runtime, bot: SlackBot | None = None) -> AsyncIterator[Api]:
    """The HTTP API of `runtime` on a real socket; with a running bot, /process-command and
    /send-message too (as `paramadapt run` serves them)."""
    app = build_http_app(runtime)
    if bot is not None:
        mount(app, bot, events=False)
    async with serve_app(app, runtime) as client:
        yield client


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, runtime: Runtime) -> AsyncIterator[Api]:
    """An application built by build_http_app (perhaps with a route of a test's own added)."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(session, str(server.make_url("")).rstrip("/"), runtime)
    finally:
        await server.close()


async def serve(settings: Settings) -> AsyncIterator[Api]:
    async with open_runtime(settings) as runtime:
        async for client in serve_runtime(runtime):
            yield client


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async for client in serve(api_settings(settings)):
        yield client


@pytest.fixture
async def sqlite_runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """For tests of the HTTP layer itself (auth, routing), where the database does not matter."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'api.db'}", backup_dir=tmp_path / "backups"
    )
    async with open_runtime(api_settings(settings)) as runtime:
        yield runtime


@pytest.fixture
async def sqlite_api(sqlite_runtime: Runtime) -> AsyncIterator[Api]:
    async for client in serve_runtime(sqlite_runtime):
        yield client


@pytest.fixture
async def signed_api(settings: Settings) -> AsyncIterator[Api]:
    async for client in serve(api_settings(settings, engine_webhook_secret=SECRET)):
        yield client


class Shifted:
    """A clock running `minutes` ahead of another: for expiry without sleeping."""

    def __init__(self, clock: Clock, minutes: float) -> None:
        self._clock = clock
        self._shift = timedelta(minutes=minutes)

    def now(self) -> datetime:
        return self._clock.now() + self._shift


def blocked(event_id: str = "e1", **changes: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "timestamp": "2026-11-23T03:00:00+00:00",
        "symbol": "BTCUSDC",
        "signal": "BUY",
        "block_reason": "min_confidence",
        "rsi": 28.5,
        "price": 97000.0,
        "confidence": 0.61,
        "risk_level": "MEDIUM",
        **changes,
    }


def closed(trade_id: str = "t1", **changes: Any) -> dict[str, Any]:
    return {
        "trade_id": trade_id,
        "symbol": "ETHUSDC",
        "side": "BUY",
        "entry_time": "2026-11-23T01:00:00+00:00",
        "exit_time": "2026-11-23T02:00:00+00:00",
        "entry_price": 3000.0,
        "exit_price": 3030.0,
        "quantity": 1.5,
        "pnl": 45.0,
        "pnl_pct": 1.0,
        "volatility_level": "HIGH",
        "config_version": 3,
        **changes,
    }
