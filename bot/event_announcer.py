"""Announcements of parameter changes, override decisions and errors, delivered from the outbox.

The stores queue each in the transaction that commits its fact, so it is announced once,
whichever entry point caused it (Slack, the HTTP API, the CLI, another replica), even across
a crash. bot.notifications decides whether and where each is posted:

- parameter_change: every new config version, with who, old → new per parameter, from where
  and why; except the versions of learning sessions and optimization runs, which their own
  announcements show (storage.config_store.ANNOUNCED_ELSEWHERE).
- override_decision: `/param override` grants, and decisions on blocked-trade alerts; a
  decision on an alert is posted only when this channel is not the alerts' own, where the
  alert already shows it (updated in place).
- error: failures queued by report_error (scheduled jobs) or storage.error_reports.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.blocks import alerts as alert_blocks
from bot.blocks import params as param_blocks
from bot.blocks.common import Message
from bot.blocks.errors import error_report
from bot.notifications import EventType, channel_for
from core.models import ParamChange, Source
from core.params import Scope
from storage.config_store import ANNOUNCE_TOPIC as PARAMETER_CHANGE_TOPIC
from storage.error_reports import ERROR_TOPIC, error_payload
from storage.outbox import OutboxMessage
from storage.trade_store import DECISION_TOPIC

if TYPE_CHECKING:
    from bot.app import SlackBot
    from bot.config import Settings
    from bot.outbox import Deliver
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

_FROM = {"slack": "in Slack", "api": "over the HTTP API", "cli": "from the CLI"}


async def report_error(runtime: Runtime, source: str, message: str) -> None:
    """Queue a failure people must hear of (`source` names what failed, e.g. "scheduled job
    cleanup"); never raises, so reporting a failure cannot become a second one."""
    try:
        await runtime.outbox.add(
            ERROR_TOPIC, error_payload(source, message), runtime.deps.clock.now()
        )
    except Exception:
        log.warning("cannot queue the error report of %s: %s", source, message, exc_info=True)
        return
    runtime.wake_dispatchers()


class EventAnnouncer:
    def __init__(self, bot: SlackBot) -> None:
        self._bot = bot

    def deliverers(self) -> dict[str, Deliver]:
        return {
            PARAMETER_CHANGE_TOPIC: self._parameter_change,
            DECISION_TOPIC: self._override_decision,
            ERROR_TOPIC: self._error,
        }

    @property
    def _settings(self) -> Settings:
        return self._bot.runtime.settings

    async def _parameter_change(self, message: OutboxMessage) -> None:
        channel = channel_for(self._settings, EventType.PARAMETER_CHANGE)
        if channel is not None:  # silent or off: delivered without a post
            await self._post(channel, _change_message(message.payload))

    async def _override_decision(self, message: OutboxMessage) -> None:
        channel = channel_for(self._settings, EventType.OVERRIDE_DECISION)
        if channel is None:
            return
        trades = self._bot.runtime.deps.trades
        override = await trades.override(int(message.payload["override_id"]))
        if override is None:  # the database was restored without it: nothing to say
            log.warning("override %s to announce no longer exists", message.payload)
            return
        if override.blocked_trade_id is None:
            await self._post(channel, alert_blocks.override_granted(override))
            return
        if channel == channel_for(self._settings, EventType.BLOCKED_TRADE):
            return  # the alert shows the decision in place
        trade = await trades.blocked_trade(override.blocked_trade_id)
        if trade is not None:
            await self._post(channel, alert_blocks.override_decided(override, trade))

    async def _error(self, message: OutboxMessage) -> None:
        channel = channel_for(self._settings, EventType.ERROR)
        if channel is not None:
            payload = message.payload
            built = error_report(
                str(payload["source"]), str(payload["message"]), message.created_at
            )
            await self._post(channel, built)

    async def _post(self, channel: str, built: Message) -> None:
        await self._bot.post_message(channel, built.text, built.blocks)


def _change_message(payload: dict[str, Any]) -> Message:
    scope, via = Scope(payload["scope"]), str(payload["via"])
    verb = "restored" if payload["source"] == Source.RESTORE.value else "changed"
    what = f"{verb} *{scope}* {_FROM.get(via, f'via {via}')}"
    changes = [ParamChange(c["parameter"], c["old"], c["new"]) for c in payload["changes"]]
    footer = param_blocks.version_footer(
        scope, int(payload["based_on"]), int(payload["version"]), str(payload["backup_id"])
    )
    return param_blocks.changed(str(payload["author"]), what, changes, payload["reason"], footer)
