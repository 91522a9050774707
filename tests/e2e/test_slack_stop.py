"""SIGTERM stops the real `paramadapt run` process promptly, and loses nothing it held."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import APP_TOKEN, RISK, VIEWER, alerts_in, on_sqlite, param
from tests.e2e.test_slack_run import environment, report_blocked_trade
from tests.fakeslack import FakeSlack
from tests.process import BotProcess, started_in_socket_mode, stopped

pytestmark = on_sqlite

STOP_BOUND = 8.0  # seconds; generous: a stop is not a timing test, only a long wait is refused


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def env(tmp_path: Path, database_url: str, slack: FakeSlack) -> dict[str, str]:
    return {**environment(tmp_path, database_url, slack), "SLACK_APP_TOKEN": APP_TOKEN}


async def refreshed(env: dict[str, str], slack: FakeSlack) -> BotProcess:
    """A bot whose Socket Mode connection Slack has refreshed (`disconnect`), answering on
    the new one."""
    bot = await started_in_socket_mode(env)
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
    return bot


async def test_sigterm_after_slack_refreshed_the_connection_closes_it_with_slacks_answer(
    env: dict[str, str], slack: FakeSlack
) -> None:
    bot = await refreshed(env, slack)

    code = await stopped(bot, timeout=STOP_BOUND)

    assert code == 0
    assert slack.connections == []
    assert "did not close within" not in "\n".join(bot.lines)  # Slack answered the close


async def test_sigterm_stops_the_process_when_slack_never_answers_the_close(
    env: dict[str, str], slack: FakeSlack
) -> None:
    bot = await refreshed(env, slack)
    slack.answers_close = False  # as some stand-ins: the close handshake never completes

    code = await stopped(bot, timeout=STOP_BOUND)  # raises if the process is still running

    assert code == 0
    assert "the Socket Mode connection did not close within" in "\n".join(bot.lines)


async def test_sigterm_during_a_long_retry_after_stops_and_the_alert_is_posted_once_later(
    env: dict[str, str], slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    base = f"http://127.0.0.1:{env['PORT']}"
    slack.fail_next("chat.postMessage", status=429, retry_after=30)
    bot = await started_in_socket_mode(env)
    try:
        await report_blocked_trade(http, base)
        await slack.wait_for_call("chat.postMessage", ok=False, timeout=15)  # now waiting 30 s
    except BaseException:
        await stopped(bot)
        raise

    code = await stopped(bot, timeout=STOP_BOUND)
    after_the_stop = alerts_in(slack)
    restarted = await started_in_socket_mode(env)
    try:
        await slack.wait_until(lambda: len(alerts_in(slack)) == 1, what="the alert")
    finally:
        code_after_restart = await stopped(restarted)

    assert (code, code_after_restart) == (0, 0)
    assert after_the_stop == []
    assert len(alerts_in(slack)) == 1
    posts = slack.calls("chat.postMessage")
    assert [c.status for c in posts] == [429, 200]
    assert {c.params["channel"] for c in posts} == {RISK}
