"""Blocked-trade alerts: how trades are coalesced into messages, and when a message expires.

Slack takes about one message per second per channel, so a burst of blocked trades is
shown as one message per symbol, side and reason with a count, updated in place. The
buttons of a message decide the newest trade it shows (the one the engine would retry);
an alert nobody answers expires `Policy.alert_ttl` after that trade arrived, the same
rule core.trades.decide_blocked_trade applies to a click.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from core.models import BlockedTrade, Override, Side


class AlertStatus(StrEnum):
    POSTED = "POSTED"  # in Slack, waiting for a decision
    DECIDED = "DECIDED"
    EXPIRED = "EXPIRED"


AlertKey = tuple[str, Side, str]  # symbol, signal, block reason


def alert_key(trade: BlockedTrade) -> AlertKey:
    return (trade.symbol, trade.signal, trade.block_reason)


def arrived(trade: BlockedTrade) -> datetime:
    return trade.received_at or trade.timestamp


@dataclass(frozen=True)
class AlertGroup:
    """One alert message: the blocked trades of one key it stands for."""

    latest: BlockedTrade
    count: int
    first_at: datetime
    status: AlertStatus
    decision: Override | None = None
    channel: str | None = None
    ts: str | None = None

    @property
    def shown_status(self) -> AlertStatus:
        """A recorded decision wins, even if the message was marked expired meanwhile."""
        return AlertStatus.DECIDED if self.decision is not None else self.status

    def expires_at(self, ttl: timedelta) -> datetime:
        return arrived(self.latest) + ttl

    def including(self, trades: Sequence[BlockedTrade]) -> AlertGroup:
        """The group once `trades` (of the same key) are added to it."""
        newest = max([self.latest, *trades], key=lambda trade: trade.id)
        first = min([self.first_at, *(arrived(trade) for trade in trades)])
        return replace(self, latest=newest, count=self.count + len(trades), first_at=first)


def new_group(trades: Sequence[BlockedTrade], ttl: timedelta, now: datetime) -> AlertGroup:
    """A message for trades not shown yet; one whose decision time is over is posted expired."""
    latest = max(trades, key=lambda trade: trade.id)
    status = AlertStatus.EXPIRED if now >= arrived(latest) + ttl else AlertStatus.POSTED
    first = min(arrived(trade) for trade in trades)
    return AlertGroup(latest=latest, count=len(trades), first_at=first, status=status)


def by_key(trades: Iterable[BlockedTrade]) -> dict[AlertKey, list[BlockedTrade]]:
    """Trades grouped by alert key; keys in order of their first trade."""
    groups: dict[AlertKey, list[BlockedTrade]] = {}
    for trade in trades:
        groups.setdefault(alert_key(trade), []).append(trade)
    return groups
