"""Apply on a learning session's recommendation: an admin makes it live in one click.

The clicking user is checked by core; the change goes through the normal versioned path,
which announces it in the channel (from the outbox); the clicker and a refusal are answered
to the clicker alone.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import internal_error, refusal
from bot.blocks.learning import APPLY_ACTION
from bot.blocks.params import change_announcement
from bot.handlers.actor import actor_of
from bot.handlers.reply import reply_to, tell
from bot.runtime import Runtime
from core import learning
from core.errors import UserError, ValidationError
from core.params import Scope

log = logging.getLogger(__name__)


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def apply_recommendation(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        respond = reply_to(context, body, client)
        actor = actor_of(context)
        try:
            session_id, scope, parameter = _target(body)
            result = await learning.apply_recommendation(
                runtime.deps, actor, session_id, scope, parameter
            )
        except UserError as error:
            log.info("recommendation apply by %s refused: %s", actor.id, error)
            await tell(respond, refusal(str(error)))
            return
        except Exception:
            log.exception("recommendation apply by %s failed", actor.id)
            await tell(respond, internal_error())
            return
        reason = result.version.reason if result.version else ""
        announcement = change_announcement(
            actor.id, f"applied a recommendation of learning session {session_id}", result, reason
        )
        await tell(respond, announcement)

    app.action(APPLY_ACTION)(apply_recommendation)


def _target(body: dict[str, Any]) -> tuple[int, Scope, str]:
    raw = str(body["actions"][0].get("value", ""))
    try:
        value = json.loads(raw)
        return int(value["session"]), Scope.parse(value["scope"]), str(value["parameter"])
    except (ValueError, KeyError, TypeError):
        raise ValidationError(f"this button names no recommendation ({raw!r})") from None
