"""The daily and weekly digest as a Message.

core.digest.Digest -> rows of text (capped here, with "… and N more") -> the Jinja template
in bot/digest_templates (Block Kit JSON) -> slack_sdk blocks, cut again to Slack's limits
(50 blocks, 3,000 characters per section) so a huge period shortens rather than fails.
Every value the template prints is escaped for mrkdwn (the engine's symbols and reasons can
never ping `<!channel>`), except lines built here as mrkdwn, whose outside text is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from bot.blocks.alerts import decision_line
from bot.blocks.common import SECTION_TEXT_MAX, Message, capped, escape, person
from bot.render import said
from core.counterfactual import GroupStats, Insights
from core.digest import Digest, ScopeParameters, Unavailable
from core.learning_model import LearningSession, TradeFigures
from core.models import BlockedStats, ParamChangeRecord
from core.optimization_model import OptimizationRun
from core.params import ParamValue, format_value

MAX_ROWS = 12  # per list or table; the rest is counted in a "… and N more" line
KEY_WIDTH = 32  # of a reason or symbol in a table
FENCE = "```"


class Mrkdwn(str):
    """A line already in Slack mrkdwn (a mention, say), its outside text escaped."""


def _template_text(value: Any) -> Markup:
    """How the template prints a value: inside a JSON string, escaped for mrkdwn."""
    if isinstance(value, Markup):  # a macro's output: JSON already
        return value
    text = str(value) if isinstance(value, Mrkdwn) else escape(str(value))
    return Markup(json.dumps(text, ensure_ascii=False)[1:-1])  # noqa: S704  # escaped above


TEMPLATES = Environment(
    loader=PackageLoader("bot", "digest_templates"),
    autoescape=True,  # macro output stays Markup, so _template_text leaves it alone
    finalize=_template_text,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Part:
    title: str
    rows: Sequence[str]


def digest_message(digest: Digest, ephemeral: bool = False) -> Message:
    title = f"{digest.kind.capitalize()} digest · {digest.until:%Y-%m-%d}"
    period = f"{_stamp(digest.since)} – {_stamp(digest.until)} UTC"
    rendered = TEMPLATES.get_template("digest.json.j2").render(
        title=title,
        period=period,
        empty=_NOTHING if digest.empty else "",
        **({} if digest.empty else _view(digest)),
    )
    blocks = [_fitted(block) for block in Block.parse_all(json.loads(rendered))]
    return Message(f"{title} ({period}): {_summary(digest)}", capped(blocks), ephemeral)


_NOTHING = (
    "Nothing happened in this period: no trade closed or was blocked, and no override, "
    "learning session, optimization run or parameter change."
)


def _view(digest: Digest) -> dict[str, Any]:
    return {
        "pnl": _pnl(digest.pnl),
        "blocked": _blocked(digest.blocked, digest.counterfactual),
        "overrides": Part(
            _counted("Overrides", len(digest.overrides)),
            _capped(
                [
                    Mrkdwn(f"• {escape(o.symbol)} {o.side} {decision_line(o)}")
                    for o in digest.overrides
                ],
                "overrides",
            ),
        ),
        "learning": Part(
            _counted("Learning sessions", len(digest.learning)),
            _capped([_session(s) for s in digest.learning], "sessions"),
        ),
        "runs": _runs(digest.runs),
        "parameters": [_scope(scope) for scope in digest.parameters],
        "counters": _counters(digest),
    }


def _summary(digest: Digest) -> str:
    if digest.empty:
        return "nothing happened"
    runs = () if isinstance(digest.runs, Unavailable) else ((len(digest.runs), "optimization run"),)
    counts = (
        (digest.blocked.total, "blocked trade"),
        (len(digest.overrides), "override"),
        (len(digest.learning), "learning session"),
        *runs,
        (len(digest.changes), "parameter change"),
    )
    return f"PnL {digest.pnl.total_pnl:+.2f} from {_count(digest.pnl.trades, 'closed trade')}, " + (
        ", ".join(_count(n, noun) for n, noun in counts)
    )


# --- the parts ------------------------------------------------------------------------


def _pnl(figures: TradeFigures) -> str:
    if not figures.trades:
        return "no trade closed"
    factor = "n/a" if figures.profit_factor is None else f"{figures.profit_factor:.2f}"
    return (
        f"{figures.total_pnl:+.2f} from {figures.trades} closed trades: {figures.wins} won, "
        f"{figures.losses} lost, win rate {_percent(figures.win_rate)} (n={figures.trades}), "
        f"profit factor {factor}"
    )


@dataclass(frozen=True)
class _Blocked:
    head: str
    tables: Sequence[tuple[str, Sequence[str]]]
    advice: Sequence[str]
    unavailable: str = ""  # why the counterfactual statistics are missing


def _blocked(stats: BlockedStats, found: Insights | Unavailable | None) -> _Blocked:
    if not stats.total:
        return _Blocked("none", (), ())
    head = f"{stats.total} blocked"
    if isinstance(found, Unavailable):
        missing = _not_available("Counterfactual statistics", found)
        return _Blocked(head, _tables(stats, None), (), missing)
    if found is None:
        return _Blocked(head, _tables(stats, None), ())
    overall = found.statistics.overall
    if found.evaluated:
        head += (
            f"; had they been executed: would have won {_percent(overall.win_rate)} "
            f"(n={overall.resolved}), {overall.still_open} still open, cost of blocking "
            f"{overall.cost_pct:+.2f} % (missed gains − avoided losses, return % summed)"
        )
    if found.not_evaluated:
        head += f"; {len(found.not_evaluated)} not judged (no usable market data after the block)"
    advice = _capped([f"• {item.text}" for item in found.recommendations], "recommendations")
    return _Blocked(head, _tables(stats, found), advice)


def _tables(stats: BlockedStats, found: Insights | None) -> list[tuple[str, list[str]]]:
    by_reason = found.statistics.by_reason if found else ()
    by_symbol = found.statistics.by_symbol if found else ()
    return [
        ("by block reason", _table(stats.by_reason, by_reason, "reason")),
        ("by symbol", _table(stats.by_symbol, by_symbol, "symbol")),
    ]


def _table(counts: Mapping[str, int], groups: Sequence[GroupStats], what: str) -> list[str]:
    """The most blocked first: how many, how many were judged, the would-have-won rate and
    the cost of blocking them."""
    judged = {group.key: group for group in groups}
    keys = sorted(counts, key=lambda key: (-counts[key], key))
    shown = keys[:MAX_ROWS]
    width = min(KEY_WIDTH, max(len(what), *(len(key) for key in shown)))
    rows = [f"{what:<{width}}  blocked  judged  would win     cost"]
    for key in shown:
        group = judged.get(key)
        won = _percent(group.win_rate) if group else "–"
        cost = f"{group.cost_pct:+.2f} %" if group else "–"
        n = group.trades if group else 0
        rows.append(f"{_cut(key, width):<{width}}  {counts[key]:>7}  {n:>6}  {won:>9}  {cost:>7}")
    return rows + _more(len(keys) - len(shown), f"{what}s")


def _runs(runs: Sequence[OptimizationRun] | Unavailable) -> Part:
    if isinstance(runs, Unavailable):
        return Part(_not_available("Optimization runs", runs), ())
    return Part(_counted("Optimization runs", len(runs)), _capped([_run(r) for r in runs], "runs"))


def _session(session: LearningSession) -> Mrkdwn:
    end = session.ended_at or session.planned_end_at
    line = (
        f"• session {session.id}, {_stamp(session.started_at)}–{end:%H:%M} UTC, started by "
        f"{person(session.started_by)}: {session.status.value.lower()}"
    )
    if session.analysis is not None:
        ran, before = session.analysis.session, session.analysis.baseline
        line += f"; {_figures(ran)} (before it: {_figures(before)})"
    advice = session.recommendations
    if advice is not None and advice.items:
        verdicts = ", ".join(f"{item.verdict.value} `{item.parameter}`" for item in advice.items)
        line += f"; advice: {verdicts}"
    elif advice is not None and advice.withheld:
        line += f"; no advice: {escape(advice.withheld)}"
    return Mrkdwn(line)


def _figures(figures: TradeFigures) -> str:
    return (
        f"{figures.trades} trades, PnL {figures.total_pnl:+.2f}, "
        f"win rate {_percent(figures.win_rate)} (n={figures.trades})"
    )


def _run(run: OptimizationRun) -> str:
    line = (
        f"• {run.run_id} {run.scope} ({run.trigger.value.lower().replace('_', ' ')}, "
        f"{_stamp(run.started_at)}): {run.status.value.lower().replace('_', ' ')}"
    )
    if run.winner_version is not None:
        line += f" → version {run.winner_version}"
    if run.improvement_pct is not None:
        line += f", {run.improvement_pct:+.1f} % against the baseline"
    if run.error:
        line += f" — {run.error}"
    return line


def _scope(scope: ScopeParameters) -> Part:
    changes = len(scope.changes)
    if scope.version:
        title = f"{scope.scope} version {scope.version}" + (
            f", {changes} change{'s' if changes != 1 else ''} in the period" if changes else ""
        )
    else:
        title = f"{scope.scope}: no version yet"
    values = " · ".join(f"`{escape(name)}` {_value(value)}" for name, value in scope.values.items())
    now = Mrkdwn(f"now: {values}" if values else "inherits every value from global")
    return Part(title, [*_capped([_change(c) for c in scope.changes], "changes"), now])


def _change(change: ParamChangeRecord) -> Mrkdwn:
    return Mrkdwn(
        f"• `{escape(change.parameter)}` {_value(change.old)} → *{_value(change.new)}* "
        f"by {person(change.actor)} ({change.source.value}, {_stamp(change.created_at)}): "
        f"{escape(said(change.reason))}"
    )


def _counters(digest: Digest) -> str:
    if isinstance(digest.counters, Unavailable):
        return _not_available("Trade counters", digest.counters)
    shown = " · ".join(
        f"{c.volatility_level} {c.count}/{c.threshold} ({c.percentage:g} %)"
        for c in digest.counters
    )
    return f"Closed trades toward the next optimization: {shown}"


# --- formatting and limits ---------------------------------------------------------------


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:.0f} %"


def _value(value: ParamValue | None) -> str:
    return "(inherited)" if value is None else escape(format_value(value))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _not_available(part: str, missing: Unavailable) -> str:
    """Plain text: the template escapes it (a reason may quote the engine's symbols)."""
    return f"{part}: not available: {missing.reason}"


def _counted(title: str, count: int) -> str:
    return f"{title}: {count}" if count else f"{title}: none"


def _capped(rows: Sequence[str], noun: str) -> list[str]:
    return [*rows[:MAX_ROWS], *_more(len(rows) - MAX_ROWS, noun)]


def _more(hidden: int, noun: str) -> list[str]:
    return [f"… and {hidden} more {noun}"] if hidden > 0 else []


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fitted(block: Block) -> Block:
    """A section whose text is too long for Slack: its first lines, and how many are left out."""
    if not isinstance(block, SectionBlock) or block.text is None:
        return block
    text = block.text.text
    if len(text) <= SECTION_TEXT_MAX:
        return block
    return SectionBlock(text=MarkdownTextObject(text=_first_lines(text)), block_id=block.block_id)


def _first_lines(text: str) -> str:
    lines = text.split("\n")
    reserve = len(f"\n{FENCE}\n… and {len(lines)} more lines")
    kept: list[str] = []
    size = 0
    for line in lines:
        line = _cut(line, SECTION_TEXT_MAX - reserve)
        if size + len(line) + 1 > SECTION_TEXT_MAX - reserve:
            break
        kept.append(line)
        size += len(line) + 1
    body = "\n".join(kept)
    if body.count(FENCE) % 2:  # the cut fell inside a table: close it
        body += FENCE
    return f"{body}\n… and {len(lines) - len(kept)} more lines"
