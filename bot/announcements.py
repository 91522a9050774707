"""Announcements of learning sessions, delivered from the outbox to the risk channel.

The session's start and end are queued in the same transaction that starts or ends it,
so every session is announced once, whoever started it (Slack, CLI, HTTP) and whoever
ended it (a person or the timer), even across a crash.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.blocks import learning as learning_blocks
from bot.notifications import EventType, channel_for
from storage.learning_store import ANNOUNCE_TOPIC
from storage.outbox import OutboxMessage

if TYPE_CHECKING:
    from bot.app import SlackBot

log = logging.getLogger(__name__)

TOPICS = (ANNOUNCE_TOPIC,)


class LearningAnnouncer:
    def __init__(self, bot: SlackBot) -> None:
        self._bot = bot

    async def deliver(self, message: OutboxMessage) -> None:
        channel = channel_for(self._bot.runtime.settings, EventType.LEARNING_SESSION)
        if channel is None:  # silent or off: delivered without a post (the digest lists it)
            return
        session_id = int(message.payload["session_id"])
        session = await self._bot.runtime.deps.learning.get(session_id)
        if session is None:  # the database was restored without it: nothing to say
            log.warning("learning session %d to announce no longer exists", session_id)
            return
        started = message.payload.get("event") == "started"
        build = learning_blocks.started if started else learning_blocks.ended
        built = build(session)
        await self._bot.post_message(channel, built.text, built.blocks)
