"""Background loops that stop between steps, never in the middle of one.

Cancelling a task inside a database call can abandon an aiosqlite connection that still
holds SQLite's write lock (the next writer then waits out the busy timeout and fails), and
inside a Slack call it can leave a posted message unrecorded. So `stop()` asks each loop to
finish its step and return; only a loop that overruns the grace period is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


class Loops:
    def __init__(self) -> None:
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return not self._stopping.is_set()

    def spawn(self, loop: Coroutine[Any, Any, None], name: str) -> None:
        self._stopping.clear()
        self._tasks.append(asyncio.create_task(loop, name=name))

    async def pause(self, seconds: float | None, wake: asyncio.Event | None = None) -> None:
        """Sleep up to `seconds` (None: no limit); sooner when `wake` is set or the loops
        are stopping."""
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if wake is not None:
            waits.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def stop(self, grace: float = 5.0) -> None:
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _, overrunning = await asyncio.wait(tasks, timeout=grace)
        for task in overrunning:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
