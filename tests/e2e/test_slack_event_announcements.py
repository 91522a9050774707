"""Parameter changes, override decisions and errors reach Slack once, from the outbox, whichever
entry point caused them (bot.event_announcer), with the default notification settings.

Which channel, and silent/off, are in test_slack_notifications."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.event_announcer import report_error
from bot.runtime import Runtime, cli_actor
from core import learning, services
from core.authz import Actor, Role
from core.params import Scope
from tests.api.conftest import Api, api_settings
from tests.e2e.conftest import (
    OPERATOR,
    RISK,
    TRADING,
    alert_for,
    block,
    outbox_drained,
    param,
    text_of,
)
from tests.fakeslack import FakeSlack

pytestmark = pytest.mark.usefixtures("bot")

WAIT = 15.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return api_settings(settings)  # the e2e Slack settings plus one API token per scope


async def announced(slack: FakeSlack, runtime: Runtime) -> list[str]:
    """Everything posted in the risk channel once the outbox has nothing left to deliver."""
    runtime.wake_dispatchers()
    await slack.wait_until(lambda: bool(slack.messages(RISK)), WAIT, "an announcement")
    await outbox_drained(runtime)
    return [text_of(message["blocks"]) for message in slack.messages(RISK)]


async def accepted(api: Api, path: str, body: dict[str, object]) -> None:
    """POST `body` to the bot's HTTP API, which takes it."""
    status, _, _ = await api.call("POST", path, json=body)
    assert status == 200


async def test_a_change_from_the_cli_is_announced_once_with_who_what_from_where_and_why(
    slack: FakeSlack, runtime: Runtime
) -> None:
    actor = cli_actor()
    await services.set_parameter(
        runtime.deps, actor, Scope.GLOBAL, "min_confidence", "0.6", "too many good BUYs blocked"
    )

    [shown] = await announced(slack, runtime)
    assert f"`{actor.id}` changed *global* from the CLI" in shown
    assert "• `min_confidence`: 0.65 → *0.6*" in shown
    assert "> too many good BUYs blocked" in shown
    assert "global version 0 → 1 · backup `" in shown


async def test_a_change_over_the_http_api_is_announced_as_made_there(
    slack: FakeSlack, runtime: Runtime, api: Api
) -> None:
    change = {"value": 3, "scope": "HIGH", "reason": "wider"}
    await accepted(api, "/parameters/stop_loss_pct", change)

    [shown] = await announced(slack, runtime)
    assert "`token:admin` changed *HIGH* over the HTTP API" in shown
    assert "• `stop_loss_pct`: (inherited) → *3*" in shown


async def test_a_change_in_slack_answers_the_caller_and_is_announced_in_the_channel_once(
    slack: FakeSlack, runtime: Runtime
) -> None:
    answer = await param(slack, "set min_confidence 0.6 too many good BUYs blocked", channel=RISK)

    assert answer.response_type == "ephemeral"  # typed where it is announced
    [shown] = await announced(slack, runtime)
    assert "<@U0ADMIN> changed *global* in Slack" in shown
    assert "• `min_confidence`: 0.65 → *0.6*" in shown
    assert not slack.messages(TRADING)


async def test_a_restore_says_who_restored_and_from_where(
    slack: FakeSlack, runtime: Runtime
) -> None:
    actor = cli_actor()
    for value in ("0.6", "0.55"):
        await services.set_parameter(
            runtime.deps, actor, Scope.GLOBAL, "min_confidence", value, "x"
        )
    await services.restore_version(runtime.deps, actor, Scope.GLOBAL, 1, "undo")

    await slack.wait_until(lambda: len(slack.messages(RISK)) == 3, WAIT, "three announcements")
    shown = text_of(slack.latest_message(RISK)["blocks"])
    assert f"`{actor.id}` restored *global* from the CLI" in shown
    assert "> undo" in shown


async def test_a_learning_session_s_versions_are_announced_only_as_the_session(
    slack: FakeSlack, runtime: Runtime
) -> None:
    operator = Actor.having(OPERATOR, "slack", Role.OPERATOR)
    await learning.start_learning_session(runtime.deps, operator, 30, "explore")

    [shown] = await announced(slack, runtime)
    assert "started learning session" in shown


async def test_a_decision_on_an_alert_is_shown_on_the_alert_alone(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await block(runtime)
    message = await alert_for(slack)

    await slack.click_button(message, "override_approve", OPERATOR)

    await slack.wait_until(lambda: "Approved by" in slack.message(RISK, message["ts"])["text"])
    await outbox_drained(runtime)
    assert len(slack.messages(RISK)) == 1  # the alert, updated in place


async def test_an_override_granted_by_command_is_announced_once(
    slack: FakeSlack, runtime: Runtime
) -> None:
    answer = await param(slack, "override btcusdc buy strategic_opportunity", OPERATOR, RISK)

    assert answer.response_type == "ephemeral"  # typed where it is announced
    [shown] = await announced(slack, runtime)
    assert "<@U0OPS> overrode the risk block for *BUY BTCUSDC* until" in shown
    assert "> strategic_opportunity" in shown


async def test_an_override_granted_over_http_is_announced(
    slack: FakeSlack, runtime: Runtime, api: Api
) -> None:
    command = {"user_id": OPERATOR, "text": "override ETHUSDC SELL x"}
    await accepted(api, "/process-command", command)

    [shown] = await announced(slack, runtime)
    assert "<@U0OPS> overrode the risk block for *SELL ETHUSDC*" in shown


async def test_a_reported_error_is_posted_with_what_failed_and_how(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await report_error(runtime, "scheduled job cleanup", "OSError: disk full")

    [shown] = await announced(slack, runtime)
    assert ":warning: *scheduled job cleanup* failed" in shown
    assert "OSError: disk full" in shown
