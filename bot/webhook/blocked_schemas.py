"""The `counterfactual` section of GET /blocked-trades: what the blocked trades would have
done (core.counterfactual), as pydantic models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.counterfactual import Evidence, GroupStats, Insights, NotEvaluated, Recommendation


class CounterfactualGroupOut(BaseModel):
    key: str
    n: int = Field(description="Blocked trades evaluated")
    won: int = Field(description="Would have reached the take profit first")
    lost: int = Field(description="Would have reached the stop loss first")
    open: int = Field(description="Neither within the horizon or the data")
    win_rate: float | None = Field(description="Would-have-won rate: won / (won + lost)")
    win_rate_n: int = Field(description="won + lost: the n of the win rate")
    mean_return_pct: float | None
    missed_gains_pct: float = Field(description="The positive returns, summed")
    avoided_losses_pct: float = Field(description="The negative returns' magnitudes, summed")
    cost_of_blocking_pct: float = Field(description="Missed gains minus avoided losses")


class CounterfactualStatisticsOut(BaseModel):
    overall: CounterfactualGroupOut
    by_reason: list[CounterfactualGroupOut]
    by_symbol: list[CounterfactualGroupOut]
    by_signal: list[CounterfactualGroupOut]
    by_confidence: list[CounterfactualGroupOut] = Field(description="Buckets 0.05 wide")


class EvidenceOut(BaseModel):
    group: CounterfactualGroupOut
    win_rate_low: float = Field(description="Wilson interval of the win rate")
    win_rate_high: float


class BlockedRecommendationOut(BaseModel):
    advice: Literal["lower_min_confidence", "review", "keep"]
    block_reason: str
    signal: Literal["BUY", "SELL"]
    share_pct: float = Field(description="Of the signal's blocked trades, those of this reason")
    overall_win_rate: float
    evidence: EvidenceOut
    buckets: list[EvidenceOut] = Field(description="min_confidence: the buckets pooled")
    suggested_value: float | None
    text: str


class NotEvaluatedOut(BaseModel):
    id: int
    event_id: str
    timestamp: datetime
    symbol: str
    signal: Literal["BUY", "SELL"]
    block_reason: str
    reason: str = Field(description="Why the trade could not be evaluated")


class CounterfactualOut(BaseModel):
    blocked: int
    evaluated: int
    truncated: bool = Field(description="Only the newest max_trades of the window were used")
    horizon_hours: float = Field(description="How long a counterfactual trade is watched")
    min_trades: int = Field(description="Won or lost trades a recommendation needs at least")
    statistics: CounterfactualStatisticsOut
    recommendations: list[BlockedRecommendationOut]
    not_evaluated: list[NotEvaluatedOut]


def counterfactual_out(insights: Insights) -> CounterfactualOut:
    stats = insights.statistics
    return CounterfactualOut(
        blocked=insights.blocked,
        evaluated=len(insights.evaluated),
        truncated=insights.truncated,
        horizon_hours=insights.policy.horizon.total_seconds() / 3600,
        min_trades=insights.policy.min_trades,
        statistics=CounterfactualStatisticsOut(
            overall=_group(stats.overall),
            by_reason=[_group(g) for g in stats.by_reason],
            by_symbol=[_group(g) for g in stats.by_symbol],
            by_signal=[_group(g) for g in stats.by_signal],
            by_confidence=[_group(g) for g in stats.by_confidence],
        ),
        recommendations=[_recommendation(r) for r in insights.recommendations],
        not_evaluated=[_not_evaluated(n) for n in insights.not_evaluated],
    )


def _group(group: GroupStats) -> CounterfactualGroupOut:
    return CounterfactualGroupOut(
        key=group.key,
        n=group.trades,
        won=group.wins,
        lost=group.losses,
        open=group.still_open,
        win_rate=group.win_rate,
        win_rate_n=group.resolved,
        mean_return_pct=group.mean_return_pct,
        missed_gains_pct=group.missed_gains_pct,
        avoided_losses_pct=group.avoided_losses_pct,
        cost_of_blocking_pct=group.cost_pct,
    )


def _evidence(evidence: Evidence) -> EvidenceOut:
    return EvidenceOut(
        group=_group(evidence.group),
        win_rate_low=evidence.win_rate_low,
        win_rate_high=evidence.win_rate_high,
    )


def _recommendation(item: Recommendation) -> BlockedRecommendationOut:
    return BlockedRecommendationOut(
        advice=item.advice.value,
        block_reason=item.block_reason,
        signal=item.signal.value,
        share_pct=item.share_pct,
        overall_win_rate=item.overall_win_rate,
        evidence=_evidence(item.evidence),
        buckets=[_evidence(bucket) for bucket in item.buckets],
        suggested_value=item.suggested_value,
        text=item.text,
    )


def _not_evaluated(item: NotEvaluated) -> NotEvaluatedOut:
    trade = item.trade
    return NotEvaluatedOut(
        id=trade.id,
        event_id=trade.event_id,
        timestamp=trade.timestamp,
        symbol=trade.symbol,
        signal=trade.signal.value,
        block_reason=trade.block_reason,
        reason=item.reason,
    )
