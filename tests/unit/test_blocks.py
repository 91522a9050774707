"""Message builders stay within Slack's limits, whatever the content."""

from __future__ import annotations

from bot.blocks.common import MAX_MESSAGE_BLOCKS, Message, escape, person, section, sections


def test_a_message_never_carries_more_than_50_blocks() -> None:
    message = Message("many", [section(f"line {i}") for i in range(80)])

    blocks = message.payload()["blocks"]

    assert len(blocks) == MAX_MESSAGE_BLOCKS
    assert blocks[-1]["elements"][0]["text"] == "… and 31 more not shown"


def test_long_lists_are_packed_into_sections_slack_accepts() -> None:
    lines = [f"{i:03d} " + "x" * 96 for i in range(100)]  # 10 000 characters

    packed = Message("long", sections(lines)).payload()["blocks"]

    texts = [block["text"]["text"] for block in packed]
    assert len(packed) == 4 and all(len(text) <= 3000 for text in texts)
    assert "\n".join(texts) == "\n".join(lines)


def test_user_text_cannot_mention_everyone_and_people_are_mentioned_by_id() -> None:
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert person("U0ADMIN") == "<@U0ADMIN>"
    assert person("cli:alice") == "`cli:alice`"
