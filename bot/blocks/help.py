"""The /param reference, usage errors and refusals."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import HeaderBlock

from bot.blocks.common import Message, context, escape, section, sections
from core.commands import SCOPES, CommandError, Usage


def reference(usages: Sequence[Usage]) -> Message:
    """The subcommands the asker may run (the caller filters them)."""
    lines = [f"`{usage.line}` — {usage.summary}" for usage in usages]
    notes = [f"Scopes: {SCOPES} (default global)."]
    if len(usages) <= 1:
        notes.append("You have no role here yet: ask an admin to grant you one.")
    return Message(
        text="\n".join([*(f"{u.line} — {u.summary}" for u in usages), *notes]),
        blocks=[HeaderBlock(text="/param commands"), *sections(lines), context(" ".join(notes))],
    )


def usage_error(error: CommandError, usages: Sequence[Usage]) -> Message:
    """What was wrong, the syntax of the subcommand, then the reference."""
    lines = [f":warning: {escape(str(error))}"]
    if error.usage is not None:
        lines.append(f"Usage: `{error.usage.line}`")
    guide = reference(usages)
    return Message(
        text="\n".join([str(error), *lines[1:], "", guide.text]).replace("`", ""),
        blocks=[section("\n".join(lines)), *guide.blocks],
    )


def refusal(message: str, usage: Usage | None = None) -> Message:
    """A core refusal (bad value, missing role, conflict) said to the asker alone; with the
    `usage` of the subcommand when the refused input was one of its arguments."""
    if usage is None:
        return Message(text=message, blocks=[section(f":warning: {escape(message)}")])
    return Message(
        text=f"{message}\nUsage: {usage.line}",
        blocks=[section(f":warning: {escape(message)}\nUsage: `{usage.line}`")],
    )


INTERNAL_ERROR = "Something went wrong on paramadapt's side (it is logged). Try again in a moment."


def internal_error() -> Message:
    """Not the asker's fault: said so, rather than leaving them without an answer."""
    return refusal(INTERNAL_ERROR)
