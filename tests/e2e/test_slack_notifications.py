"""Notification settings in the running bot: `on` posts to the type's channel, `silent` and
`off` post nothing and leave nothing waiting in the outbox; `/param notifications` shows them.

Learning announcements, blocked-trade alerts, optimization reports, parameter changes,
override decisions and errors route through bot.notifications."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.app import SlackBot
from bot.config import Settings
from bot.event_announcer import report_error
from bot.notifications import (
    DigestSettings,
    EventType,
    Mode,
    Notification,
    NotificationSettings,
)
from bot.runtime import Runtime
from core import learning, services
from core.authz import Actor, Role
from core.optimization_model import RunStatus
from core.params import Scope
from tests.digest_seed import finished_run
from tests.e2e.conftest import (
    OPERATOR,
    RISK,
    VIEWER,
    alert_for,
    block,
    on_sqlite,
    outbox_drained,
    param,
    text_of,
)
from tests.fakeslack import FakeSlack

OPS = Actor.having("U0OPS", "slack", Role.OPERATOR)
ADMIN = Actor.having("U0ADMIN", "slack", Role.ADMIN)
ELSEWHERE = "#risk-alerts"
WAIT = 15.0

pytestmark = on_sqlite  # routing is the bot's; the stores run on both databases elsewhere


@pytest.fixture
def notify() -> dict[EventType, Notification]:
    return {}


@pytest.fixture
def settings(settings: Settings, notify: dict[EventType, Notification]) -> Settings:
    return replace(
        settings,
        notifications=NotificationSettings(notify),
        digest=DigestSettings(channel="#digests", weekly=False),
    )


async def start_session(runtime: Runtime) -> None:
    await learning.start_learning_session(runtime.deps, OPS, 30, "explore")
    runtime.wake_dispatchers()


@pytest.mark.parametrize("notify", [{EventType.LEARNING_SESSION: Notification(Mode.ON, ELSEWHERE)}])
async def test_an_event_that_is_on_goes_to_its_own_channel(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await start_session(runtime)

    await slack.wait_until(lambda: bool(slack.messages(ELSEWHERE)), WAIT, "the announcement")
    assert "started learning session" in text_of(slack.latest_message(ELSEWHERE)["blocks"])
    assert not slack.messages(RISK)


def quiet(event: EventType) -> pytest.MarkDecorator:
    """The test runs with `event` silent, then off."""
    modes = [{event: Notification(mode)} for mode in (Mode.SILENT, Mode.OFF)]
    return pytest.mark.parametrize("notify", modes, ids=["silent", "off"])


@quiet(EventType.LEARNING_SESSION)
async def test_a_learning_session_that_is_silent_or_off_is_delivered_without_a_post(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await start_session(runtime)

    await outbox_drained(runtime)  # nothing stays in the outbox
    assert not slack.calls("chat.postMessage")


@quiet(EventType.OPTIMIZATION_RESULT)
async def test_an_optimization_report_that_is_silent_or_off_is_not_posted(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await finished_run(runtime.deps, RunStatus.NO_IMPROVEMENT)
    runtime.wake_dispatchers()

    await outbox_drained(runtime)
    assert not slack.calls("chat.postMessage")


@quiet(EventType.BLOCKED_TRADE)
async def test_blocked_trade_alerts_that_are_silent_or_off_are_not_posted(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await block(runtime)

    await outbox_drained(runtime)
    assert not slack.calls("chat.postMessage")


@pytest.mark.parametrize("notify", [{EventType.BLOCKED_TRADE: Notification(Mode.ON, ELSEWHERE)}])
async def test_blocked_trade_alerts_go_to_their_channel(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await block(runtime)

    await slack.wait_until(lambda: bool(slack.messages(ELSEWHERE)), WAIT, "the alert")
    assert not slack.messages(RISK)


def elsewhere(event: EventType) -> pytest.MarkDecorator:
    """The test runs with `event` on, in a channel of its own."""
    return pytest.mark.parametrize("notify", [{event: Notification(Mode.ON, ELSEWHERE)}])


@quiet(EventType.PARAMETER_CHANGE)
async def test_a_parameter_change_that_is_silent_or_off_is_not_posted(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await services.set_parameter(runtime.deps, ADMIN, Scope.GLOBAL, "min_confidence", "0.6", "why")
    runtime.wake_dispatchers()

    await outbox_drained(runtime)
    assert not slack.calls("chat.postMessage")


@quiet(EventType.OVERRIDE_DECISION)
async def test_an_override_decision_that_is_silent_or_off_is_not_posted(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    answer = await param(slack, "override BTCUSDC BUY hedge", OPERATOR)

    assert "overrode the risk block" in text_of(answer.body["blocks"])  # the caller's answer
    await outbox_drained(runtime)
    assert not slack.calls("chat.postMessage")


@quiet(EventType.ERROR)
async def test_an_error_that_is_silent_or_off_is_not_posted(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await report_error(runtime, "scheduled job cleanup", "OSError: disk full")

    await outbox_drained(runtime)
    assert not slack.calls("chat.postMessage")


@elsewhere(EventType.OVERRIDE_DECISION)
async def test_a_decision_on_an_alert_is_announced_in_the_decisions_own_channel(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await block(runtime)
    await slack.click_button(await alert_for(slack), "override_approve", OPERATOR)

    await slack.wait_until(lambda: bool(slack.messages(ELSEWHERE)), WAIT, "the announcement")
    shown = text_of(slack.latest_message(ELSEWHERE)["blocks"])
    assert "*Blocked BUY BTCUSDC: min_confidence*" in shown
    assert ":white_check_mark: Approved by <@U0OPS> at " in shown


@elsewhere(EventType.ERROR)
async def test_an_error_goes_to_its_own_channel(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await report_error(runtime, "scheduled job cleanup", "OSError: disk full")

    await slack.wait_until(lambda: bool(slack.messages(ELSEWHERE)), WAIT, "the error")
    assert "*scheduled job cleanup* failed" in text_of(slack.latest_message(ELSEWHERE)["blocks"])
    assert not slack.messages(RISK)


@pytest.mark.parametrize(
    "notify",
    [
        {
            EventType.LEARNING_SESSION: Notification(Mode.SILENT, "#learning"),
            EventType.ERROR: Notification(Mode.OFF),
        }
    ],
)
async def test_param_notifications_shows_each_event_type(slack: FakeSlack, bot: SlackBot) -> None:
    answer = await param(slack, "notifications", user=VIEWER)

    assert answer.response_type == "ephemeral"
    shown = text_of(answer.body["blocks"])
    assert "blocked_trade         on      #risk-blocked" in shown
    assert "learning_session      silent  (#learning if on)" in shown
    assert "error                 off     (#risk-blocked if on)" in shown
    assert "*Digests*: daily to #digests" in shown
