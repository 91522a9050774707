"""Digests in Slack: `/param digest` on demand, and post_digest (the scheduler's call) through
the outbox to the digest channel, the weekly one with its equity chart."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import pytest

from bot.app import SlackBot
from bot.config import Settings
from bot.digests import post_digest
from bot.notifications import DigestSettings
from bot.runtime import Runtime
from tests.digest_seed import seed_day
from tests.e2e.conftest import VIEWER, ManualClock, on_sqlite, outbox_drained, param, text_of
from tests.fakeslack import FakeSlack

DIGESTS = "#digests"
WAIT = 15.0


@pytest.fixture
def digest_settings() -> DigestSettings:
    return DigestSettings(channel=DIGESTS)


@pytest.fixture
def settings(settings: Settings, digest_settings: DigestSettings) -> Settings:
    return replace(settings, digest=digest_settings)


def digests_posted(slack: FakeSlack) -> list[dict[str, Any]]:
    return [m for m in slack.messages(DIGESTS) if "digest" in str(m.get("text", ""))]


async def posted_digest(slack: FakeSlack) -> dict[str, Any]:
    await slack.wait_until(lambda: bool(digests_posted(slack)), WAIT, "a digest in #digests")
    return digests_posted(slack)[-1]


async def scheduled_digest(
    runtime: Runtime, slack: FakeSlack, kind: Literal["daily", "weekly"]
) -> dict[str, Any]:
    """The digest that post_digest (the scheduler's call) posts in the digest channel."""
    await post_digest(runtime, kind)
    return await posted_digest(slack)


@pytest.fixture
async def seeded_day(runtime: Runtime, clock: ManualClock, bot: SlackBot) -> None:
    """A day of activity to digest (tests.digest_seed) while the bot runs; the clock at its
    end."""
    await seed_day(runtime.deps, clock)


@on_sqlite
async def test_param_digest_shows_the_last_day_to_the_caller_only(
    runtime: Runtime, clock: ManualClock, slack: FakeSlack, bot: SlackBot
) -> None:
    await seed_day(runtime.deps, clock)

    answer = await param(slack, "digest", user=VIEWER)

    assert answer.response_type == "ephemeral"
    assert answer.text.startswith("Daily digest · 2026-03-02")
    shown = text_of(answer.body["blocks"])
    assert "+12.00 from 3 closed trades" in shown
    assert "&lt;!channel&gt; &amp; &lt;@U0BOSS&gt;" in shown  # the engine's reason, inert
    assert not digests_posted(slack)  # nothing went to the channel


@on_sqlite
async def test_param_digest_of_a_quiet_week_says_so_in_one_line(
    slack: FakeSlack, bot: SlackBot
) -> None:
    answer = await param(slack, "digest weekly", user=VIEWER)

    assert answer.text.startswith("Weekly digest")
    assert [block["type"] for block in answer.body["blocks"]] == ["header", "context", "section"]
    assert "Nothing happened in this period" in text_of(answer.body["blocks"])


@on_sqlite
async def test_param_digest_of_another_length_is_a_usage_error(
    slack: FakeSlack, bot: SlackBot
) -> None:
    answer = await param(slack, "digest monthly", user=VIEWER)

    assert answer.response_type == "ephemeral"
    assert "the digest is daily or weekly; got 'monthly'" in answer.text


async def test_the_daily_digest_is_posted_to_the_digest_channel(
    seeded_day: None, runtime: Runtime, slack: FakeSlack
) -> None:
    message = await scheduled_digest(runtime, slack, "daily")

    assert message["text"].startswith("Daily digest · 2026-03-02")
    assert "3 blocked trades, 1 override" in message["text"]
    assert "*Learning sessions: 1*" in text_of(message["blocks"])
    await outbox_drained(runtime)
    assert not slack.files()  # the daily digest has no chart


async def test_the_weekly_digest_comes_with_its_equity_chart(
    seeded_day: None, runtime: Runtime, slack: FakeSlack
) -> None:
    message = await scheduled_digest(runtime, slack, "weekly")

    assert message["text"].startswith("Weekly digest")
    await slack.wait_until(lambda: any(f.completed for f in slack.files()), WAIT, "the chart")
    [chart] = slack.files()
    assert chart.content is not None and chart.content.startswith(b"\x89PNG")
    assert chart.channels == [slack.channel_id(DIGESTS)]
    assert chart.title is not None and "parameter changes marked" in chart.title


@on_sqlite
async def test_a_digest_asked_for_while_slack_is_down_is_posted_when_it_is_back(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    slack.set_down()
    await post_digest(runtime, "daily")
    assert await runtime.outbox.pending() == {"slack.digest": 1}

    slack.set_down(False)
    runtime.wake_dispatchers()

    await posted_digest(slack)
    await outbox_drained(runtime)


@on_sqlite
@pytest.mark.parametrize("digest_settings", [DigestSettings(channel=DIGESTS, daily=False)])
async def test_a_digest_turned_off_is_not_posted(
    runtime: Runtime, slack: FakeSlack, bot: SlackBot
) -> None:
    await post_digest(runtime, "daily")

    assert await runtime.outbox.pending() == {}
    assert not digests_posted(slack)
