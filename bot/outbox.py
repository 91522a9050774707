"""Delivers outbox messages: in order per topic, retried with backoff until they go through.

Messages were written in the same transaction as their event, so a crash or an outage
delays a delivery but never loses one; after a restart the dispatcher resumes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from bot.loops import Loops
from core.ports import Clock
from storage.outbox import OutboxMessage, SqlOutbox, backoff

log = logging.getLogger(__name__)

Deliver = Callable[[OutboxMessage], Awaitable[None]]


class OutboxDispatcher:
    def __init__(
        self,
        outbox: SqlOutbox,
        clock: Clock,
        handlers: Mapping[str, Deliver],
        poll_seconds: float = 0.5,
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._handlers = dict(handlers)
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._loops = Loops()

    def nudge(self) -> None:
        """Something was just enqueued: look now rather than at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        for topic, deliver in self._handlers.items():
            self._loops.spawn(self._drain(topic, deliver), name=f"outbox:{topic}")

    async def stop(self) -> None:
        await self._loops.stop()

    async def _drain(self, topic: str, deliver: Deliver) -> None:
        while self._loops.running:
            try:
                message = await self._outbox.head(topic, self._clock.now())
            except Exception:
                log.warning("outbox: cannot read %s; retrying", topic, exc_info=True)
                message = None
            if message is None:
                await self._idle()
                continue
            await self._attempt(message, deliver)

    async def _attempt(self, message: OutboxMessage, deliver: Deliver) -> None:
        try:
            await deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            retry_at = self._clock.now() + backoff(message.attempts)
            log.warning(
                "outbox: %s #%d failed (attempt %d): %s; retrying at %s",
                message.topic,
                message.id,
                message.attempts + 1,
                error,
                retry_at.isoformat(timespec="seconds"),
            )
            await self._outbox.failed(message.id, str(error), retry_at)
            return
        await self._outbox.delivered(message.id, self._clock.now())

    async def _idle(self) -> None:
        await self._loops.pause(self._poll, self._wake)
        self._wake.clear()
