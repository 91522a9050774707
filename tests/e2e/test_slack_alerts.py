"""Delivering #risk-blocked alerts: coalesced, paced to Slack's limit, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from datetime import timedelta

import pytest

from bot.app import retry_after
from bot.runtime import Runtime
from tests.e2e.conftest import (
    ADMIN,
    RISK,
    TIMING,
    ManualClock,
    alert_for,
    block,
    blocked_event,
    on_sqlite,
    outbox_drained,
    running_bot,
)
from tests.fakeslack import FakeSlack

KEYS = [
    ("BTCUSDC", "min_confidence"),
    ("BTCUSDC", "max_position_size"),
    ("ETHUSDC", "min_confidence"),
    ("ETHUSDC", "max_position_size"),
]


ALERT_TEXT = re.compile(r"^Blocked (?:BUY|SELL) (\S+): (\S+?)(?: \(×(\d+) since [^)]+\))?\. ")


def count_in(text: str) -> int:
    """How many blocked trades a message stands for (×N, or one)."""
    found = ALERT_TEXT.match(text)
    assert found is not None, text
    return int(found[3] or 1)


def key_of(text: str) -> tuple[str, str]:
    found = ALERT_TEXT.match(text)
    assert found is not None, text
    return found[1], found[2]


async def test_a_burst_is_coalesced_paced_and_complete(slack: FakeSlack, runtime: Runtime) -> None:
    slack.channel_rate_limit = 1  # Slack's ~1 message per second per channel, enforced
    events = [blocked_event(symbol, reason=reason) for symbol, reason in KEYS * 50]
    async with running_bot(runtime, TIMING):
        await slack.wait_for_connections(1)
        started = time.monotonic()
        # 200 blocked trades, 10 every 0.25 s: far faster than Slack's 1 message per second.
        # (How long storing them takes on a loaded CI machine is not what this test is about.)
        for batch in range(20):
            await asyncio.sleep(max(0.0, started + batch * 0.25 - time.monotonic()))
            await block(runtime, *events[batch * 10 : batch * 10 + 10])
        await outbox_drained(runtime)

    hour = timedelta(hours=1)
    stats = await runtime.deps.trades.blocked_stats(
        events[0].timestamp - hour, events[-1].timestamp + hour, 1, 0
    )
    assert stats.total == 200  # every blocked trade stored on its own
    messages = slack.messages(RISK)
    assert len(messages) == len(KEYS)  # one message per symbol and reason
    assert {key_of(m["text"]): count_in(m["text"]) for m in messages} == dict.fromkeys(KEYS, 50)
    assert slack.calls("chat.postMessage", ok=False) == []  # never a 429
    writes = sorted(c.at for c in slack.calls() if c.method in ("chat.postMessage", "chat.update"))
    assert min(b - a for a, b in itertools.pairwise(writes)) >= 0.95


@pytest.mark.usefixtures("bot")
async def test_trades_of_a_waiting_alert_update_it_and_a_decided_one_starts_anew(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await block(runtime)
    first = await alert_for(slack)

    await block(runtime, blocked_event(), blocked_event())
    await slack.wait_until(lambda: "×3" in slack.message(RISK, first["ts"])["text"], what="×3")
    await slack.click_button(slack.message(RISK, first["ts"]), "override_deny", ADMIN)
    await slack.wait_until(lambda: "Denied" in slack.message(RISK, first["ts"])["text"])
    await block(runtime)

    second = await alert_for(slack, count=2)
    assert second["ts"] != first["ts"] and count_in(second["text"]) == 1
    assert len(slack.calls("chat.postMessage")) == 2


async def test_trades_blocked_while_the_bot_was_down_are_alerted_when_it_starts(
    slack: FakeSlack, runtime: Runtime
) -> None:
    await block(runtime, blocked_event(), blocked_event("SOLUSDC", reason="rsi_filter"))

    async with running_bot(runtime):
        await outbox_drained(runtime)

    assert sorted(m["text"].split(":")[0] for m in slack.messages(RISK)) == [
        "Blocked BUY BTCUSDC",
        "Blocked BUY SOLUSDC",
    ]


async def test_an_alert_whose_decision_time_is_over_is_posted_without_buttons(
    slack: FakeSlack, runtime: Runtime, clock: ManualClock
) -> None:
    await block(runtime)
    clock.advance(minutes=20)

    async with running_bot(runtime):
        message = await alert_for(slack)

    assert "Expired at" in message["text"]
    assert [b for b in message["blocks"] if b["type"] == "actions"] == []


@on_sqlite
@pytest.mark.usefixtures("bot")
async def test_slack_answering_429_delays_the_alert_but_delivers_it_once(
    slack: FakeSlack, runtime: Runtime
) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)

    await block(runtime)
    await outbox_drained(runtime)

    limited, delivered = slack.calls("chat.postMessage")
    assert (limited.status, delivered.status) == (429, 200)
    assert delivered.at - limited.at >= 1.0  # Retry-After honoured
    assert len(slack.messages(RISK)) == 1


@on_sqlite
@pytest.mark.usefixtures("bot")
async def test_slack_failing_with_500_delays_the_alert_but_delivers_it_once(
    slack: FakeSlack, runtime: Runtime
) -> None:
    slack.fail_next("chat.postMessage", status=500, times=3)  # the client retries twice

    await block(runtime)
    await outbox_drained(runtime)

    assert [c.status for c in slack.calls("chat.postMessage")] == [500, 500, 500, 200]
    assert len(slack.messages(RISK)) == 1


@on_sqlite
@pytest.mark.usefixtures("bot")
async def test_a_slack_outage_delays_alerts_and_loses_none(
    slack: FakeSlack, runtime: Runtime
) -> None:
    slack.set_down(True)
    await block(runtime, blocked_event(), blocked_event("ETHUSDC"))
    await slack.wait_for_call("chat.postMessage", ok=False)
    slack.set_down(False)

    await outbox_drained(runtime)

    assert len(slack.messages(RISK)) == 2


def test_retry_after_is_read_whole() -> None:
    assert retry_after({"Retry-After": ["30"]}) == 30.0
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({}) == 1.0
