"""Answering the person who clicked, and no one else."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncRespond

from bot.blocks.common import Message

log = logging.getLogger(__name__)


async def tell(respond: AsyncRespond | None, message: Message) -> None:
    """An ephemeral answer to the clicker; the message clicked stays as it is. Without a
    response_url (Slack always sends one; a forged payload may not) there is no one to tell,
    and a listener must not fail after its ack: Bolt would then never send the ack."""
    if respond is None or respond.response_url is None:
        log.info("no response_url to answer with: %s", message.text)
        return
    await respond(**message.payload(), response_type="ephemeral", replace_original=False)
