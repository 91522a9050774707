"""Slack payloads through the real Bolt app: unknown action ids, missing fields, values of
the wrong type, forged or unknown users. No crash, nothing changes, and whoever can be
answered is told why."""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.blocks.alerts import APPROVE_ACTION, DENY_ACTION
from bot.blocks.help import INTERNAL_ERROR
from bot.runtime import Runtime
from tests.e2e.conftest import (
    ADMIN,
    OPERATOR,
    RISK,
    STRANGER,
    VIEWER,
    alert_for,
    block,
    on_sqlite,
    param,
)
from tests.fakeslack import Ack, FakeSlack
from tests.fuzz.stored import row_counts
from tests.security.slack_actions import ACTION_IDS

pytestmark = [on_sqlite, pytest.mark.usefixtures("bot")]

UNKNOWN_ACTIONS = ["override_approve ", "OVERRIDE_APPROVE", "", "x" * 300, "<!channel>"]
BAD_VALUES: list[Any] = [
    "",
    "abc",
    "-1",
    "0",
    "²",
    "9" * 40,
    "1.5",
    "{}",
    "[]",
    "null",
    '{"session": "x", "scope": "global", "parameter": "min_confidence"}',
    '{"session": 1, "scope": "EXTREME", "parameter": 1}',
    123,
    [1],
    {"a": 1},
    None,
    True,
]
FORGED_USERS = [STRANGER, "U0FORGED", "W0NOBODY", "<@U0ADMIN>", "*"]


def no_listener_failed(caplog: pytest.LogCaptureFixture) -> None:
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == [], [r.getMessage() for r in failures]


async def answer(slack: FakeSlack, ack: Ack) -> str:
    url = ack.envelope["payload"]["response_url"]
    reply = await slack.wait_for_response(response_url=url)
    assert reply.response_type == "ephemeral" and not reply.replace_original
    return reply.text


def button(action_id: str, value: Any) -> list[dict[str, Any]]:
    element = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": "x"},
    }
    if value is not None:
        element["value"] = value
    return [{"type": "actions", "block_id": "fuzz", "elements": [element]}]


@pytest.fixture
async def alert(slack: FakeSlack, runtime: Runtime) -> dict[str, Any]:
    """A real alert waiting for a decision: what a forged click would try to decide."""
    await block(runtime)
    return await alert_for(slack)


Check = Callable[[], Awaitable[None]]


@pytest.fixture
async def nothing_changed(runtime: Runtime, slack: FakeSlack, alert: dict[str, Any]) -> Check:
    """Asserts that the stored rows and the real alert are as they were before the test."""
    before = await row_counts(runtime.engine)

    async def check() -> None:
        assert await row_counts(runtime.engine) == before
        assert slack.message(RISK, alert["ts"])["blocks"] == alert["blocks"]

    return check


@pytest.fixture
def unharmed(nothing_changed: Check, caplog: pytest.LogCaptureFixture) -> Check:
    """Asserts that nothing changed and no listener failed."""

    async def check() -> None:
        await nothing_changed()
        no_listener_failed(caplog)

    return check


async def test_forged_users_cannot_decide_a_real_alert(
    slack: FakeSlack, alert: dict[str, Any], unharmed: Check
) -> None:
    for user in FORGED_USERS:
        for action in (APPROVE_ACTION, DENY_ACTION):
            ack = await slack.click_button(alert, action, user)
            assert "needs the operator role" in await answer(slack, ack)
    await unharmed()


async def test_buttons_naming_nothing_are_refused_with_a_reason(
    slack: FakeSlack, alert: dict[str, Any], unharmed: Check
) -> None:
    for action in ACTION_IDS:
        for value in BAD_VALUES:
            ack = await slack.click_button(button(action, value), action, ADMIN, channel_id=RISK)
            told = await answer(slack, ack)
            assert told.strip() and INTERNAL_ERROR not in told, (action, value, told)
    await unharmed()


async def test_unknown_action_ids_are_acked_explained_and_change_nothing(
    slack: FakeSlack, alert: dict[str, Any], unharmed: Check
) -> None:
    """A button of an older version, say: Slack gets its ack and the clicker an answer."""
    [buttons] = [b for b in alert["blocks"] if b["type"] == "actions"]
    trade_id = buttons["elements"][0]["value"]
    for action in UNKNOWN_ACTIONS:
        ack = await slack.click_button(button(action, trade_id), action, ADMIN, channel_id=RISK)
        assert "does not handle this" in await answer(slack, ack)
    assert "/param" in (await param(slack, "help", OPERATOR)).text
    await unharmed()


def structural_mutations(payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The click with one part missing or of the wrong type."""
    cases: list[tuple[str, dict[str, Any]]] = []

    def case(name: str, change: Any) -> None:
        mutated = copy.deepcopy(payload)
        change(mutated)
        cases.append((name, mutated))

    case("no container", lambda p: p.pop("container"))
    case("container of the wrong type", lambda p: p.update(container=["x"]))
    case("container without a channel", lambda p: p["container"].pop("channel_id"))
    case("no value", lambda p: p["actions"][0].pop("value"))
    case("value of the wrong type", lambda p: p["actions"][0].update(value={"id": 1}))
    case("no user", lambda p: p.pop("user"))
    case("user id of the wrong type", lambda p: p["user"].update(id=42))
    case("no response_url", lambda p: p.pop("response_url"))
    case("no message", lambda p: p.pop("message"))
    case("no channel", lambda p: p.pop("channel"))
    case("two actions", lambda p: p["actions"].append(copy.deepcopy(p["actions"][0])))
    case("team of the wrong type", lambda p: p.update(team="T0"))
    return cases


@pytest.mark.parametrize("action", [APPROVE_ACTION, DENY_ACTION])
async def test_malformed_clicks_change_nothing_and_crash_nothing(
    slack: FakeSlack, alert: dict[str, Any], unharmed: Check, action: str
) -> None:
    """Each mutation of a click by a stranger (who must be refused) is acked; nothing is
    decided; the bot keeps answering."""
    probe = await slack.click_button(alert, action, STRANGER)
    await answer(slack, probe)
    for name, payload in structural_mutations(probe.envelope["payload"]):
        envelope_id = await slack.send_envelope("interactive", payload)
        ack = await slack.wait_for_ack(envelope_id)
        assert ack.payload is None, name
    assert "/param" in (await param(slack, "help", OPERATOR)).text
    await unharmed()


async def test_a_click_without_actions_is_dropped_and_the_bot_keeps_answering(
    slack: FakeSlack, alert: dict[str, Any], nothing_changed: Check
) -> None:
    """Bolt itself cannot read such a payload (Slack never sends one, and in HTTP mode the
    signature check refuses forgeries first): it goes unanswered, and nothing else breaks."""
    probe = await slack.click_button(alert, APPROVE_ACTION, STRANGER)
    await answer(slack, probe)
    await slack.send_envelope("interactive", {**probe.envelope["payload"], "actions": []})
    assert "/param" in (await param(slack, "help", OPERATOR)).text
    await nothing_changed()


FORM = {
    "duration": "45",
    "relax:min_confidence": "12.5",
    "relax:max_position_size": "20",
    "relax:stop_loss_pct": "10",
    "relax:take_profit_pct": "20",
    "reason": "explore",
}
ODD_FORM_VALUES: list[Any] = ["", " ", "-5", "1e9", "NaN", "inf", "²", "9" * 400, "12,5", None]


async def test_odd_form_values_are_shown_next_to_their_field_and_start_nothing(
    slack: FakeSlack, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    await slack.slash_command("/param", "learning start", user_id=OPERATOR)
    view = dict((await slack.wait_for_call("views.open")).response["view"])
    for field in FORM.keys() - {"reason"}:  # optional in Slack: any text, or none, will do
        for odd in ODD_FORM_VALUES:
            ack = await slack.submit_view(view, OPERATOR, {**FORM, field: odd})
            assert ack.payload is not None, (field, odd)
            assert ack.payload["response_action"] == "errors"
            assert field in ack.payload["errors"], (field, odd, ack.payload)
    assert await runtime.deps.learning.active() is None
    no_listener_failed(caplog)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p["view"].pop("state"),
        lambda p: p["view"]["state"].update(values=[]),
        lambda p: p["view"]["state"]["values"].update(duration=["45"]),
        lambda p: p["view"]["state"]["values"]["duration"].update(duration={"value": 45}),
        lambda p: p.pop("user"),
    ],
    ids=["no state", "values a list", "field a list", "value a number", "no user"],
)
async def test_malformed_form_submissions_start_nothing(
    slack: FakeSlack, runtime: Runtime, mutate: Any
) -> None:
    await slack.slash_command("/param", "learning start", user_id=OPERATOR)
    view = dict((await slack.wait_for_call("views.open")).response["view"])
    valid = await slack.submit_view(view, VIEWER, FORM)  # refused: a viewer may not start one
    payload = copy.deepcopy(valid.envelope["payload"])
    mutate(payload)

    ack = await slack.wait_for_ack(await slack.send_envelope("interactive", payload))

    assert ack.payload is not None and ack.payload["response_action"] == "errors"
    assert await runtime.deps.learning.active() is None


@pytest.mark.parametrize("text", [None, 42, ["help"], {"a": 1}, "x" * 10_000, "\x00"], ids=repr)
async def test_slash_command_text_of_any_type_is_answered(
    slack: FakeSlack, text: Any, caplog: pytest.LogCaptureFixture
) -> None:
    probe = await slack.slash_command("/param", "help", user_id=OPERATOR)
    await slack.wait_for_response(response_url=probe.envelope["payload"]["response_url"])
    payload = {**probe.envelope["payload"], "text": text}

    ack = await slack.wait_for_ack(await slack.send_envelope("slash_commands", payload))

    assert ack.payload is None
    await slack.wait_until(
        lambda: len(slack.responses(payload["response_url"])) >= 2, what="the second answer"
    )
    assert slack.responses(payload["response_url"])[-1].response_type == "ephemeral"
    no_listener_failed(caplog)
