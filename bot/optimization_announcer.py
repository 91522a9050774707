"""Announcements of optimization runs, delivered from the outbox.

storage.optimization_store queues them in the transaction that ends a run (any status) or
rolls its winner back, so each is announced once, whichever process ran it (the bot, the
CLI), even across a crash. A run's report is posted first, then its equity chart as a PNG in
the report's thread: the chart is a bonus, so a failed upload is logged, not retried (a retry
would post the report twice).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.blocks import optimization as blocks
from bot.blocks.common import Message
from bot.charts import equity_chart_png
from bot.notifications import EventType, channel_for, configured_channel
from bot.runtime import Runtime
from core.optimization_model import OptimizationRun, RunCandidate, RunStatus
from core.optimization_views import RunReport, build_run_report
from core.ports import Deps, OptimizerPorts
from storage.optimization_store import ANNOUNCE_TOPIC
from storage.outbox import OutboxMessage

if TYPE_CHECKING:
    from bot.app import SlackBot

log = logging.getLogger(__name__)

TOPICS = (ANNOUNCE_TOPIC,)
_BRIEF = (RunStatus.FAILED, RunStatus.NO_IMPROVEMENT)  # reported without a chart


def report_channel(runtime: Runtime) -> str:
    """Where optimization announcements go: the one place that picks the channel."""
    return configured_channel(runtime.settings, EventType.OPTIMIZATION_RESULT)


async def report_message(deps: Deps, run_id: str, decided_by: str | None = None) -> Message:
    """A run's report as it stands now (see bot.blocks.optimization.run_report)."""
    ports = _ports(deps)
    run = await ports.runs.run(run_id)
    if run is None:
        raise LookupError(f"no optimization run {run_id}")
    report, baseline, winner = await _report(ports, run)
    return blocks.run_report(report, baseline, winner, decided_by)


async def superseded_report(deps: Deps, run_id: str) -> Message | None:
    """The report of a run whose winner a newer run replaced (its buttons are stale), else
    None: a run decided from its report was re-rendered then, naming who decided."""
    run = await _ports(deps).runs.run(run_id)
    if run is None or run.status is not RunStatus.SUPERSEDED:
        return None
    return await report_message(deps, run_id)


class OptimizationAnnouncer:
    def __init__(self, bot: SlackBot) -> None:
        self._bot = bot

    async def deliver(self, message: OutboxMessage) -> None:
        rolled_back = message.payload.get("event") == "rolled_back"
        event = EventType.ROLLBACK if rolled_back else EventType.OPTIMIZATION_RESULT
        if channel_for(self._bot.runtime.settings, event) is None:  # silent or off
            return
        ports = _ports(self._bot.runtime.deps)
        run_id = str(message.payload["run_id"])
        run = await ports.runs.run(run_id)
        if run is None:  # the database was restored without it: nothing to say
            log.warning("optimization run %s to announce no longer exists", run_id)
            return
        if rolled_back:
            reason, version = message.payload.get("reason", ""), message.payload.get("version")
            built = blocks.rolled_back(run, str(reason), version)
            channel = configured_channel(self._bot.runtime.settings, EventType.ROLLBACK)
            await self._bot.post_message(channel, built.text, built.blocks)
            return
        await self._announce_report(ports, run)

    async def _announce_report(self, ports: OptimizerPorts, run: OptimizationRun) -> None:
        report, baseline, winner = await _report(ports, run)
        built = blocks.run_report(report, baseline, winner)
        posted = await self._bot.post_message(
            report_channel(self._bot.runtime), built.text, built.blocks
        )
        if run.status not in _BRIEF and report.equity_baseline:
            await self._bot.upload_chart(
                equity_chart_png,
                report,
                channel=posted["channel"],
                thread_ts=posted["ts"],
                filename=f"{run.run_id}.png",
                title=f"Equity of the baseline and the winner, {run.run_id}",
            )


def _ports(deps: Deps) -> OptimizerPorts:
    if deps.optimizer is None:
        raise RuntimeError("optimization runs to announce, but the optimizer is not configured")
    return deps.optimizer


async def _report(
    ports: OptimizerPorts, run: OptimizationRun
) -> tuple[RunReport, RunCandidate | None, RunCandidate | None]:
    """The run's report and the stored candidates for its table: the baseline, the winner."""
    by_position = {c.position: c for c in await ports.runs.candidates(run.run_id)}
    winner = (run.results or {}).get("winner") or {}
    return (
        build_run_report(run),
        by_position.get(0),
        by_position.get(int(winner.get("position", -1))),
    )
