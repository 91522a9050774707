"""Request and response bodies of the HTTP API, as pydantic models.

One definition serves both validation (422 with each bad field) and the OpenAPI
document, so the documentation cannot drift from what the server accepts. Unknown
fields are refused: a typo such as `confidnce` must not silently drop a value.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from bot.webhook.blocked_schemas import CounterfactualOut
from core.models import BlockedTradeEvent, ClosedTradeEvent, Side
from core.params import Scope

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_datetime(value: object) -> object:
    """Only ISO 8601 text: pydantic would also read numbers (even "0.5") as Unix times."""
    if not isinstance(value, str) or not _ISO.match(value):
        raise ValueError(
            "must be an ISO 8601 date-time with offset, e.g. 2026-11-23T03:00:00+00:00"
        )
    parsed = datetime.fromisoformat(value)
    try:  # 0001-01-01T00:00+01:00 is before the first UTC instant Python (and SQL) can hold
        parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range: must fall between years 1 and 9999 in UTC") from None
    return parsed


def whole_number(value: object) -> object:
    """JSON numbers only; 3.0 counts as the whole number 3, as JSON Schema says."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


def json_number(value: object) -> object:
    """A JSON number, not text that looks like one ("31"), nor true; finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number, e.g. 0.6 or 30 (not text, not true/false)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]
# Constraints must come before the validator, or the JSON schema loses them.
Version = Annotated[
    int, Field(ge=0, le=2**31 - 1), BeforeValidator(whole_number)
]  # an INTEGER column
Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9/_.\-]+$")]
Required = Annotated[str, Field(min_length=1, pattern=r"\S")]  # some non-space character
EventKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"\S")]
Text = Annotated[str, Field(max_length=2000)]
ScopeName = Literal["global", "HIGH", "MEDIUM", "LOW"]
MAX_BATCH = 1000


class Strict(BaseModel):
    """A request body: unknown fields refused, and no NaN or infinity in any number
    (1e400 reads as infinity; NaN and Infinity literals are refused as not JSON)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class BlockedTradeIn(Strict):
    event_id: EventKey = Field(description="Idempotency key: the same id is stored once")
    timestamp: IsoDateTime = Field(description="When the trade was blocked, ISO 8601 with offset")
    symbol: Symbol
    signal: Literal["BUY", "SELL"]
    block_reason: Annotated[str, Field(min_length=1, max_length=128, pattern=r"\S")]
    rsi: Annotated[float, Field(ge=0, le=100)] | None = None
    price: Annotated[float, Field(gt=0)] | None = None
    confidence: Annotated[float, Field(ge=0, le=1)] | None = None
    risk_level: Annotated[str, Field(max_length=32)] | None = None
    data: dict[str, Any] | None = Field(default=None, description="Anything else the engine knows")

    def to_event(self) -> BlockedTradeEvent:
        return BlockedTradeEvent(
            event_id=self.event_id,
            timestamp=self.timestamp,
            symbol=self.symbol.upper(),
            signal=Side(self.signal),
            block_reason=self.block_reason,
            rsi=self.rsi,
            price=self.price,
            confidence=self.confidence,
            risk_level=self.risk_level,
            data=self.data,
        )


class BlockedTradeBatch(Strict):
    events: Annotated[list[BlockedTradeIn], Field(min_length=1, max_length=MAX_BATCH)]


class ClosedTradeIn(Strict):
    trade_id: EventKey = Field(description="Idempotency key: the same id is stored once")
    symbol: Symbol
    side: Literal["BUY", "SELL"]
    entry_time: IsoDateTime
    exit_time: IsoDateTime
    entry_price: Annotated[float, Field(gt=0)]
    exit_price: Annotated[float, Field(gt=0)]
    quantity: Annotated[float, Field(gt=0)]
    pnl: float
    pnl_pct: float
    volatility_level: Literal["HIGH", "MEDIUM", "LOW"] | None = None
    config_version: Version | None = None

    @field_validator("exit_time")
    @classmethod
    def _exits_after_entering(cls, exit_time: datetime, info: ValidationInfo) -> datetime:
        entry_time = info.data.get("entry_time")  # absent when it was itself invalid
        if entry_time is not None and exit_time < entry_time:
            raise ValueError("is before entry_time: a trade exits after it enters")
        return exit_time

    def to_event(self) -> ClosedTradeEvent:
        return ClosedTradeEvent(
            trade_id=self.trade_id,
            symbol=self.symbol.upper(),
            side=Side(self.side),
            entry_time=self.entry_time,
            exit_time=self.exit_time,
            entry_price=self.entry_price,
            exit_price=self.exit_price,
            quantity=self.quantity,
            pnl=self.pnl,
            pnl_pct=self.pnl_pct,
            volatility_level=Scope(self.volatility_level) if self.volatility_level else None,
            config_version=self.config_version,
        )


class ClosedTradeBatch(Strict):
    events: Annotated[list[ClosedTradeIn], Field(min_length=1, max_length=MAX_BATCH)]


class IngestedOut(BaseModel):
    key: str = Field(description="The event_id or trade_id sent")
    id: int
    created: bool = Field(description="False when this key was already stored")


class IngestOut(BaseModel):
    results: list[IngestedOut]
    created: int
    duplicates: int


class ParametersOut(BaseModel):
    scope: ScopeName
    version: int
    parameters: dict[str, float | int]
    etag: str


class SetParameterIn(Strict):
    value: Annotated[float | int, BeforeValidator(json_number)] = Field(
        description="A JSON number (30, 0.6), never text; the parameter's type and bounds "
        "decide the rest"
    )
    scope: ScopeName = "global"
    reason: Annotated[Required, Field(max_length=2000)]
    based_on: Version | None = Field(
        default=None, description="Refuse unless this is still the active version"
    )


class ChangeOut(BaseModel):
    scope: ScopeName
    outcome: Literal["applied", "unchanged"]
    version: int
    based_on: int
    changes: list[dict[str, Any]]
    backup_id: str | None


class OverrideOut(BaseModel):
    id: int
    symbol: str
    side: Literal["BUY", "SELL"]
    reason: str
    status: str
    approved_by: str | None
    blocked_trade_id: int | None
    created_at: datetime
    expires_at: datetime | None
    consumed_at: datetime | None


class OverridesOut(BaseModel):
    overrides: list[OverrideOut]


class BlockedTradeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from core.models.BlockedTrade

    id: int
    event_id: str
    timestamp: datetime
    symbol: str
    signal: str
    block_reason: str
    rsi: float | None
    price: float | None
    confidence: float | None
    risk_level: str | None
    data: dict[str, Any] | None


class BlockedStatsOut(BaseModel):
    since: datetime
    until: datetime
    total: int
    by_reason: dict[str, int]
    by_symbol: dict[str, int]
    by_signal: dict[str, int]
    items: list[BlockedTradeOut]
    limit: int
    offset: int
    counterfactual: CounterfactualOut | None = Field(
        default=None,
        description="What the window's blocked trades would have done had they been executed, "
        "and recommendations; present when market data is configured",
    )


class BackupIn(Strict):
    scope: ScopeName = "global"
    reason: Text = ""


class RestoreIn(Strict):
    reason: Text = ""
    based_on: Version | None = None


class BackupOut(BaseModel):
    id: str
    scope: ScopeName
    version: int
    path: str
    created_at: datetime
    actor: str
    reason: str
    parameters: dict[str, float | int]


class BackupsOut(BaseModel):
    backups: list[BackupOut]


class ParameterChangeOut(BaseModel):
    scope: ScopeName
    parameter: str
    old_value: float | int | None
    new_value: float | int | None
    actor: str
    source: str
    reason: str
    from_version: int
    to_version: int
    created_at: datetime


class ParameterChangesOut(BaseModel):
    changes: list[ParameterChangeOut]


class Problem(BaseModel):
    field: str
    problem: str


class ErrorOut(BaseModel):
    error: str
    problems: list[Problem] | None = Field(
        default=None, description="Each field at fault; every 422 names at least one"
    )
    reference: str | None = Field(
        default=None, description="500 only: the reference of the error in the server log"
    )


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"]
    database: bool
    slack: Literal["connected", "disconnected", "not configured"]
    lease: Literal["held", "standby"]  # held: this replica runs the jobs and timers
