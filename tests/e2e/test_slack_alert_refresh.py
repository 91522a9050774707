"""An alert Slack would not update (after a decision or an expiry) is updated later, once,
without breaking the channel's pace."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from bot.runtime import Runtime
from tests.e2e.conftest import (
    OPERATOR,
    RISK,
    TIMING,
    ManualClock,
    alert_for,
    block,
    on_sqlite,
    outbox_drained,
    running_bot,
)
from tests.fakeslack import ApiCall, FakeSlack

pytestmark = on_sqlite

MORE_THAN_THE_CLIENT_RETRIES = 4  # the client tries 3 times; then the writer tries again


def updates_of(slack: FakeSlack, ts: str, *, ok: bool | None = None) -> list[ApiCall]:
    return [c for c in slack.calls("chat.update", ok=ok) if c.params.get("ts") == ts]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.usefixtures("bot")
async def test_a_decision_slack_failed_to_show_is_shown_once_it_takes_the_update(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await block(runtime)
    message = await alert_for(slack)
    slack.fail_next("chat.update", status=500, times=MORE_THAN_THE_CLIENT_RETRIES)

    await slack.click_button(message, "override_approve", OPERATOR)

    await slack.wait_until(
        lambda: "Approved by <@U0OPS>" in slack.message(RISK, message["ts"])["text"],
        timeout=30,
        what="the decision shown in the alert",
    )
    assert buttons(slack.message(RISK, message["ts"])) == []
    assert len(updates_of(slack, message["ts"], ok=True)) == 1
    assert len(updates_of(slack, message["ts"], ok=False)) == MORE_THAN_THE_CLIENT_RETRIES


@pytest.mark.usefixtures("bot")
async def test_the_clicker_is_told_when_the_alert_could_not_show_the_decision_at_once(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await block(runtime)
    message = await alert_for(slack)
    slack.fail_next("chat.update", status=500, times=MORE_THAN_THE_CLIENT_RETRIES)

    ack = await slack.click_button(message, "override_approve", OPERATOR)

    told = await slack.wait_for_response(
        response_url=ack.envelope["payload"]["response_url"], timeout=30
    )
    assert told.response_type == "ephemeral"
    assert "Your decision is recorded" in told.text


async def test_an_expiry_slack_failed_to_show_is_shown_once_it_takes_the_update(
    slack: FakeSlack, runtime: Runtime, clock: ManualClock
) -> None:
    async with running_bot(runtime):
        await slack.wait_for_connections(1)
        await block(runtime)
        message = await alert_for(slack)
        await outbox_drained(runtime)
        slack.fail_next("chat.update", status=503, times=MORE_THAN_THE_CLIENT_RETRIES)

        clock.advance(minutes=15)

        await slack.wait_until(
            lambda: "Expired at" in slack.message(RISK, message["ts"])["text"],
            timeout=30,
            what="the expiry shown in the alert",
        )
    assert buttons(slack.message(RISK, message["ts"])) == []
    assert len(updates_of(slack, message["ts"], ok=True)) == 1


async def test_retried_updates_keep_the_channel_pace(slack: FakeSlack, runtime: Runtime) -> None:
    async with running_bot(runtime, TIMING):  # Slack's pace: one call a second per channel
        await slack.wait_for_connections(1)
        await block(runtime)
        message = await alert_for(slack)
        slack.fail_next("chat.update", status=500, times=MORE_THAN_THE_CLIENT_RETRIES)

        await slack.click_button(message, "override_approve", OPERATOR)
        await slack.wait_until(
            lambda: "Approved by" in slack.message(RISK, message["ts"])["text"],
            timeout=30,
            what="the decision shown in the alert",
        )

    arrivals = [c.at for c in updates_of(slack, message["ts"])]
    assert len(arrivals) == MORE_THAN_THE_CLIENT_RETRIES + 1
    gaps = [later - earlier for earlier, later in pairwise(arrivals)]
    assert min(gaps) >= TIMING.alert_interval
