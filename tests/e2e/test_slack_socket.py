"""The Socket Mode connection: Slack refreshes it, the bot reconnects and keeps answering."""

from __future__ import annotations

import pytest

from bot.runtime import Runtime
from tests.e2e.conftest import VIEWER, answer_to, on_sqlite, param
from tests.fakeslack import FakeSlack

pytestmark = [pytest.mark.usefixtures("bot"), on_sqlite]


async def test_after_a_disconnect_the_bot_reconnects_and_keeps_answering(
    slack: FakeSlack, runtime: Runtime
) -> None:
    first = slack.connections[0]
    assert runtime.slack_status() == "connected"

    await slack.send_disconnect("refresh_requested")
    during = await slack.slash_command("/param", "show", user_id=VIEWER)
    await slack.wait_until(lambda: first.closed and len(slack.connections) == 1, what="reconnect")
    after = await param(slack, "learning status", VIEWER)

    assert (await answer_to(slack, during)).text.startswith("global (version 0)")
    assert after.text == "No learning session is running."
    assert slack.connections[0].id != first.id
    assert len(slack.calls("apps.connections.open")) == 2
    assert runtime.slack_status() == "connected"
