"""Optimization runs through the use cases, on SQLite and PostgreSQL, on real candles.

The market data is ../shared/data (ETH_BTC and LTC_BTC 5-minute bars, 2018-01-10 04:55 to
2018-01-30 04:55 UTC); the clock stands just after its last bar. With the HIGH baseline below,
the spec grid finds a winner well ahead out of sample (+118 %, about 190 trades), so the
rule's outcome is steered by the settings each test names.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.charts import equity_chart_png
from bot.config import Settings
from bot.optimizer_component import OptimizerComponent
from bot.optimizer_config import OptimizerSettings
from bot.runtime import Runtime, open_runtime
from core import optimization, optimization_views, services, trades
from core.authz import Actor, Role
from core.errors import (
    ConflictError,
    PermissionDeniedError,
    StaleVersionError,
    ValidationError,
)
from core.market import MarketDataError
from core.models import AuditEntry, ClosedTradeEvent, Outcome, Side, Source, VersionStatus
from core.optimization import LiveAction, OptimizationRequest
from core.optimization_model import (
    ApplyMode,
    DataRange,
    NewRun,
    OptimizerPolicy,
    RunEnd,
    RunStatus,
    Trigger,
)
from core.optimizer import Method
from core.params import Scope
from core.ports import Deps
from storage.optimization_store import ANNOUNCE_TOPIC
from tests.clock import MovableClock

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
NOW = datetime(2018, 1, 30, 4, 57, tzinfo=UTC)  # the last whole bar ends at 04:55
BASELINE = {
    "long_rsi_entry": 40,
    "long_adx_min": 22,
    "sl_atr_multiplier": 1.0,
    "tp_atr_multiplier": 2.0,
}
POLICY = OptimizerPolicy(
    lookback_days=19, symbols={"ETH_BTC": Scope.HIGH, "LTC_BTC": Scope.HIGH}, seed=11
)
ADMIN = Actor.having("U0ADMIN", "slack", Role.ADMIN)
VIEWER = Actor.having("U0VIEW", "slack", Role.VIEWER)
ENGINE = Actor.having("token:engine", "api", Role.ENGINE)
HIGH = OptimizationRequest(Scope.HIGH)


@pytest.fixture
def settings(database_url: str, backup_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        backup_dir=backup_dir,
        market_data_dir=DATA,
        optimizer=OptimizerSettings(POLICY, workers=1),
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


def with_policy(deps: Deps, **changes: Any) -> Deps:
    assert deps.optimizer is not None
    ports = dataclasses.replace(deps.optimizer, policy=dataclasses.replace(POLICY, **changes))
    return dataclasses.replace(deps, optimizer=ports)


@pytest.fixture
async def deps(runtime: Runtime, clock: MovableClock) -> Deps:
    deps = dataclasses.replace(runtime.deps, clock=clock)
    for name, value in BASELINE.items():
        await services.set_parameter(deps, ADMIN, Scope.HIGH, name, value, "the test's baseline")
    return deps


def runs(deps: Deps) -> Any:
    assert deps.optimizer is not None
    return deps.optimizer.runs


async def effective_high(deps: Deps) -> dict[str, Any]:
    params, _ = await services.effective_parameters(deps, Scope.HIGH)
    return {name: params[name] for name in BASELINE}


# --- the cycle and its rule -----------------------------------------------------------------


async def test_a_winner_ahead_out_of_sample_becomes_the_active_version_backed_up_first(
    deps: Deps,
) -> None:
    report = await optimization.optimize(deps, ADMIN, HIGH)
    run = report.run
    assert run is not None and run.status is RunStatus.APPLIED
    assert run.improvement_found and run.improvement_pct >= 5
    winner = report.result.winning_score
    assert winner is not None and winner.out_of_sample.trades >= 30
    assert await effective_high(deps) == winner.parameters
    change = report.change
    assert change is not None and change.backup is not None and change.version is not None
    assert change.backup.version == 4  # the four baseline changes made versions 1 to 4
    assert change.version.version == run.winner_version == 5
    assert change.version.source is Source.OPTIMIZER
    applied = await deps.config.active(Scope.HIGH)
    assert applied is not None and applied.fitness == pytest.approx(run.best_score)
    assert applied.metrics is not None and applied.metrics["trades"] == winner.out_of_sample.trades


async def test_every_candidate_is_stored_with_its_metrics_and_the_run_row_with_its_inputs(
    deps: Deps,
) -> None:
    report = await optimization.optimize(deps, ADMIN, HIGH)
    run = await runs(deps).run(report.run.run_id)
    candidates = await runs(deps).candidates(run.run_id)
    assert run.candidates_tested == 8 and len(candidates) == 9
    assert candidates[0].is_baseline and candidates[0].parameters == BASELINE
    statuses = [c.status for c in candidates]
    assert statuses.count(VersionStatus.ACTIVE) == 1
    assert statuses.count(VersionStatus.ARCHIVED) == 8
    assert {"in_sample", "out_of_sample", "folds"} <= set(candidates[1].metrics)
    assert run.data_range == DataRange(
        NOW - timedelta(days=19, minutes=2),
        NOW - timedelta(minutes=2),
        "5m",
        ("ETH_BTC", "LTC_BTC"),
    )
    assert (run.seed, run.trigger, run.method, run.requested_by) == (
        11,
        Trigger.MANUAL,
        Method.GRID,
        "U0ADMIN",
    )
    assert run.code_version and run.code_version.startswith("paramadapt ")
    assert run.duration_seconds is not None and run.finished_at is not None
    results = run.results or {}
    assert results["decision"]["applies"] is True
    assert results["baseline"]["parameters"] == BASELINE
    assert len(results["walk_forward"]) == 3 and results["trials"] == 9
    assert 0 <= results["probability_of_backtest_overfitting"] <= 1


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"min_improvement_pct": 500.0}, "< +500.0 % required"),
        ({"min_trades": 10_000}, "fewer than the minimum of 10000"),
    ],
)
async def test_the_baseline_stays_unless_the_winner_passes_the_out_of_sample_rule(
    deps: Deps, rule: dict[str, Any], reason: str
) -> None:
    strict = with_policy(deps, cycle=dataclasses.replace(POLICY.cycle, **rule))
    before = await deps.config.active(Scope.HIGH)
    report = await optimization.optimize(strict, ADMIN, HIGH)
    assert report.run is not None and report.run.status is RunStatus.NO_IMPROVEMENT
    assert not report.run.improvement_found and report.run.winner_version is None
    assert any(reason in line for line in report.result.decision.reasons)
    assert await deps.config.active(Scope.HIGH) == before
    candidates = await runs(deps).candidates(report.run.run_id)
    assert {c.status for c in candidates} == {VersionStatus.ARCHIVED}


async def test_the_same_seed_and_range_reproduce_a_run_from_its_row(deps: Deps) -> None:
    bayes = with_policy(
        deps,
        cycle=dataclasses.replace(
            POLICY.cycle, method=Method.BAYES, bayes_trials=16, bayes_batch=8, min_trades=10**6
        ),
    )
    first = (await optimization.optimize(bayes, ADMIN, HIGH)).run
    assert first is not None and first.data_range is not None and first.seed is not None
    days = (first.data_range.end - first.data_range.start).days
    again = OptimizationRequest(
        Scope.HIGH, method=first.method, lookback_days=days, until=first.data_range.end,
        seed=first.seed,
    )  # fmt: skip
    unseeded = with_policy(bayes, seed=None, cycle=bayes.optimizer.policy.cycle)
    second = (await optimization.optimize(unseeded, ADMIN, again)).run
    assert second is not None and second.run_id != first.run_id
    tried = [
        [(c.parameters, c.in_sample_fitness, c.out_of_sample_fitness) for c in candidates]
        for candidates in [
            await runs(deps).candidates(first.run_id),
            await runs(deps).candidates(second.run_id),
        ]
    ]
    assert tried[0] == tried[1] and len(tried[0]) > 1
    assert (second.data_range, second.best_score) == (first.data_range, first.best_score)


async def test_a_dry_run_shows_the_result_and_stores_and_applies_nothing(deps: Deps) -> None:
    before = await deps.config.active(Scope.HIGH)
    report = await optimization.optimize(deps, ADMIN, HIGH, dry_run=True)
    assert report.run is None and report.change is None
    assert report.result.decision.applies and len(report.result.candidates) == 8
    assert await deps.config.active(Scope.HIGH) == before
    assert await runs(deps).runs(None, None, 10) == []


async def test_only_admins_may_optimize(deps: Deps) -> None:
    with pytest.raises(PermissionDeniedError):
        await optimization.optimize(deps, VIEWER, HIGH)


# --- one run per scope ------------------------------------------------------------------


async def test_a_second_run_of_a_scope_is_refused_while_the_first_runs(
    deps: Deps, runtime: Runtime, settings: Settings
) -> None:
    first = await optimization.start_optimization(deps, ADMIN, HIGH)
    with pytest.raises(ConflictError, match=f"already running: {first.run_id}"):
        await optimization.start_optimization(deps, ADMIN, HIGH)
    # Another process, on the same database, is refused too.
    async with open_runtime(settings) as other:
        elsewhere = dataclasses.replace(other.deps, clock=deps.clock)
        with pytest.raises(ConflictError, match="already running"):
            await optimization.optimize(elsewhere, ADMIN, HIGH)
    medium = await optimization.start_optimization(deps, ADMIN, OptimizationRequest(Scope.MEDIUM))
    await runtime.background.idle()
    assert (await runs(deps).run(first.run_id)).status is RunStatus.APPLIED
    # MEDIUM ran beside it, and failed for want of symbols: a clear error, not a crash.
    failed = await runs(deps).run(medium.run_id)
    assert (
        failed.status is RunStatus.FAILED and "no symbol is configured for MEDIUM" in failed.error
    )
    assert (await optimization.start_optimization(deps, ADMIN, HIGH)).run_id != first.run_id
    await runtime.background.idle()


async def claim_without_running(deps: Deps, run_id: str) -> None:
    """A RUNNING row whose process does nothing, as one left by a process that died."""
    now = deps.clock.now()
    run = NewRun(
        run_id, Trigger.MANUAL, Scope.HIGH, Method.GRID, now, "cli:gone", 1, "x",
        DataRange(now - timedelta(days=1), now, "5m"),
    )  # fmt: skip
    audit = AuditEntry(now, "cli:gone", "cli", "optimize", "HIGH", Outcome.APPLIED)
    await runs(deps).claim(run, now - timedelta(hours=2), audit)


async def test_a_run_left_by_a_dead_process_is_taken_over_after_the_timeout(
    deps: Deps, clock: MovableClock
) -> None:
    await claim_without_running(deps, "opt_orphan")
    clock.advance(minutes=POLICY.run_timeout_minutes - 1)
    with pytest.raises(ConflictError, match="opt_orphan"):
        await optimization.optimize(deps, ADMIN, OptimizationRequest(Scope.HIGH, until=NOW))
    clock.advance(minutes=2)
    report = await optimization.optimize(deps, ADMIN, OptimizationRequest(Scope.HIGH, until=NOW))
    assert report.run is not None and report.run.status is RunStatus.APPLIED
    stale = await runs(deps).run("opt_orphan")
    assert stale.status is RunStatus.FAILED and "interrupted" in stale.error


async def announced_runs(runtime: Runtime, clock: MovableClock) -> list[str]:
    """The runs whose end is queued for Slack, in order (each delivered as it is read)."""
    queued = []
    while (message := await runtime.outbox.head(ANNOUNCE_TOPIC, clock.now())) is not None:
        queued.append(message.payload["run_id"])
        await runtime.outbox.delivered(message.id, clock.now())
    return queued


async def test_a_slow_run_taken_over_applies_nothing_and_is_announced_once(
    deps: Deps, runtime: Runtime, clock: MovableClock
) -> None:
    slow = await optimization.start_optimization(deps, ADMIN, HIGH)  # its cycle takes seconds
    clock.advance(minutes=POLICY.run_timeout_minutes + 1)
    taker = await optimization.start_optimization(
        deps, ADMIN, OptimizationRequest(Scope.HIGH, until=NOW)
    )
    await runtime.background.idle()
    taken_over = await runs(deps).run(slow.run_id)
    assert taken_over.status is RunStatus.FAILED and "interrupted" in taken_over.error
    assert taken_over.winner_version is None and taken_over.best_score is None
    active = await deps.config.active(Scope.HIGH)
    assert active is not None and active.version == 5  # the taker's winner, the only change
    assert (await runs(deps).run(taker.run_id)).winner_version == 5
    assert await announced_runs(runtime, clock) == [slow.run_id, taker.run_id]


async def test_the_end_of_a_run_taken_over_is_refused_and_not_announced_again(
    deps: Deps, runtime: Runtime, clock: MovableClock
) -> None:
    await claim_without_running(deps, "opt_slow")
    clock.advance(minutes=POLICY.run_timeout_minutes + 1)
    await claim_without_running(deps, "opt_taker")
    late = RunEnd(RunStatus.NO_IMPROVEMENT, clock.now(), 7260.0, best_score=0.5)
    with pytest.raises(ConflictError, match="opt_slow was already ended as FAILED"):
        await runs(deps).finish("opt_slow", late)
    slow = await runs(deps).run("opt_slow")
    assert slow.status is RunStatus.FAILED and "interrupted" in slow.error
    assert slow.best_score is None
    assert await announced_runs(runtime, clock) == ["opt_slow"]


# --- bad data -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {"symbols": {"ADA_BTC": Scope.HIGH}},
            "ADA_BTC 5m: 1 gap(s) longer than 12 bars, the first of 33 bars from "
            "2018-01-15 12:00 to 2018-01-15 14:40 UTC",
        ),
        (
            {"lookback_days": 25},
            "ETH_BTC: requested 2018-01-05 04:55 .. 2018-01-30 04:55 UTC, but the data covers "
            "2018-01-10 04:55 .. 2018-01-30 04:55 UTC",
        ),
        ({"symbols": {"XRP_BTC": Scope.HIGH}}, "no market data for XRP_BTC 5m"),
    ],
    ids=["gap too long", "missing range", "no data"],
)
async def test_unusable_data_fails_the_run_with_an_error_naming_symbol_and_range(
    deps: Deps, policy: dict[str, Any], message: str
) -> None:
    before = await deps.config.active(Scope.HIGH)
    with pytest.raises(MarketDataError) as raised:
        await optimization.optimize(with_policy(deps, **policy), ADMIN, HIGH)
    assert message in str(raised.value)
    (failed,) = await runs(deps).runs(None, Scope.HIGH, 10)
    assert failed.status is RunStatus.FAILED and failed.error == str(raised.value)
    assert failed.best_score is None and await runs(deps).candidates(failed.run_id) == []
    assert await deps.config.active(Scope.HIGH) == before


async def test_symbols_marked_auto_join_the_level_of_their_atr(deps: Deps) -> None:
    auto = with_policy(deps, symbols={"ETH_BTC": None, "LTC_BTC": None})
    report = await optimization.optimize(auto, ADMIN, HIGH, dry_run=True)
    assert report.data_range.symbols == ("ETH_BTC", "LTC_BTC")  # ~7 % daily ATR: HIGH
    with pytest.raises(ValidationError, match="no symbol is configured for LOW"):
        await optimization.optimize(auto, ADMIN, OptimizationRequest(Scope.LOW), dry_run=True)


# --- approve mode -------------------------------------------------------------------------


@pytest.fixture
def approving(deps: Deps) -> Deps:
    return with_policy(deps, apply_modes={Scope.HIGH: ApplyMode.APPROVE})


async def test_approve_mode_holds_the_winner_until_an_admin_applies_it(approving: Deps) -> None:
    before = await approving.config.active(Scope.HIGH)
    run = (await optimization.optimize(approving, ADMIN, HIGH)).run
    assert run is not None and run.status is RunStatus.PENDING_APPROVAL and run.improvement_found
    assert await approving.config.active(Scope.HIGH) == before
    candidates = await runs(approving).candidates(run.run_id)
    (held,) = [c for c in candidates if c.status is VersionStatus.TESTING]

    with pytest.raises(PermissionDeniedError):
        await optimization.apply_run_winner(approving, VIEWER, run.run_id)
    change = await optimization.apply_run_winner(approving, ADMIN, run.run_id)

    assert change.version is not None and change.version.version == 5
    assert change.backup is not None and change.backup.version == 4
    assert await effective_high(approving) == held.parameters
    applied = await runs(approving).run(run.run_id)
    assert (applied.status, applied.winner_version) == (RunStatus.APPLIED, 5)
    statuses = {c.position: c.status for c in await runs(approving).candidates(run.run_id)}
    assert statuses[held.position] is VersionStatus.ACTIVE
    active = await approving.config.active(Scope.HIGH)
    assert active is not None and active.fitness == pytest.approx(run.best_score)
    with pytest.raises(ConflictError, match="APPLIED, not waiting for approval"):
        await optimization.apply_run_winner(approving, ADMIN, run.run_id)


async def test_a_rejected_winner_is_never_applied(approving: Deps) -> None:
    before = await approving.config.active(Scope.HIGH)
    run = (await optimization.optimize(approving, ADMIN, HIGH)).run
    rejected = await optimization.reject_run_winner(approving, ADMIN, run.run_id, "too risky")
    assert rejected.status is RunStatus.REJECTED
    candidates = await runs(approving).candidates(rejected.run_id)
    assert {c.status for c in candidates} == {VersionStatus.ARCHIVED}
    with pytest.raises(ConflictError, match="REJECTED"):
        await optimization.apply_run_winner(approving, ADMIN, rejected.run_id)
    assert await approving.config.active(Scope.HIGH) == before


async def test_a_winner_judged_against_values_changed_since_is_refused(approving: Deps) -> None:
    run = (await optimization.optimize(approving, ADMIN, HIGH)).run
    await services.set_parameter(approving, ADMIN, Scope.HIGH, "long_adx_min", 30, "by hand")
    with pytest.raises(StaleVersionError, match=f"{run.run_id} waits for approval again"):
        await optimization.apply_run_winner(approving, ADMIN, run.run_id)
    assert (await runs(approving).run(run.run_id)).status is RunStatus.PENDING_APPROVAL
    candidates = await runs(approving).candidates(run.run_id)
    assert [c.status for c in candidates].count(VersionStatus.TESTING) == 1
    rejected = await optimization.reject_run_winner(approving, ADMIN, run.run_id, "stale")
    assert rejected.status is RunStatus.REJECTED


async def test_an_apply_racing_a_reject_has_one_winner_and_the_config_agrees(
    approving: Deps,
) -> None:
    before = await approving.config.active(Scope.HIGH)
    run = (await optimization.optimize(approving, ADMIN, HIGH)).run
    outcomes = await asyncio.gather(
        optimization.apply_run_winner(approving, ADMIN, run.run_id),
        optimization.reject_run_winner(approving, ADMIN, run.run_id, "too risky"),
        return_exceptions=True,
    )
    (refusal,) = [o for o in outcomes if isinstance(o, BaseException)]
    assert isinstance(refusal, ConflictError)
    decided = await runs(approving).run(run.run_id)
    assert decided.status.value in str(refusal)  # "already decided: X" or "X, not waiting"
    changed = await approving.config.active(Scope.HIGH) != before
    assert changed is (decided.status is RunStatus.APPLIED)


async def test_a_newer_result_supersedes_a_winner_waiting_for_approval(
    approving: Deps, clock: MovableClock
) -> None:
    older = (await optimization.optimize(approving, ADMIN, HIGH)).run
    clock.advance(minutes=1)
    request = OptimizationRequest(Scope.HIGH, until=NOW)
    newer = (await optimization.optimize(approving, ADMIN, request)).run
    assert newer is not None and newer.status is RunStatus.PENDING_APPROVAL
    assert (await runs(approving).run(older.run_id)).status is RunStatus.SUPERSEDED


# --- live performance ---------------------------------------------------------------------


async def close_trades(deps: Deps, pnl_pcts: list[float], start: datetime) -> None:
    events = [
        ClosedTradeEvent(
            trade_id=f"live-{start:%H%M}-{index}",
            symbol="ETH_BTC",
            side=Side.BUY,
            entry_time=start + timedelta(hours=index),
            exit_time=start + timedelta(hours=index, minutes=30),
            entry_price=0.1,
            exit_price=0.1 * (1 + pnl / 100),
            quantity=1000.0,
            pnl=100 * pnl,
            pnl_pct=pnl,
            volatility_level=Scope.HIGH,
        )
        for index, pnl in enumerate(pnl_pcts)
    ]
    await trades.ingest_trades(deps, ENGINE, events)


async def test_a_config_the_optimizer_applied_is_rolled_back_when_live_trades_fall_short(
    deps: Deps, clock: MovableClock
) -> None:
    run = (await optimization.optimize(deps, ADMIN, HIGH)).run
    assert run is not None and run.status is RunStatus.APPLIED
    await close_trades(deps, [-1.0, -0.5, 0.2] * 8, clock.now())
    clock.advance(days=2)

    checks = {check.scope: check for check in await optimization.check_live_performance(deps)}

    check = checks[Scope.HIGH]
    assert check.action is LiveAction.ROLLED_BACK and check.trades == 24
    assert check.shortfall_pct is None or check.shortfall_pct > POLICY.rollback_margin_pct
    assert await effective_high(deps) == BASELINE
    restored = await deps.config.active(Scope.HIGH)
    assert restored is not None and restored.version == 6 and restored.source is Source.OPTIMIZER
    assert "rolled back from version 5" in restored.reason
    assert (await runs(deps).run(run.run_id)).status is RunStatus.ROLLED_BACK
    again = {c.scope: c for c in await optimization.check_live_performance(deps)}[Scope.HIGH]
    assert again.action is LiveAction.NO_EXPECTATION  # the restored values were never measured


async def test_live_trades_that_meet_the_expectation_change_nothing(
    deps: Deps, clock: MovableClock
) -> None:
    await optimization.optimize(deps, ADMIN, HIGH)
    applied = await deps.config.active(Scope.HIGH)
    await close_trades(deps, [2.0, -0.5, 1.5, 1.0] * 6, clock.now())
    (check,) = [c for c in await optimization.check_live_performance(deps) if c.scope is Scope.HIGH]
    assert check.action is LiveAction.WITHIN_EXPECTATION
    assert await deps.config.active(Scope.HIGH) == applied


async def test_too_few_live_trades_are_not_judged(deps: Deps, clock: MovableClock) -> None:
    await optimization.optimize(deps, ADMIN, HIGH)
    await close_trades(deps, [-5.0] * 3, clock.now())
    (check,) = [c for c in await optimization.check_live_performance(deps) if c.scope is Scope.HIGH]
    assert (check.action, check.trades) == (LiveAction.NOT_ENOUGH_TRADES, 3)


async def test_a_performance_drop_of_a_config_set_by_hand_starts_an_optimization(
    deps: Deps, runtime: Runtime, clock: MovableClock
) -> None:
    measured = with_policy(deps, cycle=dataclasses.replace(POLICY.cycle, min_trades=10**6))
    run = (await optimization.optimize(measured, ADMIN, HIGH)).run  # measures the baseline
    assert run is not None and run.status is RunStatus.NO_IMPROVEMENT
    await close_trades(deps, [-1.0, -0.5, 0.2] * 8, clock.now())
    (check,) = [c for c in await optimization.check_live_performance(deps) if c.scope is Scope.HIGH]
    assert check.action is LiveAction.OPTIMIZATION_STARTED and check.run is not None
    assert check.expected == pytest.approx(run.baseline_score)
    assert check.run.trigger is Trigger.PERFORMANCE_DROP
    await runtime.background.idle()
    assert (await runs(deps).run(check.run.run_id)).status is RunStatus.APPLIED


# --- triggers -----------------------------------------------------------------------------


async def test_reaching_the_trade_threshold_starts_a_run_and_resets_the_counter(
    deps: Deps, runtime: Runtime, clock: MovableClock
) -> None:
    counting = with_policy(deps, trade_threshold=5)
    events = [
        ClosedTradeEvent(
            f"t{i}", "ETH/BTC", Side.BUY, clock.now(), clock.now(), 0.1, 0.1, 1.0, 0.0, 0.0
        )  # no volatility level: ETH/BTC is configured as HIGH (spelled ETH_BTC)
        for i in range(4)
    ]
    await trades.ingest_trades(counting, ENGINE, events)
    (high, *_) = await optimization.trade_counters(counting, VIEWER)
    assert (high.volatility_level, high.count, high.threshold, high.percentage) == (
        Scope.HIGH, 4, 5, 80.0,
    )  # fmt: skip
    assert await runs(deps).runs(None, None, 10) == []

    fifth = dataclasses.replace(events[0], trade_id="t4")
    await trades.ingest_trades(counting, ENGINE, [fifth])

    (started,) = await runs(deps).runs(None, None, 10)
    assert (started.trigger, started.scope) == (Trigger.TRADE_COUNT, Scope.HIGH)
    (high, *_) = await optimization.trade_counters(counting, VIEWER)
    assert (high.count, high.last_optimization) == (0, clock.now())
    await runtime.background.idle()
    assert (await runs(deps).run(started.run_id)).status is RunStatus.APPLIED


async def test_a_level_already_running_keeps_its_count_for_later(
    deps: Deps, clock: MovableClock
) -> None:
    counting = with_policy(deps, trade_threshold=2)
    await claim_without_running(counting, "opt_running")
    await close_trades(counting, [1.0, 1.0, 1.0], clock.now())
    (high, *_) = await optimization.trade_counters(counting, VIEWER)
    assert high.count == 3  # not reset: no second run was started
    assert [r.run_id for r in await runs(deps).runs(None, None, 10)] == ["opt_running"]


async def test_the_weekly_trigger_runs_each_level_that_has_symbols(
    deps: Deps, runtime: Runtime
) -> None:
    started = await optimization.scheduled_optimization(deps)
    assert [(r.scope, r.trigger) for r in started] == [(Scope.HIGH, Trigger.SCHEDULED)]
    assert await optimization.scheduled_optimization(deps) == []  # HIGH still runs
    await runtime.background.idle()


async def test_stopping_the_process_marks_a_run_in_progress_interrupted(
    settings: Settings, clock: MovableClock
) -> None:
    async with open_runtime(settings) as runtime:
        deps = dataclasses.replace(runtime.deps, clock=clock)
        run = await optimization.start_optimization(deps, ADMIN, HIGH)
        await runtime.background.close()
        stopped = await runs(deps).run(run.run_id)
    assert stopped.status is RunStatus.FAILED and "interrupted" in stopped.error


async def test_at_start_the_service_fires_the_trade_count_trigger_missed_while_it_was_down(
    deps: Deps, runtime: Runtime, clock: MovableClock
) -> None:
    await close_trades(deps, [1.0] * 3, clock.now())  # below the threshold of 200
    runtime.deps = with_policy(deps, trade_threshold=3)  # then a restart with a lower one
    component = OptimizerComponent(runtime)
    await component.start()
    (started,) = await runs(deps).runs(None, None, 10)
    assert (started.trigger, started.status) == (Trigger.TRADE_COUNT, RunStatus.RUNNING)
    await component.stop()  # never leaves the run RUNNING: finished, or FAILED as interrupted
    assert (await runs(deps).run(started.run_id)).status is not RunStatus.RUNNING


# --- the report of a run, for Slack -------------------------------------------------------


async def test_a_runs_report_renders_its_equity_curves_in_the_process_pool(deps: Deps) -> None:
    run = (await optimization.optimize(deps, ADMIN, HIGH)).run
    report = await optimization_views.run_report(deps, VIEWER, run.run_id)
    assert report.winner is not None and report.baseline == BASELINE
    assert len(report.equity_times) == len(report.equity_baseline) == 500
    assert report.equity_winner is not None and report.reasons
    assert 0 <= report.probability_of_backtest_overfitting <= 1
    assert deps.optimizer is not None
    png = await deps.optimizer.compute.run(equity_chart_png, report)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
