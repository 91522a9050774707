"""The daily and weekly digests in Slack: queued in the outbox, delivered to the digest channel.

`post_digest` (called by the scheduler in bot.jobs) fixes the period and queues a
"slack.digest" outbox message; `DigestPoster.deliver` (registered in bot.slack) gathers the
period's digest and posts it when Slack can be reached, so a digest asked for while Slack is
down goes out once it is back, and one the process crashed before posting is posted after
the restart. The weekly digest's equity chart is uploaded after the message, as the
optimization reports do: the chart is a bonus, so a failed upload is logged, not retried
(a retry would post the digest twice). In console mode the digest prints in the terminal;
the console does not show files, so there is no chart.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Literal, cast

from bot.blocks.digest import digest_message
from bot.charts import period_equity_png
from bot.notifications import digest_channel
from bot.runtime import Runtime
from core import digest
from core.authz import Actor, Role
from core.digest import DigestKind
from storage.outbox import OutboxMessage

if TYPE_CHECKING:
    from bot.app import SlackBot

log = logging.getLogger(__name__)

DIGEST_TOPIC = "slack.digest"
DIGEST_READER = Actor.having("digest", "job", Role.VIEWER)


async def post_digest(
    runtime: Runtime,
    kind: Literal["daily", "weekly"],
    since: datetime | None = None,
    until: datetime | None = None,
) -> None:
    """Queue the digest of [since, until) (default: the day or week ending now) for the
    digest channel, unless the configuration turned this kind off."""
    if not getattr(runtime.settings.digest, kind):
        log.info("%s digest not posted: turned off in [digest]", kind)
        return
    if since is None or until is None:
        since, until = digest.period(kind, runtime.deps.clock.now())
    payload = {"kind": kind, "since": since.isoformat(), "until": until.isoformat()}
    await runtime.outbox.add(DIGEST_TOPIC, payload, runtime.deps.clock.now())
    runtime.wake_dispatchers()


class DigestPoster:
    def __init__(self, bot: SlackBot) -> None:
        self._bot = bot

    async def deliver(self, message: OutboxMessage) -> None:
        runtime = self._bot.runtime
        kind = cast(DigestKind, message.payload["kind"])
        since = datetime.fromisoformat(message.payload["since"])
        until = datetime.fromisoformat(message.payload["until"])
        found = await digest.gather_digest(runtime.deps, DIGEST_READER, kind, since, until)
        built = digest_message(found)
        channel = digest_channel(runtime.settings)
        posted = await self._bot.post_message(channel, built.text, built.blocks)
        if kind == "weekly":
            await self._bot.upload_chart(
                period_equity_png,
                found.equity,
                channel=posted["channel"],
                filename=f"equity-{until:%Y-%m-%d}.png",
                title=f"Equity of the week to {until:%Y-%m-%d}, parameter changes marked",
            )
