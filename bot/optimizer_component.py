"""The optimizer's part of `paramadapt run`.

At start it fires the trade-count trigger for levels whose counter reached the threshold
while the process was down (after that, ingesting trades fires it). At stop it cancels the
runs still going, before the database closes, so each records itself FAILED ("interrupted")
instead of staying RUNNING until the run timeout.
"""

from __future__ import annotations

import logging

from bot.runtime import Runtime
from core.optimization import start_due_runs

log = logging.getLogger(__name__)


class OptimizerComponent:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def start(self) -> None:
        for run in await start_due_runs(self._runtime.deps):
            log.info("optimization %s of %s started: trade count reached", run.run_id, run.scope)

    async def stop(self) -> None:
        await self._runtime.background.close()
