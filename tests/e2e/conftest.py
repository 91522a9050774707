"""The real bot (Bolt AsyncApp over Socket Mode, the real Runtime) against the fake Slack.

`settings` is overridden here: Slack tokens, the fake's URL and a role table, so the
root `runtime` fixture opens the bot's database with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import SlackBot, SlackTiming
from bot.config import Settings
from bot.outbox import OutboxDispatcher
from bot.runtime import Runtime
from bot.service import started
from bot.slack import build_slack
from core.authz import Actor, Role
from core.models import BlockedTradeEvent, Ingested, Side
from core.trades import ingest_blocked_trades
from tests.api.conftest import Api, serve_runtime
from tests.fakeslack import Ack, FakeSlack, ResponseUrlPost

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-1-A0FAKEAPP-1-fake"

ADMIN, OPERATOR, VIEWER, STRANGER = "U0ADMIN", "U0OPS", "U0VIEWER", "U0STRANGER"
TRADERS, TRADER = "S0TRADERS", "U0TRADER"  # a user group holding the operator role
RISK = "#risk-blocked"
TRADING = "#trading"  # where people type commands
ROLES = {"admin": (ADMIN,), "operator": (OPERATOR, TRADERS), "viewer": (VIEWER,)}
ENGINE = Actor.having("engine", "api", Role.ENGINE)
# Slack's real per-channel pace for the alert writer; other timings short for quick tests.
TIMING = SlackTiming(alert_interval=1.0, expiry_sweep=0.1, role_cache=60.0, ping_interval=10.0)
QUICK = replace(TIMING, alert_interval=0.05)


# For Slack behaviour that does not depend on the database (the stores are exercised on
# both databases by the alert tests and the integration tests): SQLite only, to stay quick.
on_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        fake.set_usergroup(TRADERS, [TRADER])
        yield fake


@pytest.fixture
def settings(database_url: str, backup_dir: Path, slack: FakeSlack) -> Settings:
    return Settings(
        database_url=database_url,
        backup_dir=backup_dir,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=slack.api_url,
        risk_channel=RISK,
        roles=ROLES,
    )


@contextlib.asynccontextmanager
async def running_bot(runtime: Runtime, timing: SlackTiming = QUICK) -> AsyncIterator[SlackBot]:
    """What `paramadapt run` starts for Slack, minus the HTTP server: alert writer, outbox
    dispatcher (its "slack.blocked_trade" deliverer), Socket Mode."""
    parts = build_slack(runtime, None, asyncio.Event(), timing)
    dispatcher = OutboxDispatcher(
        runtime.outbox, runtime.deps.clock, parts.deliverers(), poll_seconds=0.1
    )
    runtime.wakers.append(dispatcher.nudge)
    async with started([*parts.backend, dispatcher, *parts.frontend]):
        yield parts.bot


@pytest.fixture
async def bot(runtime: Runtime, slack: FakeSlack) -> AsyncIterator[SlackBot]:
    async with running_bot(runtime) as running:
        await slack.wait_for_connections(1)
        yield running


@pytest.fixture
async def api(runtime: Runtime, bot: SlackBot) -> AsyncIterator[Api]:
    """The running bot's HTTP API, /process-command included (as `paramadapt run` serves it).
    Its tokens are those of tests.api.conftest: override `settings` with `api_settings`."""
    async for client in serve_runtime(runtime, bot):
        yield client


class ManualClock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock(runtime: Runtime) -> ManualClock:
    """Put the runtime on a manual clock (before the bot is built)."""
    manual = ManualClock()
    runtime.deps = replace(runtime.deps, clock=manual)
    return manual


# ---------------------------------------------------------------------------- helpers


async def param(
    slack: FakeSlack, text: str, user: str = ADMIN, channel: str = TRADING
) -> ResponseUrlPost:
    """Type `/param text` in Slack; the bot's answer to it."""
    ack = await slack.slash_command("/param", text, user_id=user, channel_id=channel)
    return await answer_to(slack, ack)


async def answer_to(slack: FakeSlack, ack: Ack) -> ResponseUrlPost:
    assert ack.payload is None, "a slash command is acked empty, then answered"
    url = ack.envelope["payload"]["response_url"]
    return await slack.wait_for_response(response_url=url)


def text_of(blocks: Any) -> str:
    """Every text object in the blocks (sections, fields, buttons, dialogs), one per line."""
    if isinstance(blocks, dict):
        if blocks.get("type") in ("mrkdwn", "plain_text"):
            return str(blocks.get("text", ""))
        blocks = list(blocks.values())
    if isinstance(blocks, list):
        return "\n".join(filter(None, (text_of(item) for item in blocks)))
    return ""


_events = itertools.count(1)


def blocked_event(
    symbol: str = "BTCUSDC",
    signal: Side = Side.BUY,
    reason: str = "min_confidence",
    **values: Any,
) -> BlockedTradeEvent:
    fields: dict[str, Any] = {
        "rsi": 28.4,
        "price": 64250.5,
        "confidence": 0.58,
        "risk_level": "MEDIUM",
    }
    fields.update(values)
    return BlockedTradeEvent(
        event_id=f"evt-{next(_events)}",
        timestamp=datetime.now(UTC),
        symbol=symbol,
        signal=signal,
        block_reason=reason,
        **fields,
    )


async def block(runtime: Runtime, *events: BlockedTradeEvent) -> list[Ingested]:
    """The engine reports blocked trades (the core use case its webhook calls)."""
    ingested = await ingest_blocked_trades(runtime.deps, ENGINE, events or [blocked_event()])
    runtime.wake_dispatchers()
    return ingested


async def until(probe: Callable[[], Awaitable[bool]], what: str, timeout: float = 10) -> None:
    """Poll a database condition (the fake Slack's own state has wait_until)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await probe():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def outbox_drained(runtime: Runtime) -> None:
    async def empty() -> bool:
        return await runtime.outbox.pending() == {}

    await until(empty, "every outbox message delivered")


def alerts_in(slack: FakeSlack, channel: str = RISK) -> list[dict[str, Any]]:
    """The blocked-trade alerts of a channel, oldest first (not its other announcements)."""
    return [m for m in slack.messages(channel) if m.get("text", "").startswith("Blocked ")]


async def alert_for(slack: FakeSlack, count: int = 1) -> dict[str, Any]:
    """The latest alert in #risk-blocked once `count` alerts were posted there."""
    await slack.wait_until(lambda: len(alerts_in(slack)) >= count, what=f"{count} alert(s)")
    return alerts_in(slack)[-1]
