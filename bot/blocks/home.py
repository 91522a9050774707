"""The App Home tab."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, DividerBlock, HeaderBlock
from slack_sdk.models.views import View

from bot.blocks.common import context, escape, section, sections, utc_stamp, utc_time
from bot.blocks.learning import status as learning_status
from core.home import HomeSummary
from core.optimization_model import OptimizationRun
from core.params import Scope, format_value
from core.services import ScopeView


def home(summary: HomeSummary) -> View:
    blocks: list[Block] = [
        HeaderBlock(text="paramadapt"),
        context(f"Updated {utc_stamp(summary.at)} · `/param help` lists what you can do"),
        HeaderBlock(text="Active parameters"),
        *[block for view in summary.scopes for block in _scope(view)],
        DividerBlock(),
        HeaderBlock(text="Learning session"),
        *learning_status(summary.learning).blocks,
        DividerBlock(),
        HeaderBlock(text="Last optimization run"),
        section(_run(summary.last_run)),
        DividerBlock(),
        HeaderBlock(text="Blocked trades today"),
        section(_blocked(summary)),
    ]
    return View(type="home", blocks=blocks)


def no_access(message: str) -> View:
    return View(
        type="home",
        blocks=[
            HeaderBlock(text="paramadapt"),
            section(f":lock: {escape(message)}"),
            context("Ask an admin to grant you a role; `/param help` works for everyone."),
        ],
    )


def _scope(view: ScopeView) -> list[Block]:
    """Global in full; a level shows only what it sets itself."""
    own = [row for row in view.rows if not row.inherited_in(view.scope)]
    shown = view.rows if view.scope is Scope.GLOBAL else own
    title = f"*{view.scope}* · version {view.version}"
    if not shown:
        return [section(f"{title} · inherits every value from global")]
    lines = [f"`{row.spec.name}` {format_value(row.value)}" for row in shown]
    if view.scope is not Scope.GLOBAL:
        lines.append("_the rest inherited from global_")
    return sections([title, *lines])


def _run(run: OptimizationRun | None) -> str:
    if run is None:
        return "none yet"
    outcome = ""
    if run.improvement_found:
        gain = f" (+{run.improvement_pct:.1f} %)" if run.improvement_pct is not None else ""
        winner = f", version {run.winner_version} applied" if run.winner_version else ""
        outcome = f" · improvement found{gain}{winner}"
    finished = f", finished {utc_time(run.finished_at)}" if run.finished_at else ""
    return (
        f"`{escape(run.run_id)}` {run.status.value.lower().replace('_', ' ')} · {run.scope} · "
        f"{run.method} ({run.trigger.value.lower().replace('_', ' ')}) · "
        f"started {utc_stamp(run.started_at)}{finished}{outcome}"
    )


def _blocked(summary: HomeSummary) -> str:
    stats = summary.blocked_today
    if stats.total == 0:
        return "none"
    reasons = ", ".join(f"{escape(k)} {n}" for k, n in list(stats.by_reason.items())[:5])
    symbols = ", ".join(f"{escape(k)} {n}" for k, n in list(stats.by_symbol.items())[:5])
    return f"*{stats.total}* · by reason: {reasons} · by symbol: {symbols}"
