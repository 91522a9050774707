"""/param jobs in Slack: every scheduled job, its next run, its last outcome, the lease."""

from __future__ import annotations

import pytest

from bot.jobs import JOBS
from tests.e2e.conftest import STRANGER, VIEWER, on_sqlite, param, text_of
from tests.fakeslack import FakeSlack

pytestmark = [pytest.mark.usefixtures("bot"), on_sqlite]


async def test_jobs_lists_every_job_with_its_next_run_and_last_outcome(slack: FakeSlack) -> None:
    answer = await param(slack, "jobs", VIEWER)

    shown = text_of(answer.body["blocks"]).replace("```", "\n")
    assert answer.response_type == "ephemeral"
    assert "lease holder: none (no replica runs jobs now)" in shown
    for job in JOBS:
        line = next(line for line in shown.splitlines() if line.startswith(job))
        assert " next 20" in line and "last: never ran" in line


async def test_someone_without_a_role_may_not_list_the_jobs(slack: FakeSlack) -> None:
    answer = await param(slack, "jobs", STRANGER)
    shown = text_of(answer.body["blocks"])
    assert "read needs the viewer role; U0STRANGER has no role" in shown
    assert "trade_threshold" not in shown
