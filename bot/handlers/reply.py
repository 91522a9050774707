"""Answering the person who clicked, and no one else."""

from __future__ import annotations

import logging
from typing import TypeGuard

from slack_bolt.async_app import AsyncRespond

from bot.blocks.common import Message

log = logging.getLogger(__name__)


async def tell(respond: AsyncRespond | None, message: Message) -> None:
    """An ephemeral answer to the clicker; the message clicked stays as it is."""
    if _answerable(respond, message):
        await respond(**message.payload(), response_type="ephemeral", replace_original=False)


async def redraw(respond: AsyncRespond | None, message: Message) -> None:
    """The message clicked, replaced by `message` for everyone in the channel."""
    if _answerable(respond, message):
        await respond(**message.payload(), replace_original=True)


def _answerable(respond: AsyncRespond | None, message: Message) -> TypeGuard[AsyncRespond]:
    """Without a response_url (Slack always sends one; a forged payload may not) there is no
    one to answer, and a listener must not fail after its ack: Bolt would then never send it."""
    if respond is None or respond.response_url is None:
        log.info("no response_url to answer with: %s", message.text)
        return False
    return True
