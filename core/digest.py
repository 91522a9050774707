"""The digest of a period: what the trading and the team did, for the daily and weekly digests.

One use case gathers everything from the ports; bot.digests renders and posts it. The period
is [until - length, until), `until` being the time the digest is asked for (deps.clock), so a
scheduled digest and one asked for on demand cover the same kind of window.

Counterfactual statistics of blocked trades, optimization runs and trade-counter progress
need the optimizer's ports (market data, a worker process, runs); without them (some tests, a
process without market data) those parts are left out. They are optional: when one fails, the
digest says it is not available and why, and the rest (PnL, blocked counts, overrides,
sessions, parameters) still goes out; a digest that failed as a whole would be retried by the
outbox forever and hold up every later digest.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from core import blocked_insights, learning, optimization, trades
from core.authz import Action, Actor, require
from core.counterfactual import Insights
from core.errors import UserError
from core.learning_model import LearningSession, TradeFigures
from core.models import BlockedStats, ClosedTradeEvent, Override, ParamChangeRecord
from core.optimization_model import OptimizationRun, TradeCounter
from core.params import Params, Scope
from core.ports import Deps

DigestKind = Literal["daily", "weekly"]
PERIODS: dict[DigestKind, timedelta] = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
MAX_RUNS = 500  # optimization runs listed; a period never holds more in practice

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Unavailable:
    """An optional part that could not be gathered; `reason` is short, fit for the reader."""

    reason: str


@dataclass(frozen=True)
class ChangeMark:
    at: datetime
    label: str  # "global v12", say


@dataclass(frozen=True)
class PeriodEquity:
    """Cumulative PnL of the period's closed trades, and when parameters changed: the chart's
    data. Small and picklable, so the chart renders in a worker process."""

    since: datetime
    until: datetime
    points: tuple[tuple[datetime, float], ...]  # (exit time, cumulative PnL), in order
    changes: tuple[ChangeMark, ...]


@dataclass(frozen=True)
class ScopeParameters:
    """A scope's live version now, the values it sets itself (global: all of them, defaults
    filled in), and the changes the period made to it, oldest first."""

    scope: Scope
    version: int  # 0: no version yet, the defaults apply
    values: Params
    changes: tuple[ParamChangeRecord, ...]


@dataclass(frozen=True)
class Digest:
    kind: DigestKind
    since: datetime
    until: datetime
    pnl: TradeFigures
    equity: PeriodEquity
    blocked: BlockedStats
    counterfactual: Insights | Unavailable | None  # None without market-data ports
    overrides: tuple[Override, ...]
    learning: tuple[LearningSession, ...]
    runs: tuple[OptimizationRun, ...] | Unavailable
    parameters: tuple[ScopeParameters, ...]
    counters: tuple[TradeCounter, ...] | Unavailable

    @property
    def changes(self) -> tuple[ParamChangeRecord, ...]:
        return tuple(change for scope in self.parameters for change in scope.changes)

    @property
    def empty(self) -> bool:
        """Nothing happened: no trade closed or was blocked, nobody decided or changed
        anything, no session or run took place (runs that are not available may have)."""
        return not (
            self.pnl.trades
            or self.blocked.total
            or self.overrides
            or self.learning
            or self.runs
            or self.changes
        )


def period(kind: DigestKind, until: datetime) -> tuple[datetime, datetime]:
    return until - PERIODS[kind], until


async def gather_digest(
    deps: Deps, actor: Actor, kind: DigestKind, since: datetime, until: datetime
) -> Digest:
    """Everything the digest of [since, until) shows."""
    require(actor, Action.READ)
    closed = await deps.learning.closed_trades(since, until)
    changes = await deps.config.changes_between(since, until)
    return Digest(
        kind=kind,
        since=since,
        until=until,
        pnl=learning.trade_figures(closed),
        equity=_equity(since, until, closed, changes),
        blocked=await trades.blocked_trade_stats(deps, actor, since, until, limit=0),  # counts
        counterfactual=await _optional(
            "counterfactual statistics", _counterfactual(deps, actor, since, until)
        ),
        overrides=tuple(await deps.trades.overrides(since, until)),
        learning=tuple(await deps.learning.sessions_between(since, until)),
        runs=await _optional("optimization runs", _runs(deps, since, until)),
        parameters=tuple([await _scope_parameters(deps, scope, changes) for scope in Scope]),
        counters=await _optional("trade counters", _counters(deps, actor)),
    )


async def _optional(part: str, gathering: Awaitable[T]) -> T | Unavailable:
    """The part, or why it is not available. Every Exception is caught, not only
    core.market.MarketDataError: blocked_insights already turns those into trades "not
    evaluated", and what still escapes comes from adapters core cannot name (a market data
    directory gone, a broken worker pool, the database), none of which may hold up the
    digest. CancelledError is not an Exception, so shutting down still cancels."""
    try:
        return await gathering
    except Exception as error:
        log.warning("digest: %s not available", part, exc_info=error)
        return Unavailable(_reason(error))


def _reason(error: Exception) -> str:
    """Our errors carry a message meant for people; others may hold paths or addresses, so
    the digest names only their kind and the log has the details."""
    if isinstance(error, UserError):
        return str(error)
    return f"unexpected {type(error).__name__}, details in the log"


def _equity(
    since: datetime,
    until: datetime,
    closed: list[ClosedTradeEvent],
    changes: list[ParamChangeRecord],
) -> PeriodEquity:
    points, total = [], 0.0
    for trade in closed:
        total += trade.pnl
        points.append((trade.exit_time, total))
    versions = {(c.scope, c.to_version): c.created_at for c in changes}  # one mark per version
    marks = tuple(
        ChangeMark(at, f"{scope} v{version}") for (scope, version), at in versions.items()
    )
    return PeriodEquity(since, until, tuple(points), marks)


async def _counterfactual(
    deps: Deps, actor: Actor, since: datetime, until: datetime
) -> Insights | None:
    if deps.optimizer is None:
        return None
    return await blocked_insights.blocked_trade_insights(deps, actor, since, until)


async def _counters(deps: Deps, actor: Actor) -> tuple[TradeCounter, ...] | Unavailable:
    if deps.optimizer is None:
        return Unavailable("no optimizer in this process")
    return tuple(await optimization.trade_counters(deps, actor))


async def _runs(deps: Deps, since: datetime, until: datetime) -> tuple[OptimizationRun, ...]:
    if deps.optimizer is None:
        return ()
    runs = await deps.optimizer.runs.runs(since, None, MAX_RUNS)
    return tuple(sorted((r for r in runs if r.started_at < until), key=lambda r: r.started_at))


async def _scope_parameters(
    deps: Deps, scope: Scope, changes: list[ParamChangeRecord]
) -> ScopeParameters:
    live = await deps.config.active(scope)
    values = dict(live.parameters) if live else {}
    if scope is Scope.GLOBAL:
        values = {spec.name: values.get(spec.name, spec.default) for spec in deps.schema}
    return ScopeParameters(
        scope,
        live.version if live else 0,
        values,
        tuple(change for change in changes if change.scope is scope),
    )
