"""The fake Slack against the real slack_sdk and slack_bolt clients (nothing patched)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond, AsyncSay
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakeslack import FakeSlack

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-1-A0FAKEAPP-1-fake"

APPROVAL_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Apply *risk.max_dd* = 0.08?"}},
    {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "proposal-1",
                "style": "primary",
            }
        ],
    },
]
THRESHOLD_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "set_threshold",
    "title": {"type": "plain_text", "text": "Threshold"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {
            "type": "input",
            "block_id": "threshold_block",
            "label": {"type": "plain_text", "text": "Value"},
            "element": {"type": "plain_text_input", "action_id": "threshold"},
        }
    ],
}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk routes every request through HTTP(S)_PROXY and ignores NO_PROXY.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def web_client(slack: FakeSlack, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(base_url=slack.api_url, token=BOT_TOKEN, **kwargs)


@contextlib.asynccontextmanager
async def socket_mode(bolt: AsyncApp, ping_interval: float = 10) -> AsyncIterator[None]:
    """Connect a real AsyncSocketModeHandler (apps.connections.open via bolt.client)."""
    handler = AsyncSocketModeHandler(bolt, app_token=APP_TOKEN, ping_interval=ping_interval)
    await handler.connect_async()  # type: ignore[no-untyped-call]  # unannotated in Bolt
    try:
        yield
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture
async def app(slack: FakeSlack) -> AsyncIterator[AsyncApp]:
    """A real Bolt app connected over Socket Mode; listeners can be added after connecting."""
    bolt = AsyncApp(client=web_client(slack))
    async with socket_mode(bolt):
        await slack.wait_for_connections(1)
        yield bolt


# ---------------------------------------------------------------------------- Web API


async def test_auth_test_reports_the_fake_workspace(slack: FakeSlack) -> None:
    result = await web_client(slack).auth_test()

    assert (result["team_id"], result["user_id"], result["bot_id"]) == (
        slack.team_id,
        slack.bot_user_id,
        slack.bot_id,
    )
    call = slack.calls("auth.test")[0]
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.token == BOT_TOKEN


async def test_post_and_update_are_reflected_in_message_state(slack: FakeSlack) -> None:
    client = web_client(slack)

    first = await client.chat_postMessage(
        channel="#risk-blocked", text="hi", blocks=APPROVAL_BLOCKS
    )
    second = await client.chat_postMessage(channel="#risk-blocked", text="again")
    await client.chat_update(channel=first["channel"], ts=first["ts"], text="applied", blocks=[])

    assert first["channel"] == second["channel"] == slack.channel_id("risk-blocked")
    assert float(second["ts"]) > float(first["ts"])
    posted = slack.calls("chat.postMessage")[0].params
    assert posted["blocks"][1]["elements"][0]["action_id"] == "approve"
    updated = slack.message("#risk-blocked", first["ts"])
    assert (updated["text"], updated["blocks"]) == ("applied", [])
    assert [m["text"] for m in slack.messages("#risk-blocked")] == ["applied", "again"]


async def test_form_encoded_post_and_get_carry_the_token_as_a_parameter(
    slack: FakeSlack,
) -> None:
    slack.set_usergroup("S0TRADERS", ["U1", "U2"])
    client = AsyncWebClient(base_url=slack.api_url)  # no Authorization header at all

    await client.api_call(
        "chat.postMessage",
        data={
            "token": BOT_TOKEN,
            "channel": "#ops",
            "text": "hi",
            "blocks": json.dumps(APPROVAL_BLOCKS),
        },
    )
    group = await client.api_call(
        "usergroups.users.list",
        http_verb="GET",
        params={"usergroup": "S0TRADERS", "token": BOT_TOKEN},
    )

    posted, listed = slack.calls()
    assert (posted.token, posted.params["blocks"][1]["block_id"]) == (BOT_TOKEN, "decision")
    assert "Authorization" not in posted.headers
    assert (listed.http_method, listed.token, group["users"]) == ("GET", BOT_TOKEN, ["U1", "U2"])


async def test_missing_token_and_unknown_method_fail_like_slack(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as not_authed:
        await AsyncWebClient(base_url=slack.api_url).auth_test()
    with pytest.raises(SlackApiError) as unknown:
        await web_client(slack).api_call("params.frobnicate")

    assert not_authed.value.response["error"] == "not_authed"
    assert unknown.value.response["error"] == "unknown_method"


async def test_files_upload_v2_stores_the_bytes(slack: FakeSlack) -> None:
    result = await web_client(slack).files_upload_v2(
        channel=slack.channel_id("#reports"),
        content=b"param,value\nmax_dd,0.08\n",
        filename="proposal.csv",
        title="Proposal",
        initial_comment="Weekly proposal",
    )

    stored = slack.file(result["file"]["id"])
    assert stored.content == b"param,value\nmax_dd,0.08\n"
    assert (stored.filename, stored.title, stored.completed) == ("proposal.csv", "Proposal", True)
    assert slack.latest_message("#reports")["files"][0]["id"] == stored.id


# ---------------------------------------------------------------------------- faults


async def test_429_is_retried_after_retry_after_and_delivered_once(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    client = web_client(slack, retry_handlers=[AsyncRateLimitErrorRetryHandler()])

    await client.chat_postMessage(channel="#risk-blocked", text="once")

    limited, delivered = slack.calls("chat.postMessage")
    assert (limited.status, limited.error, delivered.ok) == (429, "ratelimited", True)
    # slack_sdk sleeps Retry-After plus up to 1 s of jitter
    assert 1.0 <= delivered.at - limited.at < 2.5
    assert len(slack.messages("#risk-blocked")) == 1


async def test_500_is_retried_by_the_server_error_handler(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", status=500)
    handler = AsyncServerErrorRetryHandler(
        interval_calculator=FixedValueRetryIntervalCalculator(0.01)
    )

    await web_client(slack, retry_handlers=[handler]).chat_postMessage(channel="#ops", text="x")

    assert [c.status for c in slack.calls("chat.postMessage")] == [500, 200]
    assert len(slack.messages("#ops")) == 1


async def test_outage_answers_503_until_restored(slack: FakeSlack) -> None:
    client = web_client(slack)
    slack.set_down(True)
    with pytest.raises(SlackApiError) as outage:
        await client.auth_test()
    slack.set_down(False)

    assert outage.value.response.status_code == 503
    assert (await client.auth_test())["ok"]
    assert [c.status for c in slack.calls("auth.test")] == [503, 200]


async def test_channel_burst_is_rate_limited_when_enabled(slack: FakeSlack) -> None:
    slack.channel_rate_limit = 1
    client = web_client(slack)

    await client.chat_postMessage(channel="#risk-blocked", text="first")
    with pytest.raises(SlackApiError) as burst:
        await client.chat_postMessage(channel="#risk-blocked", text="second")
    await client.chat_postMessage(channel="#other", text="other channels are independent")

    assert burst.value.response.status_code == 429
    assert burst.value.response.headers["Retry-After"] == "1"
    assert slack.peak_posts_per_second("#risk-blocked") == 1


# ---------------------------------------------------------------------------- Socket Mode + Bolt


async def test_slash_command_is_acked_and_respond_and_say_reach_slack(
    slack: FakeSlack, app: AsyncApp
) -> None:
    @app.command("/param")
    async def show(
        ack: AsyncAck, respond: AsyncRespond, say: AsyncSay, command: dict[str, Any]
    ) -> None:
        await ack()
        await respond(f"params for {command['text']}")
        await say("posted in channel")

    ack = await slack.slash_command("/param", "show all", user_id="U0ADMIN", channel_id="#ops")

    assert ack.payload is None and 0 < ack.latency < 3
    response = await slack.wait_for_response()
    assert (response.text, response.user_id, response.response_type) == (
        "params for show all",
        "U0ADMIN",
        "ephemeral",
    )
    assert slack.ephemerals("#ops", "U0ADMIN")[0]["text"] == "params for show all"
    said = await slack.wait_for_call("chat.postMessage")
    assert said.params["channel"] == slack.channel_id("#ops")
    connect = slack.calls("apps.connections.open")[0]
    assert connect.headers["Authorization"] == f"Bearer {APP_TOKEN}"


async def test_button_click_reaches_bolt_and_replaces_the_message(
    slack: FakeSlack, app: AsyncApp
) -> None:
    seen: list[dict[str, Any]] = []

    @app.action("approve")
    async def approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen.append(body)
        await respond(replace_original=True, text="Approved by <@U0ADMIN>")

    posted = await web_client(slack).chat_postMessage(
        channel="#risk-blocked", text="proposal", blocks=APPROVAL_BLOCKS
    )
    message = slack.message("#risk-blocked", posted["ts"])
    await slack.click_button(message, "approve", "U0ADMIN")

    await slack.wait_for_response(lambda r: r.replace_original)
    assert slack.message("#risk-blocked", posted["ts"])["text"] == "Approved by <@U0ADMIN>"
    action = seen[0]["actions"][0]
    assert (action["type"], action["block_id"], action["value"]) == (
        "button",
        "decision",
        "proposal-1",
    )
    assert seen[0]["container"]["message_ts"] == posted["ts"]
    assert seen[0]["channel"]["id"] == posted["channel"]


async def test_view_submission_errors_are_returned_in_the_ack(
    slack: FakeSlack, app: AsyncApp
) -> None:
    @app.command("/param")
    async def open_modal(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=THRESHOLD_MODAL)

    @app.view("set_threshold")
    async def save(ack: AsyncAck, view: dict[str, Any]) -> None:
        value = view["state"]["values"]["threshold_block"]["threshold"]["value"]
        await ack(response_action="errors", errors={"threshold_block": f"bad number: {value}"})

    await slack.slash_command("/param", "set max_dd")
    opened = await slack.wait_for_call("views.open")
    ack = await slack.submit_view(opened.response["view"], values={"threshold": "abc"})

    assert ack.payload == {
        "response_action": "errors",
        "errors": {"threshold_block": "bad number: abc"},
    }
    assert ack["payload"] == ack.payload  # dict-style access also works


async def test_client_reconnects_after_disconnect_and_keeps_answering(
    slack: FakeSlack, app: AsyncApp
) -> None:
    @app.command("/param")
    async def show(ack: AsyncAck) -> None:
        await ack()

    first = slack.connections[0]
    await slack.send_disconnect("refresh_requested")
    during_refresh = await slack.slash_command("/param", "sent while refreshing")
    await slack.wait_until(lambda: first.closed and len(slack.connections) == 1, what="reconnect")
    after = await slack.slash_command("/param", "show all")

    assert during_refresh.payload is None
    assert after.connection_id != first.id
    assert len(slack.calls("apps.connections.open")) == 2


async def test_app_home_opened_event_is_delivered(slack: FakeSlack, app: AsyncApp) -> None:
    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        view = {
            "type": "home",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Params"}}],
        }
        await client.views_publish(user_id=event["user"], view=view)

    ack = await slack.open_home("U0ADMIN")
    await slack.wait_for_call("views.publish")

    assert ack.envelope["type"] == "events_api" and ack.payload is None
    home_view = slack.home_view("U0ADMIN")
    assert home_view is not None and home_view["blocks"][0]["text"]["text"] == "Params"


async def test_envelopes_are_spread_over_replicas(slack: FakeSlack, app: AsyncApp) -> None:
    replica = AsyncApp(client=web_client(slack))
    for bolt in (app, replica):

        @bolt.command("/param")
        async def show(ack: AsyncAck) -> None:
            await ack()

    async with socket_mode(replica):
        await slack.wait_for_connections(2)
        acks = [await slack.slash_command("/param", str(i)) for i in range(4)]

    assert sorted(Counter(a.connection_id for a in acks).values()) == [2, 2]


async def test_socket_client_recovers_after_an_outage(slack: FakeSlack) -> None:
    bolt = AsyncApp(client=web_client(slack))

    @bolt.command("/param")
    async def show(ack: AsyncAck) -> None:
        await ack()

    # The SDK only retries apps.connections.open from its monitor loop, every ping_interval.
    async with socket_mode(bolt, ping_interval=0.2):
        first = (await slack.wait_for_connections(1))[0]
        slack.set_down(True)
        await slack.close_connections()
        await slack.wait_for_call("apps.connections.open", lambda c: c.status == 503, ok=None)
        slack.set_down(False)
        await slack.wait_until(lambda: bool(slack.connections), what="reconnect after outage")

        ack = await slack.slash_command("/param", "after outage")
    assert ack.connection_id != first.id
