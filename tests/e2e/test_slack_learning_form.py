"""The learning-session form: opened by `/param learning start`, checked field by field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.runtime import Runtime
from tests.e2e.conftest import OPERATOR, RISK, TRADING, VIEWER, on_sqlite, param, text_of
from tests.fakeslack import FakeSlack

pytestmark = [pytest.mark.usefixtures("bot"), on_sqlite]

VALID = {
    "duration": "45",
    "relax:min_confidence": "12.5",
    "relax:max_position_size": "20",
    "relax:stop_loss_pct": "10",
    "relax:take_profit_pct": "20",
    "reason": "explore lower confidence on BUYs",
}


async def open_form(
    slack: FakeSlack, user: str = OPERATOR, channel: str = TRADING
) -> dict[str, Any]:
    ack = await slack.slash_command("/param", "learning start", user_id=user, channel_id=channel)
    assert ack.payload is None
    opened = await slack.wait_for_call("views.open")
    assert opened.params["trigger_id"] == ack.envelope["payload"]["trigger_id"]
    return dict(opened.response["view"])


def inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {block["block_id"]: block["element"] for block in view["blocks"]}


async def test_the_form_offers_each_relaxable_parameter_within_its_range(
    slack: FakeSlack,
) -> None:
    view = await open_form(slack)

    assert (view["callback_id"], view["title"]["text"]) == (
        "learning_start",
        "Start learning session",
    )
    assert json.loads(view["private_metadata"]) == {
        "channel_id": slack.channel_id(TRADING),
        "channel_name": "trading",
    }
    fields = inputs(view)
    assert list(fields) == [
        "duration",
        "relax:min_confidence",
        "relax:max_position_size",
        "relax:stop_loss_pct",
        "relax:take_profit_pct",
        "reason",
    ]
    duration = fields["duration"]
    assert (duration["type"], duration["initial_value"], duration["min_value"]) == (
        "number_input",
        "60",
        "5",
    )
    confidence = fields["relax:min_confidence"]
    assert (confidence["initial_value"], confidence["min_value"], confidence["max_value"]) == (
        "15.0",
        "10.0",
        "20.0",
    )
    assert fields["reason"]["type"] == "plain_text_input"


async def test_invalid_input_is_shown_next_to_each_field_and_starts_nothing(
    slack: FakeSlack, runtime: Runtime
) -> None:
    view = await open_form(slack)
    values = {**VALID, "duration": "1000", "relax:min_confidence": "50", "reason": " "}

    ack = await slack.submit_view(view, OPERATOR, values)

    assert ack.payload == {
        "response_action": "errors",
        "errors": {
            "duration": "a whole number of minutes from 5 to 240",
            "relax:min_confidence": "a percentage from 10 to 20",
        },
    }
    assert await runtime.deps.learning.active() is None


async def test_a_valid_form_starts_the_session_and_announces_it(
    slack: FakeSlack, runtime: Runtime
) -> None:
    view = await open_form(slack)

    ack = await slack.submit_view(view, OPERATOR, VALID)

    assert ack.payload is None  # the modal closes
    session = await runtime.deps.learning.active()
    assert session is not None and session.reason == VALID["reason"]
    assert session.planned_duration.total_seconds() == 45 * 60
    announced = await slack.wait_for_call(
        "chat.postMessage", lambda call: call.params["channel"] == RISK
    )  # from the outbox, as for every entry point
    shown = text_of(announced.params["blocks"])
    assert "<@U0OPS> started learning session 1 until" in shown
    assert "global `min_confidence`: 0.65 → *0.5687*" in shown  # lowered by 12.5 %


async def test_the_start_is_posted_where_the_form_was_asked_for(slack: FakeSlack) -> None:
    view = await open_form(slack, channel=TRADING)

    await slack.submit_view(view, OPERATOR, VALID)

    here = await slack.wait_for_call(
        "chat.postMessage", lambda call: call.params["channel"] == slack.channel_id(TRADING)
    )
    assert "<@U0OPS> started learning session 1 until" in text_of(here.params["blocks"])
    await slack.wait_until(lambda: len(slack.messages(RISK)) == 1, what="the announcement")


async def test_in_the_announcement_channel_the_start_is_told_to_the_submitter_alone(
    slack: FakeSlack,
) -> None:
    view = await open_form(slack, channel=RISK)

    await slack.submit_view(view, OPERATOR, VALID)

    told = await slack.wait_for_call("chat.postEphemeral")
    assert (told.params["channel"], told.params["user"]) == (slack.channel_id(RISK), OPERATOR)
    assert "<@U0OPS> started learning session 1 until" in text_of(told.params["blocks"])
    await slack.wait_until(lambda: len(slack.messages(RISK)) == 1, what="the announcement")
    assert all(call.params["channel"] == RISK for call in slack.calls("chat.postMessage"))


async def test_a_form_slack_would_not_open_is_explained_with_the_typed_command(
    slack: FakeSlack,
) -> None:
    slack.fail_next("views.open", status=200, error="expired_trigger_id")

    answer = await param(slack, "learning start", OPERATOR)

    assert answer.response_type == "ephemeral"
    assert answer.text == (
        "the form could not be opened (expired_trigger_id); "
        "use `/param learning start DURATION_MINUTES [REASON...]`"
    )


async def test_a_refusal_of_the_use_case_is_shown_in_the_form(slack: FakeSlack) -> None:
    await param(slack, "learning start 30 already exploring", OPERATOR)
    view = await open_form(slack)

    ack = await slack.submit_view(view, OPERATOR, VALID)

    assert ack.payload is not None and ack.payload["response_action"] == "errors"
    assert ack.payload["errors"]["duration"].startswith("learning session 1 is already running")


async def test_the_submitting_user_is_checked(slack: FakeSlack, runtime: Runtime) -> None:
    view = await open_form(slack)

    ack = await slack.submit_view(view, VIEWER, VALID)

    assert ack.payload == {
        "response_action": "errors",
        "errors": {"duration": "learning needs the operator role; U0VIEWER has viewer"},
    }
    assert await runtime.deps.learning.active() is None


async def test_no_form_opens_for_someone_who_may_not_start_a_session(slack: FakeSlack) -> None:
    answer = await param(slack, "learning start", VIEWER)

    assert answer.response_type == "ephemeral"
    assert answer.text == "learning needs the operator role; U0VIEWER has viewer"
    assert slack.calls("views.open") == []
