"""The specification's /api/learning/ endpoints: optimization runs, config versions, trade
counters and learning metrics. Reading needs the viewer scope; starting a run and applying a
config need admin. POST /api/learning/optimize/ answers at once (202) while the run goes on
in the background; its progress is GET /api/learning/runs/{id}/ (the run id)."""

from __future__ import annotations

from typing import cast

from aiohttp import web
from pydantic import BaseModel

from bot.webhook import learning_schemas as ls
from bot.webhook.operator_routes import change_response, parse_window
from bot.webhook.routing import Call, Route, json_response
from bot.webhook.schemas import ChangeOut
from core import optimization, optimization_views
from core.authz import Action
from core.models import VersionStatus
from core.optimization_model import OptimizationRun, RunCandidate
from core.optimization_views import ConfigView, RunSummary
from core.optimizer import Method
from core.params import Scope

PREFIX = "/api/learning"


async def get_history(call: Call) -> web.Response:
    query: ls.HistoryQuery = call.query
    since = call.runtime.deps.clock.now() - parse_window(query.time_range)
    scope = Scope(query.volatility_level) if query.volatility_level else None
    history = await optimization_views.run_history(
        call.runtime.deps, call.actor, since, scope, query.limit
    )
    out = ls.HistoryOut(runs=[_run_out(r) for r in history.runs], summary=_summary(history.summary))
    return _json(out)


async def get_configs(call: Call) -> web.Response:
    query: ls.ConfigsQuery = call.query
    views = await optimization_views.config_versions(
        call.runtime.deps,
        call.actor,
        Scope(query.volatility_level) if query.volatility_level else None,
        VersionStatus(query.status) if query.status else None,
        query.limit,
    )
    return _json(ls.ConfigsOut(configs=[_config_out(v) for v in views]))


async def get_active_configs(call: Call) -> web.Response:
    views = await optimization_views.active_configs(call.runtime.deps, call.actor)
    return _json(ls.ActiveConfigsOut(active_configs=[_config_out(v) for v in views]))


async def get_counters(call: Call) -> web.Response:
    counters = await optimization.trade_counters(call.runtime.deps, call.actor)
    out = ls.CountersOut(
        counters=[
            ls.CounterOut(
                volatility_level=_level(c.volatility_level),
                count=c.count,
                threshold=c.threshold,
                percentage=c.percentage,
                last_optimization=c.last_optimization,
            )
            for c in counters
        ]
    )
    return _json(out)


async def post_optimize(call: Call) -> web.Response:
    body: ls.OptimizeIn = call.body
    request = optimization.OptimizationRequest(
        scope=Scope(body.volatility_level),
        method=Method(body.method) if body.method else None,
        lookback_days=body.lookback_days,
    )
    run = await optimization.start_optimization(call.runtime.deps, call.actor, request)
    assert run.data_range is not None
    out = ls.TriggeredOut(
        status="triggered",
        task_id=run.run_id,
        run_id=run.run_id,
        volatility_level=run.scope.value,
        lookback_days=(run.data_range.end - run.data_range.start).days,
        method=run.method.value,
        message=f"Optimization task started for {run.scope.value} volatility",
    )
    return _json(out, status=202)


async def get_run(call: Call) -> web.Response:
    run, candidates = await optimization_views.run_details(
        call.runtime.deps, call.actor, call.path["id"]
    )
    data_range = run.data_range
    out = ls.RunDetailOut(
        **_run_out(run).model_dump(),
        requested_by=run.requested_by,
        seed=run.seed,
        code_version=run.code_version,
        data_range=None
        if data_range is None
        else ls.DataRangeOut(
            start=data_range.start,
            end=data_range.end,
            timeframe=data_range.timeframe,
            symbols=list(data_range.symbols),
        ),
        error=run.error,
        results=dict(run.results) if run.results is not None else None,
        candidates=[_candidate_out(c) for c in candidates],
    )
    return _json(out)


async def get_compare(call: Call) -> web.Response:
    query: ls.CompareQuery = call.query
    comparison = await optimization_views.compare_configs(
        call.runtime.deps, call.actor, query.config_a_id, query.config_b_id
    )
    out = ls.CompareOut(
        config_a=_side(comparison.a),
        config_b=_side(comparison.b),
        improvement_percentage=_rounded(comparison.improvement_pct),
        winner=comparison.winner,
    )
    return _json(out)


async def get_metrics(call: Call) -> web.Response:
    metrics = await optimization_views.learning_metrics(call.runtime.deps, call.actor)
    overview = metrics.overview
    out = ls.LearningMetricsOut(
        overview=ls.OverviewOut(
            total_optimization_runs=overview.total_runs,
            successful_runs=metrics.successful_runs,
            improvements_found=overview.improvements_found,
            success_rate=overview.success_rate,
            avg_improvement_pct=overview.avg_improvement_pct,
            avg_candidates_tested=metrics.avg_candidates_tested,
        ),
        recent_activity=ls.RecentActivityOut(
            runs_last_30_days=metrics.recent.total_runs,
            improvements_last_30_days=metrics.recent.improvements_found,
        ),
        configurations=ls.ConfigurationsOut(
            total_configs=metrics.total_configs, active_configs=metrics.active_configs
        ),
        by_volatility=[
            ls.VolatilityOut(
                volatility=_level(level),
                total_runs=summary.total_runs,
                improvements_found=summary.improvements_found,
                success_rate=summary.success_rate,
            )
            for level, summary in metrics.by_volatility.items()
        ],
    )
    return _json(out)


async def post_apply_config(call: Call) -> web.Response:
    body: ls.ApplyConfigIn = call.body
    result = await optimization.apply_config(
        call.runtime.deps, call.actor, call.path["id"], body.reason, body.based_on
    )
    return change_response(call, result)


def _json(out: BaseModel, status: int = 200) -> web.Response:
    return json_response(out.model_dump(mode="json"), status=status)


def _run_out(run: OptimizationRun) -> ls.RunOut:
    return ls.RunOut(
        run_id=run.run_id,
        trigger=run.trigger.value,
        volatility_level=run.scope.value,
        method=run.method.value,
        status=run.status.value,
        improvement_found=run.improvement_found,
        improvement_percentage=_rounded(run.improvement_pct),
        baseline_score=_rounded(run.baseline_score),
        best_score=_rounded(run.best_score),
        candidates_tested=run.candidates_tested,
        duration_seconds=run.duration_seconds,
        started_at=run.started_at,
        finished_at=run.finished_at,
        winner_version=run.winner_version,
    )


def _summary(summary: RunSummary) -> ls.SummaryOut:
    return ls.SummaryOut(
        total_runs=summary.total_runs,
        improvements_found=summary.improvements_found,
        success_rate=summary.success_rate,
        avg_improvement_pct=summary.avg_improvement_pct,
    )


def _config_out(view: ConfigView) -> ls.ConfigOut:
    version, run = view.version, view.run
    assert version.id is not None
    return ls.ConfigOut(
        id=version.id,
        config_name=view.name,
        volatility_level=version.scope.value,
        version=version.version,
        parameters=version.parameters,
        metrics=version.metrics,
        fitness_score=_rounded(version.fitness),
        status=version.status.value,
        improved=run is not None and run.improvement_found,
        improvement_percentage=_rounded(run.improvement_pct) if run else None,
        applied_at=version.created_at,
        source=version.source.value,
        author=version.author,
        reason=version.reason,
        optimization_run_id=run.run_id if run else None,
    )


def _side(view: ConfigView) -> ls.CompareSideOut:
    version = view.version
    assert version.id is not None
    return ls.CompareSideOut(
        id=version.id,
        name=view.name,
        volatility_level=version.scope.value,
        version=version.version,
        score=_rounded(version.fitness),
        metrics=version.metrics,
        parameters=version.parameters,
    )


def _candidate_out(candidate: RunCandidate) -> ls.CandidateOut:
    return ls.CandidateOut(
        position=candidate.position,
        is_baseline=candidate.is_baseline,
        parameters=candidate.parameters,
        status=candidate.status.value,
        in_sample_fitness=_rounded(candidate.in_sample_fitness),
        out_of_sample_fitness=_rounded(candidate.out_of_sample_fitness),
        metrics=dict(candidate.metrics),
    )


def _rounded(value: float | None) -> float | None:
    return optimization_views.rounded(value, 2)


ROUTES = [
    Route(
        "GET",
        PREFIX + "/history/",
        get_history,
        "Optimization runs over a time range, newest first, with a summary",
        Action.READ,
        "learning",
        {200: ls.HistoryOut},
        query=ls.HistoryQuery,
    ),
    Route(
        "GET",
        PREFIX + "/configs/",
        get_configs,
        "Config versions, newest first, with what the optimizer measured",
        Action.READ,
        "learning",
        {200: ls.ConfigsOut},
        query=ls.ConfigsQuery,
    ),
    Route(
        "GET",
        PREFIX + "/configs/active/",
        get_active_configs,
        "The ACTIVE config of each scope",
        Action.READ,
        "learning",
        {200: ls.ActiveConfigsOut},
    ),
    Route(
        "GET",
        PREFIX + "/counters/",
        get_counters,
        "Closed trades per volatility level since its last optimization, against the threshold",
        Action.READ,
        "learning",
        {200: ls.CountersOut},
    ),
    Route(
        "POST",
        PREFIX + "/optimize/",
        post_optimize,
        "Start an optimization run of a scope; 409 while one runs",
        Action.OPTIMIZE,
        "learning",
        {202: ls.TriggeredOut},
        body=(ls.OptimizeIn,),
    ),
    Route(
        "GET",
        PREFIX + "/runs/{id}/",
        get_run,
        "A run: its outcome, data, seed and code version, every candidate with its metrics",
        Action.READ,
        "learning",
        {200: ls.RunDetailOut},
        path_params={"id": str},
    ),
    Route(
        "GET",
        PREFIX + "/compare/",
        get_compare,
        "Two config versions side by side, by fitness",
        Action.READ,
        "learning",
        {200: ls.CompareOut},
        query=ls.CompareQuery,
    ),
    Route(
        "GET",
        PREFIX + "/metrics/",
        get_metrics,
        "Overall learning statistics",
        Action.READ,
        "learning",
        {200: ls.LearningMetricsOut},
    ),
    Route(
        "POST",
        PREFIX + "/configs/{id}/apply/",
        post_apply_config,
        "Make a config version's parameters active again (as a new version, backed up first)",
        Action.APPLY,
        "learning",
        {200: ChangeOut},
        body=(ls.ApplyConfigIn,),
        path_params={"id": int},
    ),
]


def _level(scope: Scope) -> ls.Level:
    """A volatility level's name (counters and summaries exist for the levels only)."""
    return cast(ls.Level, scope.value)
