"""The App Home: what a person sees at a glance when they open the bot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core import learning, services, trades
from core.authz import Action, Actor, require
from core.learning import LearningStatus
from core.models import BlockedStats
from core.optimization_model import OptimizationRun
from core.params import Scope
from core.ports import Deps
from core.services import ScopeView


@dataclass(frozen=True)
class HomeSummary:
    scopes: list[ScopeView]  # global first, then each volatility level
    learning: LearningStatus | None
    last_run: OptimizationRun | None  # None too when this process has no optimizer
    blocked_today: BlockedStats  # since 00:00 UTC
    at: datetime


async def home_summary(deps: Deps, actor: Actor) -> HomeSummary:
    require(actor, Action.READ)
    now = deps.clock.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    last_runs = await deps.optimizer.runs.runs(None, None, 1) if deps.optimizer else []
    return HomeSummary(
        scopes=[await services.show_parameters(deps, actor, scope) for scope in Scope],
        learning=await learning.learning_status(deps, actor),
        last_run=last_runs[0] if last_runs else None,
        blocked_today=await trades.blocked_trade_stats(
            deps, actor, midnight, midnight + timedelta(days=1), limit=5
        ),
        at=now,
    )
