"""The real `paramadapt run` process against a Slack stand-in: tokens of any form, and a
Socket Mode connection whose close is never answered does not hold up shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN, APP_TOKEN, BOT_TOKEN, VIEWER, on_sqlite, param
from tests.fakeslack import FakeSlack
from tests.process import BotProcess, bot_environment

pytestmark = on_sqlite

CONFIG = f"""
[roles]
admin = ["{ADMIN}"]
viewer = ["{VIEWER}"]
"""
CONNECTED = "Slack: connected in Socket Mode"
STOP_BOUND = 8.0  # seconds; generous: a stop is not a timing test, only a hang is refused


def environment(
    tmp_path: Path, database_url: str, slack: FakeSlack, **tokens: str
) -> dict[str, str]:
    return bot_environment(
        tmp_path, database_url, CONFIG, SLACK_API_URL=slack.api_url, LOG_LEVEL="INFO", **tokens
    )


async def started(env: dict[str, str]) -> BotProcess:
    bot = BotProcess("run", env=env)
    await asyncio.to_thread(bot.wait_for, CONNECTED)
    return bot


async def stopped(bot: BotProcess, timeout: float = 20) -> int:
    try:
        return await asyncio.to_thread(bot.stop, timeout=timeout)
    finally:
        if bot.proc.poll() is None:
            bot.kill()


@pytest.fixture
async def standin() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(any_token=True) as fake:
        yield fake


async def test_tokens_of_any_form_are_taken_with_a_warning(
    tmp_path: Path, database_url: str, standin: FakeSlack
) -> None:
    bot_token, app_token = "standin-bot-0123456789", "standin-app-9876543210"
    env = environment(
        tmp_path, database_url, standin, SLACK_BOT_TOKEN=bot_token, SLACK_APP_TOKEN=app_token
    )
    bot = await started(env)
    try:
        answer = await param(standin, "learning status", VIEWER)
    finally:
        code = await stopped(bot)

    assert code == 0
    assert answer.text == "No learning session is running."
    output = "\n".join(bot.lines)
    assert "SLACK_BOT_TOKEN does not start with xoxb- as Slack's tokens do" in output
    assert "SLACK_APP_TOKEN does not start with xapp- as Slack's tokens do" in output
    assert bot_token not in output and app_token not in output


async def test_sigterm_after_slack_refreshed_the_connection_stops_the_process(
    tmp_path: Path, database_url: str, slack: FakeSlack
) -> None:
    env = environment(
        tmp_path, database_url, slack, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN
    )
    bot = await started(env)
    try:
        first = slack.connections[0]
        await slack.send_disconnect("refresh_requested")
        await slack.wait_until(
            lambda: first.closed and len(slack.connections) == 1, what="reconnect"
        )
        await param(slack, "learning status", VIEWER)  # the new connection works
    except BaseException:
        await stopped(bot)
        raise
    slack.answers_close = False  # as some stand-ins: the close handshake never completes

    code = await stopped(bot, timeout=STOP_BOUND)  # raises if the process is still running

    assert code == 0
    assert "the Socket Mode connection did not close within" in "\n".join(bot.lines)
