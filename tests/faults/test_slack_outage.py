"""Slack unreachable for several minutes (on the bot's clock, moved by the test): the
alerts wait in the outbox, retried with growing backoff, and once Slack is back they
arrive in the order the trades were blocked, each exactly once."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.runtime import Runtime
from storage.tables import OutboxRow
from storage.trade_store import ALERT_TOPIC
from tests.e2e.conftest import (
    RISK,
    ManualClock,
    block,
    blocked_event,
    on_sqlite,
    outbox_drained,
    running_bot,
    until,
)
from tests.fakeslack import FakeSlack

SYMBOLS = ["BTCUSDC", "ETHUSDC", "SOLUSDC", "ADAUSDC", "XRPUSDC"]


async def attempts(runtime: Runtime) -> int:
    """How often the oldest undelivered alert was tried."""
    query = select(func.max(OutboxRow.attempts)).where(OutboxRow.topic == ALERT_TOPIC)
    async with runtime.engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one() or 0)


async def failed_attempt(runtime: Runtime, number: int) -> None:
    async def recorded() -> bool:
        return await attempts(runtime) >= number

    await until(recorded, f"failed delivery attempt {number}", timeout=20)


@on_sqlite
async def test_alerts_wait_out_a_long_outage_and_arrive_in_order_once(
    slack: FakeSlack, runtime: Runtime, clock: ManualClock
) -> None:
    slack.set_down(True)
    async with running_bot(runtime):
        for symbol in SYMBOLS:
            await block(runtime, blocked_event(symbol))
        await failed_attempt(runtime, 1)
        for waited, number in [(1, 2), (2, 3), (4, 4)]:  # 1 s, 2 s, 4 s: backoff doubles
            calls = len(slack.calls("chat.postMessage"))
            clock.advance(seconds=waited - 0.5)
            assert await attempts(runtime) == number - 1  # not retried before it is due
            assert len(slack.calls("chat.postMessage")) == calls
            clock.advance(seconds=0.5)
            await failed_attempt(runtime, number)
        clock.advance(minutes=5)  # Slack stays down for minutes more
        await failed_attempt(runtime, 5)
        assert slack.messages(RISK) == []
        slack.set_down(False)
        clock.advance(seconds=16)  # the fifth failure asked for 16 s

        await outbox_drained(runtime)
        posted = [m["text"].split(":")[0] for m in slack.messages(RISK)]

    assert posted == [f"Blocked BUY {symbol}" for symbol in SYMBOLS]
    delivered = [c for c in slack.calls("chat.postMessage") if c.ok]
    assert len(delivered) == len(SYMBOLS)  # none posted twice
