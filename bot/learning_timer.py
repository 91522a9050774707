"""Ends each learning session at its planned end, across crashes and restarts.

The planned end is stored with the session, so the timer needs no state of its own: at start
it ends a session that became overdue while the process was down (before the HTTP server
serves any parameters), then it looks again at the running session's planned end, and at
least every `poll_seconds`, which also picks up sessions started by another process (the CLI,
another replica). Of several replicas only the lease holder runs it (bot.lease), so a
session ends once.
"""

from __future__ import annotations

import logging

from bot.loops import Loops
from core.learning import end_due_sessions
from core.ports import Deps

log = logging.getLogger(__name__)


class LearningTimer:
    def __init__(self, deps: Deps, poll_seconds: float = 3.0) -> None:
        self._deps = deps
        self._poll = poll_seconds
        self._loops = Loops()
        self._armed_for: int | None = None

    async def start(self) -> None:
        delay = await self._tick()
        self._loops.spawn(self._run(delay), name="learning-timer")

    async def stop(self) -> None:
        await self._loops.stop()

    async def _run(self, delay: float) -> None:
        while self._loops.running:
            await self._loops.pause(delay)
            if self._loops.running:
                delay = await self._tick()

    async def _tick(self) -> float:
        """End an overdue session; return the seconds until the next look."""
        try:
            for session in await end_due_sessions(self._deps):
                log.info("learning session %d ended; original parameters restored", session.id)
            running = await self._deps.learning.active()
        except Exception:
            # The database or the backup directory may be back at the next look.
            log.exception("learning timer: could not end a due session; retrying")
            return self._poll
        if running is None:
            return self._poll
        if running.id != self._armed_for:
            self._armed_for = running.id
            log.info(
                "learning session %d runs until %s; it ends then",
                running.id,
                f"{running.planned_end_at:%Y-%m-%d %H:%M:%S} UTC",
            )
        left = (running.planned_end_at - self._deps.clock.now()).total_seconds()
        return min(max(left, 0.0), self._poll)
