"""The /param slash command: ack at once, then run the command and answer (through the
response_url, or the Web API when that fails: bot.handlers.reply)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import internal_error
from bot.commands import CommandContext, run_command
from bot.handlers.actor import actor_of
from bot.handlers.reply import answer, reply_to
from bot.runtime import Runtime
from core.commands import COMMAND

log = logging.getLogger(__name__)


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def param_command(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()

        async def open_form(view: View) -> None:
            await client.views_open(trigger_id=body["trigger_id"], view=view)

        ctx = CommandContext(
            runtime,
            actor_of(context),
            str(body.get("channel_id") or ""),
            open_form,
            channel_name=str(body.get("channel_name") or ""),
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
