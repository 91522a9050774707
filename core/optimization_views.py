"""What people read about the optimizer: run history and its summary, config versions with
what the optimizer measured, comparisons, overall learning metrics, and a run's report.

Figures follow the specification: success rate = runs that found an improvement / runs, in
percent; the average improvement is over the runs that found one; a config's score is its
fitness (the out-of-sample fitness the optimizer measured for it, None for a version nobody
measured).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from core.authz import Action, Actor, require
from core.errors import NotFoundError
from core.models import ConfigVersion, Source, VersionStatus
from core.optimization import optimizer_ports
from core.optimization_model import OptimizationRun, RunCandidate, RunStatus
from core.optimizer import improvement_pct
from core.params import VOLATILITY_LEVELS, Params, Scope
from core.ports import Deps

ALL_RUNS = 100_000  # summaries count every run in their window
RECENT = timedelta(days=30)


@dataclass(frozen=True)
class RunSummary:
    total_runs: int
    improvements_found: int
    success_rate: float  # percent of the runs
    avg_improvement_pct: float | None  # over the runs that found an improvement


def summarize(runs: Sequence[OptimizationRun]) -> RunSummary:
    improved = [run for run in runs if run.improvement_found]
    gains = [run.improvement_pct for run in improved if run.improvement_pct is not None]
    return RunSummary(
        total_runs=len(runs),
        improvements_found=len(improved),
        success_rate=round(100 * len(improved) / len(runs), 1) if runs else 0.0,
        avg_improvement_pct=round(sum(gains) / len(gains), 1) if gains else None,
    )


@dataclass(frozen=True)
class RunHistory:
    runs: list[OptimizationRun]  # newest first, at most the limit asked
    summary: RunSummary  # over every run in the window


async def run_history(
    deps: Deps, actor: Actor, since: datetime, scope: Scope | None = None, limit: int = 50
) -> RunHistory:
    require(actor, Action.READ)
    runs = await optimizer_ports(deps).runs.runs(since, scope, ALL_RUNS)
    return RunHistory(runs[:limit], summarize(runs))


async def run_details(
    deps: Deps, actor: Actor, run_id: str
) -> tuple[OptimizationRun, list[RunCandidate]]:
    require(actor, Action.READ)
    runs = optimizer_ports(deps).runs
    run = await runs.run(run_id)
    if run is None:
        raise NotFoundError(f"no optimization run {run_id}")
    return run, await runs.candidates(run_id)


@dataclass(frozen=True)
class ConfigView:
    """A config version and, when the optimizer made it, the run that did."""

    version: ConfigVersion
    run: OptimizationRun | None

    @property
    def name(self) -> str:
        """As the specification names configs: HIGH_optimized, global_slack, ..."""
        source = "optimized" if self.version.source is Source.OPTIMIZER else self.version.source
        return f"{self.version.scope.value}_{source}"


async def config_versions(
    deps: Deps,
    actor: Actor,
    scope: Scope | None = None,
    status: VersionStatus | None = None,
    limit: int = 50,
) -> list[ConfigView]:
    require(actor, Action.READ)
    versions = await optimizer_ports(deps).runs.versions(scope, status, limit)
    return [await _view(deps, version) for version in versions]


async def active_configs(deps: Deps, actor: Actor) -> list[ConfigView]:
    """The ACTIVE version of each scope that has one, global first."""
    require(actor, Action.READ)
    active = [await deps.config.active(scope) for scope in Scope]
    return [await _view(deps, version) for version in active if version is not None]


async def _view(deps: Deps, version: ConfigVersion) -> ConfigView:
    if version.source is not Source.OPTIMIZER:
        return ConfigView(version, None)
    run = await optimizer_ports(deps).runs.run_of_version(version.scope, version.version)
    return ConfigView(version, run)


@dataclass(frozen=True)
class Comparison:
    a: ConfigView
    b: ConfigView
    improvement_pct: float | None  # of b over a, by fitness
    winner: Literal["config_a", "config_b", "tie"] | None  # None: a score is unknown


async def compare_configs(deps: Deps, actor: Actor, a_id: int, b_id: int) -> Comparison:
    require(actor, Action.READ)
    a, b = await _by_id(deps, a_id), await _by_id(deps, b_id)
    score_a, score_b = a.version.fitness, b.version.fitness
    if score_a is None or score_b is None:
        return Comparison(a, b, None, None)
    winner: Literal["config_a", "config_b", "tie"] = (
        "tie" if score_a == score_b else "config_b" if score_b > score_a else "config_a"
    )
    return Comparison(a, b, improvement_pct(score_a, score_b), winner)


async def _by_id(deps: Deps, version_id: int) -> ConfigView:
    version = await optimizer_ports(deps).runs.version_by_id(version_id)
    if version is None:
        raise NotFoundError(f"no config version with id {version_id}")
    return await _view(deps, version)


@dataclass(frozen=True)
class LearningMetrics:
    overview: RunSummary
    successful_runs: int  # finished without an error
    avg_candidates_tested: float | None  # over the successful runs
    recent: RunSummary  # the last 30 days
    total_configs: int
    active_configs: int
    by_volatility: dict[Scope, RunSummary]


async def learning_metrics(deps: Deps, actor: Actor) -> LearningMetrics:
    require(actor, Action.READ)
    ports = optimizer_ports(deps)
    runs = await ports.runs.runs(None, None, ALL_RUNS)
    finished = [r for r in runs if r.status not in (RunStatus.RUNNING, RunStatus.FAILED)]
    recent = [r for r in runs if r.started_at >= deps.clock.now() - RECENT]
    total, active = await ports.runs.count_versions()
    tested = [r.candidates_tested for r in finished]
    return LearningMetrics(
        overview=summarize(runs),
        successful_runs=len(finished),
        avg_candidates_tested=round(sum(tested) / len(tested), 1) if tested else None,
        recent=summarize(recent),
        total_configs=total,
        active_configs=active,
        by_volatility={
            level: summarize([r for r in runs if r.scope is level]) for level in VOLATILITY_LEVELS
        },
    )


# --- a run's report, for Slack ---------------------------------------------------------


@dataclass(frozen=True)
class RunReport:
    """What a run's announcement shows; `equity_*` are portfolio growth curves (1 = start)."""

    run: OptimizationRun
    baseline: Params
    winner: Params | None
    reasons: tuple[str, ...]
    deflated_sharpe_ratio: float | None
    probability_of_backtest_overfitting: float | None
    drop_pct: float | None  # the winner's in-sample -> out-of-sample fitness drop
    equity_times: tuple[datetime, ...]
    equity_baseline: tuple[float, ...]
    equity_winner: tuple[float, ...] | None


async def run_report(deps: Deps, actor: Actor, run_id: str) -> RunReport:
    run, _ = await run_details(deps, actor, run_id)
    return build_run_report(run)


def build_run_report(run: OptimizationRun) -> RunReport:
    """The report of a finished run from its stored results (a failed run has none)."""
    results: dict[str, Any] = dict(run.results or {})
    equity = results.get("equity") or {}
    decision = results.get("decision") or {}
    winner = results.get("winner")
    return RunReport(
        run=run,
        baseline=dict((results.get("baseline") or {}).get("parameters", {})),
        winner=dict(winner["parameters"]) if winner else None,
        reasons=tuple(decision.get("reasons", ())) or ((run.error,) if run.error else ()),
        deflated_sharpe_ratio=results.get("deflated_sharpe_ratio"),
        probability_of_backtest_overfitting=results.get("probability_of_backtest_overfitting"),
        drop_pct=decision.get("in_to_out_of_sample_drop_pct"),
        equity_times=tuple(datetime.fromisoformat(t) for t in equity.get("times", ())),
        equity_baseline=tuple(equity.get("baseline", ())),
        equity_winner=tuple(equity["winner"]) if equity.get("winner") else None,
    )


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)
