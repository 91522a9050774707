"""POST /process-command and POST /send-message: the spec's Slack integration service,
through the running bot against the fake Slack."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.config import Settings
from bot.runtime import Runtime
from bot.webhook.server import build_http_app
from core.params import Scope
from tests.api.conftest import TOKENS, Api, api_settings
from tests.e2e.conftest import ADMIN, RISK, STRANGER, TRADER, on_sqlite, text_of
from tests.fakeslack import FakeSlack

pytestmark = [pytest.mark.usefixtures("bot"), on_sqlite]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return api_settings(settings)  # the e2e Slack settings plus one API token per scope


async def test_a_command_runs_with_the_named_users_roles(api: Api) -> None:
    status, reply, _ = await api.call(
        "POST", "/process-command", json={"user_id": ADMIN, "text": "/param show min_confidence"}
    )
    assert status == 200
    assert reply["ephemeral"] is True
    assert "min_confidence" in text_of(reply["blocks"])


async def test_a_change_runs_as_that_user_and_is_refused_for_a_stranger(api: Api) -> None:
    status, refused, _ = await api.call(
        "POST", "/process-command", json={"user_id": STRANGER, "text": "set min_confidence 0.6 x"}
    )
    assert status == 200
    assert "needs the admin role" in refused["text"]
    status, applied, _ = await api.call(
        "POST", "/process-command", json={"user_id": ADMIN, "text": "set min_confidence 0.6 why"}
    )
    assert status == 200 and applied["ephemeral"] is True  # the channel hears it from the outbox
    _, params, _ = await api.call("GET", "/parameters", "engine")
    assert params["parameters"]["min_confidence"] == 0.6
    (change,) = await api.runtime.store.list_changes(Scope.GLOBAL, "min_confidence", 5)
    assert (change.actor, change.source.value) == (ADMIN, "api")


async def test_a_group_member_gets_the_groups_role(api: Api) -> None:
    status, reply, _ = await api.call(
        "POST", "/process-command", json={"user_id": TRADER, "text": "override BTCUSDC BUY dip"}
    )
    assert status == 200
    assert "needs" not in reply["text"]


async def test_only_admins_may_run_commands_for_others(api: Api) -> None:
    status, body, _ = await api.call(
        "POST", "/process-command", "viewer", json={"user_id": ADMIN, "text": "show"}
    )
    assert status == 403
    assert "admin scope" in body["error"]


async def test_a_message_is_posted_as_the_bot(api: Api, slack: FakeSlack) -> None:
    status, posted, _ = await api.call(
        "POST", "/send-message", json={"channel": RISK, "text": "Engine restarting at 12:00 UTC"}
    )
    assert status == 201
    assert slack.message(RISK, posted["ts"])["text"] == "Engine restarting at 12:00 UTC"


async def test_a_bad_user_id_is_422(api: Api) -> None:
    status, body, _ = await api.call(
        "POST", "/process-command", json={"user_id": "alice", "text": "show"}
    )
    assert status == 422
    assert body["problems"][0]["field"] == "user_id"


async def test_without_a_running_bot_the_answer_is_503(runtime: Runtime) -> None:
    server = TestServer(build_http_app(runtime), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {TOKENS['admin']}"}
        async with session.post(
            server.make_url("/send-message"), json={"channel": RISK, "text": "x"}, headers=headers
        ) as response:
            assert response.status == 503
            assert "Slack is not running" in (await response.json())["error"]
    await server.close()
