"""Plain-text views of what blocked trades would have done, for the CLI, /param blocked and
the digest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from core.counterfactual import GroupStats, Insights, NotEvaluated


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:.0f} %"


def _span(length: timedelta) -> str:
    hours = round(length.total_seconds() / 3600)
    return f"{hours // 24} days" if hours % 24 == 0 else f"{hours} h"


def insights(found: Insights) -> str:
    """The statistics, the recommendations and the trades not evaluated."""
    head = (
        f"blocked trades {_when(found.since)} – {_when(found.until)}: {found.blocked} blocked, "
        f"{len(found.evaluated)} evaluated, {len(found.not_evaluated)} not evaluated"
    )
    if not found.blocked:
        return head
    lines = [head]
    if found.truncated:
        lines.append(f"(only the newest {found.policy.max_trades} were considered)")
    if found.evaluated:
        lines += statistics(found)
    lines += recommendations(found)
    lines += not_evaluated(found.not_evaluated)
    return "\n".join(lines)


def statistics(found: Insights) -> list[str]:
    stats = found.statistics
    sections = {
        "by block reason": stats.by_reason,
        "by symbol": stats.by_symbol,
        "by signal": stats.by_signal,
        "by confidence": stats.by_confidence,
    }
    groups = [stats.overall, *(group for groups in sections.values() for group in groups)]
    width = max(len(group.key) for group in groups)
    lines = [
        "had they been executed (their scope's stop loss and take profit then, watched up to "
        f"{_span(found.policy.horizon)}):",
        _row(stats.overall, width),
    ]
    for title, rows in sections.items():
        lines += [f"{title}:", *(_row(group, width) for group in rows)]
    lines.append(
        "cost of blocking = missed gains − avoided losses (return %, summed over the trades)"
    )
    return lines


def _row(group: GroupStats, width: int) -> str:
    mean = "n/a" if group.mean_return_pct is None else f"{group.mean_return_pct:+.2f} %"
    return (
        f"  {group.key:<{width}}  n={group.trades:<5} won {group.wins}, lost {group.losses}, "
        f"open {group.still_open}: would have won {_percent(group.win_rate)} "
        f"(n={group.resolved}), mean return {mean}, cost of blocking {group.cost_pct:+.2f} %"
    )


def recommendations(found: Insights) -> list[str]:
    minimum = found.policy.min_trades
    if not found.recommendations:
        return [
            f"recommendations: none (each needs at least {minimum} won or lost trades and a "
            "win rate clearly apart from the overall one)"
        ]
    return [
        f"recommendations (from at least {minimum} won or lost trades each):",
        *(f"  • {item.text}" for item in found.recommendations),
    ]


def not_evaluated(items: Sequence[NotEvaluated]) -> list[str]:
    if not items:
        return []
    return [
        "not evaluated:",
        *(
            f"  {_when(item.trade.timestamp)} {item.trade.symbol} {item.trade.signal} "
            f"({item.trade.block_reason}, event {item.trade.event_id}): {item.reason}"
            for item in items
        ),
    ]
