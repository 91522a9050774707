"""The Slack side of `paramadapt run`, in the mode the settings select.

- socket: Socket Mode over a websocket (SLACK_BOT_TOKEN + SLACK_APP_TOKEN);
- http: Slack posts to /slack/events on the HTTP server (SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET);
- console: no Slack at all; a terminal drives the same handlers (bot.console).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.announcements import TOPICS, LearningAnnouncer
from bot.app import DEFAULT_TIMING, RetryAfterHandler, SlackBot, SlackTiming, build_bot, mount
from bot.digests import DIGEST_TOPIC, DigestPoster
from bot.event_announcer import EventAnnouncer
from bot.optimization_announcer import TOPICS as OPTIMIZATION_TOPICS
from bot.optimization_announcer import OptimizationAnnouncer
from bot.outbox import Deliver
from bot.runtime import Runtime, SlackStatus
from storage.trade_store import ALERT_TOPIC

if TYPE_CHECKING:
    from bot.service import Component

log = logging.getLogger(__name__)

MAX_RECONNECT_DELAY = 60.0
# Seconds for the websocket's close handshake when stopping: one round trip to a server
# that reads its socket (Slack answers at once); a server that does not read it while idle
# (some stand-ins) never answers, and then this is what a stop waits.
CLOSE_TIMEOUT = 1.0


@dataclass
class SlackParts:
    bot: SlackBot
    backend: list[Component] = field(default_factory=list)  # before the outbox dispatcher
    frontend: list[Component] = field(default_factory=list)  # last: what brings requests in
    events_over_http: bool = False

    def deliverers(self) -> dict[str, Deliver]:
        announce = LearningAnnouncer(self.bot).deliver
        report = OptimizationAnnouncer(self.bot).deliver
        return {
            ALERT_TOPIC: self.bot.alerts.deliver,
            **{topic: announce for topic in TOPICS},
            **{topic: report for topic in OPTIMIZATION_TOPICS},
            DIGEST_TOPIC: DigestPoster(self.bot).deliver,
            **EventAnnouncer(self.bot).deliverers(),
        }

    def mount(self, http_app: web.Application) -> None:
        mount(http_app, self.bot, events=self.events_over_http)


class RateLimitWaits:
    """Ends the Web API client's Retry-After waits when the process stops. It stops first (the
    last of the frontend), so a Slack call sleeping out a long Retry-After (30 s, say) fails
    at once with Slack's 429 and the loops that wait for it finish their step within their
    grace: the outbox keeps the message (a 429 posted nothing) for after the restart."""

    def __init__(self, bot: SlackBot) -> None:
        handlers = bot.client.retry_handlers
        self._handlers = [h for h in handlers if isinstance(h, RetryAfterHandler)]

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        for handler in self._handlers:
            handler.stop_waiting()


class SocketMode:
    """The Socket Mode connection. Slack being unreachable at start does not stop the process
    (the HTTP server keeps taking engine events): it connects as soon as it can."""

    def __init__(self, bot: SlackBot, app_token: str, ping_interval: float) -> None:
        self._handler = AsyncSocketModeHandler(
            bot.app, app_token=app_token, ping_interval=ping_interval
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="slack:socket-mode")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # slack_sdk waits for Slack's answer to its close frame, up to aiohttp's 10 s; a stop
        # must not wait that long for an answer that may never come.
        close = self._handler.close_async
        try:
            await asyncio.wait_for(close(), CLOSE_TIMEOUT)  # type: ignore[no-untyped-call]
        except TimeoutError:
            log.warning(
                "Slack: the Socket Mode connection did not close within %.0f s; "
                "closing it without Slack's answer",
                CLOSE_TIMEOUT,
            )
            # Closing again skips the handshake given up on, and releases the rest.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(close(), CLOSE_TIMEOUT)  # type: ignore[no-untyped-call]

    async def _connect(self) -> None:
        delay = 1.0
        while True:
            try:
                await self._handler.connect_async()  # type: ignore[no-untyped-call]
            except Exception as error:  # Slack's answer or the network's; neither holds a token
                log.warning("Slack: cannot connect (%s); retrying in %.0f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY)
            else:
                log.info("Slack: connected in Socket Mode")
                return

    def status(self) -> SlackStatus:
        client = self._handler.client
        session = client.current_session
        up = not client.closed and session is not None and not session.closed
        return "connected" if up else "disconnected"


def build_slack(
    runtime: Runtime,
    console_user: str | None,
    stop: asyncio.Event,
    timing: SlackTiming = DEFAULT_TIMING,
) -> SlackParts:
    """`console_user` types at the console (default: a local admin); the console sets `stop`
    at the end of its input."""
    settings = runtime.settings
    if settings.slack_mode == "console":
        from bot.console import CONSOLE_USER, build_console  # only when it is used

        return build_console(runtime, console_user or CONSOLE_USER, stop, timing)
    bot = build_bot(runtime, settings.slack_bot_token, settings.slack_api_url, timing=timing)
    parts = SlackParts(bot, backend=[bot.alerts])
    if settings.slack_mode == "socket":
        socket = SocketMode(bot, settings.slack_app_token, timing.ping_interval)
        parts.frontend.append(socket)
        runtime.slack_status = socket.status
    else:
        parts.events_over_http = True
        runtime.slack_status = lambda: "connected"
        log.info("Slack: HTTP mode, events at /slack/events (signature-checked)")
    parts.frontend.append(RateLimitWaits(bot))
    return parts
