"""Optimization runs as data: what triggered them, what they found, what became of the winner.

The rules that produce these records are in core.optimization (use cases) and core.optimizer
(the cycle); storage.optimization_store keeps them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.market import VolatilityCutoffs
from core.metrics import Stats
from core.models import VersionStatus
from core.optimizer import CycleSettings, Method
from core.params import Params, Scope


class Trigger(StrEnum):
    TRADE_COUNT = "TRADE_COUNT"
    SCHEDULED = "SCHEDULED"
    PERFORMANCE_DROP = "PERFORMANCE_DROP"
    MANUAL = "MANUAL"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    APPLIED = "APPLIED"  # the winner became the scope's ACTIVE version
    NO_IMPROVEMENT = "NO_IMPROVEMENT"  # the baseline stays: no candidate passed the rule
    PENDING_APPROVAL = "PENDING_APPROVAL"  # approve mode: the winner waits for an admin
    REJECTED = "REJECTED"  # an admin declined the pending winner
    SUPERSEDED = "SUPERSEDED"  # a newer run of the scope finished before it was approved
    ROLLED_BACK = "ROLLED_BACK"  # applied, then undone when live trades fell short
    FAILED = "FAILED"  # error: bad data, the scope changed meanwhile, interrupted

    @property
    def finished(self) -> bool:
        return self is not RunStatus.RUNNING


class ApplyMode(StrEnum):
    AUTO = "auto"  # a winner that passes the rule is applied at once
    APPROVE = "approve"  # it waits for apply_run_winner / reject_run_winner


@dataclass(frozen=True)
class OptimizerPolicy:
    """The optimizer's rules; from the [optimizer] section of the configuration."""

    timeframe: str = "5m"
    lookback_days: int = 30
    # Symbol -> its volatility level, or None to classify it by its ATR.
    symbols: Mapping[str, Scope | None] = field(default_factory=dict)
    apply_modes: Mapping[Scope, ApplyMode] = field(default_factory=dict)
    cycle: CycleSettings = field(default_factory=CycleSettings)
    volatility: VolatilityCutoffs = field(default_factory=VolatilityCutoffs)
    max_gap_bars: int = 12
    trade_threshold: int = 200
    performance_drop_pct: float = 15.0  # live fitness this far below expected: optimize again
    rollback_margin_pct: float = 15.0  # ... for a config the optimizer applied: roll it back
    live_min_trades: int = 20  # live trades needed before the live fitness is judged
    live_max_trades: int = 500  # the most recent ones count
    run_timeout_minutes: int = 120  # a RUNNING row older than this was interrupted
    seed: int | None = None  # fixed seed for every run; None: a random one, recorded

    def apply_mode(self, scope: Scope) -> ApplyMode:
        return self.apply_modes.get(scope, ApplyMode.AUTO)


@dataclass(frozen=True)
class DataRange:
    start: datetime
    end: datetime  # exclusive
    timeframe: str
    symbols: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewRun:
    run_id: str
    trigger: Trigger
    scope: Scope
    method: Method
    started_at: datetime
    requested_by: str
    seed: int
    code_version: str
    data_range: DataRange


@dataclass(frozen=True)
class OptimizationRun:
    run_id: str
    trigger: Trigger
    scope: Scope
    method: Method
    status: RunStatus
    started_at: datetime
    requested_by: str
    seed: int | None
    code_version: str | None
    data_range: DataRange | None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    baseline_version: int | None = None
    baseline_score: float | None = None  # out-of-sample fitness; None when undefined
    best_score: float | None = None
    improvement_pct: float | None = None
    improvement_found: bool = False
    candidates_tested: int = 0
    winner_version: int | None = None  # the config version the winner became, once applied
    error: str | None = None
    results: Mapping[str, Any] | None = None  # see core.optimization._results_json


@dataclass(frozen=True)
class RunCandidate:
    """A configuration a run tried; position 0 is the baseline."""

    position: int
    parameters: Params
    status: VersionStatus  # TESTING while pending, ACTIVE once applied, ARCHIVED otherwise
    in_sample_fitness: float | None
    out_of_sample_fitness: float | None
    metrics: Mapping[str, Any]

    @property
    def is_baseline(self) -> bool:
        return self.position == 0


@dataclass(frozen=True)
class RunEnd:
    """How a run finished, written in one transaction with its candidates."""

    status: RunStatus
    finished_at: datetime
    duration_seconds: float
    data_range: DataRange | None = None  # with the symbols, once they are known
    baseline_version: int | None = None
    baseline_score: float | None = None
    best_score: float | None = None
    improvement_pct: float | None = None
    improvement_found: bool = False
    candidates: tuple[RunCandidate, ...] = ()
    winner_version: int | None = None
    error: str | None = None
    results: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TradeCounter:
    volatility_level: Scope
    count: int
    threshold: int
    last_optimization: datetime | None

    @property
    def percentage(self) -> float:
        return round(100 * self.count / self.threshold, 1)


def finite(value: float | None) -> float | None:
    """JSON and PostgreSQL's JSONB have no NaN or infinity: undefined values are stored null."""
    return value if value is not None and math.isfinite(value) else None


def metrics_json(stats: Stats) -> dict[str, float | int | None]:
    """Statistics under the specification's names, undefined ones null. The drawdown is a
    positive percentage (the specification's example shows it negative)."""
    return {
        "trades": stats.trades,
        "win_rate": finite(stats.win_rate),
        "profit_factor": finite(stats.profit_factor),
        "sharpe_ratio": finite(stats.sharpe),
        "sortino_ratio": finite(stats.sortino),
        "roi": finite(stats.roi),
        "annualized_return": finite(stats.annualized_return),
        "max_drawdown": finite(stats.max_drawdown),
        "expectancy": finite(stats.expectancy),
        "exposure": finite(stats.exposure),
    }
