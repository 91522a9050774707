"""A failure people must hear of (the `error` notification type)."""

from __future__ import annotations

from datetime import datetime

from bot.blocks.common import Message, context, escape, preformatted, section, utc_stamp


def error_report(source: str, message: str, at: datetime) -> Message:
    """`source` names what failed ("scheduled job cleanup"); `message` says how."""
    return Message(
        text=f"{source} failed: {message}",
        blocks=[
            section(f":warning: *{escape(source)}* failed"),
            *preformatted(message.splitlines() or ["(no message)"]),
            context(utc_stamp(at)),
        ],
        ephemeral=False,
    )
