"""Slack HTTP mode: a request whose signature is more than 5 minutes old (a replay of a
captured request) or from the future is refused before any listener runs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from slack_sdk.signature import SignatureVerifier

from bot.app import EVENTS_PATH
from bot.config import Settings
from bot.runtime import Runtime
from bot.slack import build_slack
from bot.webhook.server import build_http_app
from tests.e2e.conftest import VIEWER, on_sqlite
from tests.fakeslack import FakeSlack, Workspace
from tests.fakeslack.payloads import app_home_opened

pytestmark = on_sqlite

SIGNING_SECRET = "replay-signing-secret-0123456789"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, slack_app_token="", slack_signing_secret=SIGNING_SECRET)


@pytest.fixture
async def events_url(runtime: Runtime) -> AsyncIterator[str]:
    http_app = build_http_app(runtime)
    build_slack(runtime, None, asyncio.Event()).mount(http_app)
    server = TestServer(http_app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url(EVENTS_PATH))
    await server.close()


async def post_signed(url: str, seconds_ago: float) -> int:
    body = json.dumps(app_home_opened(Workspace(), user_id=VIEWER, channel_id="D0VIEWER"))
    timestamp = str(int(time.time() - seconds_ago))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status


@pytest.mark.parametrize("seconds_ago", [301, 3600, -301], ids=["5 min", "1 h", "future"])
async def test_a_correctly_signed_but_stale_request_is_refused(
    events_url: str, slack: FakeSlack, seconds_ago: float
) -> None:
    assert await post_signed(events_url, seconds_ago) == 401
    assert await post_signed(events_url, 0) == 200  # the same request, signed now, is served
    published = await slack.wait_for_calls("views.publish", 1)
    assert len(published) == 1  # only the fresh one reached the App Home listener
