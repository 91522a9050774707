"""Learning sessions: relax the risk parameters for a while, tag the trades, restore, analyse.

How a running session shows: starting one commits, for each scope it relaxes, a new ACTIVE
config version holding the relaxed values (source `learning`, tagged with the session) through
the one change path of core.services (authorize, back up first, optimistic concurrency).
Every reader (effective parameters, pushes to the engine, /param show) therefore sees the
relaxed values while the session runs, and there is still exactly one ACTIVE version per
scope. Ending it commits another tagged version with the original values put back.

Rules:
- Scopes: `global`, plus each volatility level that sets a relaxable parameter itself (its own
  value is relaxed); a level that inherits the value follows the relaxed global one.
- Relaxed value: lower = v × (1 − p/100), raise = v × (1 + p/100), clamped to the parameter's
  hard bounds, whole numbers rounded, others to 4 significant digits. p is the middle of the
  parameter's relax range unless the caller picks another percentage within it.
- Start is refused, audited and changes nothing when: a session is running; the cooldown after
  the last one has not passed; the duration is outside the configured bounds; the reason is
  empty where a change needs one (core.services.needs_reason: from the CLI and the HTTP API,
  not from Slack); a percentage is outside its parameter's range or names a parameter
  without one.
- While a session runs, changes to the parameters it relaxed (any scope, any entry point) are
  refused: the end of the session would silently undo them. Other parameters can change.
- Crash safety: the session row, with its planned end and original values, is written before
  anything is relaxed; the originals are restored before the session is marked ended. A crash
  between the steps leaves an ACTIVE session that bot.learning_timer ends (restoring) once its
  planned end has passed; restoring an already restored scope changes nothing.
- Analysis: the session's tagged trades beside the trades that closed, outside any session, in
  a window of the same length just before it started.
- Recommendations (none below the configured minimum of session trades): revert when the
  session's average PnL is not positive; keep when it is positive and at least the baseline's
  (or there was no baseline trade); otherwise keep partly (halfway back to the original).
  Confidence = n / (n + minimum) for n session trades: 0.5 at the minimum, 0.75 at three times it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from core import services
from core.authz import Action, Actor, Role, require
from core.errors import ConflictError, NotFoundError, UserError, ValidationError
from core.learning_model import (
    LearningPolicy,
    LearningSession,
    NewLearningSession,
    Recommendation,
    Recommendations,
    RelaxedValue,
    SessionAnalysis,
    SessionEnd,
    SessionStatus,
    TradeFigures,
    Verdict,
)
from core.models import AuditEntry, ClosedTradeEvent, Outcome
from core.params import Params, ParamSchema, ParamSpec, ParamValue, Scope
from core.ports import Deps

__all__ = [
    "SYSTEM",
    "LearningSession",
    "LearningStatus",
    "Recommendation",
    "Recommendations",
    "RelaxChoice",
    "RelaxedValue",
    "SessionAnalysis",
    "SessionStatus",
    "TradeFigures",
    "Verdict",
    "analyse",
    "end_due_sessions",
    "learning_history",
    "learning_status",
    "recommend",
    "relax_choices",
    "relaxed_value",
    "start_learning_session",
    "stop_learning_session",
    "trade_figures",
]

SYSTEM = Actor.having("system:learning-timer", "system", Role.OPERATOR)


@dataclass(frozen=True)
class RelaxChoice:
    """A relaxable parameter as a start form offers it."""

    name: str
    direction: Literal["lower", "raise"]
    min_pct: float
    max_pct: float
    default_pct: float


@dataclass(frozen=True)
class LearningStatus:
    session: LearningSession
    time_left: timedelta
    so_far: TradeFigures  # the trades tagged so far: count, running PnL, win rate


@dataclass(frozen=True)
class _ScopePlan:
    scope: Scope
    based_on: int
    original: Params
    relaxed: Params


# --- use cases ---------------------------------------------------------------------


def relax_choices(schema: ParamSchema) -> list[RelaxChoice]:
    return [
        RelaxChoice(s.name, s.relax.direction, s.relax.min_pct, s.relax.max_pct, s.relax.middle_pct)
        for s in schema
        if s.relax is not None
    ]


async def start_learning_session(
    deps: Deps,
    actor: Actor,
    duration_minutes: int,
    reason: str,
    relax_pct: Mapping[str, float] | None = None,
) -> LearningSession:
    detail = {
        "duration_minutes": duration_minutes,
        "reason": reason,
        "relax_pct": dict(relax_pct or {}),
    }
    try:
        require(actor, Action.LEARNING)
        _check_request(deps.learning_policy, actor, duration_minutes, reason)
        percentages = _chosen_percentages(deps.schema, relax_pct or {})
        await _check_nothing_running(deps)
        plans = await _relax_plans(deps, actor, percentages)
        audit = _audit(deps, actor, "learning.start", Outcome.APPLIED, detail)
        session = await deps.learning.create(
            _new_session(deps, actor, duration_minutes, reason, plans), audit
        )
    except UserError as error:
        await _audit_refusal(deps, actor, "learning.start", detail, error)
        raise
    await _relax(deps, actor, session, plans)
    return session


async def stop_learning_session(deps: Deps, actor: Actor, reason: str = "") -> LearningSession:
    """End the running session now: restore, analyse, store."""
    why = reason.strip() or "stopped early"
    try:
        require(actor, Action.LEARNING)
        session = await deps.learning.active()
        if session is None:
            raise ConflictError("no learning session is running")
    except UserError as error:
        await _audit_refusal(deps, actor, "learning.stop", {"reason": why}, error)
        raise
    due = deps.clock.now() >= session.planned_end_at
    ended = await _end(
        deps, session, actor, SessionStatus.COMPLETED if due else SessionStatus.STOPPED, why
    )
    if ended is None:
        raise ConflictError(f"learning session {session.id} has already ended")
    return ended


async def end_due_sessions(deps: Deps) -> list[LearningSession]:
    """End, as the system, the running session once its planned end has passed."""
    session = await deps.learning.active()
    if session is None or deps.clock.now() < session.planned_end_at:
        return []
    ended = await _end(deps, session, SYSTEM, SessionStatus.COMPLETED, "planned end reached")
    return [ended] if ended else []


async def learning_status(deps: Deps, actor: Actor) -> LearningStatus | None:
    """The running session with its trades so far; None when none runs."""
    require(actor, Action.READ)
    session = await deps.learning.active()
    if session is None:
        return None
    trades = await deps.learning.session_trades(session.id)
    time_left = max(session.planned_end_at - deps.clock.now(), timedelta(0))
    return LearningStatus(session, time_left, trade_figures(trades))


async def learning_history(deps: Deps, actor: Actor, limit: int = 20) -> list[LearningSession]:
    require(actor, Action.READ)
    if not 1 <= limit <= 1000:
        raise ValidationError(f"limit must be between 1 and 1000; got {limit}")
    return await deps.learning.history(limit)


# --- starting ----------------------------------------------------------------------


async def apply_recommendation(
    deps: Deps, actor: Actor, session_id: int, scope: Scope, parameter: str
) -> services.ChangeResult:
    """An admin makes a recommendation's suggested value live, through the one change path
    (backed up, versioned, audited); applying it again changes nothing."""
    detail = {"session": session_id, "scope": scope.value, "parameter": parameter}
    try:
        require(actor, Action.APPLY)
        advice = await _recommendation(deps, session_id, scope, parameter)
    except UserError as error:
        await _audit_refusal(deps, actor, "learning.apply", detail, error)
        raise
    reason = f"learning session {session_id} recommends {advice.verdict.value}: {advice.evidence}"
    return await services.set_parameter(deps, actor, scope, parameter, advice.suggested, reason)


async def _recommendation(
    deps: Deps, session_id: int, scope: Scope, parameter: str
) -> Recommendation:
    session = await deps.learning.get(session_id)
    if session is None:
        raise NotFoundError(f"no learning session {session_id}")
    items = session.recommendations.items if session.recommendations else ()
    for item in items:
        if (item.scope, item.parameter) == (scope, parameter):
            return item
    raise NotFoundError(
        f"learning session {session_id} has no recommendation for {scope} {parameter}"
    )


def _check_request(
    policy: LearningPolicy, actor: Actor, duration_minutes: int, reason: str
) -> None:
    services.needs_reason(actor, reason, "say what the learning session should explore")
    low, high = policy.min_duration_minutes, policy.max_duration_minutes
    if (
        isinstance(duration_minutes, bool)
        or not isinstance(duration_minutes, int)
        or not low <= duration_minutes <= high
    ):
        raise ValidationError(
            f"a learning session lasts {low} to {high} minutes (a whole number); "
            f"got {duration_minutes!r}",
            field="duration_minutes",
        )


def _chosen_percentages(schema: ParamSchema, relax_pct: Mapping[str, float]) -> dict[str, float]:
    """The percentage each relaxable parameter moves by: the caller's, else the middle."""
    chosen = {s.name: s.relax.middle_pct for s in schema if s.relax is not None}
    for name, pct in relax_pct.items():
        chosen[name] = _checked_percentage(_relaxable_spec(schema, name), pct)
    return chosen


def _relaxable_spec(schema: ParamSchema, name: str) -> ParamSpec:
    try:
        spec = schema.spec(name)
    except NotFoundError as error:
        raise ValidationError(str(error), field=f"relax_pct.{name}") from None
    if spec.relax is None:
        relaxable = ", ".join(s.name for s in schema.relaxable())
        raise ValidationError(
            f"{name} is not relaxed by learning sessions; these are: {relaxable}",
            field=f"relax_pct.{name}",
        )
    return spec


def _checked_percentage(spec: ParamSpec, pct: object) -> float:
    assert spec.relax is not None
    low, high = spec.relax.min_pct, spec.relax.max_pct
    if (
        isinstance(pct, bool)
        or not isinstance(pct, int | float)
        or not math.isfinite(pct)
        or not low <= pct <= high
    ):
        verb = "lowered" if spec.relax.direction == "lower" else "raised"
        raise ValidationError(
            f"{spec.name} can be {verb} by {low:g} to {high:g} % in a learning session; "
            f"got {pct!r}",
            field=f"relax_pct.{spec.name}",
        )
    return float(pct)


async def _check_nothing_running(deps: Deps) -> None:
    running = await deps.learning.active()
    if running is not None:
        raise ConflictError(
            f"learning session {running.id} is already running (started by "
            f"{running.started_by}, until {running.planned_end_at:%H:%M} UTC); "
            "stop it first or wait for its end"
        )
    last = await deps.learning.last_ended()
    if last is None or last.ended_at is None:
        return
    ready = last.ended_at + timedelta(minutes=deps.learning_policy.cooldown_minutes)
    now = deps.clock.now()
    if now < ready:
        wait = math.ceil((ready - now).total_seconds() / 60)
        raise ConflictError(
            f"cooling down: learning session {last.id} ended at {last.ended_at:%H:%M} UTC; "
            f"the next can start at {ready:%H:%M} UTC (in {wait} min)"
        )


async def _relax_plans(
    deps: Deps, actor: Actor, percentages: Mapping[str, float]
) -> list[_ScopePlan]:
    plans = [await _relax_plan(deps, actor, scope, percentages) for scope in Scope]
    relaxing = [plan for plan in plans if plan.relaxed]
    if not relaxing:
        raise ConflictError("nothing to relax: every relaxable value is already at its bound")
    return relaxing


async def _relax_plan(
    deps: Deps, actor: Actor, scope: Scope, percentages: Mapping[str, float]
) -> _ScopePlan:
    """The values `scope` sets itself (global: all of them), relaxed where they move."""
    view = await services.show_parameters(deps, actor, scope)
    own = {
        row.spec.name: row.value
        for row in view.rows
        if scope is Scope.GLOBAL or not row.inherited_in(scope)
    }
    moved = {
        name: relaxed_value(deps.schema.spec(name), own[name], pct)
        for name, pct in percentages.items()
        if name in own
    }
    relaxed = {name: value for name, value in moved.items() if value != own[name]}
    return _ScopePlan(scope, view.version, {name: own[name] for name in relaxed}, relaxed)


def relaxed_value(spec: ParamSpec, value: ParamValue, pct: float) -> ParamValue:
    """`value` loosened by `pct` percent in the spec's relax direction, within hard bounds."""
    assert spec.relax is not None
    sign = -1 if spec.relax.direction == "lower" else 1
    return _rounded(spec, value * (1 + sign * pct / 100))


def _rounded(spec: ParamSpec, value: float) -> ParamValue:
    clamped = min(max(value, spec.min), spec.max)
    if spec.type == "int":
        return round(clamped)
    return float(f"{clamped:.4g}")  # no float noise, and the chosen percentage kept


def _new_session(
    deps: Deps, actor: Actor, duration_minutes: int, reason: str, plans: Sequence[_ScopePlan]
) -> NewLearningSession:
    now = deps.clock.now()
    return NewLearningSession(
        started_by=actor.id,
        reason=reason.strip(),
        started_at=now,
        planned_end_at=now + timedelta(minutes=duration_minutes),
        original={plan.scope: plan.original for plan in plans},
        relaxed={plan.scope: plan.relaxed for plan in plans},
    )


async def _relax(
    deps: Deps, actor: Actor, session: LearningSession, plans: Sequence[_ScopePlan]
) -> None:
    """Commit the relaxed values scope by scope; if one is refused, undo the others."""
    why = f"learning session {session.id}: {session.reason or services.NO_REASON}"
    for plan in plans:
        try:
            await services.apply_session_values(
                deps, actor, plan.scope, plan.relaxed, session.id, why, plan.based_on
            )
        except UserError as error:
            failure = f"could not relax {plan.scope}: {error}"
            await _end(deps, session, actor, SessionStatus.FAILED, failure)
            raise


# --- ending ------------------------------------------------------------------------


async def _end(
    deps: Deps, session: LearningSession, actor: Actor, status: SessionStatus, reason: str
) -> LearningSession | None:
    """Restore the original values, then analyse and mark the session ended (None if
    someone else ended it meanwhile)."""
    why = f"learning session {session.id} ended: original values restored"
    for scope, values in session.original.items():
        await services.apply_session_values(deps, actor, scope, values, session.id, why)
    now = deps.clock.now()
    analysis: SessionAnalysis | None = None
    advice: Recommendations | None = None
    if status is not SessionStatus.FAILED:
        analysis = await _analysis(deps, session, now)
        minimum = deps.learning_policy.min_trades_for_recommendations
        advice = recommend(session, analysis, minimum, deps.schema)
    end = SessionEnd(status, now, actor.id, reason, analysis, advice)
    detail = {"session": session.id, "status": status.value, "reason": reason}
    audit = _audit(deps, actor, "learning.end", Outcome.APPLIED, detail)
    return await deps.learning.finish(session.id, end, audit)


async def _analysis(deps: Deps, session: LearningSession, ended_at: datetime) -> SessionAnalysis:
    since = session.started_at - (ended_at - session.started_at)
    tagged = await deps.learning.session_trades(session.id)
    before = await deps.learning.untagged_trades(since, session.started_at)
    return analyse(tagged, before, since, session.started_at)


# --- analysis and recommendations (pure) ---------------------------------------------


def trade_figures(trades: Sequence[ClosedTradeEvent]) -> TradeFigures:
    pnls = [trade.pnl for trade in trades]
    wins = [pnl for pnl in pnls if pnl > 0]
    losses = [pnl for pnl in pnls if pnl < 0]
    return TradeFigures(
        trades=len(pnls),
        wins=len(wins),
        losses=len(losses),
        win_rate=len(wins) / len(pnls) if pnls else None,
        total_pnl=float(sum(pnls)),
        average_pnl=sum(pnls) / len(pnls) if pnls else None,
        max_profit=max(wins, default=None),
        max_loss=min(losses, default=None),
        profit_factor=sum(wins) / -sum(losses) if losses else None,
    )


def analyse(
    session_trades: Sequence[ClosedTradeEvent],
    baseline_trades: Sequence[ClosedTradeEvent],
    baseline_since: datetime,
    baseline_until: datetime,
) -> SessionAnalysis:
    return SessionAnalysis(
        trade_figures(session_trades),
        trade_figures(baseline_trades),
        baseline_since,
        baseline_until,
    )


def recommend(
    session: LearningSession, analysis: SessionAnalysis, minimum_trades: int, schema: ParamSchema
) -> Recommendations:
    count = analysis.session.trades
    if count < minimum_trades:
        return Recommendations(
            minimum_trades,
            (),
            f"no recommendations from {count} trades: at least {minimum_trades} are needed",
        )
    verdict = _verdict(analysis)
    evidence = f"session: {_summary(analysis.session)}; baseline: {_summary(analysis.baseline)}"
    confidence = round(count / (count + minimum_trades), 2)
    items = tuple(
        Recommendation(
            value.scope,
            value.parameter,
            verdict,
            value.original,
            value.relaxed,
            _suggested(schema.spec(value.parameter), value, verdict),
            confidence,
            evidence,
        )
        for value in session.relaxed_values()
    )
    return Recommendations(minimum_trades, items)


def _verdict(analysis: SessionAnalysis) -> Verdict:
    during, before = analysis.session.average_pnl, analysis.baseline.average_pnl
    if during is None or during <= 0:
        return Verdict.REVERT
    if before is None or during >= before:
        return Verdict.KEEP
    return Verdict.KEEP_PARTLY


def _suggested(spec: ParamSpec, value: RelaxedValue, verdict: Verdict) -> ParamValue:
    if verdict is Verdict.KEEP:
        return value.relaxed
    if verdict is Verdict.REVERT:
        return value.original
    return _rounded(spec, (value.original + value.relaxed) / 2)


def _summary(figures: TradeFigures) -> str:
    if figures.average_pnl is None or figures.win_rate is None:
        return "no trades"
    return (
        f"average PnL {figures.average_pnl:+.2f} and win rate {figures.win_rate:.0%} "
        f"over {figures.trades} trades"
    )


# --- audit -------------------------------------------------------------------------


def _audit(
    deps: Deps, actor: Actor, action: str, outcome: Outcome, detail: Mapping[str, object]
) -> AuditEntry:
    return AuditEntry(
        at=deps.clock.now(),
        actor=actor.id,
        source=actor.source,
        action=action,
        target="learning",
        outcome=outcome,
        detail=dict(detail),
    )


async def _audit_refusal(
    deps: Deps, actor: Actor, action: str, detail: Mapping[str, object], error: UserError
) -> None:
    refusal = {**detail, "error": str(error)}
    await deps.audit.record(_audit(deps, actor, action, Outcome.REFUSED, refusal))
