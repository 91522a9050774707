"""Learning sessions as data: the session, what it relaxed, and what its trades showed.

The rules that produce these records are in core.learning; storage.learning_store keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.params import Params, ParamValue, Scope


class SessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"  # ran until its planned end
    STOPPED = "STOPPED"  # ended early by a person
    FAILED = "FAILED"  # could not relax every scope; what it had relaxed was restored


@dataclass(frozen=True)
class LearningPolicy:
    """Limits on learning sessions; from the [learning] section of the configuration."""

    cooldown_minutes: int = 60
    min_duration_minutes: int = 5
    max_duration_minutes: int = 240
    min_trades_for_recommendations: int = 20


@dataclass(frozen=True)
class RelaxedValue:
    scope: Scope
    parameter: str
    original: ParamValue
    relaxed: ParamValue


@dataclass(frozen=True)
class TradeFigures:
    """Closed trades summed up. A win has PnL > 0, a loss PnL < 0 (break-even is neither).

    Rates and averages are None without trades; `profit_factor` (gross profit over gross
    loss) is None without a losing trade; `max_profit` is the largest win and `max_loss`
    the largest loss (a negative PnL), each None when there is none.
    """

    trades: int
    wins: int
    losses: int
    win_rate: float | None
    total_pnl: float
    average_pnl: float | None
    max_profit: float | None
    max_loss: float | None
    profit_factor: float | None


@dataclass(frozen=True)
class SessionAnalysis:
    """The session's trades beside the untagged trades of an equally long window before it."""

    session: TradeFigures
    baseline: TradeFigures
    baseline_since: datetime
    baseline_until: datetime


class Verdict(StrEnum):
    KEEP = "keep"
    KEEP_PARTLY = "keep partly"
    REVERT = "revert"


@dataclass(frozen=True)
class Recommendation:
    scope: Scope
    parameter: str
    verdict: Verdict
    original: ParamValue
    relaxed: ParamValue
    suggested: ParamValue
    confidence: float  # 0 to 1; grows with the number of session trades
    evidence: str


@dataclass(frozen=True)
class Recommendations:
    """One recommendation per relaxed value, or none and the reason (`withheld`)."""

    minimum_trades: int
    items: tuple[Recommendation, ...]
    withheld: str | None = None


@dataclass(frozen=True)
class NewLearningSession:
    started_by: str
    reason: str
    started_at: datetime
    planned_end_at: datetime
    original: Mapping[Scope, Params]  # per scope, only the values the session relaxes
    relaxed: Mapping[Scope, Params]


@dataclass(frozen=True)
class SessionEnd:
    status: SessionStatus
    ended_at: datetime
    ended_by: str
    reason: str
    analysis: SessionAnalysis | None = None
    recommendations: Recommendations | None = None


@dataclass(frozen=True)
class LearningSession:
    id: int
    status: SessionStatus
    started_by: str
    reason: str
    started_at: datetime
    planned_end_at: datetime
    original: Mapping[Scope, Params]
    relaxed: Mapping[Scope, Params]
    ended_at: datetime | None = None
    ended_by: str | None = None
    end_reason: str | None = None
    analysis: SessionAnalysis | None = None
    recommendations: Recommendations | None = None

    @property
    def planned_duration(self) -> timedelta:
        return self.planned_end_at - self.started_at

    @property
    def relaxed_names(self) -> frozenset[str]:
        return frozenset(name for values in self.relaxed.values() for name in values)

    def relaxed_values(self) -> list[RelaxedValue]:
        """Each relaxed value beside its original, global first."""
        return [
            RelaxedValue(scope, name, self.original[scope][name], value)
            for scope in Scope
            for name, value in self.relaxed.get(scope, {}).items()
        ]
