"""Parameters, their changes, history and diffs as Slack messages."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, HeaderBlock

from bot import render
from bot.blocks.common import Message, context, escape, person, section, sections, utc_stamp
from core.models import Outcome, ParamChange, ParamChangeRecord
from core.params import ParamValue, Scope, format_value
from core.services import ChangeResult, ParamRow, ScopeView, VersionDiff


def shown(value: ParamValue | None) -> str:
    return "(inherited)" if value is None else format_value(value)


def scope_view(view: ScopeView) -> Message:
    return Message(
        text=render.scope_view(view),
        blocks=[
            HeaderBlock(text=f"Parameters · {view.scope} · version {view.version}"),
            *sections(_row(row, view.scope) for row in view.rows),
        ],
    )


def _row(row: ParamRow, scope: Scope) -> str:
    unit = f" {row.spec.unit}" if row.spec.unit else ""
    origin = ""
    if row.inherited_in(scope):
        origin = "  _default_" if row.origin == "default" else f"  _from {row.origin}_"
    return f"*{row.spec.name}*  `{format_value(row.value)}`{unit}{origin}"


def change_lines(changes: Sequence[ParamChange]) -> list[str]:
    return [f"• `{c.parameter}`: {shown(c.old)} → *{shown(c.new)}*" for c in changes]


def change_announcement(who: str, what: str, result: ChangeResult, reason: str) -> Message:
    """`who` did `what` (mrkdwn, e.g. "set `min_confidence` in *global*"): old → new, and why."""
    if result.outcome is Outcome.UNCHANGED:
        return Message(render.change_result(result))
    assert result.version is not None and result.backup is not None
    footer = version_footer(
        result.scope, result.based_on, result.version.version, result.backup.backup_id
    )
    return changed(who, what, result.changes, reason, footer)


def changed(
    who: str, what: str, changes: Sequence[ParamChange], reason: str, footer: str
) -> Message:
    """An applied change: `who` did `what`, each parameter's old → new value, why, and a
    `footer` (version_footer) naming the versions and the backup."""
    head = f"{person(who)} {what}"
    why = render.said(reason)
    plain = f"{head}: " + ", ".join(
        f"{c.parameter} {shown(c.old)} → {shown(c.new)}" for c in changes
    )
    return Message(
        text=f"{plain} — {why}",
        blocks=[
            section("\n".join([head, *change_lines(changes), f"> {escape(why)}"])),
            context(footer),
        ],
        ephemeral=False,
    )


def version_footer(scope: Scope, based_on: int, version: int, backup_id: str) -> str:
    return f"{scope} version {based_on} → {version} · backup `{backup_id}`"


def history(scope: Scope, records: Sequence[ParamChangeRecord]) -> Message:
    if not records:
        return Message(f"{scope}: no changes yet")
    lines = [
        f"*v{r.to_version}* {utc_stamp(r.created_at)} · `{r.parameter}`: "
        f"{shown(r.old)} → *{shown(r.new)}* · {person(r.actor)} via {r.source.value}"
        f" — {escape(render.said(r.reason))}"
        for r in records
    ]
    blocks: list[Block] = [HeaderBlock(text=f"History · {scope}"), *sections(lines)]
    return Message(render.history(scope, records), blocks)


def version_diff(diff: VersionDiff) -> Message:
    head = f"*{diff.scope}*: version {diff.old.version} → {diff.new.version}"
    if not diff.changes:
        return Message(render.version_diff(diff), [section(f"{head}: identical parameters")])
    return Message(render.version_diff(diff), sections([head, *change_lines(diff.changes)]))
