"""A run whose process died is announced in Slack when it is found: as FAILED, interrupted.

Its row stays RUNNING until the scope's next run is claimed after `run_timeout_minutes`;
that claim ends it, and queues its report in the same transaction as every other run end.
"""

from __future__ import annotations

from datetime import timedelta

from bot.runtime import Runtime
from core.models import AuditEntry, Outcome
from core.optimization_model import DataRange, NewRun, OptimizerPolicy, Trigger
from core.optimizer import Method
from core.params import Scope
from core.ports import Deps
from tests.e2e.conftest import RISK, ManualClock, text_of
from tests.fakeslack import FakeSlack

TIMEOUT = timedelta(minutes=OptimizerPolicy().run_timeout_minutes)


async def claim(deps: Deps, run_id: str) -> None:
    """Claim a run of HIGH and do nothing more, as a process that dies at once."""
    assert deps.optimizer is not None
    now = deps.clock.now()
    new = NewRun(
        run_id, Trigger.MANUAL, Scope.HIGH, Method.GRID, now, "cli:gone", 1, "x",
        DataRange(now - timedelta(days=1), now, "5m"),
    )  # fmt: skip
    audit = AuditEntry(now, "cli:gone", "cli", "optimize", "HIGH", Outcome.APPLIED)
    await deps.optimizer.runs.claim(new, now - TIMEOUT, audit)


async def test_a_run_left_by_a_dead_process_is_reported_failed_when_the_next_run_takes_over(
    slack: FakeSlack, runtime: Runtime, clock: ManualClock, bot: object
) -> None:
    await claim(runtime.deps, "opt_orphan")
    clock.advance(seconds=TIMEOUT.total_seconds() + 60)

    await claim(runtime.deps, "opt_next")
    runtime.wake_dispatchers()

    def reports() -> list[str]:
        return [
            text_of(m.get("blocks", []))
            for m in slack.messages(RISK)
            if "opt_orphan" in text_of(m.get("blocks", []))
        ]

    await slack.wait_until(lambda: bool(reports()), timeout=30, what="the orphan's report")
    [report] = reports()
    assert "*Optimization of HIGH*: failed; nothing was changed" in report
    assert "interrupted: no result before the run timeout (its process stopped)" in report
