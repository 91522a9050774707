"""Plain-text views of core results, for the CLI and the console."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core.models import BackupRecord, Outcome, ParamChange, ParamChangeRecord
from core.params import ParamValue, Scope, format_value
from core.services import NO_REASON, ChangeResult, ScopeView, VersionDiff


def _value(value: ParamValue | None, unset: str = "(unset)") -> str:
    return unset if value is None else format_value(value)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def said(reason: str) -> str:
    """A reason as shown: one left out (Slack allows it) says so plainly."""
    return reason.strip() or NO_REASON


def scope_view(view: ScopeView) -> str:
    lines = [f"{view.scope} (version {view.version})"]
    width = max((len(row.spec.name) for row in view.rows), default=0)
    for row in view.rows:
        origin = ""
        if row.inherited_in(view.scope):
            origin = (
                "  (default)" if row.origin == "default" else f"  (inherited from {row.origin})"
            )
        unit = f" {row.spec.unit}" if row.spec.unit else ""
        lines.append(f"  {row.spec.name:<{width}}  {format_value(row.value)}{unit}{origin}")
    return "\n".join(lines)


def scope_view_json(view: ScopeView) -> dict[str, Any]:
    return {
        "scope": view.scope.value,
        "version": view.version,
        "parameters": {
            row.spec.name: {
                "value": row.value,
                "origin": row.origin,
                "inherited": row.inherited_in(view.scope),
                "unit": row.spec.unit,
                "min": row.spec.min,
                "max": row.spec.max,
                "default": row.spec.default,
            }
            for row in view.rows
        },
    }


def changes(items: Sequence[ParamChange], unset: str = "(inherited)") -> list[str]:
    return [f"  {c.parameter}: {_value(c.old, unset)} → {_value(c.new, unset)}" for c in items]


def change_result(result: ChangeResult) -> str:
    if result.outcome is Outcome.UNCHANGED:
        return f"nothing changed: {result.scope} version {result.based_on} already has these values"
    assert result.version is not None and result.backup is not None
    head = f"{result.scope}: version {result.based_on} → {result.version.version}"
    backup = f"backup of version {result.based_on}: {result.backup.backup_id}"
    return "\n".join([head, *changes(result.changes), backup])


def history(scope: Scope, records: Sequence[ParamChangeRecord]) -> str:
    if not records:
        return f"{scope}: no changes yet"
    return "\n".join(
        f"v{r.to_version}  {_when(r.created_at)}  {r.parameter}: "
        f"{_value(r.old, '(inherited)')} → {_value(r.new, '(inherited)')}  "
        f"by {r.actor} via {r.source.value} — {said(r.reason)}"
        for r in records
    )


def version_diff(diff: VersionDiff) -> str:
    head = f"{diff.scope}: version {diff.old.version} → {diff.new.version}"
    if not diff.changes:
        return f"{head}: identical parameters"
    return "\n".join([head, *changes(diff.changes)])


def backups(items: Sequence[BackupRecord]) -> str:
    if not items:
        return "no backups yet"
    return "\n".join(
        f"{b.backup_id}  {b.scope} v{b.version}  {_when(b.created_at)}  "
        f"by {b.actor} — {said(b.reason)}"
        for b in items
    )
