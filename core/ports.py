"""What the use cases need from the outside world, as Protocols.

`storage/` implements them for SQLAlchemy and the file system; tests may use the
same implementations on SQLite, since they run in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from core.counterfactual import CounterfactualPolicy
from core.learning_model import (
    LearningPolicy,
    LearningSession,
    NewLearningSession,
    SessionEnd,
)
from core.market import Bar, LoadedCandles
from core.models import (
    AuditEntry,
    BackupRecord,
    BlockedStats,
    BlockedTrade,
    BlockedTradeEvent,
    ClosedTradeEvent,
    ConfigVersion,
    Ingested,
    NewOverride,
    NewVersion,
    Override,
    ParamChange,
    ParamChangeRecord,
    Policy,
    Side,
    Snapshot,
    VersionStatus,
)
from core.optimization_model import (
    NewRun,
    OptimizationRun,
    OptimizerPolicy,
    RunCandidate,
    RunEnd,
    RunStatus,
    TradeCounter,
)
from core.params import ParamSchema, Scope

Argument = TypeVar("Argument")
Result = TypeVar("Result")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class ConfigStore(Protocol):
    async def active(self, scope: Scope) -> ConfigVersion | None: ...

    async def get_version(self, scope: Scope, version: int) -> ConfigVersion | None: ...

    async def list_versions(self, scope: Scope, limit: int) -> list[ConfigVersion]: ...

    async def live_versions(
        self, scope: Scope, since: datetime, until: datetime
    ) -> list[ConfigVersion]:
        """The versions live in `scope` at some time in [since, until], oldest first: the one
        live at `since` and each that went live after it. A version is live from its
        created_at until the next one's; versions that never went live (optimizer candidates,
        failed ones) are left out: a version went live if it is ACTIVE or the change path
        recorded the parameter changes that made it."""
        ...

    async def list_changes(
        self, scope: Scope, parameter: str | None, limit: int
    ) -> list[ParamChangeRecord]: ...

    async def changes_between(self, since: datetime, until: datetime) -> list[ParamChangeRecord]:
        """Every scope's parameter changes made in [since, until), oldest first."""
        ...

    async def commit_version(
        self,
        new: NewVersion,
        based_on: int,
        changes: Sequence[ParamChange],
        backup: BackupRecord,
        audit: AuditEntry,
    ) -> ConfigVersion:
        """Atomically: archive the active version `based_on`, store `new` as the next
        version with its changes, the backup row and the audit entry.

        Raises StaleVersionError when `based_on` is no longer the active version
        (0 meaning the scope has none yet).
        """
        ...

    async def record_backup(self, backup: BackupRecord, audit: AuditEntry) -> None: ...

    async def list_backups(self, scope: Scope | None, limit: int) -> list[BackupRecord]: ...

    async def has_backup(self, backup_id: str) -> bool:
        """Whether a backup row with this id is stored (committed)."""
        ...


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...


class BackupFiles(Protocol):
    async def write(
        self, snapshot: Snapshot, at: datetime, actor: str, reason: str
    ) -> BackupRecord:
        """Write the snapshot durably (atomically, under a name of its own) before any change;
        raise OSError if not."""
        ...

    async def read(self, backup_id: str) -> BackupRecord: ...

    async def discard(self, backup_id: str) -> None:
        """Remove the file of a backup whose change was not committed, durably (the directory
        is fsynced); no error if it is gone already. Raise OSError if it cannot be removed."""
        ...

    async def newest(self, scope: Scope | None, limit: int) -> list[BackupRecord]:
        """The newest `limit` backup files (of `scope`, or of every scope), newest first, read
        from the files alone: what `read` restores. Files that cannot be read are skipped."""
        ...


class TradeStore(Protocol):
    async def add_blocked_trades(
        self, events: Sequence[BlockedTradeEvent], received_at: datetime
    ) -> list[Ingested]:
        """Store new events (idempotent by event_id) and queue an alert for each new one."""
        ...

    async def add_trades(
        self, events: Sequence[ClosedTradeEvent], received_at: datetime
    ) -> list[Ingested]:
        """Store new closed trades (idempotent by trade_id); tag them with the learning
        session running when they closed; count them toward their level's threshold."""
        ...

    async def blocked_trade(self, trade_id: int) -> BlockedTrade | None: ...

    async def blocked_stats(
        self, since: datetime, until: datetime, limit: int, offset: int
    ) -> BlockedStats: ...

    async def blocked_trades(
        self, since: datetime, until: datetime, limit: int
    ) -> list[BlockedTrade]:
        """The newest `limit` trades blocked in [since, until), oldest first."""
        ...

    async def add_override(self, new: NewOverride, audit: AuditEntry) -> Override:
        """Store a decision; raises ConflictError if the blocked trade already has one."""
        ...

    async def override(self, override_id: int) -> Override | None: ...

    async def override_for_blocked_trade(self, blocked_trade_id: int) -> Override | None: ...

    async def active_overrides(
        self, symbol: str | None, side: Side | None, now: datetime
    ) -> list[Override]: ...

    async def overrides(self, since: datetime, until: datetime) -> list[Override]:
        """Overrides granted or decided (created) in [since, until), oldest first."""
        ...

    async def consume_override(self, override_id: int, now: datetime) -> Override | None:
        """Mark APPROVED and unexpired as CONSUMED, atomically; None if it was not usable."""
        ...


class LearningStore(Protocol):
    async def active(self) -> LearningSession | None: ...

    async def last_ended(self) -> LearningSession | None:
        """The session that ended last, failed starts aside: the cooldown counts from it."""
        ...

    async def get(self, session_id: int) -> LearningSession | None: ...

    async def history(self, limit: int) -> list[LearningSession]:
        """Sessions, newest first."""
        ...

    async def create(self, new: NewLearningSession, audit: AuditEntry) -> LearningSession:
        """Store `new` as the ACTIVE session and queue its announcement; raise
        ConflictError if a session is ACTIVE already."""
        ...

    async def finish(
        self, session_id: int, end: SessionEnd, audit: AuditEntry
    ) -> LearningSession | None:
        """End the session if it is still ACTIVE and queue the announcement; None if it
        had ended already."""
        ...

    async def session_trades(self, session_id: int) -> list[ClosedTradeEvent]:
        """The closed trades tagged with the session, in the order they closed."""
        ...

    async def untagged_trades(self, since: datetime, until: datetime) -> list[ClosedTradeEvent]:
        """Trades that closed in [since, until) outside any learning session."""
        ...

    async def closed_trades(self, since: datetime, until: datetime) -> list[ClosedTradeEvent]:
        """Every trade that closed in [since, until), in the order they closed."""
        ...

    async def sessions_between(self, since: datetime, until: datetime) -> list[LearningSession]:
        """Sessions running at some time in [since, until), oldest first."""
        ...


class MarketData(Protocol):
    async def candles(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> LoadedCandles:
        """Bars opening in [start, end), short gaps filled and reported. Raise
        core.market.MarketDataError, naming the symbol and the range, for a longer gap, a
        range the data does not cover, or bars out of order: never partial data."""
        ...


class CandleStore(Protocol):
    async def add_candles(
        self, symbol: str, timeframe: str, bars: Sequence[Bar], received_at: datetime
    ) -> int:
        """Store the bars not stored yet (idempotent by symbol, timeframe and time); return
        how many were new."""
        ...


class OptimizationStore(Protocol):
    async def claim(
        self, new: NewRun, stale_before: datetime, audit: AuditEntry
    ) -> OptimizationRun:
        """Atomically: mark the scope's RUNNING run FAILED if it started before
        `stale_before` (its process died), store `new` as the scope's RUNNING run, reset the
        scope's trade counter. Raise ConflictError if the scope has a RUNNING run, even one
        another process started."""
        ...

    async def finish(self, run_id: str, end: RunEnd) -> OptimizationRun:
        """Record the outcome and the candidates; attach the winner's metrics to the config
        version it became; older PENDING_APPROVAL runs of the scope become SUPERSEDED.
        ConflictError, nothing recorded, if the run is no longer RUNNING (taken over)."""
        ...

    async def transition(
        self,
        run_id: str,
        before: RunStatus,
        after: RunStatus,
        audit: AuditEntry | None,
        winner_version: int | None = None,
    ) -> OptimizationRun | None:
        """Move the run from `before` to `after` if it is still `before`, its winning
        candidate along (ACTIVE when applied, TESTING when pending, else ARCHIVED); None if
        it was not. `audit` None records no audit entry (not allowed for a rollback)."""
        ...

    async def run(self, run_id: str) -> OptimizationRun | None: ...

    async def candidates(self, run_id: str) -> list[RunCandidate]: ...

    async def runs(
        self, since: datetime | None, scope: Scope | None, limit: int
    ) -> list[OptimizationRun]:
        """Runs started at or after `since`, newest first, without their results."""
        ...

    async def counters(self) -> list[TradeCounter]: ...

    async def version_by_id(self, version_id: int) -> ConfigVersion | None: ...

    async def versions(
        self, scope: Scope | None, status: VersionStatus | None, limit: int
    ) -> list[ConfigVersion]:
        """Config versions, newest first."""
        ...

    async def count_versions(self) -> tuple[int, int]:
        """How many config versions there are, and how many are ACTIVE."""
        ...

    async def run_of_version(self, scope: Scope, version: int) -> OptimizationRun | None:
        """The run whose winner became this version."""
        ...

    async def latest_baseline_run(self, scope: Scope, version: int) -> OptimizationRun | None:
        """The newest finished run that measured this version as its baseline."""
        ...

    async def live_trades(
        self, level: Scope | None, since: datetime, limit: int
    ) -> list[ClosedTradeEvent]:
        """The latest `limit` trades of a volatility level (None: every trade) that closed
        at or after `since`, oldest first."""
        ...

    async def clean_up(
        self, runs_before: datetime, failed_before: datetime, audit: AuditEntry
    ) -> tuple[int, int]:
        """Delete finished runs started before `runs_before` that found no improvement (with
        their candidates); archive FAILED versions created before `failed_before`. Return
        (runs deleted, versions archived); `audit` is recorded with both counts."""
        ...


class Compute(Protocol):
    async def run(self, function: Callable[[Argument], Result], argument: Argument) -> Result:
        """`function(argument)` in a worker process, off the event loop; both must pickle."""
        ...


class Background(Protocol):
    def spawn(self, work: Coroutine[Any, Any, object], name: str) -> None:
        """Run `work` after the caller returns; the process awaits or cancels it at shutdown."""
        ...


@dataclass(frozen=True)
class RequestFingerprint:
    """What makes two requests the same request: a retry must match its original."""

    method: str
    path: str
    body_sha256: str


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str  # the JSON document, exactly as first sent


@dataclass(frozen=True)
class KeyHolder:
    """The request that holds an idempotency key: its answer, or None while it runs."""

    fingerprint: RequestFingerprint
    claimed_at: datetime
    response: StoredResponse | None


class IdempotencyStore(Protocol):
    """Idempotency keys of requests (the HTTP API's Idempotency-Key header), per client."""

    async def claim(
        self, client: str, key: str, fingerprint: RequestFingerprint, now: datetime
    ) -> KeyHolder | None:
        """Claim `key` for a request, committed before it runs: None when this request got
        it, else the request holding it. Of concurrent claims exactly one gets the key. An
        expired key is free again, as is one whose request, with this same fingerprint, was
        abandoned while in progress (its process stopped)."""
        ...

    async def complete(self, client: str, key: str, response: StoredResponse) -> None:
        """Keep the answer of the claiming request, for retries to get."""
        ...

    async def release(self, client: str, key: str) -> None:
        """Free the key of a request that failed, so that a retry runs it again."""
        ...


@dataclass(frozen=True)
class OptimizerPorts:
    """What the optimizer's use cases need beyond the common ports."""

    market: MarketData
    candles: CandleStore
    runs: OptimizationStore
    compute: Compute
    background: Background
    policy: OptimizerPolicy = field(default_factory=OptimizerPolicy)
    study_storage: Callable[[], Any] | None = None  # picklable: an Optuna storage, or None
    code_version: str = "unknown"


@dataclass(frozen=True)
class Deps:
    """The ports a use case may need, wired by the entry point."""

    schema: ParamSchema
    config: ConfigStore
    audit: AuditLog
    backups: BackupFiles
    trades: TradeStore
    clock: Clock
    learning: LearningStore
    policy: Policy = field(default_factory=Policy)
    learning_policy: LearningPolicy = field(default_factory=LearningPolicy)
    optimizer: OptimizerPorts | None = None
    counterfactual: CounterfactualPolicy = field(default_factory=CounterfactualPolicy)
