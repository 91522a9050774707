"""The real `paramadapt run` process against a Slack stand-in: tokens of any form."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN, VIEWER, on_sqlite, param
from tests.fakeslack import FakeSlack
from tests.process import bot_environment, started_in_socket_mode, stopped

pytestmark = on_sqlite

CONFIG = f"""
[roles]
admin = ["{ADMIN}"]
viewer = ["{VIEWER}"]
"""


def environment(
    tmp_path: Path, database_url: str, slack: FakeSlack, **tokens: str
) -> dict[str, str]:
    return bot_environment(
        tmp_path, database_url, CONFIG, SLACK_API_URL=slack.api_url, LOG_LEVEL="INFO", **tokens
    )


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
    bot = await started_in_socket_mode(env)
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
