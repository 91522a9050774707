"""Pure builders of Slack-shaped payloads (no I/O, no server state).

Shapes follow what Slack actually sends over Socket Mode and returns from the Web API, so
the real Bolt matchers and context extractors see exactly what production sees.
"""

from __future__ import annotations

import hashlib
import itertools
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

# Element types whose state Slack reports as a plain "value".
_VALUE_ELEMENTS = frozenset(
    {"plain_text_input", "number_input", "email_text_input", "url_text_input", "rich_text_input"}
)
_SINGLE_OPTION_ELEMENTS = frozenset({"static_select", "external_select", "radio_buttons"})
_MULTI_OPTION_ELEMENTS = frozenset({"checkboxes", "multi_static_select", "multi_external_select"})
_SELECTED_KEY_BY_TYPE = {
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
}

_counter = itertools.count(1)


@dataclass(frozen=True)
class Workspace:
    """Identity of the fake workspace and of the installed app/bot."""

    team_id: str = "T0FAKETEAM"
    team_domain: str = "paramadapt-test"
    enterprise_id: str | None = None
    app_id: str = "A0FAKEAPP"
    bot_id: str = "B0FAKEBOT"
    bot_user_id: str = "U0FAKEBOT"
    bot_name: str = "paramadapt"
    user_id: str = "U0TESTUSER"  # default human actor for convenience helpers
    verification_token: str = "fake-verification-token"


# ---------------------------------------------------------------------------- ids


def new_id(prefix: str, length: int = 10) -> str:
    """A Slack-looking id (uppercase alphanumerics) that is unique within the process."""
    return (prefix + uuid.uuid4().hex.upper())[:length]


def new_envelope_id() -> str:
    return str(uuid.uuid4())


def new_trigger_id(ws: Workspace) -> str:
    return f"{next(_counter)}.{ws.team_id[1:]}.{uuid.uuid4().hex}"


def new_action_ts() -> str:
    return f"{time.time():.6f}"


def channel_id_for_name(name: str) -> str:
    """Stable public-channel id for a channel name ("#risk-blocked" and "risk-blocked" agree)."""
    digest = hashlib.sha256(name.lstrip("#").lower().encode()).hexdigest()
    return "C" + digest[:10].upper()


def dm_channel_id_for_user(user_id: str) -> str:
    """Stable id of the bot's DM channel with a user, as Slack returns when posting to a U-id."""
    return "D" + hashlib.sha256(user_id.encode()).hexdigest()[:10].upper()


class TsClock:
    """Issues Slack message timestamps ("1700000000.000100"): unique and strictly increasing."""

    def __init__(self) -> None:
        self._last_us = 0

    def next(self) -> str:
        now_us = max(int(time.time() * 1_000_000), self._last_us + 1)
        self._last_us = now_us
        return f"{now_us // 1_000_000}.{now_us % 1_000_000:06d}"


# ---------------------------------------------------------------------------- blocks


def with_block_ids(blocks: Sequence[Mapping[str, Any]] | None) -> list[JSON]:
    """Copy blocks, adding the random block_id Slack assigns to blocks that lack one."""
    return [
        {**block, "block_id": block.get("block_id") or uuid.uuid4().hex[:5]}
        for block in blocks or ()
    ]


def iter_elements(blocks: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, JSON]]:
    """Yield (block_id, interactive element) for every element in blocks."""
    for block in blocks:
        block_id = str(block.get("block_id", ""))
        for element in block.get("elements", ()):
            if isinstance(element, dict) and "action_id" in element:
                yield block_id, element
        for key in ("accessory", "element"):
            element = block.get(key)
            if isinstance(element, dict):
                yield block_id, element


def find_element(blocks: Sequence[Mapping[str, Any]], action_id: str) -> tuple[str, JSON]:
    """Locate an interactive element by action_id; raises LookupError with what exists."""
    found = list(iter_elements(blocks))
    for block_id, element in found:
        if element.get("action_id") == action_id:
            return block_id, element
    known = sorted(str(e.get("action_id")) for _, e in found)
    raise LookupError(f"no element with action_id={action_id!r}; blocks contain {known}")


# ---------------------------------------------------------------------------- Web API objects


def bot_message(
    ws: Workspace,
    *,
    ts: str,
    text: str = "",
    blocks: Sequence[Mapping[str, Any]] | None = None,
    attachments: Sequence[Mapping[str, Any]] | None = None,
    thread_ts: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> JSON:
    """A message as Slack stores it after chat.postMessage from the bot."""
    message: JSON = {
        "type": "message",
        "text": text,
        "user": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "app_id": ws.app_id,
        "team": ws.team_id,
        "ts": ts,
        "bot_profile": {"id": ws.bot_id, "app_id": ws.app_id, "name": ws.bot_name},
        "blocks": with_block_ids(blocks),
    }
    if attachments:
        message["attachments"] = [dict(a) for a in attachments]
    if thread_ts:
        message["thread_ts"] = thread_ts
    if metadata:
        message["metadata"] = dict(metadata)
    return message


def view_object(ws: Workspace, view: Mapping[str, Any], *, view_id: str | None = None) -> JSON:
    """The view object Slack returns from views.open/update/push/publish."""
    view_id = view_id or new_id("V")
    return {
        "id": view_id,
        "team_id": ws.team_id,
        "type": view.get("type", "modal"),
        "callback_id": view.get("callback_id", ""),
        "private_metadata": view.get("private_metadata", ""),
        "external_id": view.get("external_id", ""),
        "title": view.get("title"),
        "submit": view.get("submit"),
        "close": view.get("close"),
        "blocks": with_block_ids(view.get("blocks")),
        "state": {"values": {}},
        "hash": uuid.uuid4().hex[:20],
        "clear_on_close": bool(view.get("clear_on_close", False)),
        "notify_on_close": bool(view.get("notify_on_close", False)),
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": ws.app_id,
        "app_installed_team_id": ws.team_id,
        "bot_id": ws.bot_id,
    }


def user_object(
    ws: Workspace, user_id: str, *, name: str | None = None, is_admin: bool = False
) -> JSON:
    name = name or user_id.lower()
    return {
        "id": user_id,
        "team_id": ws.team_id,
        "name": name,
        "real_name": name.title(),
        "deleted": False,
        "is_admin": is_admin,
        "is_owner": False,
        "is_bot": user_id == ws.bot_user_id,
        "tz": "Europe/Berlin",
        "tz_offset": 3600,
        "profile": {"real_name": name.title(), "display_name": name, "team": ws.team_id},
    }


def channel_object(channel_id: str, *, name: str, is_member: bool) -> JSON:
    return {
        "id": channel_id,
        "name": name,
        "is_channel": channel_id.startswith("C"),
        "is_group": False,
        "is_im": channel_id.startswith("D"),
        "is_private": channel_id.startswith("G"),
        "is_archived": False,
        "is_member": is_member,
        "created": 1_700_000_000,
    }


# ---------------------------------------------------------------------------- Socket Mode


def hello_message(ws: Workspace, *, num_connections: int, host: str) -> JSON:
    return {
        "type": "hello",
        "num_connections": num_connections,
        "debug_info": {"host": host, "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": ws.app_id},
    }


def disconnect_message(reason: str, *, host: str) -> JSON:
    return {"type": "disconnect", "reason": reason, "debug_info": {"host": host}}


def envelope(
    envelope_type: str,
    payload: Mapping[str, Any],
    *,
    envelope_id: str | None = None,
    accepts_response_payload: bool | None = None,
    retry_attempt: int = 0,
    retry_reason: str = "",
) -> JSON:
    """A Socket Mode envelope; Slack only accepts response payloads for interactions."""
    if accepts_response_payload is None:
        accepts_response_payload = envelope_type != "events_api"
    return {
        "envelope_id": envelope_id or new_envelope_id(),
        "type": envelope_type,
        "accepts_response_payload": accepts_response_payload,
        "payload": dict(payload),
        "retry_attempt": retry_attempt,
        "retry_reason": retry_reason,
    }


# ---------------------------------------------------------------------------- interactions


def _user_ref(ws: Workspace, user_id: str) -> JSON:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": ws.team_id}


def _team_ref(ws: Workspace) -> JSON:
    return {"id": ws.team_id, "domain": ws.team_domain}


def _enterprise_ref(ws: Workspace) -> JSON | None:
    return {"id": ws.enterprise_id, "name": "fake"} if ws.enterprise_id else None


def slash_command(
    ws: Workspace,
    command: str,
    text: str,
    *,
    user_id: str,
    channel_id: str,
    channel_name: str,
    response_url: str,
    trigger_id: str,
) -> JSON:
    """Slash command payload; Slack sends the form fields as strings, booleans included."""
    return {
        "token": ws.verification_token,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def button_action(element: Mapping[str, Any], *, block_id: str, value: str | None) -> JSON:
    action: JSON = {
        "action_id": element["action_id"],
        "block_id": block_id,
        "text": element.get("text", {"type": "plain_text", "text": "", "emoji": True}),
        "type": "button",
        "action_ts": new_action_ts(),
    }
    chosen = value if value is not None else element.get("value")
    if chosen is not None:
        action["value"] = chosen
    if "style" in element:
        action["style"] = element["style"]
    return action


def message_container(channel_id: str, message_ts: str, *, is_ephemeral: bool) -> JSON:
    return {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": is_ephemeral,
    }


def view_container(view: Mapping[str, Any]) -> JSON:
    return {"type": "view", "view_id": view.get("id")}


def block_actions(
    ws: Workspace,
    *,
    user_id: str,
    action: Mapping[str, Any],
    container: Mapping[str, Any],
    trigger_id: str,
    response_url: str | None = None,
    channel: Mapping[str, Any] | None = None,
    message: Mapping[str, Any] | None = None,
    view: Mapping[str, Any] | None = None,
) -> JSON:
    """block_actions payload; message/channel for message clicks, view for modal/home clicks."""
    payload: JSON = {
        "type": "block_actions",
        "user": _user_ref(ws, user_id),
        "api_app_id": ws.app_id,
        "token": ws.verification_token,
        "container": dict(container),
        "trigger_id": trigger_id,
        "team": _team_ref(ws),
        "enterprise": _enterprise_ref(ws),
        "is_enterprise_install": False,
        "state": {"values": {}},
        "actions": [dict(action)],
    }
    if channel is not None:
        payload["channel"] = dict(channel)
    if message is not None:
        payload["message"] = dict(message)
    if view is not None:
        payload["view"] = dict(view)
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def element_state(element: Mapping[str, Any], value: Any) -> JSON:
    """The state entry Slack reports for one input element given a test-friendly value.

    A dict value is taken as the complete state entry (minus "type"); strings become the
    value/selection appropriate to the element type.
    """
    element_type = str(element.get("type", "plain_text_input"))
    if isinstance(value, Mapping):
        return {"type": element_type, **value}
    if element_type in _VALUE_ELEMENTS:
        return {"type": element_type, "value": value}
    if element_type in _SINGLE_OPTION_ELEMENTS:
        return {"type": element_type, "selected_option": _option(element, value)}
    if element_type in _MULTI_OPTION_ELEMENTS:
        values = [] if value is None else list(value) if isinstance(value, list) else [value]
        return {"type": element_type, "selected_options": [_option(element, v) for v in values]}
    key = _SELECTED_KEY_BY_TYPE.get(element_type, "value")
    return {"type": element_type, key: value}


def _option(element: Mapping[str, Any], value: Any) -> JSON | None:
    if value is None:
        return None
    for option in element.get("options", ()):
        if option.get("value") == value:
            return dict(option)
    return {"text": {"type": "plain_text", "text": str(value), "emoji": True}, "value": value}


def state_values(view: Mapping[str, Any], values: Mapping[str, Any] | None) -> JSON:
    """view.state.values: block_id -> action_id -> element state, for every input block.

    `values` may be nested like Slack ({block_id: {action_id: value}}) or flat
    ({action_id: value}); inputs not mentioned are reported empty, as Slack does.
    """
    given = _flatten_values(view, values or {})
    state: JSON = {}
    for block in view.get("blocks", ()):
        element = block.get("element")
        if block.get("type") != "input" or not isinstance(element, dict):
            continue
        action_id = str(element.get("action_id", ""))
        state.setdefault(block["block_id"], {})[action_id] = element_state(
            element, given.pop(action_id, None)
        )
    if given:
        raise LookupError(f"view has no input elements for {sorted(given)}")
    return state


def _flatten_values(view: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    block_ids = {block.get("block_id") for block in view.get("blocks", ())}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in block_ids and isinstance(value, Mapping):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def view_submission(
    ws: Workspace, *, view: Mapping[str, Any], user_id: str, trigger_id: str
) -> JSON:
    """view_submission payload; `view` must already carry state.values."""
    return {
        "type": "view_submission",
        "team": _team_ref(ws),
        "user": _user_ref(ws, user_id),
        "api_app_id": ws.app_id,
        "token": ws.verification_token,
        "trigger_id": trigger_id,
        "view": dict(view),
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": _enterprise_ref(ws),
    }


# ---------------------------------------------------------------------------- Events API


def event_callback(ws: Workspace, event: Mapping[str, Any]) -> JSON:
    """The outer Events API body that wraps one event."""
    return {
        "token": ws.verification_token,
        "team_id": ws.team_id,
        "enterprise_id": ws.enterprise_id,
        "api_app_id": ws.app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": new_id("Ev", 12),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": ws.enterprise_id,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": uuid.uuid4().hex,
    }


def app_home_opened(
    ws: Workspace, *, user_id: str, channel_id: str, view: Mapping[str, Any] | None = None
) -> JSON:
    event: JSON = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": channel_id,
        "tab": "home",
        "event_ts": new_action_ts(),
    }
    if view is not None:
        event["view"] = dict(view)
    return event_callback(ws, event)
