"""Requests no listener takes (a button left by an older version, an event nobody listens
to) and listener failures.

An unhandled request is acked, so Slack neither retries it nor shows the person a bare
error, and whoever clicked or typed is told, when Slack gave a way to answer them.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import refusal
from bot.handlers.reply import reply_to, tell

log = logging.getLogger(__name__)

NOT_HANDLED = (
    "paramadapt does not handle this (a button from an older message, perhaps); "
    "nothing was changed. Type /param help for what you can do."
)


def register(app: AsyncApp) -> None:
    async def on_error(
        error: Exception, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> BoltResponse | None:
        if not isinstance(error, BoltUnhandledRequestError):
            log.error("a Slack listener failed: %s", error, exc_info=error)
            return None
        log.info("no listener for a Slack %s request: acked", body.get("type", "unknown"))
        if not (context.response_url or context.channel_id):  # an event: nobody to tell
            return BoltResponse(status=200, body="")
        try:
            await tell(reply_to(context, body, client), refusal(NOT_HANDLED))
        except Exception:  # the ack matters more than the explanation
            log.warning("could not tell the person their request is not handled", exc_info=True)
        return BoltResponse(status=200, body="")

    app.error(on_error)
