"""Domain records shared by the use cases and the repositories that store them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from core.errors import ValidationError
from core.params import Params, ParamValue, Scope


class VersionStatus(StrEnum):
    TESTING = "TESTING"
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"
    FAILED = "FAILED"


class Source(StrEnum):
    """Where a change came from."""

    SLACK = "slack"
    API = "api"
    CLI = "cli"
    LEARNING = "learning"
    OPTIMIZER = "optimizer"
    RESTORE = "restore"


class Outcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


@dataclass(frozen=True)
class ConfigVersion:
    """One immutable version of a scope's parameters.

    `global` versions hold every parameter; a level scope holds only the values it sets
    itself and inherits the rest from `global`.
    """

    scope: Scope
    version: int
    parameters: Params
    status: VersionStatus
    author: str
    source: Source
    reason: str
    parent_version: int | None
    created_at: datetime
    metrics: dict[str, Any] | None = None
    fitness: float | None = None
    id: int | None = None
    learning_session_id: int | None = None  # set on the versions a learning session made


@dataclass(frozen=True)
class NewVersion:
    scope: Scope
    parameters: Params
    author: str
    source: Source
    reason: str
    created_at: datetime
    status: VersionStatus = VersionStatus.ACTIVE
    metrics: dict[str, Any] | None = None
    fitness: float | None = None
    learning_session_id: int | None = None


@dataclass(frozen=True)
class ParamChange:
    parameter: str
    old: ParamValue | None
    new: ParamValue | None


@dataclass(frozen=True)
class ParamChangeRecord:
    scope: Scope
    parameter: str
    old: ParamValue | None
    new: ParamValue | None
    actor: str
    source: Source
    reason: str
    from_version: int
    to_version: int
    created_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    source: str
    action: str
    target: str
    outcome: Outcome
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """A scope's parameters at one version: what a backup holds."""

    scope: Scope
    version: int
    parameters: Params


@dataclass(frozen=True)
class BackupRecord:
    backup_id: str
    scope: Scope
    version: int
    path: str
    created_at: datetime
    actor: str
    reason: str
    parameters: Params


# --- engine events and overrides ---------------------------------------------------


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @classmethod
    def parse(cls, text: str) -> Side:
        try:
            return cls(text.strip().upper())
        except ValueError:
            raise ValidationError(f"side must be BUY or SELL; got '{text}'") from None


class OverrideStatus(StrEnum):
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    CONSUMED = "CONSUMED"


@dataclass(frozen=True)
class BlockedTradeEvent:
    event_id: str
    timestamp: datetime
    symbol: str
    signal: Side
    block_reason: str
    rsi: float | None = None
    price: float | None = None
    confidence: float | None = None
    risk_level: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class BlockedTrade(BlockedTradeEvent):
    id: int = 0
    received_at: datetime | None = None
    alert_channel: str | None = None
    alert_ts: str | None = None


@dataclass(frozen=True)
class ClosedTradeEvent:
    trade_id: str
    symbol: str
    side: Side
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    quantity: float
    pnl: float
    pnl_pct: float
    volatility_level: Scope | None = None
    config_version: int | None = None


@dataclass(frozen=True)
class Ingested:
    """One engine event after ingest: its stored id, and whether this call created it."""

    key: str
    id: int
    created: bool


@dataclass(frozen=True)
class Override:
    id: int
    symbol: str
    side: Side
    reason: str
    status: OverrideStatus
    requested_by: str
    created_at: datetime
    blocked_trade_id: int | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    expires_at: datetime | None = None
    consumed_at: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.status is OverrideStatus.APPROVED and (
            self.expires_at is None or now < self.expires_at
        )


@dataclass(frozen=True)
class NewOverride:
    symbol: str
    side: Side
    reason: str
    status: OverrideStatus
    requested_by: str
    decided_by: str
    created_at: datetime
    expires_at: datetime | None
    blocked_trade_id: int | None = None


@dataclass(frozen=True)
class BlockedStats:
    total: int
    by_reason: dict[str, int]
    by_symbol: dict[str, int]
    by_signal: dict[str, int]
    recent: list[BlockedTrade]


@dataclass(frozen=True)
class Policy:
    """Time limits for overrides; from configuration."""

    override_ttl: timedelta = timedelta(minutes=15)
    alert_ttl: timedelta = timedelta(minutes=15)
