"""Work off the event loop: a process pool for CPU-heavy functions, and background tasks.

The pool starts its workers on first use, through a fork server: forking this process
(threads of aiosqlite and of asyncio's executor included) is not safe, and a fresh
interpreter per worker would import numpy and pandas each time. Background tasks are kept
until they end, so none is garbage-collected midway, and are cancelled at shutdown: an
optimization run records itself FAILED ("interrupted") on cancellation.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)

Argument = TypeVar("Argument")
Result = TypeVar("Result")
# Imported once by the fork server, so each worker starts with them loaded.
PRELOAD = ["core.optimizer", "storage.studies"]


class ProcessPool:
    """Implements core.ports.Compute."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._executor: ProcessPoolExecutor | None = None

    async def run(self, function: Callable[[Argument], Result], argument: Argument) -> Result:
        return await asyncio.get_running_loop().run_in_executor(self._pool(), function, argument)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            self._executor = ProcessPoolExecutor(self._workers, mp_context=context)
        return self._executor

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


class BackgroundTasks:
    """Implements core.ports.Background."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def spawn(self, work: Coroutine[Any, Any, object], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until every task, including those spawned meanwhile, has ended."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        # One turn of the loop first: a task cancelled before it ever ran could not record
        # that it was interrupted.
        await asyncio.sleep(0)
        for task in self._tasks:
            task.cancel()
        await self.idle()
