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
from bot.blocks.common import Message
from bot.blocks.help import internal_error, refusal
from bot.handlers.actor import actor_of
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
    respond: AsyncRespond,
    approve: bool,
) -> None:
    channel, ts = body["container"]["channel_id"], body["container"]["message_ts"]
    try:
        await trades.decide_blocked_trade(runtime.deps, actor, _trade_id(body), approve)
    except UserError as error:
        log.info("alert %s in %s: %s refused: %s", ts, channel, actor.id, error)
        if isinstance(error, ConflictError):  # decided or expired: no stale buttons
            alerts.refresh(channel, ts)
        await _tell(respond, refusal(str(error)))
        return
    except Exception:
        log.exception("alert %s in %s: decision by %s failed", ts, channel, actor.id)
        await _tell(respond, internal_error())
        return
    await alerts.decided(channel, ts)


async def _tell(respond: AsyncRespond, message: Message) -> None:
    """To the clicking person alone; the alert itself stays as it is."""
    await respond(**message.payload(), response_type="ephemeral", replace_original=False)


def _trade_id(body: dict[str, Any]) -> int:
    value = str(body["actions"][0].get("value", ""))
    if not value.isdigit():
        raise ValidationError(f"this button names no blocked trade ({value!r})")
    return int(value)
