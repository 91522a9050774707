"""Optimization runs: start one (by hand, weekly, after N trades, after a performance drop),
run the cycle of core.optimizer off the event loop, apply or hold its winner, watch it live.

Rules:
- One run per scope at a time, enforced by the database: a run is claimed as the scope's
  RUNNING row before any work, so a second trigger, from any process, is refused ("already
  running") and never duplicated. A RUNNING row older than `run_timeout_minutes` belongs to a
  process that died: the next claim marks it FAILED; if its process was only slow, the run
  then applies and records nothing when it ends. Claiming a level's run resets the level's
  trade counter.
- The baseline is the scope's effective strategy parameters now; the data range ends at the
  last whole bar before `until` (default now) and spans `lookback_days`. Symbols are those
  the configuration maps to the scope's level (every configured symbol for `global`), those
  marked "auto" classified by their ATR (core.market).
- Bad data (a gap longer than allowed, a range the data does not cover, bars out of order)
  stops the run with a clear error naming the symbol and range, and the run is FAILED:
  nothing is concluded from partial data.
- The winner (core.optimizer's rule) becomes the scope's ACTIVE version through the one
  change path of core.services (backed up first; based on the version the run measured, so a
  change made meanwhile refuses it): in `auto` mode at once, in `approve` mode when an admin
  calls `apply_run_winner` (`reject_run_winner` declines it). Every candidate is stored with
  its metrics in the run: TESTING while pending, the winner ACTIVE once applied, the rest
  ARCHIVED. Only an applied winner becomes a config version, so a scope's version numbers
  stay the history of its real changes (an 81-point grid would otherwise add 81 versions).
- Live watch (`check_live_performance`): the live fitness of the active version's trades
  (core.optimizer.live_stats) is compared with the fitness the version was expected to reach
  out of sample. Shortfall % = −improvement % from expected to live. A version the optimizer
  applied that falls short by more than `rollback_margin_pct` is rolled back to its parent's
  parameters through the change path; any other shortfall above `performance_drop_pct`
  starts a PERFORMANCE_DROP run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from core import services
from core.authz import Action, Actor, Role, require
from core.backtest import BacktestResult, BacktestSettings, Candles, timeframe_seconds
from core.errors import ConflictError, NotFoundError, UserError, ValidationError
from core.market import (
    Bar,
    Gap,
    LoadedCandles,
    MarketDataError,
    check_bars,
    daily_atr_percent,
    symbol_key,
    volatility_level,
)
from core.metrics import fitness
from core.models import AuditEntry, ClosedTradeEvent, ConfigVersion, Outcome, Source
from core.models import VersionStatus as Status
from core.optimization_model import (
    ApplyMode,
    DataRange,
    NewRun,
    OptimizationRun,
    RunCandidate,
    RunEnd,
    RunStatus,
    TradeCounter,
    Trigger,
    finite,
    metrics_json,
)
from core.optimizer import (
    STRATEGY,
    Axis,
    BacktestJob,
    CycleJob,
    CycleResult,
    CycleSettings,
    Method,
    Score,
    backtest_job,
    improvement_pct,
    live_stats,
    run_cycle,
    search_axes,
)
from core.params import VOLATILITY_LEVELS, Params, Scope
from core.ports import Deps, OptimizerPorts
from core.services import ChangeResult

log = logging.getLogger(__name__)

OPTIMIZER = Actor.having("system:optimizer", "optimizer", Role.ADMIN)
MAX_LOOKBACK_DAYS = 3650
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class OptimizationRequest:
    scope: Scope = Scope.GLOBAL
    trigger: Trigger = Trigger.MANUAL
    method: Method | None = None  # default: the configured one
    lookback_days: int | None = None  # default: the configured one
    until: datetime | None = None  # default: now
    seed: int | None = None  # default: the configured one, else a random one


@dataclass(frozen=True)
class CycleReport:
    """What a run found: the stored run (None for a dry run), its inputs, the cycle's result."""

    run: OptimizationRun | None
    baseline_version: int
    data_range: DataRange
    gaps: tuple[tuple[str, Gap], ...]
    seed: int
    result: CycleResult
    change: ChangeResult | None  # the winner, applied


@dataclass(frozen=True)
class _Plan:
    """A run's inputs once the baseline is read and the candles are loaded."""

    baseline_version: int
    baseline: Params
    axes: tuple[Axis, ...]
    data_range: DataRange  # with the symbols
    loaded: tuple[LoadedCandles, ...]
    settings: CycleSettings

    @property
    def gaps(self) -> tuple[tuple[str, Gap], ...]:
        pairs = zip(self.data_range.symbols, self.loaded, strict=True)
        return tuple((symbol, gap) for symbol, loaded in pairs for gap in loaded.gaps)

    def job(self, name: str, seed: int, ports: OptimizerPorts, keep_study: bool) -> CycleJob:
        return CycleJob(
            name=name,
            symbols=tuple(loaded.candles for loaded in self.loaded),
            axes=self.axes,
            baseline=self.baseline,
            settings=self.settings,
            seed=seed,
            study_storage=ports.study_storage if keep_study else None,
        )


def optimizer_ports(deps: Deps) -> OptimizerPorts:
    if deps.optimizer is None:
        raise ConflictError("the optimizer is not configured in this process")
    return deps.optimizer


# --- running the cycle -----------------------------------------------------------------


async def start_optimization(
    deps: Deps, actor: Actor, request: OptimizationRequest
) -> OptimizationRun:
    """Claim the scope's run and carry it out in the background; return it RUNNING.

    Raises ConflictError when the scope has a run already (nothing is started)."""
    require(actor, Action.OPTIMIZE)
    ports = optimizer_ports(deps)
    run = await _claim(deps, ports, actor, request)
    ports.background.spawn(_in_background(deps, run), name=run.run_id)
    return run


async def optimize(
    deps: Deps, actor: Actor, request: OptimizationRequest, dry_run: bool = False
) -> CycleReport:
    """Run the cycle now and wait for it. A dry run stores and applies nothing (and claims
    nothing: it changes nothing a concurrent run could conflict with)."""
    require(actor, Action.OPTIMIZE)
    ports = optimizer_ports(deps)
    if not dry_run:
        run = await _claim(deps, ports, actor, request)
        return await _execute(deps, run)
    seed, method = _seed(ports, request), request.method or ports.policy.cycle.method
    plan = await _prepare(deps, ports, request.scope, _data_range(deps, ports, request), method)
    result = await ports.compute.run(run_cycle, plan.job("dry-run", seed, ports, keep_study=False))
    return CycleReport(None, plan.baseline_version, plan.data_range, plan.gaps, seed, result, None)


async def _claim(
    deps: Deps, ports: OptimizerPorts, actor: Actor, request: OptimizationRequest
) -> OptimizationRun:
    now = deps.clock.now()
    new = NewRun(
        run_id=f"opt_{now:%Y%m%d_%H%M%S}_{secrets.token_hex(3)}",
        trigger=request.trigger,
        scope=request.scope,
        method=request.method or ports.policy.cycle.method,
        started_at=now,
        requested_by=actor.id,
        seed=_seed(ports, request),
        code_version=ports.code_version,
        data_range=_data_range(deps, ports, request),
    )
    detail = {"run_id": new.run_id, "trigger": new.trigger.value, "method": new.method.value}
    audit = _audit(now, actor, "optimize", request.scope.value, detail)
    stale_before = now - timedelta(minutes=ports.policy.run_timeout_minutes)
    return await ports.runs.claim(new, stale_before, audit)


def _seed(ports: OptimizerPorts, request: OptimizationRequest) -> int:
    for chosen in (request.seed, ports.policy.seed):
        if chosen is not None:
            return chosen
    return secrets.randbits(31)


def _data_range(deps: Deps, ports: OptimizerPorts, request: OptimizationRequest) -> DataRange:
    policy = ports.policy
    days = request.lookback_days or policy.lookback_days
    if not 1 <= days <= MAX_LOOKBACK_DAYS:
        raise ValidationError(f"lookback_days must be from 1 to {MAX_LOOKBACK_DAYS}; got {days}")
    bar = timeframe_seconds(policy.timeframe)
    until = request.until or deps.clock.now()
    whole_bars = int((until - _EPOCH).total_seconds()) // bar
    end = _EPOCH + timedelta(seconds=whole_bars * bar)
    return DataRange(end - timedelta(days=days), end, policy.timeframe)


async def _in_background(deps: Deps, run: OptimizationRun) -> None:
    try:
        await _execute(deps, run)
    except UserError as error:  # recorded in the run; nothing more to tell anyone here
        log.info("optimization %s failed: %s", run.run_id, error)


async def _execute(deps: Deps, run: OptimizationRun) -> CycleReport:
    """Carry out a claimed run; the run ends FAILED, with the error, if anything goes wrong."""
    ports = optimizer_ports(deps)
    assert run.data_range is not None and run.seed is not None
    try:
        plan = await _prepare(deps, ports, run.scope, run.data_range, run.method)
        job = plan.job(run.run_id, run.seed, ports, keep_study=True)
        result = await ports.compute.run(run_cycle, job)
        return await _conclude(deps, ports, run, plan, job.seed, result)
    except asyncio.CancelledError:
        await _fail(deps, ports, run, "interrupted: the process stopped during the run")
        raise
    except UserError as error:
        await _fail(deps, ports, run, str(error))
        raise
    except Exception as error:
        log.exception("optimization %s failed", run.run_id)
        await _fail(deps, ports, run, f"internal error: {type(error).__name__}: {error}")
        raise


async def _fail(deps: Deps, ports: OptimizerPorts, run: OptimizationRun, error: str) -> None:
    now = deps.clock.now()
    end = RunEnd(RunStatus.FAILED, now, _seconds(run.started_at, now), error=error)
    try:
        await ports.runs.finish(run.run_id, end)
    except ConflictError as taken_over:  # its end is recorded and announced already
        log.warning("%s", taken_over)


async def _prepare(
    deps: Deps,
    ports: OptimizerPorts,
    scope: Scope,
    data_range: DataRange,
    method: Method,
) -> _Plan:
    params, version = await services.effective_parameters(deps, scope)
    baseline = {name: params[name] for name in sorted(STRATEGY.parameter_names)}
    symbols = await _symbols_of(ports, scope, data_range.end)
    loaded = [
        await ports.market.candles(symbol, data_range.timeframe, data_range.start, data_range.end)
        for symbol in symbols
    ]
    return _Plan(
        baseline_version=version,
        baseline=baseline,
        axes=search_axes(deps.schema, baseline),
        data_range=dataclasses.replace(data_range, symbols=tuple(symbols)),
        loaded=tuple(loaded),
        settings=dataclasses.replace(ports.policy.cycle, method=method),
    )


async def _symbols_of(ports: OptimizerPorts, scope: Scope, at: datetime) -> list[str]:
    configured = ports.policy.symbols
    if scope is Scope.GLOBAL:
        chosen = list(configured)
    else:
        chosen = [
            symbol
            for symbol, level in configured.items()
            if (level or await _measured_level(ports, symbol, at)) is scope
        ]
    if not chosen:
        raise ValidationError(
            f"no symbol is configured for {scope}: map symbols to volatility levels "
            '(or to "auto") in [optimizer.symbols]'
        )
    return chosen


async def _measured_level(ports: OptimizerPorts, symbol: str, at: datetime) -> Scope:
    """The level of a symbol's recent daily ATR %; MarketDataError if its data is unusable."""
    policy = ports.policy
    start = at - timedelta(days=policy.volatility.lookback_days)
    candles, _ = await ports.market.candles(symbol, policy.timeframe, start, at)
    atr_pct = daily_atr_percent(candles)
    if math.isnan(atr_pct):  # too few bars
        raise MarketDataError(f"{symbol}: too few bars before {at:%Y-%m-%d %H:%M} UTC for an ATR")
    return volatility_level(atr_pct, policy.volatility)


async def _conclude(
    deps: Deps,
    ports: OptimizerPorts,
    run: OptimizationRun,
    plan: _Plan,
    seed: int,
    result: CycleResult,
) -> CycleReport:
    winner = result.winning_score
    change = None
    if not result.decision.applies:
        status = RunStatus.NO_IMPROVEMENT
    elif ports.policy.apply_mode(run.scope) is ApplyMode.APPROVE:
        status = RunStatus.PENDING_APPROVAL
    else:
        assert winner is not None
        await _refuse_if_taken_over(ports, run)
        change = await _apply(deps, OPTIMIZER, run, winner.parameters, plan.baseline_version)
        status = RunStatus.APPLIED
    now = deps.clock.now()
    end = RunEnd(
        status=status,
        finished_at=now,
        duration_seconds=_seconds(run.started_at, now),
        data_range=plan.data_range,
        baseline_version=plan.baseline_version,
        baseline_score=finite(result.baseline.out_of_sample_fitness),
        best_score=finite(winner.out_of_sample_fitness) if winner else None,
        improvement_pct=finite(result.decision.improvement_pct),
        improvement_found=result.decision.applies,
        candidates=_candidates(result, status),
        winner_version=change.version.version if change and change.version else None,
        results=_results_json(plan, result),
    )
    finished = await ports.runs.finish(run.run_id, end)
    return CycleReport(
        finished, plan.baseline_version, plan.data_range, plan.gaps, seed, result, change
    )


async def _refuse_if_taken_over(ports: OptimizerPorts, run: OptimizationRun) -> None:
    """A run slower than `run_timeout_minutes` may have been taken over (ended FAILED by
    the scope's next claim): its winner must not change the parameters. A takeover between
    this check and the change's commit still lets the change through; finish() then refuses
    to record the run, so it stays FAILED, announced once."""
    stored = await ports.runs.run(run.run_id)
    assert stored is not None  # only runs that ended are ever deleted
    if stored.status is not RunStatus.RUNNING:
        raise ConflictError(
            f"optimization {run.run_id} was already ended as {stored.status.value}; "
            "its winner was not applied"
        )


async def _apply(
    deps: Deps, actor: Actor, run: OptimizationRun, params: Params, based_on: int | None
) -> ChangeResult:
    """The winner's values become the scope's ACTIVE version, through the one change path."""
    why = f"optimization {run.run_id} ({run.trigger.value}, {run.method.value})"
    if actor is not OPTIMIZER:
        why += f", approved by {actor.id}"
    detail = {"run_id": run.run_id, "parameters": dict(params), "reason": why}
    return await services.apply_change(
        deps,
        actor,
        Action.APPLY,
        run.scope,
        based_on,
        lambda current: {**current, **params},
        why,
        detail,
        source=Source.OPTIMIZER,
    )


def _candidates(result: CycleResult, status: RunStatus) -> tuple[RunCandidate, ...]:
    winner_status = {RunStatus.APPLIED: Status.ACTIVE, RunStatus.PENDING_APPROVAL: Status.TESTING}
    rows = [_candidate(0, result.baseline, Status.ARCHIVED)]
    for index, score in enumerate(result.candidates):
        won = index == result.winner and result.decision.applies
        state = winner_status.get(status, Status.ARCHIVED) if won else Status.ARCHIVED
        rows.append(_candidate(index + 1, score, state))
    return tuple(rows)


def _candidate(position: int, score: Score, status: Status) -> RunCandidate:
    return RunCandidate(
        position=position,
        parameters=dict(score.parameters),
        status=status,
        in_sample_fitness=finite(score.in_sample_fitness),
        out_of_sample_fitness=finite(score.out_of_sample_fitness),
        metrics=_score_json(score),
    )


def _score_json(score: Score) -> dict[str, Any]:
    return {
        "in_sample": metrics_json(score.in_sample),
        "out_of_sample": metrics_json(score.out_of_sample),
        "folds": [[finite(ins), finite(outs)] for ins, outs in score.folds],
    }


def _results_json(plan: _Plan, result: CycleResult) -> dict[str, Any]:
    """What a run found, in JSON, with everything needed to run it again: the symbols and
    range (the run's data_range), the baseline, the settings and the seed (the run's)."""
    decision, winner = result.decision, result.winning_score
    equity = result.equity
    return {
        "baseline": {
            "version": plan.baseline_version,
            "parameters": plan.baseline,
            "in_sample_fitness": finite(result.baseline.in_sample_fitness),
            "out_of_sample_fitness": finite(result.baseline.out_of_sample_fitness),
        },
        "winner": None
        if winner is None or result.winner is None
        else {
            "position": result.winner + 1,
            "parameters": winner.parameters,
            "in_sample_fitness": finite(winner.in_sample_fitness),
            "out_of_sample_fitness": finite(winner.out_of_sample_fitness),
        },
        "decision": {
            "applies": decision.applies,
            "improvement_pct": finite(decision.improvement_pct),
            "in_to_out_of_sample_drop_pct": finite(decision.drop_pct),
            "reasons": list(decision.reasons),
        },
        "deflated_sharpe_ratio": finite(result.deflated_sharpe_ratio),
        "probability_of_backtest_overfitting": finite(result.probability_of_backtest_overfitting),
        "trials": len(result.candidates) + 1,
        "walk_forward": [
            {
                "in_sample": [fold.in_sample.start.isoformat(), fold.in_sample.end.isoformat()],
                "out_of_sample": [
                    fold.out_of_sample.start.isoformat(),
                    fold.out_of_sample.end.isoformat(),
                ],
            }
            for fold in result.folds
        ],
        "gaps": [
            {
                "symbol": symbol,
                "start": gap.start.isoformat(),
                "end": gap.end.isoformat(),
                "bars": gap.bars,
            }
            for symbol, gap in plan.gaps
        ],
        "settings": dataclasses.asdict(plan.settings),
        "equity": {
            "times": [time.isoformat() for time in equity.times],
            "baseline": [round(value, 6) for value in equity.baseline],
            "winner": None if equity.winner is None else [round(v, 6) for v in equity.winner],
        },
    }


# --- the winner in approve mode ----------------------------------------------------------


async def apply_run_winner(deps: Deps, actor: Actor, run_id: str, reason: str = "") -> ChangeResult:
    """An admin applies the winner a run holds for approval, as a new version of its scope.

    The decision is claimed first (the run becomes APPLIED), so of an apply and a reject
    racing exactly one wins and the other changes nothing. Refused when the scope changed
    since the run measured it (the winner was judged against values that are no longer live,
    so the run must be repeated) or the backup fails: the run then waits for approval again."""
    require(actor, Action.APPLY)
    ports = optimizer_ports(deps)
    run = await _pending_run(ports, run_id)
    winner = next(c for c in await ports.runs.candidates(run_id) if c.status is Status.TESTING)
    await _decide(ports, run_id, RunStatus.APPLIED, None)
    try:
        change = await _apply(deps, actor, run, winner.parameters, run.baseline_version)
    except Exception as error:
        # Pending again rather than FAILED: an admin may retry (a backup that failed) or
        # reject it, and a newer run supersedes it as before.
        await ports.runs.transition(run_id, RunStatus.APPLIED, RunStatus.PENDING_APPROVAL, None)
        if isinstance(error, UserError):
            message = f"{error} (nothing was changed: run {run_id} waits for approval again)"
            raise type(error)(message) from error
        raise
    assert change.version is not None
    version = change.version.version
    detail = {"run_id": run_id, "version": version, "reason": reason}
    audit = _audit(deps.clock.now(), actor, "optimize.apply", run.scope.value, detail)
    # The decision is ours: record the version it became, and audit it.
    await ports.runs.transition(
        run_id, RunStatus.APPLIED, RunStatus.APPLIED, audit, winner_version=version
    )
    return change


async def reject_run_winner(
    deps: Deps, actor: Actor, run_id: str, reason: str = ""
) -> OptimizationRun:
    require(actor, Action.APPLY)
    ports = optimizer_ports(deps)
    run = await _pending_run(ports, run_id)
    detail = {"run_id": run_id, "reason": reason}
    audit = _audit(deps.clock.now(), actor, "optimize.reject", run.scope.value, detail)
    return await _decide(ports, run_id, RunStatus.REJECTED, audit)


async def _decide(
    ports: OptimizerPorts, run_id: str, decision: RunStatus, audit: AuditEntry | None
) -> OptimizationRun:
    """Claim the decision on a run waiting for approval; refused if another came first."""
    decided = await ports.runs.transition(run_id, RunStatus.PENDING_APPROVAL, decision, audit)
    if decided is None:
        current = await ports.runs.run(run_id)
        status = current.status.value if current else "deleted"
        raise ConflictError(f"run {run_id} was already decided: {status}; nothing was changed")
    return decided


async def _pending_run(ports: OptimizerPorts, run_id: str) -> OptimizationRun:
    run = await ports.runs.run(run_id)
    if run is None:
        raise NotFoundError(f"no optimization run {run_id}")
    if run.status is not RunStatus.PENDING_APPROVAL:
        raise ConflictError(f"run {run_id} is {run.status.value}, not waiting for approval")
    return run


# --- triggers ----------------------------------------------------------------------------


async def start_due_runs(deps: Deps) -> list[OptimizationRun]:
    """The trade-count trigger: a run for each level whose counter reached the threshold
    (claiming it resets the counter). A level already running keeps its count for later."""
    if deps.optimizer is None:
        return []
    threshold = deps.optimizer.policy.trade_threshold
    due = [c.volatility_level for c in await deps.optimizer.runs.counters() if c.count >= threshold]
    return await _start_each(deps, due, Trigger.TRADE_COUNT)


async def scheduled_optimization(deps: Deps) -> list[OptimizationRun]:
    """The weekly trigger: a run for each level that has symbols (all three when some
    symbols are classified by their ATR); a level already running is skipped."""
    symbols = optimizer_ports(deps).policy.symbols
    levels = set(symbols.values())
    scopes = (
        list(VOLATILITY_LEVELS) if None in levels else [s for s in VOLATILITY_LEVELS if s in levels]
    )
    return await _start_each(deps, scopes, Trigger.SCHEDULED)


async def _start_each(
    deps: Deps, scopes: Iterable[Scope], trigger: Trigger
) -> list[OptimizationRun]:
    started = []
    for scope in scopes:
        try:
            started.append(
                await start_optimization(deps, OPTIMIZER, OptimizationRequest(scope, trigger))
            )
        except ConflictError as error:
            log.info("%s optimization of %s not started: %s", trigger.value, scope, error)
    return started


# --- housekeeping --------------------------------------------------------------------------

RUN_RETENTION = timedelta(days=90)
FAILED_VERSION_RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class Cleanup:
    runs_deleted: int
    versions_archived: int


async def clean_up_history(deps: Deps) -> Cleanup:
    """The monthly cleanup: runs that found no improvement go after 90 days, FAILED versions
    are archived after 30; runs that found an improvement are kept forever."""
    ports = optimizer_ports(deps)
    now = deps.clock.now()
    audit = _audit(now, OPTIMIZER, "optimize.cleanup", "history", {})
    deleted, archived = await ports.runs.clean_up(
        now - RUN_RETENTION, now - FAILED_VERSION_RETENTION, audit
    )
    return Cleanup(deleted, archived)


async def trade_counters(deps: Deps, actor: Actor) -> list[TradeCounter]:
    """Each level's closed trades since its last optimization, against the threshold."""
    require(actor, Action.READ)
    ports = optimizer_ports(deps)
    stored = {c.volatility_level: c for c in await ports.runs.counters()}
    threshold = ports.policy.trade_threshold
    return [
        dataclasses.replace(stored[level], threshold=threshold)
        if level in stored
        else TradeCounter(level, 0, threshold, None)
        for level in VOLATILITY_LEVELS
    ]


# --- live performance --------------------------------------------------------------------


class LiveAction(StrEnum):
    WITHIN_EXPECTATION = "within_expectation"
    NOT_ENOUGH_TRADES = "not_enough_trades"
    NO_EXPECTATION = "no_expectation"  # nothing measured what the version should do
    ROLLED_BACK = "rolled_back"
    OPTIMIZATION_STARTED = "optimization_started"
    OPTIMIZATION_RUNNING = "optimization_running"


@dataclass(frozen=True)
class LiveCheck:
    scope: Scope
    version: int
    action: LiveAction
    trades: int
    expected: float | None = None
    live: float | None = None
    shortfall_pct: float | None = None
    change: ChangeResult | None = None
    run: OptimizationRun | None = None


async def check_live_performance(deps: Deps) -> list[LiveCheck]:
    """Compare each scope's live trades with its active version's expectation; roll back or
    re-optimize on a shortfall (see the module docstring). For the periodic monitor job."""
    ports = optimizer_ports(deps)
    checks = []
    for scope in Scope:
        version = await deps.config.active(scope)
        if version is not None:
            checks.append(await _check_version(deps, ports, version))
    return checks


async def _check_version(deps: Deps, ports: OptimizerPorts, version: ConfigVersion) -> LiveCheck:
    policy, scope = ports.policy, version.scope
    level = None if scope is Scope.GLOBAL else scope
    trades = await ports.runs.live_trades(level, version.created_at, policy.live_max_trades)
    check = LiveCheck(scope, version.version, LiveAction.NO_EXPECTATION, len(trades))
    expected = await _expected_fitness(ports, version)
    if expected is None:
        return check
    check = dataclasses.replace(check, expected=expected, action=LiveAction.NOT_ENOUGH_TRADES)
    if len(trades) < policy.live_min_trades:
        return check
    live = fitness(live_stats(trades), policy.cycle.fitness)
    change = improvement_pct(expected, live)
    shortfall = math.inf if change is None else -change  # an undefined live fitness: all lost
    check = dataclasses.replace(
        check,
        action=LiveAction.WITHIN_EXPECTATION,
        live=finite(live),
        shortfall_pct=finite(shortfall),
    )
    applied_by = await ports.runs.run_of_version(scope, version.version)
    optimizer_made = applied_by is not None and applied_by.status is RunStatus.APPLIED
    if optimizer_made and shortfall > policy.rollback_margin_pct:
        assert applied_by is not None
        return await _roll_back(deps, ports, version, applied_by, check)
    if shortfall > policy.performance_drop_pct:
        return await _reoptimize(deps, check)
    return check


async def _reoptimize(deps: Deps, check: LiveCheck) -> LiveCheck:
    request = OptimizationRequest(check.scope, Trigger.PERFORMANCE_DROP)
    try:
        run = await start_optimization(deps, OPTIMIZER, request)
    except ConflictError:
        return dataclasses.replace(check, action=LiveAction.OPTIMIZATION_RUNNING)
    return dataclasses.replace(check, action=LiveAction.OPTIMIZATION_STARTED, run=run)


async def _expected_fitness(ports: OptimizerPorts, version: ConfigVersion) -> float | None:
    """What the version should do: its own out-of-sample fitness when a run applied it,
    else what the latest run measured for it as its baseline."""
    if version.fitness is not None:
        return version.fitness
    measured = await ports.runs.latest_baseline_run(version.scope, version.version)
    return measured.baseline_score if measured else None


async def _roll_back(
    deps: Deps,
    ports: OptimizerPorts,
    version: ConfigVersion,
    run: OptimizationRun,
    check: LiveCheck,
) -> LiveCheck:
    parent = await deps.config.get_version(version.scope, version.parent_version or 0)
    previous = deps.schema.validate(parent.parameters) if parent else {}
    shortfall = "all" if check.shortfall_pct is None else f"{check.shortfall_pct:.1f} %"
    why = (
        f"live fitness {_shown(check.live)} over {check.trades} trades is {shortfall} "
        f"below the {_shown(check.expected)} expected out of sample (margin "
        f"{ports.policy.rollback_margin_pct:g} %): rolled back from version {version.version} "
        f"(optimization {run.run_id}) to the values of version {version.parent_version}"
    )
    detail: dict[str, Any] = {"run_id": run.run_id, "reason": why}
    change = await services.apply_change(
        deps,
        OPTIMIZER,
        Action.APPLY,
        version.scope,
        version.version,
        lambda _current: dict(previous),
        why,
        detail,
        source=Source.OPTIMIZER,
    )
    restored = change.version.version if change.version else None
    announced = {**detail, "version": restored}  # the rollback's announcement names it
    audit = _audit(deps.clock.now(), OPTIMIZER, "optimize.rollback", version.scope.value, announced)
    await ports.runs.transition(run.run_id, RunStatus.APPLIED, RunStatus.ROLLED_BACK, audit)
    return dataclasses.replace(check, action=LiveAction.ROLLED_BACK, change=change)


# --- market data -------------------------------------------------------------------------


async def ingest_candles(
    deps: Deps, actor: Actor, symbol: str, timeframe: str, bars: Sequence[Bar]
) -> int:
    """The engine reports bars; stored once each by symbol, timeframe and time."""
    require(actor, Action.INGEST)
    try:
        check_bars(symbol, timeframe, bars)
    except ValueError as error:  # an unknown timeframe
        raise ValidationError(str(error)) from None
    return await optimizer_ports(deps).candles.add_candles(
        symbol, timeframe, bars, deps.clock.now()
    )


async def with_volatility_levels(
    deps: Deps, events: Sequence[ClosedTradeEvent]
) -> list[ClosedTradeEvent]:
    """Closed trades the engine sent without a volatility level get their symbol's: the
    configured one, else the one its recent ATR gives; none if neither is known."""
    missing = {event.symbol for event in events if event.volatility_level is None}
    if deps.optimizer is None or not missing:
        return list(events)
    levels = {symbol: await _level_of(deps, deps.optimizer, symbol) for symbol in missing}
    return [
        event
        if event.volatility_level is not None
        else dataclasses.replace(event, volatility_level=levels[event.symbol])
        for event in events
    ]


async def _level_of(deps: Deps, ports: OptimizerPorts, symbol: str) -> Scope | None:
    configured = {symbol_key(name): (name, level) for name, level in ports.policy.symbols.items()}
    name, level = configured.get(symbol_key(symbol), (symbol, None))
    if level is not None:
        return level
    try:
        return await _measured_level(ports, name, deps.clock.now())
    except MarketDataError as error:
        log.debug("no volatility level for %s: %s", symbol, error)
        return None


# --- applying a stored configuration, and a single backtest -----------------------------


async def apply_config(
    deps: Deps, actor: Actor, version_id: int, reason: str = "", based_on: int | None = None
) -> ChangeResult:
    """Make the parameters of a stored config version (by id) the scope's ACTIVE values."""
    require(actor, Action.APPLY)
    target = await optimizer_ports(deps).runs.version_by_id(version_id)
    if target is None:
        raise NotFoundError(f"no config version with id {version_id}")
    why = reason.strip() or f"apply config {version_id} ({target.scope} version {target.version})"
    params = deps.schema.validate(target.parameters)
    return await services.apply_change(
        deps,
        actor,
        Action.APPLY,
        target.scope,
        based_on,
        lambda _current: dict(params),
        why,
        {"config_id": version_id, "version": target.version, "reason": why},
    )


@dataclass(frozen=True)
class BacktestReport:
    parameters: Params
    result: BacktestResult


async def backtest(
    deps: Deps,
    actor: Actor,
    candles: Candles,
    scope: Scope,
    overrides: Sequence[tuple[str, object]] = (),
    settings: BacktestSettings | None = None,
) -> BacktestReport:
    """The reference strategy on some candles with the scope's effective values, some of
    them overridden (validated against the schema)."""
    require(actor, Action.READ)
    params, _ = await services.effective_parameters(deps, scope)
    for name, raw in overrides:
        if name not in STRATEGY.parameter_names:
            allowed = ", ".join(sorted(STRATEGY.parameter_names))
            raise ValidationError(f"the strategy has no parameter '{name}'; it has {allowed}")
        params[name] = deps.schema.spec(name).parse(raw)
    chosen = {name: params[name] for name in sorted(STRATEGY.parameter_names)}
    job = BacktestJob(candles, chosen, settings or optimizer_ports(deps).policy.cycle.backtest)
    return BacktestReport(chosen, await optimizer_ports(deps).compute.run(backtest_job, job))


def _audit(
    at: datetime, actor: Actor, action: str, target: str, detail: dict[str, Any]
) -> AuditEntry:
    return AuditEntry(at, actor.id, actor.source, action, target, Outcome.APPLIED, detail)


def _shown(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"


def _seconds(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 3)
