"""POST /send-message when Slack says no: a message Slack refuses is 422 naming the field it
concerns, a Slack that cannot take it now is 503 with Retry-After, and blocks slack_sdk's
models find invalid are refused before Slack is asked. The real bot and slack_sdk client
against the fake Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import RETRIES, build_bot
from bot.config import Settings
from bot.runtime import Runtime
from tests.api.conftest import Api, api_settings, serve_runtime
from tests.e2e.conftest import APP_TOKEN, BOT_TOKEN, RISK, on_sqlite, running_bot
from tests.fakeslack import FakeSlack
from tests.process import free_port

pytestmark = on_sqlite  # Slack's answers do not depend on the database

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "Engine restarting"}}
EVERY_ATTEMPT = 1 + RETRIES  # the client's first try and its retries


@pytest.fixture
def settings(database_url: str, backup_dir: Path, slack: FakeSlack) -> Settings:
    return api_settings(
        Settings(
            database_url=database_url,
            backup_dir=backup_dir,
            slack_bot_token=BOT_TOKEN,
            slack_app_token=APP_TOKEN,
            slack_api_url=slack.api_url,
            risk_channel=RISK,
        )
    )


@pytest.fixture
async def api(runtime: Runtime, slack: FakeSlack) -> AsyncIterator[Api]:
    """The HTTP API of a running bot, as `paramadapt run` serves it."""
    async with running_bot(runtime) as bot:
        await slack.wait_for_connections(1)
        async for client in serve_runtime(runtime, bot):
            yield client


async def send(api: Api, channel: str = RISK, **extra: Any) -> tuple[int, Any, Any]:
    return await api.call(
        "POST", "/send-message", json={"channel": channel, "text": "Engine restarting", **extra}
    )


async def test_a_channel_slack_does_not_know_is_422_naming_the_channel(
    api: Api, slack: FakeSlack
) -> None:
    slack.fail_next("chat.postMessage", 200, error="channel_not_found")
    status, body, _ = await send(api, "#missing")
    assert status == 422
    assert "channel_not_found" in body["error"]
    [problem] = body["problems"]
    assert problem["field"] == "channel"
    assert "channel_not_found" in problem["problem"]
    assert len(slack.calls("chat.postMessage")) == 1  # a refusal is not retried


async def test_blocks_slack_cannot_render_are_422_naming_the_blocks(
    api: Api, slack: FakeSlack
) -> None:
    slack.fail_next("chat.postMessage", 200, error="invalid_blocks")
    status, body, _ = await send(api, blocks=[SECTION])
    assert status == 422
    assert [p["field"] for p in body["problems"]] == ["blocks"]
    assert "invalid_blocks" in body["problems"][0]["problem"]
    assert slack.messages(RISK) == []


async def test_an_unknown_block_type_is_422_naming_the_block_and_slack_is_not_asked(
    api: Api, slack: FakeSlack
) -> None:
    status, body, _ = await send(api, blocks=[SECTION, {"type": "bogus"}])
    assert status == 422
    assert body["problems"] == [{"field": "blocks[1]", "problem": "unknown block type 'bogus'"}]
    assert slack.calls("chat.postMessage") == []


@pytest.mark.parametrize(
    ("block", "said"),
    [
        ({"text": "no type"}, 'a block needs a "type"'),
        ({"type": "section"}, "text or fields attribute must be specified"),
        ({"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}, "3000 characters"),
        ({"type": "image", "image_url": "https://example.com/a.png"}, "missing 'alt_text'"),
    ],
)
async def test_a_block_slack_sdk_finds_invalid_is_422_saying_why(
    api: Api, slack: FakeSlack, block: dict[str, Any], said: str
) -> None:
    status, body, _ = await send(api, blocks=[block])
    assert status == 422
    [problem] = body["problems"]
    assert problem["field"] == "blocks[0]"
    assert said in problem["problem"]
    assert slack.calls("chat.postMessage") == []


async def test_slack_failing_on_every_attempt_is_503_with_retry_after_and_nothing_is_posted(
    api: Api, slack: FakeSlack
) -> None:
    slack.fail_next("chat.postMessage", 500, times=EVERY_ATTEMPT)
    status, body, response = await send(api)
    assert status == 503
    assert int(response.headers["Retry-After"]) > 0
    assert "Slack" in body["error"]
    assert slack.messages(RISK) == []


async def test_sending_again_once_slack_recovers_posts_the_message_once(
    api: Api, slack: FakeSlack
) -> None:
    slack.fail_next("chat.postMessage", 500, times=EVERY_ATTEMPT)
    first, _, _ = await send(api)
    second, posted, _ = await send(api)
    assert (first, second) == (503, 201)
    assert [m["ts"] for m in slack.messages(RISK)] == [posted["ts"]]


async def test_rate_limited_past_the_clients_retries_is_503_with_slacks_retry_after(
    api: Api, slack: FakeSlack
) -> None:
    slack.fail_next("chat.postMessage", 429, retry_after=1, times=EVERY_ATTEMPT)
    status, _, response = await send(api)
    assert status == 503
    assert response.headers["Retry-After"] == "1"
    assert slack.messages(RISK) == []


async def test_an_unreachable_slack_is_503_with_retry_after_not_a_database_error(
    runtime: Runtime,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/api/"
    async for api in serve_runtime(runtime, build_bot(runtime, BOT_TOKEN, nobody)):
        status, body, response = await send(api)
        assert status == 503
        assert "Retry-After" in response.headers
        assert "Slack is unreachable" in body["error"]


async def test_the_openapi_document_describes_the_503_and_its_retry_after(api: Api) -> None:
    _, document, _ = await api.call("GET", "/openapi.json", None)
    operation = document["paths"]["/send-message"]["post"]
    assert operation["responses"]["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
    assert "503 with Retry-After" in operation["summary"]
