"""/param jobs: every scheduled job with its schedule, next run and last outcome."""

from __future__ import annotations

from collections.abc import Sequence

from bot.blocks.common import Message, preformatted, section


def overview(lines: Sequence[str]) -> Message:
    """`lines` as bot.jobs.overview_lines writes them: the lease holder, then one per job."""
    holder, *jobs = lines
    text = "*Scheduled jobs*"
    return Message(
        f"Scheduled jobs ({holder})", [section(f"{text}\n{holder}"), *preformatted(jobs)]
    )
