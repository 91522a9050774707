"""Approve override / Deny on a #risk-blocked alert.

The clicking user is checked (core decides), the decision is recorded once, and the
message is re-rendered in place; a refused or late click is answered to the clicker alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts import Alerts
from bot.blocks.alerts import APPROVE_ACTION, DENY_ACTION
from bot.blocks.help import internal_error, refusal
from bot.handlers.actor import actor_of
from bot.handlers.reply import reply_to, tell
from bot.runtime import Runtime
from core import trades
from core.authz import Actor
from core.errors import ConflictError, UserError, ValidationError

log = logging.getLogger(__name__)

FIRST_UPDATE_WAIT_SECONDS = 30
DECIDED_NOT_SHOWN = (
    "Your decision is recorded, but Slack did not take the update of the alert yet: "
    "it is retried, and the alert will show the decision once Slack takes it."
)


def register(app: AsyncApp, runtime: Runtime, alerts: Alerts) -> None:
    async def approve_override(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        respond = reply_to(context, body, client)
        await _decide(runtime, alerts, actor_of(context), body, respond, approve=True)

    async def deny_override(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        respond = reply_to(context, body, client)
        await _decide(runtime, alerts, actor_of(context), body, respond, approve=False)

    app.action(APPROVE_ACTION)(approve_override)
    app.action(DENY_ACTION)(deny_override)


async def _decide(
    runtime: Runtime,
    alerts: Alerts,
    actor: Actor,
    body: dict[str, Any],
    respond: AsyncRespond | None,
    approve: bool,
) -> None:
    alert: tuple[str, str] | None = None
    try:
        trade_id = _trade_id(body)
        alert = await _alert_of(runtime, body, trade_id)
        await trades.decide_blocked_trade(runtime.deps, actor, trade_id, approve)
    except UserError as error:
        log.info("alert %s: %s refused: %s", alert, actor.id, error)
        if isinstance(error, ConflictError) and alert:  # decided or expired: no stale buttons
            alerts.refresh(*alert)
        await tell(respond, refusal(str(error)))
        return
    except Exception:
        log.exception("alert %s: decision by %s failed", alert, actor.id)
        await tell(respond, internal_error())
        return
    if alert:
        shown = await alerts.decided(*alert)
        with contextlib.suppress(TimeoutError):  # behind a long queue: no news is good news
            if not await asyncio.wait_for(shown, FIRST_UPDATE_WAIT_SECONDS):
                await tell(respond, refusal(DECIDED_NOT_SHOWN))
    else:
        log.warning(
            "trade %s decided by %s, but its alert is nowhere to update", trade_id, actor.id
        )


async def _alert_of(
    runtime: Runtime, body: dict[str, Any], trade_id: int
) -> tuple[str, str] | None:
    """The channel and ts of the alert clicked: from the click's container, else from its
    channel and message (Slack sends both; a stand-in may send only one), else from where
    the trade's alert was recorded as posted."""
    container = _mapping(body.get("container"))
    found = _pair(container.get("channel_id"), container.get("message_ts"))
    found = found or _pair(
        _mapping(body.get("channel")).get("id"), _mapping(body.get("message")).get("ts")
    )
    if found:
        return found
    trade = await runtime.deps.trades.blocked_trade(trade_id)
    return _pair(trade.alert_channel, trade.alert_ts) if trade else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _pair(channel: Any, ts: Any) -> tuple[str, str] | None:
    if isinstance(channel, str) and isinstance(ts, str) and channel and ts:
        return channel, ts
    return None


def _trade_id(body: dict[str, Any]) -> int:
    value = str(body["actions"][0].get("value", ""))
    # ASCII digits only ("²" is a digit to str.isdigit), and few enough for a 64-bit row id.
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise ValidationError(f"this button names no blocked trade ({value[:40]!r})")
    return int(value)
