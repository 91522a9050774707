"""Where each kind of event is posted, if anywhere: the [notifications] and [digest] sections.

```toml
[notifications]                 # per event type: "on" (posted), "silent" (only in the
blocked_trade = "on"            # digest) or "off"; a table also names the channel
learning_session = { mode = "on", channel = "#learning" }
override_decision = "silent"
error = "off"                   # unset types are "on", in the risk channel

[digest]
channel = "#trading-digest"     # default: the risk channel
daily = true
weekly = true
```

Deliverers ask `channel_for(settings, event)`: a channel to post to, or None, in which case
they post nothing and the outbox marks the message delivered (nothing waits in it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bot.blocks.common import Message, preformatted, section

if TYPE_CHECKING:
    from bot.config import Settings


class EventType(StrEnum):
    BLOCKED_TRADE = "blocked_trade"
    OVERRIDE_DECISION = "override_decision"
    PARAMETER_CHANGE = "parameter_change"
    LEARNING_SESSION = "learning_session"  # its start and its end
    OPTIMIZATION_RESULT = "optimization_result"
    ROLLBACK = "rollback"
    ERROR = "error"


class Mode(StrEnum):
    ON = "on"  # posted
    SILENT = "silent"  # only in the digest
    OFF = "off"


@dataclass(frozen=True)
class Notification:
    mode: Mode = Mode.ON
    channel: str | None = None  # None: the risk channel


@dataclass(frozen=True)
class DigestSettings:
    channel: str | None = None  # None: the risk channel
    daily: bool = True
    weekly: bool = True


@dataclass(frozen=True)
class NotificationSettings:
    events: Mapping[EventType, Notification] = field(default_factory=dict)

    def of(self, event: EventType) -> Notification:
        return self.events.get(event, Notification())


def channel_for(settings: Settings, event: EventType) -> str | None:
    """The channel `event` is posted to; None when it is silent or off."""
    if settings.notifications.of(event).mode is not Mode.ON:
        return None
    return configured_channel(settings, event)


def configured_channel(settings: Settings, event: EventType) -> str:
    """The channel `event` goes to when it is on, whether it is on or not."""
    return settings.notifications.of(event).channel or settings.risk_channel


def digest_channel(settings: Settings) -> str:
    return settings.digest.channel or settings.risk_channel


def settings_message(settings: Settings) -> Message:
    """`/param notifications`: each event type, its mode and its channel, and the digests."""
    rows = [f"{'event':<20}  {'mode':<6}  channel"]
    for event in EventType:
        chosen, where = settings.notifications.of(event), configured_channel(settings, event)
        shown = where if chosen.mode is Mode.ON else f"({where} if on)"
        rows.append(f"{event.value:<20}  {chosen.mode.value:<6}  {shown}")
    digest = settings.digest
    kinds = [kind for kind, on in (("daily", digest.daily), ("weekly", digest.weekly)) if on]
    digests = f"{' and '.join(kinds)} to {digest_channel(settings)}" if kinds else "off"
    return Message(
        text=f"notifications: {len(EventType)} event types; digests {digests}",
        blocks=[
            section("*Notifications* (on: posted · silent: only in the digest · off: nowhere)"),
            *preformatted(rows),
            section(f"*Digests*: {digests}"),
        ],
    )


# --- parsing (bot.config names the section in its errors) ---------------------------------


def parse_notifications(table: Mapping[str, Any]) -> NotificationSettings:
    """Raise ValueError("KEY: problem") for a bad setting."""
    known = [event.value for event in EventType]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"{unknown[0]}: not an event type; event types are {', '.join(known)}")
    events = {EventType(name): _notification(name, value) for name, value in table.items()}
    return NotificationSettings(events)


def _notification(name: str, value: Any) -> Notification:
    if isinstance(value, str):
        return Notification(_mode(name, value))
    if not isinstance(value, dict) or set(value) - {"mode", "channel"}:
        raise ValueError(f'{name}: must be "on", "silent", "off" or a table of mode and channel')
    return Notification(
        _mode(f"{name}.mode", value.get("mode", Mode.ON.value)),
        _channel(f"{name}.channel", value.get("channel")),
    )


def _mode(name: str, value: Any) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise ValueError(f"{name}: must be on, silent or off, got {value!r}") from None


def _channel(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: must be a channel name such as #risk-blocked, got {value!r}")
    return value


def parse_digest(table: Mapping[str, Any]) -> DigestSettings:
    """Raise ValueError("KEY: problem") for a bad setting."""
    unknown = sorted(set(table) - {"channel", "daily", "weekly"})
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown; [digest] takes channel, daily and weekly")
    for kind in ("daily", "weekly"):
        if not isinstance(table.get(kind, True), bool):
            raise ValueError(f"{kind}: must be true or false, got {table[kind]!r}")
    return DigestSettings(
        _channel("channel", table.get("channel")),
        table.get("daily", True),
        table.get("weekly", True),
    )
