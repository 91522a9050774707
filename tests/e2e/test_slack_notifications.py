"""Notification settings in the running bot: `on` posts to the type's channel, `silent` and
`off` post nothing and leave nothing waiting in the outbox; `/param notifications` shows them.

Learning announcements, blocked-trade alerts, optimization reports, parameter changes,
override decisions and errors route through bot.notifications."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
OVERRIDE = "override BTCUSDC BUY hedge"
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


# What makes each kind of event happen, as the bot's users and the engine would.
Cause = Callable[[Runtime, FakeSlack], Awaitable[None]]


async def learning_session_started(runtime: Runtime, slack: FakeSlack) -> None:
    await learning.start_learning_session(runtime.deps, OPS, 30, "explore")
    runtime.wake_dispatchers()


async def optimization_finished(runtime: Runtime, slack: FakeSlack) -> None:
    await finished_run(runtime.deps, RunStatus.NO_IMPROVEMENT)
    runtime.wake_dispatchers()


async def trade_blocked(runtime: Runtime, slack: FakeSlack) -> None:
    await block(runtime)


async def parameter_changed(runtime: Runtime, slack: FakeSlack) -> None:
    await services.set_parameter(runtime.deps, ADMIN, Scope.GLOBAL, "min_confidence", "0.6", "why")
    runtime.wake_dispatchers()


async def override_granted(runtime: Runtime, slack: FakeSlack) -> None:
    await param(slack, OVERRIDE, OPERATOR)


async def error_reported(runtime: Runtime, slack: FakeSlack) -> None:
    await report_error(runtime, "scheduled job cleanup", "OSError: disk full")


CAUSES: dict[EventType, Cause] = {
    EventType.LEARNING_SESSION: learning_session_started,
    EventType.OPTIMIZATION_RESULT: optimization_finished,
    EventType.BLOCKED_TRADE: trade_blocked,
    EventType.PARAMETER_CHANGE: parameter_changed,
    EventType.OVERRIDE_DECISION: override_granted,
    EventType.ERROR: error_reported,
}


def elsewhere(event: EventType) -> dict[EventType, Notification]:
    """`event` on, in a channel of its own."""
    return {event: Notification(Mode.ON, ELSEWHERE)}


def on_elsewhere(shown: dict[EventType, str]) -> pytest.MarkDecorator:
    """The test runs with each event on, in a channel of its own; `cause` makes it happen,
    `shown` is what its post says."""
    return pytest.mark.parametrize(
        ("notify", "cause", "shown"),
        [(elsewhere(event), CAUSES[event], text) for event, text in shown.items()],
        ids=list(shown),
    )


QUIET = (Mode.SILENT, Mode.OFF)


def quiet(*events: EventType) -> pytest.MarkDecorator:
    """The test runs with each of `events` silent, then off; `cause` makes it happen."""
    cases = [(event, mode) for event in events for mode in QUIET]
    return pytest.mark.parametrize(
        ("notify", "cause"),
        [({event: Notification(mode)}, CAUSES[event]) for event, mode in cases],
        ids=[f"{event}-{mode}" for event, mode in cases],
    )


@on_elsewhere(
    {
        EventType.LEARNING_SESSION: "started learning session",
        EventType.BLOCKED_TRADE: "Blocked BUY BTCUSDC: min_confidence",
        EventType.ERROR: "*scheduled job cleanup* failed",
    }
)
async def test_an_event_that_is_on_goes_to_its_own_channel(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot, cause: Cause, shown: str
) -> None:
    await cause(runtime, slack)

    await slack.wait_until(lambda: bool(slack.messages(ELSEWHERE)), WAIT, "the post")
    assert shown in text_of(slack.latest_message(ELSEWHERE)["blocks"])
    assert not slack.messages(RISK)


@quiet(*CAUSES)
async def test_an_event_that_is_silent_or_off_is_delivered_without_a_post(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot, cause: Cause
) -> None:
    await cause(runtime, slack)

    await outbox_drained(runtime)  # nothing stays in the outbox
    assert not slack.calls("chat.postMessage")


@pytest.mark.parametrize(
    "notify",
    [{EventType.OVERRIDE_DECISION: Notification(mode)} for mode in QUIET],
    ids=["silent", "off"],
)
async def test_an_override_that_is_silent_or_off_still_answers_its_caller(
    slack: FakeSlack, bot: SlackBot
) -> None:
    answer = await param(slack, OVERRIDE, OPERATOR)

    assert "overrode the risk block" in text_of(answer.body["blocks"])


@pytest.mark.parametrize("notify", [elsewhere(EventType.OVERRIDE_DECISION)])
async def test_a_decision_on_an_alert_is_announced_in_the_decisions_own_channel(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await block(runtime)
    await slack.click_button(await alert_for(slack), "override_approve", OPERATOR)

    await slack.wait_until(lambda: bool(slack.messages(ELSEWHERE)), WAIT, "the announcement")
    shown = text_of(slack.latest_message(ELSEWHERE)["blocks"])
    assert "*Blocked BUY BTCUSDC: min_confidence*" in shown
    assert ":white_check_mark: Approved by <@U0OPS> at " in shown


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
