"""Approve override / Deny on a #risk-blocked alert: once, by an authorized person, in time."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from bot.config import Settings
from bot.runtime import Runtime
from core.alerts import AlertStatus
from core.models import OverrideStatus, Side
from storage.alert_store import SqlAlertStore
from storage.db import sessionmaker
from tests.e2e.conftest import (
    ADMIN,
    OPERATOR,
    QUICK,
    RISK,
    TRADER,
    VIEWER,
    ManualClock,
    alert_for,
    block,
    outbox_drained,
    running_bot,
    text_of,
)
from tests.fakeslack import FakeSlack


def actions(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def updated(slack: FakeSlack, ts: str, text: str) -> dict[str, Any]:
    await slack.wait_until(lambda: text in slack.message(RISK, ts)["text"], what=text)
    return slack.message(RISK, ts)


async def ephemeral_for(slack: FakeSlack, user: str) -> str:
    answer = await slack.wait_for_response(lambda r: r.user_id == user)
    assert answer.response_type == "ephemeral" and not answer.replace_original
    return answer.text


async def overrides(runtime: Runtime) -> list[Any]:
    return await runtime.deps.trades.active_overrides(None, None, runtime.deps.clock.now())


@pytest.mark.usefixtures("bot")
async def test_a_blocked_trade_is_posted_with_its_details_and_two_buttons(
    slack: FakeSlack, runtime: Runtime
) -> None:
    [trade] = await block(runtime)

    message = await alert_for(slack)

    assert message["text"].startswith("Blocked BUY BTCUSDC: min_confidence. Waiting for a decision")
    fields = [field["text"] for field in message["blocks"][1]["fields"]]
    assert fields[:7] == [
        "*Signal*\nBUY",
        "*Reason*\nmin_confidence",
        "*Symbol*\nBTCUSDC",
        "*Price*\n64250.5",
        "*RSI*\n28.4",
        "*Confidence*\n0.58",
        "*Risk level*\nMEDIUM",
    ]
    assert fields[7].startswith("*Time*\n") and fields[7].endswith(" UTC")
    approve, deny = actions(message)
    assert (approve["action_id"], approve["style"], approve["value"]) == (
        "override_approve",
        "primary",
        str(trade.id),
    )
    assert approve["confirm"]["title"]["text"] == "Approve override?"
    assert (deny["action_id"], deny["value"]) == ("override_deny", str(trade.id))
    await outbox_drained(runtime)  # marked delivered, now that Slack has it
    stored = await runtime.deps.trades.blocked_trade(trade.id)
    assert stored is not None and stored.alert_ts == message["ts"]


@pytest.mark.usefixtures("bot")
async def test_approve_records_an_expiring_override_and_replaces_the_buttons(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await block(runtime)
    message = await alert_for(slack)

    await slack.click_button(message, "override_approve", OPERATOR)

    decided = await updated(slack, message["ts"], "Approved by <@U0OPS>")
    assert actions(decided) == []
    assert "Approved by <@U0OPS> at " in text_of(decided["blocks"])
    assert " UTC — approved from the alert for min_confidence (override valid until " in (
        text_of(decided["blocks"])
    )
    [granted] = await overrides(runtime)
    assert (granted.symbol, granted.side, granted.decided_by) == ("BTCUSDC", Side.BUY, OPERATOR)
    assert granted.expires_at is not None


@pytest.mark.usefixtures("bot")
async def test_deny_records_the_decision_without_an_override_to_use(
    slack: FakeSlack, runtime: Runtime
) -> None:
    [trade] = await block(runtime)
    message = await alert_for(slack)

    await slack.click_button(message, "override_deny", TRADER)  # operator through a group

    decided = await updated(slack, message["ts"], "Denied by <@U0TRADER>")
    assert actions(decided) == []
    decision = await runtime.deps.trades.override_for_blocked_trade(trade.id)
    assert decision is not None and decision.status is OverrideStatus.DENIED
    assert await overrides(runtime) == []


@pytest.mark.usefixtures("bot")
async def test_a_second_click_changes_nothing_and_says_why(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await block(runtime)
    message = await alert_for(slack)
    await slack.click_button(message, "override_approve", OPERATOR)
    await updated(slack, message["ts"], "Approved by")

    await slack.click_button(message, "override_deny", OPERATOR)  # the stale copy, as Slack might

    answer = await ephemeral_for(slack, OPERATOR)
    assert answer.startswith("already approved by <@U0OPS> at ")
    assert answer.endswith("; nothing was changed")
    assert len(await overrides(runtime)) == 1


@pytest.mark.usefixtures("bot")
async def test_two_approvers_racing_make_one_decision(slack: FakeSlack, runtime: Runtime) -> None:
    [trade] = await block(runtime)
    message = await alert_for(slack)

    await asyncio.gather(
        slack.click_button(message, "override_approve", OPERATOR),
        slack.click_button(message, "override_deny", ADMIN),
    )

    refused = await slack.wait_for_response(lambda r: r.response_type == "ephemeral")
    assert refused.text.startswith("already ") and refused.text.endswith("nothing was changed")
    decision = await runtime.deps.trades.override_for_blocked_trade(trade.id)
    assert decision is not None and decision.decided_by != refused.user_id
    verb = "Denied" if decision.status is OverrideStatus.DENIED else "Approved"
    final = await updated(slack, message["ts"], f"{verb} by <@{decision.decided_by}>")
    assert text_of(final["blocks"]).count(" by <@") == 1


@pytest.mark.parametrize(
    "omit",
    [["container"], ["container", "channel", "message"]],
    ids=["channel-and-message", "from-the-trade"],
)
@pytest.mark.usefixtures("bot")
async def test_a_click_without_a_container_still_updates_the_alert(
    slack: FakeSlack, runtime: Runtime, omit: list[str]
) -> None:
    await block(runtime)
    message = await alert_for(slack)
    await outbox_drained(runtime)  # where the alert is, recorded

    await slack.click_button(message, "override_approve", OPERATOR, omit=omit)

    decided = await updated(slack, message["ts"], "Approved by <@U0OPS>")
    assert actions(decided) == []


@pytest.mark.usefixtures("bot")
async def test_the_clicking_user_is_checked_not_the_poster(
    slack: FakeSlack, runtime: Runtime
) -> None:
    [trade] = await block(runtime)
    message = await alert_for(slack)

    await slack.click_button(message, "override_approve", VIEWER)

    answer = await ephemeral_for(slack, VIEWER)
    assert answer == "override needs the operator role; U0VIEWER has viewer"
    assert await runtime.deps.trades.override_for_blocked_trade(trade.id) is None
    assert actions(slack.message(RISK, message["ts"]))  # still waiting for a decision


async def test_an_unanswered_alert_expires_and_a_late_click_is_refused(
    slack: FakeSlack, runtime: Runtime, clock: ManualClock
) -> None:
    async with running_bot(runtime):
        [trade] = await block(runtime)
        message = await alert_for(slack)

        clock.advance(minutes=15)

        expired = await updated(slack, message["ts"], "Expired at")
        assert actions(expired) == []
        assert ":hourglass: Expired at " in text_of(expired["blocks"])
        await slack.click_button(message, "override_approve", ADMIN)  # a copy still showing buttons
        answer = await ephemeral_for(slack, ADMIN)

    assert answer.startswith("this alert expired at ") and answer.endswith("nothing was changed")
    assert await runtime.deps.trades.override_for_blocked_trade(trade.id) is None
    group = await SqlAlertStore(sessionmaker(runtime.engine)).group(
        expired_channel(slack), message["ts"]
    )
    assert group is not None and group.status is AlertStatus.EXPIRED


def expired_channel(slack: FakeSlack) -> str:
    return slack.channel_id(RISK)


class TestAnAlertExpiringWithinTheSweepInterval:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return replace(settings, alert_expiry_minutes=0.05)  # 3 seconds

    async def test_it_expires_when_due_not_at_the_next_sweep(
        self, slack: FakeSlack, runtime: Runtime
    ) -> None:
        async with running_bot(runtime, replace(QUICK, expiry_sweep=600.0)):
            await slack.wait_for_connections(1)
            await block(runtime)
            message = await alert_for(slack)

            expired = await updated(slack, message["ts"], "Expired at")  # waits up to 15 s

        assert actions(expired) == []
