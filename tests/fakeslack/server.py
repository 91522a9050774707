"""An in-process fake of Slack's Web API, response_url and Socket Mode endpoints.

The real slack_sdk / slack_bolt clients talk to it over HTTP and WebSocket on 127.0.0.1,
pointed at it only through `base_url` — nothing in the libraries is patched. Everything it
receives is recorded so tests can assert on what the bot actually sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import re
import socket
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict

from . import payloads as p
from .payloads import JSON, Workspace

T = TypeVar("T")

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")  # names are lowercase, ids uppercase
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
# Form-encoded Web API calls carry these as JSON strings; Slack decodes them.
_JSON_FIELDS = frozenset({"blocks", "attachments", "view", "metadata", "files"})
_BOT_SCOPES = "chat:write,chat:write.public,commands,users:read,usergroups:read,files:write"
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
_TRIGGER_TTL = 3.0  # Slack rejects trigger_ids older than 3 seconds
_RESPONSE_URL_MAX_USES = 5  # Slack allows 5 posts per response_url
_MESSAGE_MAX_BLOCKS = 50
_VIEW_MAX_BLOCKS = 100
_SECTION_TEXT_MAX = 3000
_DEFAULT_CHANNEL = "#general"
_HOST = "applink-fake-1"
_WS_ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ApiCall:
    """One Web API request as the fake received and answered it (failed attempts too)."""

    method: str
    http_method: str
    params: JSON
    headers: CIMultiDict[str] = field(repr=False)
    token: str | None
    at: float  # time.monotonic() on arrival
    status: int
    response: JSON

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return str(error) if error is not None else None


@dataclass(frozen=True)
class ResponseUrlPost:
    """A POST the app made to a response_url the fake issued."""

    response_url: str
    body: JSON
    headers: CIMultiDict[str] = field(repr=False)
    at: float
    status: int
    source: str  # payload type that carried the url: "slash_commands", "block_actions"
    channel_id: str
    user_id: str

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))

    @property
    def response_type(self) -> str:
        return str(self.body.get("response_type", "ephemeral"))

    @property
    def replace_original(self) -> bool:
        return bool(self.body.get("replace_original"))

    @property
    def delete_original(self) -> bool:
        return bool(self.body.get("delete_original"))


@dataclass(frozen=True)
class Ack(Mapping[str, Any]):
    """A Socket Mode acknowledgement; also readable like a dict (ack["payload"])."""

    envelope_id: str
    payload: JSON | None  # e.g. {"response_action": "errors", ...}; None for a bare ack
    latency: float  # seconds from the fake sending the envelope to receiving the ack
    received_at: float
    connection_id: str
    envelope: JSON = field(repr=False)  # what the fake sent
    message: JSON = field(repr=False)  # the raw ack frame

    def _as_dict(self) -> JSON:
        return {
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "latency": self.latency,
            "received_at": self.received_at,
            "connection_id": self.connection_id,
            "envelope": self.envelope,
            "message": self.message,
        }

    def __getitem__(self, key: str) -> Any:
        return self._as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_dict())

    def __len__(self) -> int:
        return len(self._as_dict())


@dataclass
class SocketConnection:
    id: str
    opened_at: float
    ws: web.WebSocketResponse = field(repr=False)
    closed_at: float | None = None
    envelope_ids: list[str] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.closed_at is not None


@dataclass
class UploadedFile:
    id: str
    filename: str
    length: int
    content: bytes | None = None  # None until the bytes reach the upload_url
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False


@dataclass
class _ResponseTarget:
    source: str
    channel_id: str
    user_id: str
    message_ts: str | None  # set when the url belongs to a message (clicks)
    ephemeral: bool = False
    uses: int = 0


@dataclass(frozen=True)
class _Fault:
    status: int
    retry_after: int
    error: str | None

    def reply(self) -> tuple[int, JSON, dict[str, str]]:
        if self.status == 429:
            headers = {"Retry-After": str(self.retry_after)}
            return 429, {"ok": False, "error": self.error or "ratelimited"}, headers
        default = "internal_error" if self.status >= 500 else "fatal_error"
        return self.status, {"ok": False, "error": self.error or default}, {}


class _SlackError(Exception):
    """Raised by method handlers; becomes {"ok": false, "error": ...}."""

    def __init__(
        self, error: str, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class _ApiRequest:
    params: JSON
    token: str

    def require(self, key: str, error: str = "invalid_arguments") -> Any:
        value = self.params.get(key)
        if value in (None, "", [], {}):
            raise _SlackError(error)
        return value


class _Signal:
    """Wakes every waiter whenever recorded state changes (no polling, no blind sleeps)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(
        self, probe: Callable[[], T | None], timeout: float, describe: Callable[[], str]
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (found := probe()) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {describe()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)
        return found


# ---------------------------------------------------------------------------- server


class FakeSlack:
    """Fake Slack on 127.0.0.1; use as `async with FakeSlack() as slack:`."""

    def __init__(
        self,
        workspace: Workspace | None = None,
        *,
        channel_rate_limit: int | None = None,
        any_token: bool = False,
    ) -> None:
        self.workspace = workspace or Workspace()
        # Max chat.postMessage per channel in any 1 s window before answering 429 (None: off).
        self.channel_rate_limit = channel_rate_limit
        # Like a Slack stand-in: any non-empty token for any method (no xoxb-/xapp- prefixes).
        self.any_token = any_token
        # False: like a stand-in that never answers a client's close frame (the connection
        # stays open until the fake stops), so a client waiting for the answer waits in vain.
        self.answers_close = True
        self._stopping = asyncio.Event()
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._changed = _Signal()
        self._ts = p.TsClock()
        self._down = False
        self._faults: defaultdict[str, deque[_Fault]] = defaultdict(deque)
        self._response_url_faults: deque[int] = deque()
        self._held: dict[str, asyncio.Event] = {}
        self._in_flight: defaultdict[str, int] = defaultdict(int)
        self._calls: list[ApiCall] = []
        self._messages: defaultdict[str, dict[str, JSON]] = defaultdict(dict)
        self._ephemerals: list[JSON] = []
        self._post_times: defaultdict[str, list[float]] = defaultdict(list)
        self._channel_names: dict[str, str] = {}
        self._joined: set[str] = set()
        self._users: dict[str, JSON] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._views: dict[str, JSON] = {}
        self._home_views: dict[str, JSON] = {}
        self._triggers: dict[str, float] = {}
        self._files: dict[str, UploadedFile] = {}
        self._response_targets: dict[str, _ResponseTarget] = {}
        self._responses: list[ResponseUrlPost] = []
        self._tickets: set[str] = set()
        self._connections: list[SocketConnection] = []
        self._round_robin = 0
        self._sent: dict[str, tuple[JSON, float, str]] = {}
        self._acks: dict[str, Ack] = {}
        self._methods: dict[str, Callable[[_ApiRequest], JSON]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{response_id}", self._handle_response_url)
        app.router.add_get("/link/", self._handle_link)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # ephemeral port, known before serving
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        self._stopping.set()
        for method in list(self._held):
            self.release(method)
        for connection in self.connections:
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ identity

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSlack is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    @property
    def team_id(self) -> str:
        return self.workspace.team_id

    @property
    def app_id(self) -> str:
        return self.workspace.app_id

    @property
    def bot_id(self) -> str:
        return self.workspace.bot_id

    @property
    def bot_user_id(self) -> str:
        return self.workspace.bot_user_id

    @property
    def user_id(self) -> str:
        return self.workspace.user_id

    # ------------------------------------------------------------------ configuration

    def set_usergroup(self, usergroup_id: str, user_ids: Sequence[str]) -> None:
        self._usergroups[usergroup_id] = list(user_ids)

    def add_user(self, user_id: str, *, name: str | None = None, is_admin: bool = False) -> JSON:
        self._users[user_id] = p.user_object(self.workspace, user_id, name=name, is_admin=is_admin)
        return self._users[user_id]

    def fail_next(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with an error.

        429 carries Retry-After and error "ratelimited"; 5xx answers {"ok": false}; status 200
        with `error` simulates an API-level failure such as "channel_not_found".
        """
        if status == 200 and error is None:
            raise ValueError("status=200 needs an error code")
        self._faults[method].extend(_Fault(status, retry_after, error) for _ in range(times))

    def fail_response_urls(self, status: int = 500, *, times: int = 1) -> None:
        """Answer the next `times` posts to any response_url with `status` (nothing applied)."""
        self._response_url_faults.extend([status] * times)

    def hold(self, method: str) -> None:
        """Let calls of `method` hang (no answer) until `release(method)` or the fake stops."""
        self._held.setdefault(method, asyncio.Event())

    def release(self, method: str) -> None:
        held = self._held.pop(method, None)
        if held is not None:
            held.set()

    def in_flight(self, method: str) -> int:
        """Calls of `method` received and not answered yet (held ones)."""
        return self._in_flight[method]

    def set_down(self, down: bool = True) -> None:
        """Take the Web API, uploads, response_urls and new WebSocket handshakes down (503)."""
        self._down = down

    @property
    def is_down(self) -> bool:
        return self._down

    # ------------------------------------------------------------------ inspection

    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[ApiCall]:
        """Recorded Web API calls, oldest first, including failed attempts unless ok=True."""
        return [
            call
            for call in self._calls
            if (method is None or call.method == method) and (ok is None or call.ok == ok)
        ]

    def clear_calls(self) -> None:
        """Forget recorded Web API calls (state such as messages is kept)."""
        self._calls.clear()

    def channel_id(self, channel: str) -> str:
        """Resolve "#name", "name", a channel id or a user id (DM) to the id Slack would use."""
        if _CHANNEL_ID.match(channel):
            self._channel_names.setdefault(channel, channel.lower())
            return channel
        if _USER_ID.match(channel):
            return p.dm_channel_id_for_user(channel)
        channel_id = p.channel_id_for_name(channel)
        self._channel_names.setdefault(channel_id, channel.lstrip("#").lower())
        return channel_id

    def messages(self, channel: str) -> list[JSON]:
        """Current state of the channel's messages (after updates/deletes), oldest first."""
        return copy.deepcopy(list(self._messages[self.channel_id(channel)].values()))

    def message(self, channel: str, ts: str) -> JSON:
        stored = self._messages[self.channel_id(channel)].get(ts)
        if stored is None:
            raise KeyError(f"no message {ts} in {channel}")
        return copy.deepcopy(stored)

    def latest_message(self, channel: str) -> JSON:
        messages = self.messages(channel)
        if not messages:
            raise KeyError(f"no messages in {channel}")
        return messages[-1]

    def ephemerals(self, channel: str | None = None, user_id: str | None = None) -> list[JSON]:
        """Ephemeral messages from chat.postEphemeral and response_url replies."""
        channel_id = self.channel_id(channel) if channel else None
        return [
            copy.deepcopy(e)
            for e in self._ephemerals
            if (channel_id is None or e["channel"] == channel_id)
            and (user_id is None or e["user"] == user_id)
        ]

    def post_times(self, channel: str) -> list[float]:
        """Monotonic arrival times of delivered chat.postMessage calls to the channel."""
        return list(self._post_times[self.channel_id(channel)])

    def peak_posts_per_second(self, channel: str, window: float = 1.0) -> int:
        """Most delivered posts to the channel within any sliding window of `window` s."""
        times = self.post_times(channel)
        return max(
            (sum(1 for t in times[i:] if t - start < window) for i, start in enumerate(times)),
            default=0,
        )

    def views(self) -> list[JSON]:
        return copy.deepcopy(list(self._views.values()))

    def view(self, view_id: str) -> JSON:
        return copy.deepcopy(self._views[view_id])

    def home_view(self, user_id: str) -> JSON | None:
        view = self._home_views.get(user_id)
        return copy.deepcopy(view) if view else None

    def files(self) -> list[UploadedFile]:
        return list(self._files.values())

    def file(self, file_id: str) -> UploadedFile:
        return self._files[file_id]

    def responses(self, response_url: str | None = None) -> list[ResponseUrlPost]:
        return [r for r in self._responses if response_url in (None, r.response_url)]

    @property
    def connections(self) -> list[SocketConnection]:
        """Currently open Socket Mode connections, oldest first."""
        return [c for c in self._connections if not c.closed]

    @property
    def all_connections(self) -> list[SocketConnection]:
        """Every Socket Mode connection ever accepted, including closed ones."""
        return list(self._connections)

    def acks(self) -> list[Ack]:
        return list(self._acks.values())

    # ------------------------------------------------------------------ waiting

    async def wait_until(
        self, condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition"
    ) -> None:
        """Wait until condition() holds; re-checked whenever the fake records something."""
        await self._changed.wait_for(lambda: True if condition() else None, timeout, lambda: what)

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 5.0,
        *,
        ok: bool | None = True,
    ) -> ApiCall:
        """First recorded call of `method` matching predicate; by default only successful ones."""
        calls = await self.wait_for_calls(method, 1, predicate, timeout, ok=ok)
        return calls[0]

    async def wait_for_calls(
        self,
        method: str,
        count: int,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 5.0,
        *,
        ok: bool | None = True,
    ) -> list[ApiCall]:
        def probe() -> list[ApiCall] | None:
            found = [c for c in self.calls(method, ok=ok) if predicate is None or predicate(c)]
            return found[:count] if len(found) >= count else None

        def describe() -> str:
            seen = [f"{c.method}:{c.status}:{c.error or 'ok'}" for c in self._calls]
            return f"{count}x {method} (ok={ok}); recorded: {seen}"

        return await self._changed.wait_for(probe, timeout, describe)

    async def wait_for_response(
        self,
        predicate: Callable[[ResponseUrlPost], bool] | None = None,
        timeout: float = 5.0,
        *,
        response_url: str | None = None,
    ) -> ResponseUrlPost:
        def probe() -> ResponseUrlPost | None:
            matches = self.responses(response_url)
            return next((r for r in matches if predicate is None or predicate(r)), None)

        def describe() -> str:
            return f"a response_url post; recorded: {[r.body for r in self._responses]}"

        return await self._changed.wait_for(probe, timeout, describe)

    async def wait_for_ack(self, envelope_id: str, timeout: float = 3.0) -> Ack:
        """The app's ack of an envelope; Slack gives up after 3 s, hence the default."""
        return await self._changed.wait_for(
            lambda: self._acks.get(envelope_id), timeout, lambda: f"ack of {envelope_id}"
        )

    async def wait_for_connections(
        self, count: int = 1, timeout: float = 5.0
    ) -> list[SocketConnection]:
        """Wait until at least `count` Socket Mode connections are open."""

        def probe() -> list[SocketConnection] | None:
            open_now = self.connections
            return open_now if len(open_now) >= count else None

        return await self._changed.wait_for(
            probe, timeout, lambda: f"{count} open connection(s), have {len(self.connections)}"
        )

    # ------------------------------------------------------------------ Socket Mode: sending

    async def send_envelope(
        self,
        envelope_type: str,
        payload: Mapping[str, Any],
        *,
        connection_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> str:
        """Deliver an envelope to an open connection (round-robin); returns its envelope_id.

        Like Slack, it holds the envelope until a connection is open (up to `timeout`), so an
        envelope sent while the client is refreshing its connection is not lost.
        """
        connection = await self._next_connection(connection_id, timeout)
        envelope = p.envelope(
            envelope_type,
            payload,
            accepts_response_payload=accepts_response_payload,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )
        envelope_id = str(envelope["envelope_id"])
        self._sent[envelope_id] = (envelope, time.monotonic(), connection.id)
        connection.envelope_ids.append(envelope_id)
        await connection.ws.send_json(envelope)
        return envelope_id

    async def send_disconnect(
        self, reason: str = "refresh_requested", *, connection_id: str | None = None
    ) -> str:
        """Send Slack's disconnect message (oldest connection by default); returns its id."""
        oldest = self.connections[0].id if self.connections else None
        connection = await self._next_connection(connection_id or oldest, timeout=0)
        await connection.ws.send_json(p.disconnect_message(reason, host=_HOST))
        return connection.id

    async def close_connections(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Drop every open connection from the server side, like a Slack-side outage."""
        for connection in self.connections:
            await connection.ws.close(code=code, message=b"fake slack closed the connection")

    async def _next_connection(self, connection_id: str | None, timeout: float) -> SocketConnection:
        def probe() -> list[SocketConnection] | None:
            matching = [c for c in self.connections if connection_id in (None, c.id)]
            return matching or None

        def describe() -> str:
            return f"an open Socket Mode connection ({connection_id or 'any'})"

        candidates = await self._changed.wait_for(probe, timeout, describe)
        self._round_robin += 1
        return candidates[self._round_robin % len(candidates)]

    # ------------------------------------------------------------------ Socket Mode: helpers

    async def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        user_id: str | None = None,
        channel_id: str = _DEFAULT_CHANNEL,
        timeout: float = 3.0,
        omit: Collection[str] = (),
    ) -> Ack:
        """Send a slash command as Slack does and return the app's ack; `omit` names payload
        fields to leave out (as a stand-in or a forged request might, e.g. "response_url")."""
        user = user_id or self.user_id
        channel = self.channel_id(channel_id)
        payload = p.slash_command(
            self.workspace,
            command,
            text,
            user_id=user,
            channel_id=channel,
            channel_name=self._channel_names.get(channel, channel.lower()),
            response_url=self._new_response_url("slash_commands", channel, user),
            trigger_id=self._issue_trigger(),
        )
        return await self._send_and_wait("slash_commands", _without(payload, omit), timeout)

    async def click_button(
        self,
        source: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        action_id: str,
        user_id: str | None = None,
        *,
        value: str | None = None,
        channel_id: str | None = None,
        timeout: float = 3.0,
        omit: Collection[str] = (),
    ) -> Ack:
        """Click the button `action_id` found in a message, a view, or a list of blocks;
        `omit` names payload fields to leave out (e.g. "container", "response_url")."""
        user = user_id or self.user_id
        if isinstance(source, Mapping) and source.get("type") in ("modal", "home"):
            payload = self._view_click(source, action_id, user, value)
        else:
            payload = self._message_click(source, action_id, user, value, channel_id)
        return await self._send_and_wait("interactive", _without(payload, omit), timeout)

    async def submit_view(
        self,
        view: Mapping[str, Any],
        user_id: str | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        timeout: float = 3.0,
    ) -> Ack:
        """Submit a modal with input values ({action_id: value} or {block_id: {action_id: v}})."""
        stored = self._views.get(str(view.get("id"))) if view.get("id") else None
        base = stored or (dict(view) if view.get("id") else p.view_object(self.workspace, view))
        submitted = {**base, "state": {"values": p.state_values(base, values)}}
        payload = p.view_submission(
            self.workspace,
            view=submitted,
            user_id=user_id or self.user_id,
            trigger_id=self._issue_trigger(),
        )
        return await self._send_and_wait("interactive", payload, timeout)

    async def open_home(self, user_id: str | None = None, *, timeout: float = 3.0) -> Ack:
        """Send an app_home_opened event for the user's Home tab."""
        user = user_id or self.user_id
        payload = p.app_home_opened(
            self.workspace,
            user_id=user,
            channel_id=p.dm_channel_id_for_user(user),
            view=self._home_views.get(user),
        )
        return await self._send_and_wait("events_api", payload, timeout)

    async def _send_and_wait(self, envelope_type: str, payload: JSON, timeout: float) -> Ack:
        envelope_id = await self.send_envelope(envelope_type, payload)
        return await self.wait_for_ack(envelope_id, timeout)

    def _message_click(
        self,
        source: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        action_id: str,
        user: str,
        value: str | None,
        channel_id: str | None,
    ) -> JSON:
        message: JSON | None = None
        if isinstance(source, Mapping):
            message = dict(source)
            blocks: list[JSON] = list(message.get("blocks", []))
        else:
            blocks = [dict(block) for block in source]
        block_id, element = p.find_element(blocks, action_id)
        ts = str(message["ts"]) if message and "ts" in message else self._ts.next()
        channel = self._channel_for_click(ts, channel_id)
        ephemeral = any(e["ts"] == ts for e in self._ephemerals)
        if message is None:
            message = p.bot_message(self.workspace, ts=ts, blocks=blocks)
        return p.block_actions(
            self.workspace,
            user_id=user,
            action=p.button_action(element, block_id=block_id, value=value),
            container=p.message_container(channel, ts, is_ephemeral=ephemeral),
            trigger_id=self._issue_trigger(),
            response_url=self._new_response_url("block_actions", channel, user, ts, ephemeral),
            channel={"id": channel, "name": self._channel_names.get(channel, channel.lower())},
            message=None if ephemeral else message,  # Slack omits ephemeral message bodies
        )

    def _view_click(
        self, view: Mapping[str, Any], action_id: str, user: str, value: str | None
    ) -> JSON:
        block_id, element = p.find_element(view.get("blocks", []), action_id)
        return p.block_actions(
            self.workspace,
            user_id=user,
            action=p.button_action(element, block_id=block_id, value=value),
            container=p.view_container(view),
            trigger_id=self._issue_trigger(),
            view=view,
        )

    def _channel_for_click(self, ts: str, channel_id: str | None) -> str:
        if channel_id:
            return self.channel_id(channel_id)
        for channel, messages in self._messages.items():
            if ts in messages:
                return channel
        for ephemeral in self._ephemerals:
            if ephemeral["ts"] == ts:
                return str(ephemeral["channel"])
        return self.channel_id(_DEFAULT_CHANNEL)

    def _issue_trigger(self) -> str:
        trigger = p.new_trigger_id(self.workspace)
        self._triggers[trigger] = time.monotonic()
        return trigger

    def _new_response_url(
        self,
        source: str,
        channel_id: str,
        user_id: str,
        message_ts: str | None = None,
        ephemeral: bool = False,
    ) -> str:
        response_id = uuid.uuid4().hex
        self._response_targets[response_id] = _ResponseTarget(
            source, channel_id, user_id, message_ts, ephemeral
        )
        return f"{self.base_url}/response/{response_id}"

    # ------------------------------------------------------------------ HTTP: Web API

    async def _handle_api(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        method = request.match_info["method"]
        params, form_token = await _read_params(request)
        token = _bearer_token(request) or form_token
        held = self._held.get(method)
        if held is not None:
            self._in_flight[method] += 1
            self._changed.notify()
            try:
                await held.wait()
            finally:
                self._in_flight[method] -= 1
        status, body, headers = self._answer(method, params, token)
        self._calls.append(
            ApiCall(
                method=method,
                http_method=request.method,
                params=params,
                headers=CIMultiDict(request.headers),
                token=token,
                at=arrived,
                status=status,
                response=body,
            )
        )
        self._changed.notify()
        return web.json_response(
            body, status=status, headers={"X-OAuth-Scopes": _BOT_SCOPES, **headers}
        )

    def _answer(
        self, method: str, params: JSON, token: str | None
    ) -> tuple[int, JSON, dict[str, str]]:
        if self._down:
            return 503, {"ok": False, "error": "service_unavailable"}, {}
        if self._faults[method]:
            return self._faults[method].popleft().reply()
        handler = self._methods.get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        try:
            request = _ApiRequest(params, _checked_token(method, token, self.any_token))
            return 200, {"ok": True, **handler(request)}, {}
        except _SlackError as e:
            return e.status, {"ok": False, "error": e.error}, e.headers

    # auth / apps

    def _auth_test(self, req: _ApiRequest) -> JSON:
        ws = self.workspace
        is_bot = not req.token.startswith("xoxp-")  # only bot and user tokens get here
        result: JSON = {
            "url": f"https://{ws.team_domain}.slack.com/",
            "team": ws.team_domain,
            "user": ws.bot_name if is_bot else ws.user_id.lower(),
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id if is_bot else ws.user_id,
            "is_enterprise_install": False,
        }
        if is_bot:
            result["bot_id"] = ws.bot_id
        return result

    def _apps_connections_open(self, req: _ApiRequest) -> JSON:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"}

    # chat

    def _chat_post_message(self, req: _ApiRequest) -> JSON:
        channel = self.channel_id(str(req.require("channel", "channel_not_found")))
        text, blocks = _message_content(req.params)
        self._enforce_channel_rate(channel)
        message = p.bot_message(
            self.workspace,
            ts=self._ts.next(),
            text=text,
            blocks=blocks,
            attachments=req.params.get("attachments"),
            thread_ts=req.params.get("thread_ts"),
            metadata=req.params.get("metadata"),
        )
        self._messages[channel][message["ts"]] = message
        self._post_times[channel].append(time.monotonic())
        return {"channel": channel, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _enforce_channel_rate(self, channel: str) -> None:
        """Slack allows ~1 message per second per channel and answers bursts with 429."""
        if self.channel_rate_limit is None:
            return
        now = time.monotonic()
        recent = [t for t in self._post_times[channel] if now - t < 1.0]
        if len(recent) >= self.channel_rate_limit:
            retry_after = max(1, math.ceil(1.0 - (now - recent[0])))
            raise _SlackError("ratelimited", 429, {"Retry-After": str(retry_after)})

    def _chat_update(self, req: _ApiRequest) -> JSON:
        channel = self.channel_id(str(req.require("channel", "channel_not_found")))
        ts = str(req.require("ts", "message_not_found"))
        message = self._messages[channel].get(ts)
        if message is None:
            raise _SlackError("message_not_found")
        text, blocks = _message_content(req.params)
        message["text"] = text
        if "blocks" in req.params:
            message["blocks"] = p.with_block_ids(blocks)
        if "attachments" in req.params:
            message["attachments"] = req.params["attachments"]
        message["edited"] = {"user": self.bot_user_id, "ts": self._ts.next()}
        return {"channel": channel, "ts": ts, "text": text, "message": copy.deepcopy(message)}

    def _chat_post_ephemeral(self, req: _ApiRequest) -> JSON:
        channel = self.channel_id(str(req.require("channel", "channel_not_found")))
        user = str(req.require("user", "user_not_found"))
        text, blocks = _message_content(req.params)
        ts = self._add_ephemeral(channel, user, text, blocks, "chat.postEphemeral")
        return {"message_ts": ts}

    def _add_ephemeral(
        self, channel: str, user: str, text: str, blocks: list[JSON], source: str
    ) -> str:
        message = p.bot_message(self.workspace, ts=self._ts.next(), text=text, blocks=blocks)
        self._ephemerals.append({**message, "channel": channel, "user": user, "source": source})
        return str(message["ts"])

    def _chat_delete(self, req: _ApiRequest) -> JSON:
        channel = self.channel_id(str(req.require("channel", "channel_not_found")))
        ts = str(req.require("ts", "message_not_found"))
        if self._messages[channel].pop(ts, None) is None:
            raise _SlackError("message_not_found")
        return {"channel": channel, "ts": ts}

    # views

    def _views_open(self, req: _ApiRequest) -> JSON:
        self._check_trigger(str(req.require("trigger_id")))
        view = self._store_view(p.view_object(self.workspace, _view_param(req)))
        return {"view": view}

    def _views_push(self, req: _ApiRequest) -> JSON:
        self._check_trigger(str(req.require("trigger_id")))
        view = p.view_object(self.workspace, _view_param(req))
        return {"view": self._store_view(view)}

    def _views_update(self, req: _ApiRequest) -> JSON:
        old = self._find_view(req.params.get("view_id"), req.params.get("external_id"))
        if req.params.get("hash") and req.params["hash"] != old["hash"]:
            raise _SlackError("hash_conflict")
        view = p.view_object(self.workspace, _view_param(req), view_id=old["id"])
        view["root_view_id"] = old["root_view_id"]
        view["previous_view_id"] = old["previous_view_id"]
        return {"view": self._store_view(view)}

    def _views_publish(self, req: _ApiRequest) -> JSON:
        user = str(req.require("user_id", "user_not_found"))
        old = self._home_views.get(user)
        view = p.view_object(self.workspace, _view_param(req), view_id=old["id"] if old else None)
        self._home_views[user] = view
        return {"view": self._store_view(view)}

    def _store_view(self, view: JSON) -> JSON:
        self._views[view["id"]] = view
        return copy.deepcopy(view)

    def _find_view(self, view_id: str | None, external_id: str | None) -> JSON:
        for view in self._views.values():
            if (view_id and view["id"] == view_id) or (
                external_id and view["external_id"] == external_id
            ):
                return view
        raise _SlackError("not_found")

    def _check_trigger(self, trigger: str) -> None:
        issued = self._triggers.get(trigger)
        if issued is not None and time.monotonic() - issued > _TRIGGER_TTL:
            raise _SlackError("expired_trigger_id")

    # users / groups / conversations

    def _users_info(self, req: _ApiRequest) -> JSON:
        user = str(req.require("user", "user_not_found"))
        if user not in self._users and not _USER_ID.match(user):
            raise _SlackError("user_not_found")
        return {"user": self._users.get(user) or self.add_user(user)}

    def _usergroups_users_list(self, req: _ApiRequest) -> JSON:
        group = str(req.require("usergroup", "no_such_subteam"))
        if group not in self._usergroups:
            raise _SlackError("no_such_subteam")
        return {"users": list(self._usergroups[group])}

    def _conversations_info(self, req: _ApiRequest) -> JSON:
        channel = self.channel_id(str(req.require("channel", "channel_not_found")))
        return {"channel": self._channel_object(channel)}

    def _conversations_join(self, req: _ApiRequest) -> JSON:
        channel = self.channel_id(str(req.require("channel", "channel_not_found")))
        already = channel in self._joined
        self._joined.add(channel)
        result: JSON = {"channel": self._channel_object(channel)}
        if already:
            result["warning"] = "already_in_channel"
        return result

    def _channel_object(self, channel: str) -> JSON:
        name = self._channel_names.get(channel, channel.lower())
        return p.channel_object(channel, name=name, is_member=channel in self._joined)

    # files

    def _files_get_upload_url(self, req: _ApiRequest) -> JSON:
        filename = str(req.require("filename"))
        length = int(req.require("length", "invalid_length"))
        file_id = p.new_id("F", 11)
        self._files[file_id] = UploadedFile(id=file_id, filename=filename, length=length)
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, req: _ApiRequest) -> JSON:
        entries = req.require("files")
        channels = _channel_list(req.params)
        shared = [self._complete_file(entry, req.params, channels) for entry in entries]
        for channel in channels:
            self._share_files(self.channel_id(channel), shared, req.params)
        return {"files": shared}

    def _complete_file(self, entry: Mapping[str, Any], params: JSON, channels: list[str]) -> JSON:
        upload = self._files.get(str(entry.get("id")))
        if upload is None or upload.content is None:
            raise _SlackError("file_not_found")
        upload.title = entry.get("title") or upload.filename
        upload.channels = [self.channel_id(c) for c in channels]
        upload.initial_comment = params.get("initial_comment")
        upload.thread_ts = params.get("thread_ts")
        upload.completed = True
        return {
            "id": upload.id,
            "name": upload.filename,
            "title": upload.title,
            "size": len(upload.content),
            "user": self.bot_user_id,
            "created": int(time.time()),
        }

    def _share_files(self, channel: str, files: list[JSON], params: JSON) -> None:
        message = p.bot_message(
            self.workspace,
            ts=self._ts.next(),
            text=str(params.get("initial_comment") or ""),
            thread_ts=params.get("thread_ts"),
        )
        message["files"] = copy.deepcopy(files)
        message["upload"] = True
        self._messages[channel][message["ts"]] = message

    async def _handle_upload(self, request: web.Request) -> web.Response:
        upload = self._files.get(request.match_info["file_id"])
        if self._down:
            return web.Response(status=503, text="service unavailable")
        if upload is None:
            return web.Response(status=404, text="not found")
        upload.content = await _read_upload_body(request)
        self._changed.notify()
        # files.slack.com answers in plain text, which slack_sdk reads as such
        return web.Response(text=f"OK - {len(upload.content)}")

    # ------------------------------------------------------------------ HTTP: response_url

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        response_id = request.match_info["response_id"]
        body = await request.json()
        target = self._response_targets.get(response_id)
        status, reply = self._apply_response(target, body)
        if target is not None:
            self._responses.append(
                ResponseUrlPost(
                    response_url=str(request.url),
                    body=body,
                    headers=CIMultiDict(request.headers),
                    at=arrived,
                    status=status,
                    source=target.source,
                    channel_id=target.channel_id,
                    user_id=target.user_id,
                )
            )
        self._changed.notify()
        return web.json_response(reply, status=status)

    def _apply_response(self, target: _ResponseTarget | None, body: JSON) -> tuple[int, JSON]:
        """Apply a response_url post to the stored messages as Slack would."""
        if self._down:
            return 503, {"ok": False, "error": "service_unavailable"}
        if target is None:
            return 404, {"ok": False, "error": "expired_url"}
        if self._response_url_faults:
            return self._response_url_faults.popleft(), {"ok": False, "error": "fake_failure"}
        target.uses += 1
        if target.uses > _RESPONSE_URL_MAX_USES:
            return 404, {"ok": False, "error": "used_url"}
        text, blocks = str(body.get("text", "")), list(body.get("blocks") or [])
        original = self._original_message(target)
        if body.get("delete_original"):
            self._delete_original(target)
        elif body.get("replace_original") and original is not None:
            original.update(text=text, blocks=p.with_block_ids(blocks))
        elif body.get("response_type") == "in_channel":
            message = p.bot_message(self.workspace, ts=self._ts.next(), text=text, blocks=blocks)
            self._messages[target.channel_id][message["ts"]] = message
        else:
            self._add_ephemeral(target.channel_id, target.user_id, text, blocks, "response_url")
        return 200, {"ok": True}

    def _original_message(self, target: _ResponseTarget) -> JSON | None:
        """The stored message (channel or ephemeral) the response_url was issued for."""
        if target.message_ts is None:
            return None
        if not target.ephemeral:
            return self._messages[target.channel_id].get(target.message_ts)
        return next((e for e in self._ephemerals if e["ts"] == target.message_ts), None)

    def _delete_original(self, target: _ResponseTarget) -> None:
        if target.message_ts is None:
            return
        self._messages[target.channel_id].pop(target.message_ts, None)
        self._ephemerals = [e for e in self._ephemerals if e["ts"] != target.message_ts]

    # ------------------------------------------------------------------ WebSocket: /link/

    async def _handle_link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if self._down:
            return web.Response(status=503, text="service unavailable")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)  # a ticket opens one connection
        # autoping answers sdk pings; a close frame is answered below (or not: answers_close)
        ws = web.WebSocketResponse(autoping=True, timeout=2.0, autoclose=False)
        await ws.prepare(request)
        connection = SocketConnection(id=uuid.uuid4().hex[:8], opened_at=time.monotonic(), ws=ws)
        hello = p.hello_message(
            self.workspace, num_connections=len(self.connections) + 1, host=_HOST
        )
        await ws.send_json(hello)  # hello first: nothing may overtake it on this connection
        self._connections.append(connection)
        self._changed.notify()
        try:
            while (frame := await ws.receive()).type not in _WS_ENDED:
                if frame.type == WSMsgType.TEXT:
                    self._on_client_frame(connection, frame.data)
            if frame.type == WSMsgType.CLOSE:
                connection.closed_at = time.monotonic()
                self._changed.notify()
                if not self.answers_close:
                    await self._stopping.wait()  # never answered: the client waits in vain
                await ws.close()
        finally:
            connection.closed_at = connection.closed_at or time.monotonic()
            self._changed.notify()
        return ws

    def _on_client_frame(self, connection: SocketConnection, data: str) -> None:
        frame = json.loads(data)
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        if envelope_id is None:
            return
        received = time.monotonic()
        envelope, sent_at, _ = self._sent.get(envelope_id, ({}, received, connection.id))
        self._acks[envelope_id] = Ack(
            envelope_id=envelope_id,
            payload=frame.get("payload"),
            latency=received - sent_at,
            received_at=received,
            connection_id=connection.id,
            envelope=envelope,
            message=frame,
        )
        self._changed.notify()


# ---------------------------------------------------------------------------- request parsing


async def _read_params(request: web.Request) -> tuple[JSON, str | None]:
    """Merge query string and body the way Slack does; returns (params, token param)."""
    params: JSON = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    # Slack ignores a token inside a JSON body; it must come as header, query or form field.
    token = request.query.get("token") or (
        params.get("token") if request.content_type != "application/json" else None
    )
    params.pop("token", None)
    return {k: _decode_json_field(k, v) for k, v in params.items()}, token


def _decode_json_field(key: str, value: Any) -> Any:
    if key in _JSON_FIELDS and isinstance(value, str) and value[:1] in ("[", "{"):
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(value)
    return value


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _checked_token(method: str, token: str | None, any_token: bool = False) -> str:
    """Validate presence and type of the token the way Slack does (`any_token`: presence only)."""
    if not token:
        raise _SlackError("not_authed")
    if any_token:
        return token
    is_app_token = token.startswith("xapp-")
    if (method in _APP_TOKEN_METHODS) != is_app_token:
        raise _SlackError("not_allowed_token_type")
    if not is_app_token and not token.startswith(("xoxb-", "xoxp-")):
        raise _SlackError("invalid_auth")
    return token


def _without(payload: JSON, omit: Collection[str]) -> JSON:
    unknown = set(omit) - set(payload)
    if unknown:
        raise KeyError(f"the payload has no {sorted(unknown)} to leave out")
    return {key: value for key, value in payload.items() if key not in omit}


def _message_content(params: JSON) -> tuple[str, list[JSON]]:
    """Text and validated blocks of a message; Slack needs at least one of them."""
    text = str(params.get("text") or "")
    blocks = params.get("blocks") or []
    if not text and not blocks and not params.get("attachments"):
        raise _SlackError("no_text")
    _validate_blocks(blocks, _MESSAGE_MAX_BLOCKS, "invalid_blocks")
    return text, blocks


def _view_param(req: _ApiRequest) -> JSON:
    view = req.require("view")
    if not isinstance(view, dict):
        raise _SlackError("invalid_arguments")
    _validate_blocks(view.get("blocks") or [], _VIEW_MAX_BLOCKS, "invalid_arguments")
    return view


def _validate_blocks(blocks: Any, limit: int, error: str) -> None:
    """The Block Kit limits that bite in production: count, type, unique ids, text length."""
    if not isinstance(blocks, list) or len(blocks) > limit:
        raise _SlackError(error)
    block_ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    if len(block_ids) != len(set(block_ids)):
        raise _SlackError(error)
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            raise _SlackError(error)
        text = block.get("text")
        if isinstance(text, dict) and len(str(text.get("text", ""))) > _SECTION_TEXT_MAX:
            raise _SlackError(error)


def _channel_list(params: JSON) -> list[str]:
    channels = [c for c in str(params.get("channels") or "").split(",") if c]
    if params.get("channel_id"):
        channels.insert(0, str(params["channel_id"]))
    return channels


async def _read_upload_body(request: web.Request) -> bytes:
    """Raw bytes (what slack_sdk sends) or the file part of a multipart form."""
    if not request.content_type.startswith("multipart/"):
        return await request.read()
    reader = await request.multipart()
    async for part in reader:
        if getattr(part, "filename", None):
            return bytes(await part.read())  # type: ignore[union-attr]
    return b""
