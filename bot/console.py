"""Console mode: the real Bolt handlers driven from a terminal, no Slack needed.

As Hubot's shell adapter and Errbot's text backend do, a person types `/param …` as a
chosen user. Nothing of Bolt is patched: each line becomes a Slack-shaped payload given to
`AsyncApp.async_dispatch`, and the app's Web API client points at ConsoleSlack, a tiny
in-process Slack on 127.0.0.1 that prints what the bot sends (chat.postMessage,
chat.update, chat.postEphemeral, views.open, views.publish, response_url replies) and
saves the charts it uploads (files.upload_v2) to a folder whose path it prints.
Buttons are pressed by typing their number, forms are filled field by field, and alerts
for blocked trades reported to the HTTP server arrive through the same outbox deliverer
as in Slack. Without a terminal it reads commands line by line and stops at the end of
its input, so it can be scripted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import socket
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.app import SlackBot, SlackTiming, build_bot
from bot.runtime import Runtime
from bot.slack import SlackParts

log = logging.getLogger(__name__)

CONSOLE_USER = "U0CONSOLE"  # granted admin in console mode
CHANNEL_ID, CHANNEL_NAME = "C0CONSOLE", "console"
TEAM_ID = "T0CONSOLE"
BOT_USER = "U0PARAMADAPT"
LOCAL_TOKEN = "xoxb-console-local"  # noqa: S105  # not a secret: only ConsoleSlack sees it

JSON = dict[str, Any]

CHARTS_DIR = Path(tempfile.gettempdir()) / "paramadapt-charts"


def build_console(
    runtime: Runtime, user_id: str, stop: asyncio.Event, timing: SlackTiming
) -> SlackParts:
    screen = Screen(sys.stdout)
    fake = ConsoleSlack(screen)
    bot = build_bot(
        runtime,
        LOCAL_TOKEN,
        fake.api_url,
        extra_admins=[CONSOLE_USER],
        # Finish each command before the next prompt, so the transcript reads in order.
        process_before_response=True,
        timing=timing,
    )
    prompt = ConsolePrompt(bot, fake, screen, user_id, stop)
    return SlackParts(bot, backend=[fake, bot.alerts], frontend=[prompt])


# ---------------------------------------------------------------------------- rendering


_EMOJI = {
    "warning": "⚠",
    "white_check_mark": "✅",
    "x": "❌",
    "no_entry_sign": "🚫",
    "hourglass": "⌛",
    "lock": "🔒",
}
_LINK = re.compile(r"<([^>|]+)\|([^>]+)>")
_MENTION = re.compile(r"<[@#!]([^>|]+)>")
_EMPHASIS = [  # *bold* and _italic_, only as whole words (not snake_case names)
    re.compile(rf"(?<![\w{m}])\{m}(\S(?:[^{m}\n]*\S)?)\{m}(?![\w{m}])") for m in "*_"
]
_EMOJI_CODE = re.compile(r":([a-z_]+):")


def plain(mrkdwn: str) -> str:
    """Slack mrkdwn as terminal text: mentions as @U…, links as their label, no markup."""
    text = _LINK.sub(r"\2", mrkdwn)
    text = _MENTION.sub(lambda m: ("@" if m[0][1] == "@" else "") + m[1], text)
    for emphasis in _EMPHASIS:
        text = emphasis.sub(r"\1", text)
    text = text.replace("`", "")
    text = _EMOJI_CODE.sub(lambda m: _EMOJI.get(m[1], m[0]), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: Any) -> str:
    return plain(str(obj.get("text", ""))) if isinstance(obj, dict) else ""


@dataclass(frozen=True)
class Button:
    channel: str
    ts: str
    block_id: str
    element: JSON


class Screen:
    """Prints messages and views; numbers every button it shows."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._numbers = itertools.count(1)
        self.buttons: dict[int, Button] = {}

    def say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def message(self, where: str, message: JSON, ts: str = "", note: str = "") -> None:
        self.say(f"\n{where} │ paramadapt{note}")
        lines = self._blocks(message.get("blocks") or [], where, ts)
        self._indented(lines or [plain(str(message.get("text", "")))])

    def view(self, view: JSON, heading: str) -> None:
        self.say(f"\n── {heading} ──")
        self._indented(self._blocks(view.get("blocks") or [], "", ""))

    def _indented(self, lines: Sequence[str]) -> None:
        self.say("\n".join(f"  {line}" for line in "\n".join(lines).splitlines()))

    def _blocks(self, blocks: Sequence[JSON], channel: str, ts: str) -> list[str]:
        lines: list[str] = []
        for block in blocks:
            kind = block.get("type")
            if kind == "header":
                lines.append(f"{_text(block.get('text')).upper()}")
            elif kind == "section":
                lines += self._section(block)
            elif kind == "context":
                lines.append("· " + "  ".join(_text(e) for e in block.get("elements", [])))
            elif kind == "divider":
                lines.append("─" * 40)
            elif kind == "actions":
                where = Button(channel, ts, str(block.get("block_id", "")), {})
                labels = [self._button(e, where) for e in block.get("elements", [])]
                lines.append("   ".join(labels))
            elif kind == "input":
                lines.append(f"{_text(block.get('label'))}: …")
        return lines

    def _section(self, block: JSON) -> list[str]:
        lines = [_text(block.get("text"))] if block.get("text") else []
        fields = [_text(field).replace("\n", ": ", 1) for field in block.get("fields", [])]
        lines += ["   ".join(fields[i : i + 2]) for i in range(0, len(fields), 2)]
        return lines

    def _button(self, element: JSON, where: Button) -> str:
        label = _text(element.get("text"))
        if element.get("type") != "button" or not where.ts:
            return f"[{label}]"
        number = next(self._numbers)
        self.buttons[number] = replace(where, element=element)
        return f"[{number}] {label}"


# ---------------------------------------------------------------------------- the fake Slack


@dataclass
class _Target:
    """Where a response_url reply goes."""

    channel: str
    user: str
    message_ts: str | None = None


class ConsoleSlack:
    """The Web API methods and response_urls the bot uses, printed instead of sent."""

    def __init__(self, screen: Screen) -> None:
        self._screen = screen
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))  # the port is known before the bot is built
        self._port = int(self._socket.getsockname()[1])
        self._runner: web.AppRunner | None = None
        self._ts = itertools.count(int(time.time() * 1_000_000))
        self.messages: dict[tuple[str, str], JSON] = {}
        self.forms: list[JSON] = []  # views.open waiting to be filled in at the prompt
        self._targets: dict[str, _Target] = {}
        self._uploads: dict[str, Path] = {}  # file id -> where its bytes go
        self._methods: dict[str, Callable[[JSON], JSON]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post,
            "chat.update": self._update,
            "chat.postEphemeral": self._ephemeral,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._uploaded,
            "usergroups.users.list": lambda _params: {"users": []},
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, channel: str, user: str, message_ts: str | None = None) -> str:
        target = uuid.uuid4().hex
        self._targets[target] = _Target(channel, user, message_ts)
        return f"{self.base_url}/response/{target}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/response/{target}", self._response)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _api(self, request: web.Request) -> web.Response:
        method = self._methods.get(request.match_info["method"])
        if method is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response({"ok": True, **method(await _params(request))})

    def _auth_test(self, _params: JSON) -> JSON:
        return {
            "user_id": BOT_USER,
            "bot_id": "B0PARAMADAPT",
            "team_id": TEAM_ID,
            "team": "console",
        }

    def _post(self, params: JSON) -> JSON:
        channel, ts = str(params.get("channel")), self._next_ts()
        self.messages[(channel, ts)] = params
        self._screen.message(_where(channel), params, ts)
        return {"channel": channel, "ts": ts}

    def _update(self, params: JSON) -> JSON:
        channel, ts = str(params.get("channel")), str(params.get("ts"))
        self.messages[(channel, ts)] = params
        self._screen.message(_where(channel), params, ts, note=" (updated)")
        return {"channel": channel, "ts": ts}

    def _ephemeral(self, params: JSON) -> JSON:
        self._screen.message(f"{_where(str(params.get('channel')))} (only you)", params)
        return {"message_ts": self._next_ts()}

    def _views_open(self, params: JSON) -> JSON:
        self.forms.append(params["view"])
        return {"view": {**params["view"], "id": f"V{uuid.uuid4().hex[:10].upper()}"}}

    def _views_publish(self, params: JSON) -> JSON:
        self._screen.view(params["view"], f"App Home of {params.get('user_id')}")
        return {"view": params["view"]}

    def _upload_url(self, params: JSON) -> JSON:
        file_id = f"F{uuid.uuid4().hex[:10].upper()}"
        name = Path(str(params.get("filename") or "chart.png")).name  # never a path of Slack's
        self._uploads[file_id] = CHARTS_DIR / f"{file_id}-{name}"
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        path = self._uploads.get(request.match_info["file_id"])
        if path is None:
            return web.Response(status=404, text="not found")
        content = await request.read()
        await asyncio.to_thread(_save, path, content)
        return web.Response(text=f"OK - {len(content)}")

    def _uploaded(self, params: JSON) -> JSON:
        files = [f for f in params.get("files", []) if str(f.get("id")) in self._uploads]
        for file in files:
            path = self._uploads[str(file["id"])]
            title = file.get("title") or path.name
            channel = str(params.get("channel_id") or params.get("channels") or CHANNEL_ID)
            self._screen.message(_where(channel), {"text": f"📈 {title}: {path}"})
        return {"files": files}

    async def _response(self, request: web.Request) -> web.Response:
        target = self._targets.get(request.match_info["target"])
        if target is None:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        body = await request.json()
        where = _where(target.channel)
        if body.get("replace_original") and target.message_ts:
            self._update({**body, "channel": target.channel, "ts": target.message_ts})
        elif body.get("response_type") == "in_channel":
            self._post({**body, "channel": target.channel})
        else:
            self._screen.message(f"{where} (only you)", body)
        return web.json_response({"ok": True})

    def _next_ts(self) -> str:
        micros = max(next(self._ts), int(time.time() * 1_000_000))
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _save(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _where(channel: str) -> str:
    name = CHANNEL_NAME if channel == CHANNEL_ID else channel.lstrip("#")
    return f"#{name}"


async def _params(request: web.Request) -> JSON:
    """Web API arguments as slack_sdk sends them: JSON, a form, or a query string."""
    params: JSON = dict(request.query)
    if request.content_type == "application/json":
        params.update(await request.json())
    elif request.method == "POST":
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    for key in ("blocks", "view", "files"):
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params


# ---------------------------------------------------------------------------- the prompt


HELP = (
    "Type /param help for the commands, a number to press that button, "
    "'home' for the App Home, 'quit' to stop."
)


class ConsolePrompt:
    """Reads lines and turns each into the Slack request it stands for."""

    def __init__(
        self, bot: SlackBot, fake: ConsoleSlack, screen: Screen, user_id: str, stop: asyncio.Event
    ) -> None:
        self._bot = bot
        self._fake = fake
        self._screen = screen
        self._user = user_id
        self._stop = stop
        self._interactive = sys.stdin.isatty()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if _stdin_is_null():
            log.info("console mode: stdin is /dev/null, so no prompt; the HTTP server runs alone")
            return
        loop = asyncio.get_running_loop()
        threading.Thread(target=_read_lines, args=(loop, self._lines), daemon=True).start()
        self._task = asyncio.create_task(self._run(), name="console")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        role = " (admin in console mode)" if self._user == CONSOLE_USER else ""
        self._screen.say(f"paramadapt console: you are {self._user}{role}. {HELP}")
        while (line := await self._ask("> ")) is not None:
            try:
                if not await self._handle(line.strip()):
                    break
                await self._settle()
            except Exception:
                log.exception("console: %r failed", line)
        self._stop.set()

    async def _settle(self, limit: float = 3.0) -> None:
        """Let the outbox deliver what the line caused (alerts, announcements) before the next
        prompt, so the transcript reads in order; bounded, in case delivery keeps failing."""
        runtime = self._bot.runtime
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                while any(t.startswith("slack.") for t in await runtime.outbox.pending()):
                    runtime.wake_dispatchers()
                    await asyncio.sleep(0.02)

    async def _ask(self, prompt: str) -> str | None:
        if self._interactive:
            print(prompt, end="", flush=True)
        line = await self._lines.get()
        if line is not None and not self._interactive:
            self._screen.say(f"{prompt}{line.rstrip()}")  # a scripted transcript shows its input
        return line

    async def _handle(self, line: str) -> bool:
        """Act on one line; False to quit."""
        if line in ("quit", "exit"):
            return False
        if line.startswith("/param"):
            await self._command(line.removeprefix("/param").strip())
        elif line.isdigit():
            await self._press(int(line))
        elif line == "home":
            await self._dispatch(_home_opened(self._user))
        elif line:
            self._screen.say(HELP)
        return True

    async def _command(self, text: str) -> None:
        payload = {
            "command": "/param",
            "text": text,
            "user_id": self._user,
            "user_name": self._user.lower(),
            "channel_id": CHANNEL_ID,
            "channel_name": CHANNEL_NAME,
            "team_id": TEAM_ID,
            "response_url": self._fake.response_url(CHANNEL_ID, self._user),
            "trigger_id": _trigger_id(),
        }
        await self._dispatch(payload)
        while self._fake.forms:
            await self._fill(self._fake.forms.pop(0))

    async def _press(self, number: int) -> None:
        button = self._screen.buttons.get(number)
        current = self._fake.messages.get((button.channel, button.ts)) if button else None
        if button is None or current is None or not _still_shown(current, button.element):
            self._screen.say(f"there is no button [{number}] (any more)")
            return
        confirm = button.element.get("confirm")
        if confirm:
            question = f"{_text(confirm.get('title'))} {_text(confirm.get('text'))} [y/N] "
            answer = await self._ask(question)
            if (answer or "").strip().lower() not in ("y", "yes"):
                self._screen.say("cancelled")
                return
        await self._dispatch(self._click(button, current))

    def _click(self, button: Button, message: JSON) -> JSON:
        element = button.element
        return {
            "type": "block_actions",
            "user": {"id": self._user, "name": self._user.lower(), "team_id": TEAM_ID},
            "team": {"id": TEAM_ID},
            "channel": {"id": button.channel},
            "container": {
                "type": "message",
                "channel_id": button.channel,
                "message_ts": button.ts,
                "is_ephemeral": False,
            },
            "message": {**message, "ts": button.ts},
            "trigger_id": _trigger_id(),
            "response_url": self._fake.response_url(button.channel, self._user, button.ts),
            "actions": [
                {
                    "type": "button",
                    "action_id": element.get("action_id"),
                    "block_id": button.block_id,
                    "value": element.get("value"),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    async def _fill(self, view: JSON) -> None:
        """Ask for each input of a form, submit it, and ask again while Slack would refuse it."""
        answers: dict[str, str] = {}
        inputs = [block for block in view.get("blocks", []) if block.get("type") == "input"]
        self._screen.say(f"\n── {_text(view.get('title'))} ── (Enter keeps [the value]; 'cancel')")
        while True:
            for block in inputs:
                element = block.get("element", {})
                shown = answers.get(block["block_id"], str(element.get("initial_value", "")))
                hint = f" ({_text(block['hint'])})" if block.get("hint") else ""
                answer = await self._ask(f"{_text(block.get('label'))}{hint} [{shown}]: ")
                if answer is None or answer.strip() == "cancel":
                    self._screen.say("form cancelled")
                    return
                answers[block["block_id"]] = answer.strip() or shown
            errors = await self._submit(view, inputs, answers)
            if not errors:
                return
            labels = {block["block_id"]: _text(block.get("label")) for block in inputs}
            for block_id, error in errors.items():  # named as the form shows the field
                self._screen.say(f"  ⚠ {labels.get(block_id) or block_id}: {error}")

    async def _submit(
        self, view: JSON, inputs: Sequence[JSON], answers: Mapping[str, str]
    ) -> dict[str, str]:
        values = {
            block["block_id"]: {
                block["element"]["action_id"]: {
                    "type": block["element"]["type"],
                    "value": answers[block["block_id"]],
                }
            }
            for block in inputs
        }
        payload = {
            "type": "view_submission",
            "user": {"id": self._user, "name": self._user.lower(), "team_id": TEAM_ID},
            "team": {"id": TEAM_ID},
            "trigger_id": _trigger_id(),
            "view": {**view, "state": {"values": values}},
        }
        reply = await self._dispatch(payload)
        return dict(reply.get("errors") or {}) if reply.get("response_action") == "errors" else {}

    async def _dispatch(self, body: JSON) -> JSON:
        """Through the app exactly as a Socket Mode envelope would go; returns the ack body."""
        response = await self._bot.app.async_dispatch(
            AsyncBoltRequest(body=body, mode="socket_mode")
        )
        if response.status != 200:
            self._screen.say(f"(the bot answered {response.status}: {response.body or 'no body'})")
        try:
            reply = json.loads(response.body) if response.body else {}
        except json.JSONDecodeError:
            return {}
        return reply if isinstance(reply, dict) else {}


def _still_shown(message: JSON, element: JSON) -> bool:
    return any(
        candidate.get("action_id") == element.get("action_id")
        and candidate.get("value") == element.get("value")
        for block in message.get("blocks") or []
        for candidate in block.get("elements", [])
    )


def _home_opened(user: str) -> JSON:
    return {
        "type": "event_callback",
        "team_id": TEAM_ID,
        "api_app_id": "A0CONSOLE",
        "event": {"type": "app_home_opened", "user": user, "channel": "D0CONSOLE", "tab": "home"},
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
    }


def _trigger_id() -> str:
    return f"console.{uuid.uuid4().hex}"


def _stdin_is_null() -> bool:
    """/dev/null (a service manager, `docker run` without -i): nobody will ever type."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return True
    return stat.S_ISCHR(mode) and not sys.stdin.isatty()


def _read_lines(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Blocking reads in a daemon thread (it never holds up exit); None marks the end."""
    for line in itertools.chain(iter(sys.stdin.readline, ""), [None]):
        try:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        except RuntimeError:  # the loop has closed: the process is exiting
            return
