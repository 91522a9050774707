"""Optimization runs in Slack: every run's report in the risk channel (with its equity chart),
Apply / Reject for admins in approve mode, rollbacks, and `/param optimize`.

The real bot against the fake Slack, on real candles (../shared/data, as in
tests/integration/test_optimization.py, whose HIGH baseline makes the spec grid find a winner
about +118 % ahead out of sample); the clock stands just after the data's last bar.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.app import SlackBot
from bot.config import Settings
from bot.optimizer_config import OptimizerSettings
from bot.runtime import Runtime
from core import optimization, services
from core.errors import ValidationError
from core.models import AuditEntry, Outcome
from core.optimization import OptimizationRequest
from core.optimization_model import ApplyMode, DataRange, NewRun, OptimizerPolicy, Trigger
from core.optimizer import Method
from core.params import Scope
from core.ports import Deps
from tests.clock import MovableClock
from tests.e2e.conftest import ADMIN, OPERATOR, RISK, param, running_bot, text_of
from tests.fakeslack import FakeSlack
from tests.integration.test_optimization import ADMIN as CORE_ADMIN
from tests.integration.test_optimization import (
    BASELINE,
    DATA,
    HIGH,
    NOW,
    POLICY,
    close_trades,
    effective_high,
)

APPROVING = dataclasses.replace(POLICY, apply_modes={Scope.HIGH: ApplyMode.APPROVE})
APPLY, REJECT = "optimization_apply_winner", "optimization_reject_winner"
WAIT = 30.0  # a run in the process pool, then the outbox: generous for slow machines


@pytest.fixture
def policy() -> OptimizerPolicy:
    return POLICY


@pytest.fixture
def settings(settings: Settings, policy: OptimizerPolicy) -> Settings:
    return dataclasses.replace(
        settings, market_data_dir=DATA, optimizer=OptimizerSettings(policy, workers=1)
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def deps(runtime: Runtime, clock: MovableClock) -> Deps:
    """The runtime on the test's clock (before the bot starts), with the HIGH baseline."""
    runtime.deps = dataclasses.replace(runtime.deps, clock=clock)
    for name, value in BASELINE.items():
        await services.set_parameter(runtime.deps, CORE_ADMIN, Scope.HIGH, name, value, "baseline")
    return runtime.deps


@pytest.fixture
async def bot(deps: Deps, runtime: Runtime, slack: FakeSlack) -> AsyncIterator[SlackBot]:
    async with running_bot(runtime) as running:
        await slack.wait_for_connections(1)
        yield running


async def report_of(slack: FakeSlack, run_id: str) -> dict[str, Any]:
    """The run's report in the risk channel, once it is there."""

    def found() -> list[dict[str, Any]]:
        return [m for m in slack.messages(RISK) if run_id in text_of(m.get("blocks", []))]

    await slack.wait_until(lambda: bool(found()), timeout=WAIT, what=f"the report of {run_id}")
    return found()[0]


async def finished_run(deps: Deps, runtime: Runtime, request: OptimizationRequest = HIGH) -> str:
    run = (await optimization.optimize(deps, CORE_ADMIN, request)).run
    assert run is not None
    runtime.wake_dispatchers()
    return run.run_id


@dataclasses.dataclass(frozen=True)
class Reported:
    run_id: str
    message: dict[str, Any]  # its report in the risk channel


@pytest.fixture
async def reported(bot: SlackBot, slack: FakeSlack, deps: Deps, runtime: Runtime) -> Reported:
    """A finished run of HIGH and its report (in approve mode, its winner waits)."""
    run_id = await finished_run(deps, runtime)
    return Reported(run_id, await report_of(slack, run_id))


def shown_on(slack: FakeSlack, report: dict[str, Any]) -> str:
    """The report's text as it stands now (updates replace it in place)."""
    return text_of(slack.message(RISK, report["ts"])["blocks"])


async def decided(slack: FakeSlack, report: dict[str, Any]) -> str:
    """The report's text once a decision has replaced its buttons."""
    await slack.wait_until(
        lambda: not buttons(slack.message(RISK, report["ts"])), timeout=WAIT, what="the update"
    )
    return shown_on(slack, report)


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        element["action_id"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


# --- the report ------------------------------------------------------------------------------


async def test_an_applied_run_is_reported_with_its_table_and_trust_in_plain_words(
    reported: Reported,
) -> None:
    text = text_of(reported.message["blocks"])
    assert "*Optimization of HIGH*: winner applied as version 5 (+" in text
    assert "baseline" in text and "winner" in text and "profit factor" in text
    assert "Deflated Sharpe ratio" in text and "configurations tried" in text
    assert "Probability of backtest overfitting" in text and "fluke of this data" in text
    assert "ETH_BTC, LTC_BTC 5m from 2018-01-11 04:55 UTC to 2018-01-30 04:55 UTC" in text
    assert "8 candidates" in text


async def test_the_equity_chart_arrives_as_a_png_in_the_reports_thread(
    slack: FakeSlack, reported: Reported
) -> None:
    await slack.wait_until(
        lambda: any(f.completed for f in slack.files()), timeout=WAIT, what="the chart"
    )
    (chart,) = slack.files()
    assert chart.content is not None and chart.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert chart.channels == [slack.channel_id(RISK)]
    assert chart.thread_ts == reported.message["ts"]
    assert chart.filename == f"{reported.run_id}.png"


@pytest.mark.usefixtures("bot")
async def test_a_run_without_improvement_is_reported_briefly_without_a_chart(
    slack: FakeSlack, runtime: Runtime, deps: Deps
) -> None:
    strict = dataclasses.replace(POLICY.cycle, min_improvement_pct=500.0)
    assert deps.optimizer is not None
    ports = dataclasses.replace(deps.optimizer, policy=dataclasses.replace(POLICY, cycle=strict))
    run_id = await finished_run(dataclasses.replace(deps, optimizer=ports), runtime)
    text = text_of((await report_of(slack, run_id))["blocks"])
    assert "no improvement; version 4 stays" in text and "+500.0 % required" in text
    assert "profit factor" not in text
    assert slack.files() == []


@pytest.mark.usefixtures("bot")
async def test_a_failed_run_is_reported_with_its_error(
    slack: FakeSlack, runtime: Runtime, deps: Deps
) -> None:
    with pytest.raises(ValidationError):
        await optimization.optimize(deps, CORE_ADMIN, OptimizationRequest(Scope.MEDIUM))
    runtime.wake_dispatchers()
    await slack.wait_until(
        lambda: any("failed" in m.get("text", "") for m in slack.messages(RISK)),
        timeout=WAIT,
        what="the failure report",
    )
    text = text_of(slack.latest_message(RISK)["blocks"])
    assert "*Optimization of MEDIUM*: failed; nothing was changed" in text
    assert "no symbol is configured for MEDIUM" in text


async def test_a_rollback_says_what_why_and_from_which_version_to_which(
    slack: FakeSlack, runtime: Runtime, deps: Deps, clock: MovableClock, reported: Reported
) -> None:
    await close_trades(deps, [-1.0, -0.5, 0.2] * 8, clock.now())
    clock.advance(days=2)

    await optimization.check_live_performance(deps)
    runtime.wake_dispatchers()

    await slack.wait_until(
        lambda: "rolled back" in slack.latest_message(RISK).get("text", ""),
        timeout=WAIT,
        what="the rollback announcement",
    )
    text = text_of(slack.latest_message(RISK)["blocks"])
    winner_of = f"the winner of `{reported.run_id}`"
    assert f"*HIGH* rolled back from version 5 to version 6: {winner_of}" in text
    assert "live fitness" in text and "below the" in text


# --- Apply / Reject in approve mode ------------------------------------------------------------

approve_mode = pytest.mark.parametrize("policy", [APPROVING])


@approve_mode
async def test_a_winner_waiting_for_approval_is_reported_with_apply_and_reject(
    reported: Reported,
) -> None:
    assert "waits for an admin's approval" in text_of(reported.message["blocks"])
    assert buttons(reported.message) == [APPLY, REJECT]


@approve_mode
@pytest.mark.parametrize(
    ("button", "shown", "baseline_stays"),
    [
        pytest.param(APPLY, f"winner applied by <@{ADMIN}> as version 5", False, id="apply"),
        pytest.param(REJECT, f"winner rejected by <@{ADMIN}>; version 4 stays", True, id="reject"),
    ],
)
async def test_an_admins_click_decides_and_shows_who_decided(
    slack: FakeSlack, deps: Deps, reported: Reported, button: str, shown: str, baseline_stays: bool
) -> None:
    """Apply makes the winner live; Reject keeps the baseline."""
    await slack.click_button(reported.message, button, ADMIN, value=reported.run_id)

    assert shown in await decided(slack, reported.message)
    assert (await effective_high(deps) == BASELINE) is baseline_stays


@approve_mode
async def test_a_non_admin_is_refused_alone_and_the_buttons_stay(
    slack: FakeSlack, deps: Deps, reported: Reported
) -> None:
    await slack.click_button(reported.message, APPLY, OPERATOR, value=reported.run_id)

    answer = await slack.wait_for_response(lambda r: r.user_id == OPERATOR, timeout=WAIT)
    assert answer.response_type == "ephemeral" and "needs the admin role" in answer.text
    assert buttons(slack.message(RISK, reported.message["ts"])) == [APPLY, REJECT]
    assert await effective_high(deps) == BASELINE


@approve_mode
async def test_a_click_after_the_decision_says_so_and_keeps_who_decided(
    slack: FakeSlack, deps: Deps, reported: Reported
) -> None:
    run_id, report = reported.run_id, reported.message
    await slack.click_button(report, REJECT, ADMIN, value=run_id)
    await decided(slack, report)

    await slack.click_button(report, APPLY, ADMIN, value=run_id)  # the same, stale, message

    answer = await slack.wait_for_response(lambda r: not r.replace_original, timeout=WAIT)
    assert f"run {run_id} is REJECTED, not waiting for approval" in answer.text
    assert f"winner rejected by <@{ADMIN}>" in shown_on(slack, report)
    assert await effective_high(deps) == BASELINE


@approve_mode
async def test_a_click_on_a_superseded_winner_is_refused_and_its_buttons_go(
    slack: FakeSlack, runtime: Runtime, deps: Deps, clock: MovableClock, reported: Reported
) -> None:
    clock.advance(minutes=1)
    await report_of(
        slack, await finished_run(deps, runtime, OptimizationRequest(Scope.HIGH, until=NOW))
    )

    await slack.click_button(reported.message, APPLY, ADMIN, value=reported.run_id)

    answer = await slack.wait_for_response(lambda r: not r.replace_original, timeout=WAIT)
    assert f"run {reported.run_id} is SUPERSEDED, not waiting for approval" in answer.text
    assert "superseded by a newer run" in await decided(slack, reported.message)
    assert await effective_high(deps) == BASELINE


# --- /param optimize ---------------------------------------------------------------------------


@pytest.mark.usefixtures("bot")
async def test_param_optimize_starts_a_run_whose_report_follows_in_the_channel(
    slack: FakeSlack, runtime: Runtime
) -> None:
    answer = await param(slack, "optimize high")

    assert answer.response_type == "ephemeral"
    assert answer.text.startswith("Optimization opt_") and " of HIGH started; " in answer.text
    assert answer.text.endswith(f"the report will follow in {RISK}")
    run_id = answer.text.split()[1]
    report = await report_of(slack, run_id)
    assert "winner applied as version 5" in text_of(report["blocks"])
    await runtime.background.idle()


@pytest.mark.usefixtures("bot")
async def test_param_optimize_of_a_scope_already_running_is_refused(
    slack: FakeSlack, deps: Deps
) -> None:
    now = deps.clock.now()
    running = NewRun(
        "opt_running", Trigger.MANUAL, Scope.HIGH, Method.GRID, now, "cli:alice", 1, "x",
        DataRange(now - timedelta(days=1), now, "5m"),
    )  # fmt: skip
    audit = AuditEntry(now, "cli:alice", "cli", "optimize", "HIGH", Outcome.APPLIED)
    assert deps.optimizer is not None
    await deps.optimizer.runs.claim(running, now - timedelta(hours=2), audit)

    answer = await param(slack, "optimize HIGH")

    assert "an optimization of HIGH is already running: opt_running" in answer.text


@pytest.mark.usefixtures("bot")
async def test_only_admins_may_start_an_optimization(slack: FakeSlack) -> None:
    answer = await param(slack, "optimize high", user=OPERATOR)
    assert "admin" in answer.text and "started" not in answer.text
