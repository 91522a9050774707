"""Optimization runs as Slack messages: a run's report (with Apply / Reject while its winner
waits for approval), a rollback, and the answer to `/param optimize`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject

from bot.blocks.common import Message, context, escape, person, preformatted, section, utc_stamp
from core.optimization_model import DataRange, OptimizationRun, RunCandidate, RunStatus
from core.optimization_views import RunReport
from core.params import Params, format_value

APPLY_ACTION = "optimization_apply_winner"
REJECT_ACTION = "optimization_reject_winner"

# Table rows: label, key in the stored metrics (None: the fitness), format.
_Format = Callable[[float], str]
_ROWS: tuple[tuple[str, str | None, _Format], ...] = (
    ("fitness", None, lambda v: f"{v:.2f}"),
    ("trades", "trades", lambda v: f"{v:.0f}"),
    ("win rate", "win_rate", lambda v: f"{v:.1f} %"),
    ("profit factor", "profit_factor", lambda v: f"{v:.2f}"),
    ("Sharpe", "sharpe_ratio", lambda v: f"{v:.2f}"),
    ("ROI", "roi", lambda v: f"{v:+.1f} %"),
    ("max drawdown", "max_drawdown", lambda v: f"{v:.1f} %"),
)


def run_report(
    report: RunReport,
    baseline: RunCandidate | None,
    winner: RunCandidate | None,
    decided_by: str | None = None,
) -> Message:
    """A finished run: what it found, how far to trust it, and what became of the winner.
    `decided_by` is the admin who just applied or rejected it from this message."""
    run = report.run
    head = f"*Optimization of {run.scope}*: {_outcome(run, decided_by)}"
    blocks: list[Block] = [section(head)]
    if run.status is RunStatus.FAILED:
        blocks.append(section(f"> {escape(run.error or 'no error recorded')}"))
    elif run.status is RunStatus.NO_IMPROVEMENT:
        blocks.append(section("\n".join(f"• {escape(r)}" for r in report.reasons)))
    else:
        blocks += _findings(report, baseline, winner)
    blocks.append(context(_facts(run)))
    if run.status is RunStatus.PENDING_APPROVAL:
        blocks.append(_decision_buttons(run))
    text = f"Optimization {run.run_id} of {run.scope}: {_outcome(run, decided_by)}"
    return Message(text=text, blocks=blocks, ephemeral=False)


def _outcome(run: OptimizationRun, decided_by: str | None) -> str:
    by = f" by {person(decided_by)}" if decided_by else ""
    gain = "" if run.improvement_pct is None else f" ({run.improvement_pct:+.1f} % out of sample)"
    version = f"version {run.winner_version}"
    outcomes = {
        RunStatus.APPLIED: f"winner applied{by} as {version}{gain}",
        RunStatus.PENDING_APPROVAL: f"a winner{gain} waits for an admin's approval",
        RunStatus.REJECTED: f"winner rejected{by}; version {run.baseline_version} stays",
        RunStatus.SUPERSEDED: "winner superseded by a newer run before anyone approved it",
        RunStatus.ROLLED_BACK: f"winner applied as {version}{gain}, since rolled back",
        RunStatus.NO_IMPROVEMENT: f"no improvement; version {run.baseline_version} stays",
        RunStatus.FAILED: "failed; nothing was changed",
        RunStatus.RUNNING: "running",
    }
    return outcomes[run.status]


def _findings(
    report: RunReport, baseline: RunCandidate | None, winner: RunCandidate | None
) -> list[Block]:
    lines = [*_parameter_changes(report.baseline, report.winner), *_trust(report)]
    table = _table(baseline, winner) if baseline and winner else []
    return [section("\n".join(lines)), *preformatted(table)]


def _parameter_changes(baseline: Params, winner: Params | None) -> list[str]:
    if winner is None:
        return []
    changes = [
        f"`{name}` {format_value(baseline.get(name, '-'))} → *{format_value(value)}*"
        for name, value in winner.items()
        if baseline.get(name) != value
    ]
    return ["Winner: " + (", ".join(changes) or "the baseline's own values")]


def _trust(report: RunReport) -> list[str]:
    lines = []
    if report.drop_pct is not None:
        lines.append(f"In-sample → out-of-sample drop of the winner: {report.drop_pct:.1f} %")
    trials = report.run.candidates_tested + 1  # the baseline counts as a trial
    if report.deflated_sharpe_ratio is not None:
        lines.append(deflated_sharpe_in_words(report.deflated_sharpe_ratio, trials))
    if report.probability_of_backtest_overfitting is not None:
        lines.append(overfitting_in_words(report.probability_of_backtest_overfitting))
    return lines


def deflated_sharpe_in_words(dsr: float, trials: int) -> str:
    return (
        f"Deflated Sharpe ratio (DSR) {dsr:.2f}: {dsr * 100:.0f} % confidence that the "
        f"winner's Sharpe ratio is really above zero, not luck among the {trials} "
        "configurations tried"
    )


def overfitting_in_words(pbo: float) -> str:
    """PBO as odds a reader can weigh: the chance the winner only fits this data."""
    if pbo <= 0:
        odds = "no sign that the winner is a fluke of this data"
    elif pbo <= 1 / 3:  # 1-in-N rounded down: the odds are never made to look better
        odds = f"about a 1-in-{math.floor(1 / pbo)} chance the winner is a fluke of this data"
    elif pbo < 0.5:
        odds = "close to an even chance the winner is a fluke of this data"
    else:
        odds = "the winner is at least as likely a fluke of this data as not"
    return f"Probability of backtest overfitting (PBO) {pbo * 100:.0f} %: {odds}"


def _table(baseline: RunCandidate, winner: RunCandidate) -> list[str]:
    columns = [
        (baseline, "in_sample"),
        (baseline, "out_of_sample"),
        (winner, "in_sample"),
        (winner, "out_of_sample"),
    ]
    lines = [
        f"{'':<14}{'baseline':>24}{'winner':>24}",
        f"{'':<14}" + "".join(f"{label:>12}" for label in ("in", "out") * 2),
    ]
    for label, key, shown in _ROWS:
        cells = [_cell(_value(c, sample, key), shown) for c, sample in columns]
        lines.append(f"{label:<14}" + "".join(f"{cell:>12}" for cell in cells))
    return lines


def _value(candidate: RunCandidate, sample: str, key: str | None) -> float | None:
    if key is None:
        in_sample = sample == "in_sample"
        return candidate.in_sample_fitness if in_sample else candidate.out_of_sample_fitness
    metrics: Mapping[str, Any] = candidate.metrics.get(sample) or {}
    value = metrics.get(key)
    return None if value is None else float(value)


def _cell(value: float | None, shown: _Format) -> str:
    return "-" if value is None else shown(value)


def _facts(run: OptimizationRun) -> str:
    facts = [
        f"Run `{run.run_id}`",
        f"{run.trigger.value.lower().replace('_', ' ')} trigger by {person(run.requested_by)}",
        f"{run.method.value} search",
        f"{run.candidates_tested} candidates",
    ]
    if run.duration_seconds is not None:
        facts.append(f"{run.duration_seconds:.1f} s")
    if run.data_range is not None:
        facts.append(_data(run.data_range))
    facts.append(f"seed {run.seed}")
    return " · ".join(facts)


def _data(data: DataRange) -> str:
    symbols = ", ".join(data.symbols) or "no symbols"
    return f"{symbols} {data.timeframe} from {utc_stamp(data.start)} to {utc_stamp(data.end)}"


def _decision_buttons(run: OptimizationRun) -> ActionsBlock:
    confirm = ConfirmObject(
        title="Apply the winner?",
        text=f"Makes the winner of {run.run_id} a new version of {run.scope} (backed up first).",
        confirm="Apply",
        deny="Cancel",
    )
    return ActionsBlock(
        block_id=f"decide:{run.run_id}",
        elements=[
            ButtonElement(
                text="Apply",
                action_id=APPLY_ACTION,
                value=run.run_id,
                style="primary",
                confirm=confirm,
            ),
            ButtonElement(text="Reject", action_id=REJECT_ACTION, value=run.run_id),
        ],
    )


def rolled_back(run: OptimizationRun, reason: str, restored_version: int | None) -> Message:
    """The live watch undid a winner the optimizer applied."""
    to = f"version {restored_version}" if restored_version is not None else "its previous values"
    head = (
        f":rewind: *{run.scope}* rolled back from version {run.winner_version} to {to}: "
        f"the winner of `{run.run_id}` fell short live"
    )
    return Message(
        text=f"{run.scope} rolled back from version {run.winner_version} to {to} ({run.run_id})",
        blocks=[section(head), section(f"> {escape(reason)}")],
        ephemeral=False,
    )


def started(run: OptimizationRun, report_channel: str) -> Message:
    """The answer to `/param optimize`: the run goes on in the background."""
    text = (
        f"Optimization {run.run_id} of {run.scope} started; "
        f"the report will follow in {report_channel}"
    )
    return Message(text=text, blocks=[section(f":hourglass_flowing_sand: {escape(text)}")])
