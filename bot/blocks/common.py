"""The message type every builder returns, and the small pieces they share.

Blocks are slack_sdk.models.blocks objects, so Slack's field limits are checked when a
message is serialized; long texts are cut here first, and no message exceeds 50 blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

MAX_MESSAGE_BLOCKS = 50
SECTION_TEXT_MAX = 3000
FALLBACK_TEXT_MAX = 3900  # Slack truncates longer notification text anyway


@dataclass(frozen=True)
class Message:
    """Fallback text (notifications, screen readers), Block Kit blocks, and who sees it:
    `ephemeral` answers only the person who asked; otherwise everyone in the channel."""

    text: str
    blocks: Sequence[Block] = ()
    ephemeral: bool = True

    def payload(self) -> dict[str, Any]:
        """The text and blocks as Slack's Web API and response_url take them."""
        return {
            "text": self.text[:FALLBACK_TEXT_MAX],
            "blocks": [block.to_dict() for block in capped(self.blocks)],
        }


def capped(blocks: Sequence[Block], limit: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    if len(blocks) <= limit:
        return list(blocks)
    hidden = len(blocks) - (limit - 1)
    return [*blocks[: limit - 1], context(f"… and {hidden} more not shown")]


_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def person(actor_id: str) -> str:
    """A Slack user as a mention; anyone else (cli:alice, an API token) by name."""
    return f"<@{actor_id}>" if _SLACK_USER.match(actor_id) else f"`{escape(actor_id)}`"


def escape(text: str) -> str:
    """User text inside mrkdwn: no accidental mentions (<!channel>) or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_cut(text, SECTION_TEXT_MAX)))


def sections(lines: Iterable[str]) -> list[Block]:
    """Lines packed into as few sections as Slack's 3000-character limit allows."""
    packed: list[Block] = []
    chunk = ""
    for line in lines:
        line = _cut(line, SECTION_TEXT_MAX)
        if chunk and len(chunk) + 1 + len(line) > SECTION_TEXT_MAX:
            packed.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        packed.append(section(chunk))
    return packed


def preformatted(lines: Iterable[str]) -> list[Block]:
    """Plain-text lines (a table, say) as monospaced sections within Slack's limits."""
    fence = "```"
    room = SECTION_TEXT_MAX - 2 * len(fence)
    packed: list[Block] = []
    chunk = ""
    for line in lines:
        line = _cut(escape(line), room)
        if chunk and len(chunk) + 1 + len(line) > room:
            packed.append(section(f"{fence}{chunk}{fence}"))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        packed.append(section(f"{fence}{chunk}{fence}"))
    return packed


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=_cut(text, SECTION_TEXT_MAX))])


def utc_time(at: datetime) -> str:
    return at.strftime("%H:%M UTC")


def utc_stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
