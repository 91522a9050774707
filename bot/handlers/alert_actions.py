"""Approve override / Deny on a #risk-blocked alert.

The clicking user is checked (core decides), the decision is recorded once, and the
message is re-rendered in place; a refused or late click is answered to the clicker alone.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.alerts import Alerts
from bot.blocks.alerts import APPROVE_ACTION, DENY_ACTION
from bot.blocks.help import internal_error, refusal
from bot.handlers.actor import actor_of
from bot.handlers.reply import tell
from bot.runtime import Runtime
from core import trades
from core.authz import Actor
from core.errors import ConflictError, UserError, ValidationError

log = logging.getLogger(__name__)


def register(app: AsyncApp, runtime: Runtime, alerts: Alerts) -> None:
    async def approve_override(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        await ack()
        await _decide(runtime, alerts, actor_of(context), body, respond, approve=True)

    async def deny_override(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        await ack()
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
    alert = _alert_at(body)
    try:
        await trades.decide_blocked_trade(runtime.deps, actor, _trade_id(body), approve)
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
        await alerts.decided(*alert)


def _alert_at(body: dict[str, Any]) -> tuple[str, str] | None:
    """The channel and ts of the alert clicked (Slack always says; a forged click may not)."""
    container = body.get("container")
    if not isinstance(container, dict):
        return None
    channel, ts = container.get("channel_id"), container.get("message_ts")
    return (str(channel), str(ts)) if channel and ts else None


def _trade_id(body: dict[str, Any]) -> int:
    value = str(body["actions"][0].get("value", ""))
    # ASCII digits only ("²" is a digit to str.isdigit), and few enough for a 64-bit row id.
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise ValidationError(f"this button names no blocked trade ({value[:40]!r})")
    return int(value)
