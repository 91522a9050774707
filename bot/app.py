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

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
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
    first character of the header, so "30" would wait 3 s and be refused again.)

    A stopping process calls `stop_waiting`: a wait in progress ends and none starts, so the
    call fails at once with Slack's 429 instead of holding the stop for up to Retry-After
    seconds. A 429 posted nothing: what the call carried stays in the outbox for later."""

    def __init__(self, max_retry_count: int = 1) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._stopping = asyncio.Event()

    def stop_waiting(self) -> None:
        self._stopping.set()

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
        wait = retry_after(response.headers if response else {})
        try:
            await asyncio.wait_for(self._stopping.wait(), wait)
        except TimeoutError:  # waited as long as Slack said: try again
            state.next_attempt_requested = True
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


class _AtLeast(RetryIntervalCalculator):
    """slack_sdk's backoff (0.5 s, 1 s, ... plus up to 1 s of jitter), never under `floor`."""

    def __init__(self, floor: float) -> None:
        self._floor = floor
        self._backoff = BackoffRetryIntervalCalculator()

    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return max(self._floor, self._backoff.calculate_sleep_duration(current_attempt))


class ServerErrorHandler(AsyncServerErrorRetryHandler):
    """Any 5xx, not only the 500 and 503 slack_sdk's handler retries. A retry waits at least
    `pace` seconds, so retrying a paced call (the alert writer's one call per channel and
    interval) does not put two calls into one interval."""

    def __init__(self, max_retry_count: int = 1, pace: float = 0.0) -> None:
        super().__init__(max_retry_count=max_retry_count, interval_calculator=_AtLeast(pace))

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code >= 500


def web_client(token: str, base_url: str, pace: float = 0.0) -> AsyncWebClient:
    """A Web API client that retries connection errors, 429 and 5xx before giving up; a 5xx
    is retried after `pace` seconds at least (the alert writer's interval)."""
    return AsyncWebClient(
        token=token,
        base_url=base_url if base_url.endswith("/") else f"{base_url}/",
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=RETRIES),
            RetryAfterHandler(max_retry_count=RETRIES),
            ServerErrorHandler(max_retry_count=RETRIES, pace=pace),
        ],
    )


UNAVAILABLE_RETRY_AFTER = 10.0  # seconds to wait when Slack fails without saying how long


class SlackRefused(Exception):
    """Slack refused a message for what it holds: `code` is Slack's error, `field` the part of
    the message it concerns ("channel", "blocks", "text"; None when Slack's code does not say)."""

    def __init__(self, code: str, field: str | None, explanation: str) -> None:
        super().__init__(f"Slack refused the message: {code}")
        self.code = code
        self.field = field
        self.explanation = explanation


class SlackUnavailable(Exception):
    """Slack cannot take a request now. `retry_after`: seconds worth waiting before trying
    again; None when waiting will not help (the bot's token or scopes are refused)."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


# chat.postMessage's errors about the message itself: the field each concerns, and a hint.
_REFUSALS: dict[str, tuple[str, str]] = {
    "channel_not_found": ("channel", "no such channel, or one the bot cannot see"),
    "not_in_channel": ("channel", "the bot is not a member of this channel: invite it"),
    "is_archived": ("channel", "the channel is archived"),
    "restricted_action": ("channel", "the workspace does not let the bot post here"),
    "restricted_action_read_only_channel": ("channel", "the channel is read-only"),
    "restricted_action_thread_only_channel": ("channel", "the channel takes only replies"),
    "restricted_action_non_threadable_channel": ("channel", "the channel takes no threads"),
    "messages_tab_disabled": ("channel", "this user's messages tab is disabled"),
    "team_access_not_granted": ("channel", "the bot has no access to that workspace"),
    "invalid_blocks": ("blocks", "Slack cannot render these blocks"),
    "invalid_blocks_format": ("blocks", "blocks must be a JSON array of block objects"),
    "msg_blocks_too_long": ("blocks", "the blocks are too long"),
    "msg_too_long": ("text", "the text is too long"),
    "no_text": ("text", "a message needs text or blocks"),
}
# Errors about Slack's state, not the request: worth retrying later.
_TRANSIENT = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "message_limit_exceeded",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)
# Errors about the bot's own token or scopes: the operator must fix the configuration.
_CREDENTIALS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "not_allowed_token_type",
        "no_permission",
        "access_denied",
        "ekm_access_denied",
        "org_login_required",
        "two_factor_setup_required",
        "enterprise_is_restricted",
    }
)


def slack_failure(error: SlackApiError) -> SlackRefused | SlackUnavailable:
    """What Slack's refusal means for the caller. A response slack_sdk could not read (not
    JSON) has no error code; its HTTP status decides."""
    response = error.response
    status = int(getattr(response, "status_code", 0) or getattr(response, "status", 0) or 0)
    data = getattr(response, "data", None)
    code = str(data.get("error") or "") if isinstance(data, dict) else ""
    if status == 429 or code in ("ratelimited", "rate_limited"):
        headers = getattr(response, "headers", None) or {}
        wait = max(1.0, retry_after(headers, UNAVAILABLE_RETRY_AFTER))
        return SlackUnavailable(f"Slack is rate limiting the bot ({code or status})", wait)
    if status >= 500 or code in _TRANSIENT:
        return SlackUnavailable(
            f"Slack is failing (HTTP {status}, {code or 'no error code'})", UNAVAILABLE_RETRY_AFTER
        )
    if code in _CREDENTIALS:
        return SlackUnavailable(
            f"Slack refuses the bot's token ({code}): check SLACK_BOT_TOKEN and the app's scopes",
            None,
        )
    if not code:
        return SlackUnavailable(f"Slack answered HTTP {status} without an error code", None)
    field, explanation = _REFUSALS.get(code, (None, "see Slack's chat.postMessage errors"))
    return SlackRefused(code, field, explanation)


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
        """Post to a channel (name or id); returns the channel id and ts Slack assigned.

        Raises SlackRefused when Slack refuses the message itself (resending it unchanged
        would be refused again), SlackUnavailable when Slack cannot take it now (after the
        client's own retries of 429, 5xx and connection errors) or refuses the bot's token."""
        try:
            response = await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        except SlackApiError as error:
            failure = slack_failure(error)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            failure = SlackUnavailable(
                f"Slack is unreachable ({type(error).__name__})", UNAVAILABLE_RETRY_AFTER
            )
        else:
            return {"channel": str(response["channel"]), "ts": str(response["ts"])}
        raise failure  # logged by the caller: the HTTP API, or the outbox as it retries

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
    client = web_client(token, base_url, pace=timing.alert_interval)
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
