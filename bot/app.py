"""Builds the Bolt AsyncApp and wires core and storage into it.

`SlackBot` is what the rest of the process uses: the HTTP API runs `/param` text through
`run_param_command` (the same path as the slash command) and posts with `post_message`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts import AlertChannel, Alerts
from bot.blocks.common import Message
from bot.commands import CommandContext, run_command
from bot.handlers import (
    actor,
    alert_actions,
    app_home,
    learning_actions,
    learning_form,
    optimization_actions,
    param_command,
    unhandled,
)
from bot.notifications import EventType, channel_for
from bot.roles import RoleResolver
from bot.runtime import Runtime
from storage.alert_store import SqlAlertStore
from storage.db import sessionmaker

log = logging.getLogger(__name__)

D = TypeVar("D")  # what a chart is drawn from

EVENTS_PATH = "/slack/events"
RETRIES = 2


class RetryAfterHandler(AsyncRetryHandler):
    """429: wait as long as Retry-After says. (slack_sdk's own handler reads only the
    first character of the header, so "30" would wait 3 s and be refused again.)"""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code == 429

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        await asyncio.sleep(retry_after(response.headers if response else {}))
        state.increment_current_attempt()


def retry_after(headers: Mapping[str, str | list[str]], default: float = 1.0) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            text = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(text))
            except ValueError:
                return default
    return default


class ServerErrorHandler(AsyncServerErrorRetryHandler):
    """Any 5xx, not only the 500 and 503 slack_sdk's handler retries."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code >= 500


def web_client(token: str, base_url: str) -> AsyncWebClient:
    """A Web API client that retries connection errors, 429 and 5xx before giving up."""
    return AsyncWebClient(
        token=token,
        base_url=base_url if base_url.endswith("/") else f"{base_url}/",
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=RETRIES),
            RetryAfterHandler(max_retry_count=RETRIES),
            ServerErrorHandler(max_retry_count=RETRIES),
        ],
    )


@dataclass(frozen=True)
class SlackTiming:
    alert_interval: float = 1.0  # seconds between Slack writes per channel
    expiry_sweep: float = 30.0  # seconds between looks for unanswered alerts
    role_cache: float = 60.0  # seconds a user group's members are remembered
    ping_interval: float = 10.0  # Socket Mode keep-alive


DEFAULT_TIMING = SlackTiming()


@dataclass(frozen=True)
class SlackBot:
    runtime: Runtime
    app: AsyncApp
    client: AsyncWebClient
    roles: RoleResolver
    alerts: Alerts

    async def run_param_command(self, user_id: str, text: str, source: str = "slack") -> Message:
        """`/param text` as `user_id` (their roles as in Slack), through the slash command's
        path; nothing is posted: the caller decides where the answer goes."""
        ctx = CommandContext(self.runtime, await self.roles.actor(user_id, source))
        reply = await run_command(ctx, text)
        assert reply is not None  # only a form (which needs Slack) answers nothing
        return reply

    async def post_message(
        self, channel: str, text: str, blocks: Sequence[Block | dict[str, Any]] | None = None
    ) -> dict[str, str]:
        """Post to a channel (name or id); returns the channel id and ts Slack assigned."""
        response = await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        return {"channel": str(response["channel"]), "ts": str(response["ts"])}

    async def upload_chart(
        self,
        draw: Callable[[D], bytes],
        data: D,
        *,
        channel: str,
        filename: str,
        title: str,
        thread_ts: str | None = None,
    ) -> None:
        """Draw a PNG (in the process pool when there is one: tens of ms of CPU) and upload
        it with files.upload_v2. A chart goes with a message already posted, so a failure is
        logged, not raised: retrying the delivery would post that message twice."""
        ports = self.runtime.deps.optimizer
        try:
            png = await ports.compute.run(draw, data) if ports else draw(data)
            await self.client.files_upload_v2(
                channel=channel, thread_ts=thread_ts, content=png, filename=filename, title=title
            )
        except Exception:  # anything (pool, Slack, network)
            log.warning("chart %s not posted", filename, exc_info=True)


def build_bot(
    runtime: Runtime,
    token: str,
    base_url: str,
    *,
    extra_admins: Collection[str] = (),
    process_before_response: bool = False,
    timing: SlackTiming = DEFAULT_TIMING,
) -> SlackBot:
    """The Bolt app with its middleware and listeners, and the alert component it needs."""
    settings, deps = runtime.settings, runtime.deps
    client = web_client(token, base_url)
    assignments = {**settings.roles}
    if extra_admins:
        assignments["admin"] = (*assignments.get("admin", ()), *extra_admins)
    roles = RoleResolver(assignments, client, ttl=timing.role_cache)
    store = SqlAlertStore(sessionmaker(runtime.engine))
    channel = AlertChannel(
        channel_for(settings, EventType.BLOCKED_TRADE),
        client,
        store,
        deps.clock,
        deps.policy.alert_ttl,
        timing.alert_interval,
    )
    alerts = Alerts(channel, store, deps.clock, deps.policy.alert_ttl, timing.expiry_sweep)
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret,
        process_before_response=process_before_response,
        raise_error_for_unhandled_request=True,  # acked and explained by `unhandled`
    )
    actor.register(app, roles)
    unhandled.register(app)
    param_command.register(app, runtime)
    alert_actions.register(app, runtime, alerts)
    learning_form.register(app, runtime)
    learning_actions.register(app, runtime)
    optimization_actions.register(app, runtime)
    app_home.register(app, runtime)
    return SlackBot(runtime, app, client, roles, alerts)


SLACK_BOT = web.AppKey("slack_bot", SlackBot)


def mount(http_app: web.Application, bot: SlackBot, *, events: bool) -> None:
    """Make the bot reachable from the HTTP server: as `http_app[SLACK_BOT]` for the API's
    handlers, and (`events`, HTTP mode) at /slack/events, signature-checked by Bolt."""
    http_app[SLACK_BOT] = bot
    if events:
        http_app.router.add_post(EVENTS_PATH, _slack_events)


async def _slack_events(request: web.Request) -> web.Response:
    bolt = request.app[SLACK_BOT].app
    return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))
