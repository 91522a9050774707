"""Apply / Reject on the report of a run whose winner waits for approval (apply_mode approve).

The clicking user is checked by core (admins only); the decision is recorded once and the
report is re-rendered in place with who decided and without the buttons. A refused or late
click is answered to the clicker alone; the report of a run a newer one superseded loses its
stale buttons then.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import internal_error, refusal
from bot.blocks.optimization import APPLY_ACTION, REJECT_ACTION
from bot.handlers.actor import actor_of
from bot.handlers.reply import redraw, reply_to, tell
from bot.optimization_announcer import report_message, superseded_report
from bot.runtime import Runtime
from core import optimization
from core.authz import Actor
from core.errors import ConflictError, UserError, ValidationError

log = logging.getLogger(__name__)


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def apply_winner(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        respond = reply_to(context, body, client)
        await _decide(runtime, actor_of(context), body, respond, apply=True)

    async def reject_winner(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        await ack()
        respond = reply_to(context, body, client)
        await _decide(runtime, actor_of(context), body, respond, apply=False)

    app.action(APPLY_ACTION)(apply_winner)
    app.action(REJECT_ACTION)(reject_winner)


async def _decide(
    runtime: Runtime, actor: Actor, body: dict[str, Any], respond: AsyncRespond, apply: bool
) -> None:
    deps = runtime.deps
    decide = optimization.apply_run_winner if apply else optimization.reject_run_winner
    try:
        run_id = _run_id(body)
        await decide(deps, actor, run_id)
    except UserError as error:
        log.info("optimization decision by %s refused: %s", actor.id, error)
        await tell(respond, refusal(str(error)))
        if isinstance(error, ConflictError):
            await _redraw_if_superseded(runtime, respond, run_id)
        return
    except Exception:
        log.exception("optimization decision by %s failed", actor.id)
        await tell(respond, internal_error())
        return
    try:
        await redraw(respond, await report_message(deps, run_id, decided_by=actor.id))
    except Exception:  # the decision stands; only the message is behind
        log.exception("optimization %s decided by %s; the report was not redrawn", run_id, actor.id)
        done = "applied" if apply else "rejected"
        await tell(respond, refusal(f"{run_id}: {done}, but the report could not be refreshed"))


async def _redraw_if_superseded(runtime: Runtime, respond: AsyncRespond, run_id: str) -> None:
    """A newer run replaced this winner: its buttons go (a refusal was already told)."""
    try:
        stale = await superseded_report(runtime.deps, run_id)
        if stale is not None:
            await redraw(respond, stale)
    except Exception:
        log.exception("optimization %s: the superseded report was not redrawn", run_id)


def _run_id(body: dict[str, Any]) -> str:
    value = str(body["actions"][0].get("value", ""))
    if not value.startswith("opt_"):
        raise ValidationError(f"this button names no optimization run ({value!r})")
    return value
