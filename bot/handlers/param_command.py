"""The /param slash command: ack at once, then run the command and answer (through the
response_url, or the Web API when that fails: bot.handlers.reply)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import learning as learning_blocks
from bot.blocks.help import internal_error
from bot.commands import CommandContext, run_command
from bot.handlers.actor import actor_of
from bot.handlers.reply import answer, reply_to
from bot.runtime import Runtime
from core.commands import COMMAND
from core.errors import UserError

log = logging.getLogger(__name__)


class FormNotOpened(UserError):
    """Slack would not open the form (an expired trigger_id, say): the typed form instead."""


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def param_command(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        channel_id = str(body.get("channel_id") or "")
        channel_name = str(body.get("channel_name") or "")

        async def open_form(view: View) -> None:
            # The form notes where it was asked for: its submitter is answered there.
            view = learning_blocks.asked_in(view, channel_id, channel_name)
            try:
                await client.views_open(trigger_id=body["trigger_id"], view=view)
            except SlackApiError as error:
                reason = error.response.get("error") or f"HTTP {error.response.status_code}"
                log.warning("views.open for %s failed: %s", context.user_id, reason)
                raise FormNotOpened(
                    f"the form could not be opened ({reason}); use "
                    "`/param learning start DURATION_MINUTES [REASON...]`"
                ) from None

        ctx = CommandContext(
            runtime, actor_of(context), channel_id, open_form, channel_name=channel_name
        )
        text = str(body.get("text") or "")  # Slack sends a string; a forged payload may not
        try:
            reply = await run_command(ctx, text)
        except Exception:
            log.exception("/param %r from %s failed", text, ctx.actor.id)
            reply = internal_error()
        if reply is not None:
            await answer(reply_to(context, body, client), reply)

    app.command(COMMAND)(param_command)
