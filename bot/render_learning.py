"""Plain-text views of learning sessions, for the CLI and the console."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.render import said
from core.learning import LearningSession, LearningStatus, Recommendations, TradeFigures
from core.params import format_value


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _minutes(span: timedelta) -> str:
    return f"{round(span.total_seconds() / 60)} min"


def _values(session: LearningSession, restored: bool = False) -> list[str]:
    lines = []
    for value in session.relaxed_values():
        old, new = (value.relaxed, value.original) if restored else (value.original, value.relaxed)
        lines.append(
            f"  {value.scope} {value.parameter}: {format_value(old)} → {format_value(new)}"
        )
    return lines


def started(session: LearningSession) -> str:
    head = (
        f"learning session {session.id} started by {session.started_by} until "
        f"{_when(session.planned_end_at)} ({_minutes(session.planned_duration)}): "
        f"{said(session.reason)}"
    )
    return "\n".join([head, *_values(session)])


def ended(session: LearningSession) -> str:
    assert session.ended_at is not None
    head = (
        f"learning session {session.id} {session.status.value.lower()} at "
        f"{_when(session.ended_at)} by {session.ended_by}: {session.end_reason}"
    )
    lines = [head, "original values restored:", *_values(session, restored=True)]
    if session.analysis is not None:
        window = (
            f"{session.analysis.baseline_since:%H:%M}–{session.analysis.baseline_until:%H:%M} UTC"
        )
        lines += figures(session.analysis.session, session.analysis.baseline, window)
    if session.recommendations is not None:
        lines += recommendations(session.recommendations)
    return "\n".join(lines)


def status(current: LearningStatus | None) -> str:
    if current is None:
        return "no learning session is running"
    session = current.session
    head = (
        f"learning session {session.id} (started by {session.started_by}: {said(session.reason)}); "
        f"{_minutes(current.time_left)} left, until {_when(session.planned_end_at)}"
    )
    return "\n".join(
        [head, f"so far: {_trades_and_pnl(current.so_far)}", "relaxed:", *_values(session)]
    )


def history(sessions: Sequence[LearningSession]) -> str:
    if not sessions:
        return "no learning sessions yet"
    return "\n".join(_history_line(session) for session in sessions)


def _history_line(session: LearningSession) -> str:
    line = (
        f"{session.id}  {session.status.value:<9}  {_when(session.started_at)}  "
        f"{_minutes((session.ended_at or session.planned_end_at) - session.started_at)}  "
        f"by {session.started_by}: {said(session.reason)}"
    )
    if session.analysis is not None:
        line += f"  ({_trades_and_pnl(session.analysis.session)})"
    return line


def _trades_and_pnl(figures: TradeFigures) -> str:
    return f"{figures.trades} trades, PnL {figures.total_pnl:+.2f}, win rate {_rate(figures)}"


def _rate(figures: TradeFigures) -> str:
    if figures.win_rate is None:
        return "n/a (no trades)"
    return f"{figures.win_rate:.0%} of {figures.trades}"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _factor(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


_ROWS: list[tuple[str, Callable[[TradeFigures], str]]] = [
    ("trades", lambda f: str(f.trades)),
    ("wins / losses", lambda f: f"{f.wins} / {f.losses}"),
    ("win rate", _rate),
    ("total PnL", lambda f: _money(f.total_pnl)),
    ("average PnL", lambda f: _money(f.average_pnl)),
    ("max profit", lambda f: _money(f.max_profit)),
    ("max loss", lambda f: _money(f.max_loss)),
    ("profit factor", lambda f: _factor(f.profit_factor)),
]


def figures(session: TradeFigures, baseline: TradeFigures, baseline_label: str) -> list[str]:
    lines = [f"  {'':<14}  {'session':<18}  baseline ({baseline_label})"]
    for label, show in _ROWS:
        lines.append(f"  {label:<14}  {show(session):<18}  {show(baseline)}")
    return lines


def recommendations(advice: Recommendations) -> list[str]:
    if advice.withheld:
        return [f"recommendations: none ({advice.withheld})"]
    lines = ["recommendations:"]
    for item in advice.items:
        lines.append(
            f"  {item.scope} {item.parameter}: {item.verdict.value} → "
            f"{format_value(item.suggested)} (relaxed {format_value(item.relaxed)}, "
            f"original {format_value(item.original)}; confidence {item.confidence:.0%})"
        )
    if advice.items:
        lines.append(f"  evidence: {advice.items[0].evidence}")
    return lines
