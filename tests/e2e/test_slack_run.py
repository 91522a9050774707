"""The real `paramadapt run` process, pointed at the fake Slack by SLACK_* variables."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier

from tests.e2e.conftest import (
    ADMIN,
    APP_TOKEN,
    BOT_TOKEN,
    RISK,
    VIEWER,
    alert_for,
    on_sqlite,
    param,
    text_of,
)
from tests.fakeslack import FakeSlack, Workspace
from tests.fakeslack.payloads import app_home_opened
from tests.process import BotProcess, bot_environment

pytestmark = on_sqlite

ENGINE_TOKEN = "engine-token-aaaaaaaaaaaaaaaa"
SIGNING_SECRET = "fake-signing-secret-0123456789"
CONFIG = f"""
[roles]
admin = ["{ADMIN}"]
viewer = ["{VIEWER}"]

[[api_tokens]]
name = "engine"
token_env = "ENGINE_API_TOKEN"
scopes = ["engine"]
"""


def environment(tmp_path: Path, database_url: str, slack: FakeSlack) -> dict[str, str]:
    return bot_environment(
        tmp_path,
        database_url,
        CONFIG,
        ENGINE_API_TOKEN=ENGINE_TOKEN,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=slack.api_url,
        LOG_LEVEL="INFO",
    )


async def started(env: dict[str, str], ready: str) -> BotProcess:
    bot = BotProcess("run", env=env)
    await asyncio.to_thread(bot.wait_for, ready)
    return bot


async def stopped(bot: BotProcess) -> int:
    try:
        return await asyncio.to_thread(bot.stop)
    finally:
        if bot.proc.poll() is None:
            bot.kill()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_socket_mode_answers_commands_and_posts_alerts(
    tmp_path: Path, database_url: str, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    env = {**environment(tmp_path, database_url, slack), "SLACK_APP_TOKEN": APP_TOKEN}
    bot = await started(env, "Slack: connected in Socket Mode")
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        answer = await param(slack, "set min_confidence 0.6 from the real process", ADMIN)
        await report_blocked_trade(http, base)
        alert = await alert_for(slack)
        await slack.click_button(alert, "override_approve", ADMIN)
        await slack.wait_until(lambda: "Approved by" in slack.message(RISK, alert["ts"])["text"])
        async with http.get(f"{base}/readyz") as ready:
            readiness = await ready.json()
    finally:
        code = await stopped(bot)

    assert code == 0
    assert answer.response_type == "in_channel"  # typed in #trading, announced in #risk-blocked
    assert "• `min_confidence`: 0.65 → *0.6*" in text_of(answer.body["blocks"])
    assert readiness["slack"] == "connected"
    output = "\n".join(bot.lines)
    assert BOT_TOKEN not in output and APP_TOKEN not in output


async def test_http_mode_takes_signed_events_at_slack_events(
    tmp_path: Path, database_url: str, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    env = {**environment(tmp_path, database_url, slack), "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    bot = await started(env, "paramadapt listening on")
    url = f"http://127.0.0.1:{env['PORT']}/slack/events"
    body = json.dumps(app_home_opened(Workspace(), user_id=VIEWER, channel_id="D0VIEWER"))
    try:
        async with http.post(url, data=body, headers=signed(body)) as accepted:
            accepted_status = accepted.status
        published = await slack.wait_for_call("views.publish", timeout=10)
        forged = {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64}
        async with http.post(url, data=body, headers=forged) as refused:
            refused_status = refused.status
    finally:
        code = await stopped(bot)

    assert code == 0
    assert (accepted_status, refused_status) == (200, 401)
    assert published.params["user_id"] == VIEWER
    assert SIGNING_SECRET not in "\n".join(bot.lines)


def signed(body: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }


async def report_blocked_trade(http: aiohttp.ClientSession, base: str) -> None:
    event = {
        "event_id": "process-1",
        "timestamp": datetime.now(UTC).isoformat(),
        "symbol": "BTCUSDC",
        "signal": "BUY",
        "block_reason": "min_confidence",
    }
    headers = {"Authorization": f"Bearer {ENGINE_TOKEN}"}
    async with http.post(f"{base}/blocked-trades", json=event, headers=headers) as response:
        assert response.status == 201
