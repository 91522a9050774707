"""The schema, as SQLAlchemy 2 declarative models. Alembic migrations are generated from it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which has no time zones) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class ConfigVersionRow(Base):
    __tablename__ = "config_versions"
    __table_args__ = (
        UniqueConstraint("scope", "version", name="uq_config_versions_scope_version"),
        # Exactly one ACTIVE version per scope, enforced by the database itself.
        Index(
            "uq_config_versions_one_active",
            "scope",
            unique=True,
            sqlite_where=text("status = 'ACTIVE'"),
            postgresql_where=text("status = 'ACTIVE'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any] | None]
    fitness: Mapped[float | None] = mapped_column(Float)
    author: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    parent_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    learning_session_id: Mapped[int | None] = mapped_column(ForeignKey("learning_sessions.id"))
    optimization_run_id: Mapped[str | None] = mapped_column(String(64))


class ParameterChangeRow(Base):
    __tablename__ = "parameter_changes"
    __table_args__ = (Index("ix_parameter_changes_scope_parameter", "scope", "parameter"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))
    parameter: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[float | None] = mapped_column(JSONType)
    new_value: Mapped[float | None] = mapped_column(JSONType)
    actor: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    from_version: Mapped[int] = mapped_column(Integer)
    to_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


class ConfigBackupRow(Base):
    __tablename__ = "config_backups"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]]


class AuditLogRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]]


class BlockedTradeRow(Base):
    __tablename__ = "blocked_trades"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    timestamp: Mapped[datetime] = mapped_column(index=True)
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    signal: Mapped[str] = mapped_column(String(4))
    block_reason: Mapped[str] = mapped_column(String(128), index=True)
    rsi: Mapped[float | None] = mapped_column(Float)
    price: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    risk_level: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any] | None]
    received_at: Mapped[datetime]
    alert_channel: Mapped[str | None] = mapped_column(String(64))
    alert_ts: Mapped[str | None] = mapped_column(String(32))
    # POSTED, DECIDED or EXPIRED: lets the expiry job find unanswered alerts after a restart.
    alert_status: Mapped[str | None] = mapped_column(String(16), index=True)


class TradeRow(Base):
    __tablename__ = "trades"
    __table_args__ = (Index("ix_trades_level_exit", "volatility_level", "exit_time"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    trade_id: Mapped[str] = mapped_column(String(128), unique=True)
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    side: Mapped[str] = mapped_column(String(4))
    entry_time: Mapped[datetime]
    exit_time: Mapped[datetime] = mapped_column(index=True)
    entry_price: Mapped[float] = mapped_column(Float)
    exit_price: Mapped[float] = mapped_column(Float)
    quantity: Mapped[float] = mapped_column(Float)
    pnl: Mapped[float] = mapped_column(Float)
    pnl_pct: Mapped[float] = mapped_column(Float)
    volatility_level: Mapped[str | None] = mapped_column(String(16))
    config_version: Mapped[int | None] = mapped_column(Integer)
    learning_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("learning_sessions.id"), index=True
    )
    received_at: Mapped[datetime]


class OverrideRow(Base):
    __tablename__ = "overrides"
    __table_args__ = (Index("ix_overrides_lookup", "symbol", "side", "status"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    reason: Mapped[str] = mapped_column(Text)
    # One decision per blocked trade: a second click or a second approver cannot act again.
    blocked_trade_id: Mapped[int | None] = mapped_column(
        ForeignKey("blocked_trades.id"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(128))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    consumed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class LearningSessionRow(Base):
    __tablename__ = "learning_sessions"
    __table_args__ = (
        Index(
            "uq_learning_sessions_one_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'ACTIVE'"),
            postgresql_where=text("status = 'ACTIVE'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16))
    started_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    planned_end_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(128))
    end_reason: Mapped[str | None] = mapped_column(Text)
    original_params: Mapped[dict[str, Any]]
    relaxed_params: Mapped[dict[str, Any]]
    analysis: Mapped[dict[str, Any] | None]
    recommendations: Mapped[dict[str, Any] | None]


class OptimizationRunRow(Base):
    __tablename__ = "optimization_runs"
    __table_args__ = (
        # One run per scope at a time, across processes: a second claim fails here.
        Index(
            "uq_optimization_runs_one_running",
            "scope",
            unique=True,
            sqlite_where=text("status = 'RUNNING'"),
            postgresql_where=text("status = 'RUNNING'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), unique=True)
    trigger: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    baseline_score: Mapped[float | None] = mapped_column(Float)
    best_score: Mapped[float | None] = mapped_column(Float)
    improvement_pct: Mapped[float | None] = mapped_column(Float)
    improvement_found: Mapped[bool] = mapped_column(Boolean, default=False)
    candidates_tested: Mapped[int] = mapped_column(Integer, default=0)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    data_range: Mapped[dict[str, Any] | None]
    seed: Mapped[int | None] = mapped_column(BigInteger)
    code_version: Mapped[str | None] = mapped_column(String(64))
    results: Mapped[dict[str, Any] | None]
    winner_version: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    baseline_version: Mapped[int | None] = mapped_column(Integer)
    requested_by: Mapped[str | None] = mapped_column(String(128))


class OptimizationCandidateRow(Base):
    """A configuration a run tried, with its in-sample and out-of-sample metrics."""

    __tablename__ = "optimization_candidates"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("optimization_runs.run_id"))
    position: Mapped[int] = mapped_column(Integer)  # 0: the baseline
    parameters: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    in_sample_fitness: Mapped[float | None] = mapped_column(Float)
    out_of_sample_fitness: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]]


class CandleRow(Base):
    """OHLCV bars the engine reported; one per symbol, timeframe and open time."""

    __tablename__ = "candles"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    time: Mapped[datetime] = mapped_column(primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime]


class TradeCounterRow(Base):
    __tablename__ = "trade_counters"

    volatility_level: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    threshold: Mapped[int] = mapped_column(Integer)
    last_optimization: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class OutboxRow(Base):
    """Messages to deliver (Slack alerts, engine pushes), written in the same transaction
    as the event that caused them and deleted from the queue only once delivered."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "topic",
            "id",
            sqlite_where=text("delivered_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class JobRunRow(Base):
    """One execution of a scheduled job: its outcome outlives the process that ran it."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started", "job", "started_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64))
    replica: Mapped[str] = mapped_column(String(128))
    scheduled_for: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # ok, error, skipped; None: running
    message: Mapped[str | None] = mapped_column(Text)


class LeaseRow(Base):
    """A named lease: the replica holding it until `expires_at` runs what must run once."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class IdempotencyKeyRow(Base):
    """An operator's or the engine's POST sent with an Idempotency-Key: claimed while it runs,
    then its answer, replayed to a retry with the same key until the key expires (24 h)."""

    __tablename__ = "idempotency_keys"

    client: Mapped[str] = mapped_column(String(128), primary_key=True)  # the caller (token)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # in_progress, done
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)  # the JSON text, exactly as sent
    created_at: Mapped[datetime] = mapped_column(index=True)
