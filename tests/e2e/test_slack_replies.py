"""How the bot answers whoever typed /param or clicked a button.

Through the response_url when it can; when the payload has none (a Slack stand-in, a forged
request) or the url refuses (404, 429, 5xx), through the Web API instead, so the person is
still answered. A change of shared state is seen in the channel it was typed in: from the
outbox's announcement where that goes, otherwise from the answer itself, posted in_channel.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import pytest

from bot.config import Settings
from bot.notifications import EventType, Mode, Notification, NotificationSettings
from bot.runtime import Runtime
from tests.e2e.conftest import (
    ADMIN,
    OPERATOR,
    RISK,
    TRADING,
    VIEWER,
    alert_for,
    answer_to,
    block,
    on_sqlite,
    outbox_drained,
    param,
    text_of,
)
from tests.fakeslack import FakeSlack

pytestmark = [pytest.mark.usefixtures("bot"), on_sqlite]

SET = "set min_confidence 0.6 too many good BUYs blocked"
WHO_WHAT_WHY = [
    "<@U0ADMIN> set `min_confidence` in *global*",
    "• `min_confidence`: 0.65 → *0.6*",
    "> too many good BUYs blocked",
]


def warnings(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


# ---------------------------------------------------------------- when the response_url fails


async def test_a_command_without_a_response_url_is_answered_ephemerally_by_the_web_api(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    ack = await slack.slash_command(
        "/param", "show min_confidence", user_id=VIEWER, channel_id=TRADING, omit=["response_url"]
    )

    assert ack.payload is None  # acked as always
    call = await slack.wait_for_call("chat.postEphemeral")
    assert (call.params["channel"], call.params["user"]) == (slack.channel_id(TRADING), VIEWER)
    [shown] = slack.ephemerals(TRADING, VIEWER)
    assert "min_confidence" in text_of(shown["blocks"])
    assert "no response_url; answering U0VIEWER with chat.postEphemeral" in warnings(caplog)


@pytest.mark.parametrize("status", [404, 429, 500])
async def test_a_response_url_that_refuses_is_logged_and_the_answer_comes_ephemerally(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    slack.fail_response_urls(status)

    refused = await param(slack, "show min_confidence", VIEWER)

    assert refused.status == status
    await slack.wait_for_call("chat.postEphemeral")
    [shown] = slack.ephemerals(TRADING, VIEWER)
    assert shown["source"] == "chat.postEphemeral"
    assert "min_confidence" in text_of(shown["blocks"])
    logged = warnings(caplog)
    assert f"the response_url at 127.0.0.1 answered {status}" in logged
    assert "/response/" not in logged  # the url's secret path is never logged


async def test_an_answer_for_the_channel_falls_back_to_a_channel_post(slack: FakeSlack) -> None:
    slack.fail_response_urls(500)

    await param(slack, SET)  # typed in #trading; the change is announced in #risk-blocked

    post = await slack.wait_for_call(
        "chat.postMessage", lambda c: c.params["channel"] == slack.channel_id(TRADING)
    )
    assert all(line in text_of(post.params["blocks"]) for line in WHO_WHAT_WHY)


async def test_a_click_without_a_response_url_is_answered_ephemerally(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await block(runtime)
    alert = await alert_for(slack)

    await slack.click_button(alert, "override_approve", VIEWER, omit=["response_url"])

    call = await slack.wait_for_call("chat.postEphemeral")
    assert (call.params["channel"], call.params["user"]) == (slack.channel_id(RISK), VIEWER)
    assert call.params["text"] == "override needs the operator role; U0VIEWER has viewer"


async def test_a_click_whose_response_url_fails_is_answered_ephemerally(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await block(runtime)
    alert = await alert_for(slack)
    slack.fail_response_urls(503)

    await slack.click_button(alert, "override_approve", VIEWER)

    call = await slack.wait_for_call("chat.postEphemeral")
    assert (call.params["channel"], call.params["user"]) == (slack.channel_id(RISK), VIEWER)
    assert call.params["text"] == "override needs the operator role; U0VIEWER has viewer"
    assert [r.status for r in slack.responses()] == [503]


# ---------------------------------------------------------------- who sees a change


async def test_a_change_typed_in_another_channel_is_answered_in_that_channel(
    slack: FakeSlack, runtime: Runtime
) -> None:
    answer = await param(slack, SET, ADMIN, TRADING)

    assert answer.response_type == "in_channel"
    [posted] = slack.messages(TRADING)
    assert all(line in text_of(posted["blocks"]) for line in WHO_WHAT_WHY)
    await outbox_drained(runtime)
    assert len(slack.messages(RISK)) == 1  # and the announcement, where it always goes


async def test_a_change_typed_where_it_is_announced_is_answered_ephemerally(
    slack: FakeSlack, runtime: Runtime
) -> None:
    answer = await param(slack, SET, ADMIN, RISK)

    assert answer.response_type == "ephemeral"
    assert all(line in text_of(answer.body["blocks"]) for line in WHO_WHAT_WHY)
    await outbox_drained(runtime)
    [announced] = slack.messages(RISK)  # the channel hears of it once
    assert "<@U0ADMIN> changed *global* in Slack" in text_of(announced["blocks"])
    assert "• `min_confidence`: 0.65 → *0.6*" in text_of(announced["blocks"])


async def test_a_change_that_changes_nothing_is_answered_ephemerally(slack: FakeSlack) -> None:
    answer = await param(slack, "set min_confidence 0.65 same as now", ADMIN, TRADING)

    assert answer.response_type == "ephemeral"
    assert not slack.messages(TRADING)


async def test_an_override_typed_elsewhere_is_answered_in_that_channel(slack: FakeSlack) -> None:
    answer = await param(slack, "override BTCUSDC BUY hedge", OPERATOR, TRADING)

    assert answer.response_type == "in_channel"
    assert "<@U0OPS> overrode the risk block for *BUY BTCUSDC* until" in text_of(
        slack.latest_message(TRADING)["blocks"]
    )


class TestRiskChannelById:
    @pytest.fixture
    def settings(self, settings: Settings, slack: FakeSlack) -> Settings:
        return replace(settings, risk_channel=slack.channel_id(RISK))

    async def test_a_change_typed_in_the_channel_named_by_id_is_ephemeral(
        self, slack: FakeSlack
    ) -> None:
        answer = await param(slack, SET, ADMIN, RISK)

        assert answer.response_type == "ephemeral"


class TestParameterChangesOff:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        off = {EventType.PARAMETER_CHANGE: Notification(Mode.OFF)}
        return replace(settings, notifications=NotificationSettings(off))

    async def test_a_change_is_answered_in_the_channel_it_was_typed_in(
        self, slack: FakeSlack, runtime: Runtime
    ) -> None:
        ack = await slack.slash_command("/param", SET, user_id=ADMIN, channel_id=RISK)
        answer = await answer_to(slack, ack)

        assert answer.response_type == "in_channel"
        await outbox_drained(runtime)
        [posted] = slack.messages(RISK)  # the answer; the outbox posts nothing
        assert re.search(r"set `min_confidence` in \*global\*", text_of(posted["blocks"]))
