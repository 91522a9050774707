"""Learning sessions through the use cases, on SQLite and PostgreSQL.

The clock is a fake moved by the tests: a session lasts real minutes (5 at least), and no
test waits for them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from core import learning, services, trades
from core.authz import Actor, Role
from core.errors import BackupFailedError, ConflictError, UserError
from core.learning_model import LearningPolicy, SessionStatus, Verdict
from core.models import BackupRecord, ClosedTradeEvent, Outcome, Side, Snapshot, Source
from core.params import Params, Scope, load_schema
from core.ports import BackupFiles, Deps
from storage.learning_store import ANNOUNCE_TOPIC
from storage.tables import ConfigBackupRow, ConfigVersionRow, LearningSessionRow
from tests.clock import MovableClock

OPERATOR = Actor.having("U0OPS", "slack", Role.OPERATOR)
ADMIN = Actor.having("U0ADMIN", "slack", Role.ADMIN)
VIEWER = Actor.having("U0VIEW", "slack", Role.VIEWER)
ENGINE = Actor.having("engine", "api", Role.ENGINE)
API_OPERATOR = Actor.having(
    "ops-token", "api", Role.OPERATOR
)  # the API, unlike Slack, needs a reason
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DEFAULT_RELAXED = {
    "min_confidence": 0.5525,  # 0.65 lowered by 15 %
    "max_position_size": 6.0,  # 5 raised by 20 %
    "stop_loss_pct": 2.3,  # 2 raised by 15 %
    "take_profit_pct": 3.4,  # 4 lowered by 15 %
}


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def deps(runtime: Runtime, clock: MovableClock) -> Deps:
    return dataclasses.replace(runtime.deps, clock=clock)


async def start(deps: Deps, minutes: int = 60, **relax: float) -> learning.LearningSession:
    return await learning.start_learning_session(deps, OPERATOR, minutes, "explore", relax)


async def set_value(deps: Deps, name: str, value: object, scope: Scope = Scope.GLOBAL) -> None:
    await services.set_parameter(deps, ADMIN, scope, name, value, "baseline")


async def close_trades(deps: Deps, *pnls: float, closed_at: datetime | None = None) -> None:
    """The engine reports closed trades, as over the webhook."""
    exit_time = closed_at or deps.clock.now()
    events = [
        ClosedTradeEvent(
            trade_id=uuid.uuid4().hex,
            symbol="BTCUSDC",
            side=Side.BUY,
            entry_time=exit_time - timedelta(minutes=3),
            exit_time=exit_time,
            entry_price=100.0,
            exit_price=100.0 + pnl,
            quantity=1.0,
            pnl=pnl,
            pnl_pct=pnl,
        )
        for pnl in pnls
    ]
    await trades.ingest_trades(deps, ENGINE, events)


async def effective(deps: Deps, scope: Scope = Scope.GLOBAL) -> Params:
    return (await services.effective_parameters(deps, scope))[0]


async def stored_state(runtime: Runtime, backup_dir: Path) -> tuple[object, ...]:
    """Everything a start could change, except the audit log (which records refusals)."""
    async with runtime.engine.connect() as connection:
        rows = [
            (await connection.execute(select(table).order_by(table.id))).all()
            for table in (ConfigVersionRow, ConfigBackupRow, LearningSessionRow)
        ]
    files = sorted(str(p) for p in backup_dir.rglob("*"))
    return (*map(tuple, rows), files)


# --- starting ----------------------------------------------------------------------


async def test_start_relaxes_each_parameter_by_the_middle_of_its_range(deps: Deps) -> None:
    before = await effective(deps)
    session = await start(deps)
    assert session.status is SessionStatus.ACTIVE
    assert session.relaxed == {Scope.GLOBAL: DEFAULT_RELAXED}
    assert session.original == {Scope.GLOBAL: {name: before[name] for name in DEFAULT_RELAXED}}
    assert (session.started_by, session.reason) == ("U0OPS", "explore")
    assert session.planned_end_at == T0 + timedelta(minutes=60)
    assert await effective(deps) == {**before, **DEFAULT_RELAXED}


async def test_chosen_percentages_apply_within_each_range(deps: Deps) -> None:
    session = await start(deps, min_confidence=20, max_position_size=10)
    relaxed = session.relaxed[Scope.GLOBAL]
    assert (relaxed["min_confidence"], relaxed["max_position_size"]) == (0.52, 5.5)
    for value in session.relaxed_values():
        spec = deps.schema.spec(value.parameter)
        assert spec.relax is not None
        moved_pct = abs(value.relaxed - value.original) / value.original * 100
        assert spec.relax.min_pct - 0.01 <= moved_pct <= spec.relax.max_pct + 0.01


async def test_a_relaxed_value_never_passes_the_parameters_hard_bound(deps: Deps) -> None:
    await set_value(deps, "max_position_size", 90)
    session = await start(deps, max_position_size=30)
    assert session.relaxed[Scope.GLOBAL]["max_position_size"] == 100.0


async def test_a_level_that_sets_a_relaxable_value_itself_is_relaxed_too(deps: Deps) -> None:
    await set_value(deps, "min_confidence", 0.8, Scope.HIGH)
    await set_value(deps, "long_rsi_entry", 35, Scope.MEDIUM)
    session = await start(deps)
    assert session.relaxed[Scope.HIGH] == {"min_confidence": 0.68}
    assert Scope.MEDIUM not in session.relaxed
    assert (await effective(deps, Scope.HIGH))["min_confidence"] == 0.68
    assert (await effective(deps, Scope.MEDIUM))["min_confidence"] == 0.5525  # inherited


async def test_relaxed_values_are_versions_tagged_with_the_session(
    deps: Deps, runtime: Runtime
) -> None:
    session = await start(deps)
    active = await runtime.store.active(Scope.GLOBAL)
    assert active is not None
    assert (active.version, active.source, active.learning_session_id) == (
        1,
        Source.LEARNING,
        session.id,
    )


async def test_start_backs_up_the_active_configuration_first(deps: Deps) -> None:
    await set_value(deps, "min_confidence", 0.7)
    await start(deps)
    backups = await services.list_backups(deps, ADMIN, Scope.GLOBAL)
    (backup,) = [b for b in backups if "explore" in b.reason]
    assert (backup.version, backup.parameters["min_confidence"]) == (1, 0.7)


# --- refusals ----------------------------------------------------------------------


async def assert_refused(
    runtime: Runtime,
    backup_dir: Path,
    attempt: Callable[[], Awaitable[object]],
    message: str,
) -> None:
    """The attempt fails with `message`, changes nothing, and the audit log says so."""
    before = await stored_state(runtime, backup_dir)
    with pytest.raises(UserError, match=re.escape(message)):
        await attempt()
    assert await stored_state(runtime, backup_dir) == before
    refusal = (await runtime.store.audit_entries(limit=1))[0]
    assert (refusal.action, refusal.outcome) == ("learning.start", Outcome.REFUSED)
    assert message in refusal.detail["error"]


@pytest.mark.parametrize(
    ("actor", "minutes", "reason", "relax", "message"),
    [
        (OPERATOR, 4, "explore", {}, "lasts 5 to 240 minutes"),
        (OPERATOR, 241, "explore", {}, "lasts 5 to 240 minutes"),
        (API_OPERATOR, 60, "  ", {}, "a reason is required"),
        (OPERATOR, 60, "explore", {"min_confidence": 25}, "lowered by 10 to 20 %"),
        (OPERATOR, 60, "explore", {"max_position_size": 5}, "raised by 10 to 30 %"),
        (OPERATOR, 60, "explore", {"long_rsi_entry": 10}, "not relaxed by learning sessions"),
        (OPERATOR, 60, "explore", {"min_confidense": 15}, "did you mean 'min_confidence'"),
        (VIEWER, 60, "explore", {}, "learning needs the operator role"),
    ],
)
async def test_a_bad_request_is_refused_changes_nothing_and_is_audited(
    deps: Deps,
    runtime: Runtime,
    backup_dir: Path,
    actor: Actor,
    minutes: int,
    reason: str,
    relax: dict[str, float],
    message: str,
) -> None:
    await assert_refused(
        runtime,
        backup_dir,
        lambda: learning.start_learning_session(deps, actor, minutes, reason, relax),
        message,
    )


async def test_a_second_session_is_refused_while_one_runs(
    deps: Deps, runtime: Runtime, backup_dir: Path
) -> None:
    await start(deps)
    await assert_refused(runtime, backup_dir, lambda: start(deps), "is already running")


async def test_a_new_session_is_refused_during_the_cooldown(
    deps: Deps, runtime: Runtime, backup_dir: Path, clock: MovableClock
) -> None:
    await start(deps)
    clock.advance(minutes=10)
    await learning.stop_learning_session(deps, OPERATOR)
    clock.advance(minutes=59)
    await assert_refused(
        runtime, backup_dir, lambda: start(deps), "the next can start at 11:10 UTC (in 1 min)"
    )


async def test_a_new_session_can_start_once_the_cooldown_has_passed(
    deps: Deps, clock: MovableClock
) -> None:
    await start(deps)
    await learning.stop_learning_session(deps, OPERATOR)
    clock.advance(minutes=60)
    assert (await start(deps)).status is SessionStatus.ACTIVE


async def test_the_cooldown_and_duration_bounds_come_from_the_policy(
    deps: Deps, clock: MovableClock
) -> None:
    policy = LearningPolicy(cooldown_minutes=5, min_duration_minutes=1, max_duration_minutes=2)
    deps = dataclasses.replace(deps, learning_policy=policy)
    with pytest.raises(UserError, match="lasts 1 to 2 minutes"):
        await start(deps, minutes=3)
    await start(deps, minutes=2)
    await learning.stop_learning_session(deps, OPERATOR)
    clock.advance(minutes=5)
    await start(deps, minutes=1)


async def test_of_two_sessions_started_at_once_only_one_runs(deps: Deps) -> None:
    results = await asyncio.gather(start(deps), start(deps), return_exceptions=True)
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], ConflictError)
    assert (await effective(deps))["min_confidence"] == 0.5525


class BackupsFailingOnceFor:
    """Backup files whose first write for `scope` fails, as on a full disk."""

    def __init__(self, inner: BackupFiles, scope: Scope) -> None:
        self._inner, self._scope, self._failed = inner, scope, False

    async def write(
        self, snapshot: Snapshot, at: datetime, actor: str, reason: str
    ) -> BackupRecord:
        if snapshot.scope is self._scope and not self._failed:
            self._failed = True
            raise OSError(28, "No space left on device")
        return await self._inner.write(snapshot, at, actor, reason)

    async def read(self, backup_id: str) -> BackupRecord:
        return await self._inner.read(backup_id)


async def test_a_start_that_cannot_relax_every_scope_is_undone(deps: Deps) -> None:
    await set_value(deps, "min_confidence", 0.8, Scope.HIGH)
    before = {scope: await effective(deps, scope) for scope in Scope}
    failing = dataclasses.replace(deps, backups=BackupsFailingOnceFor(deps.backups, Scope.HIGH))
    with pytest.raises(BackupFailedError, match="No space left"):
        await start(failing)
    assert {scope: await effective(deps, scope) for scope in Scope} == before
    (session,) = await learning.learning_history(deps, OPERATOR)
    assert session.status is SessionStatus.FAILED
    assert session.end_reason is not None and "could not relax HIGH" in session.end_reason
    assert (await start(deps)).status is SessionStatus.ACTIVE  # no cooldown after a failure


# --- while it runs -----------------------------------------------------------------


@pytest.mark.parametrize("scope", [Scope.GLOBAL, Scope.HIGH])
async def test_changing_a_relaxed_parameter_is_refused_while_the_session_runs(
    deps: Deps, runtime: Runtime, backup_dir: Path, scope: Scope
) -> None:
    session = await start(deps)
    before = await stored_state(runtime, backup_dir)
    with pytest.raises(ConflictError) as refused:
        await set_value(deps, "min_confidence", 0.6, scope)
    assert str(refused.value) == (
        f"min_confidence is relaxed by learning session {session.id} until 11:00 UTC; "
        "stop the session first (it restores the original values), then change it"
    )
    assert await stored_state(runtime, backup_dir) == before


async def test_restoring_an_old_version_is_refused_while_a_session_runs(deps: Deps) -> None:
    await set_value(deps, "min_confidence", 0.7)
    await start(deps)
    with pytest.raises(ConflictError, match="are relaxed by learning session"):
        await services.restore_version(deps, ADMIN, Scope.GLOBAL, 1)


async def test_other_parameters_can_change_and_keep_their_value_after_the_end(
    deps: Deps,
) -> None:
    await start(deps)
    await set_value(deps, "long_rsi_entry", 35)
    await learning.stop_learning_session(deps, OPERATOR)
    values = await effective(deps)
    assert (values["long_rsi_entry"], values["min_confidence"]) == (35, 0.65)


async def test_status_shows_time_left_trades_so_far_pnl_and_win_rate(
    deps: Deps, clock: MovableClock
) -> None:
    await close_trades(deps, 50.0, closed_at=T0 - timedelta(minutes=1))  # before: not counted
    session = await start(deps)
    clock.advance(minutes=20)
    await close_trades(deps, 10.0, -5.0, 3.0)
    status = await learning.learning_status(deps, VIEWER)
    assert status is not None
    assert status.session.id == session.id
    assert status.time_left == timedelta(minutes=40)
    assert (status.so_far.trades, status.so_far.total_pnl) == (3, 8.0)
    assert status.so_far.win_rate == pytest.approx(2 / 3)
    assert status.session.relaxed_values()[0].relaxed == 0.5525


async def test_status_is_none_when_no_session_runs(deps: Deps) -> None:
    assert await learning.learning_status(deps, VIEWER) is None


# --- ending ------------------------------------------------------------------------


async def test_stop_restores_exactly_the_versions_from_before_the_session(
    deps: Deps, runtime: Runtime
) -> None:
    await set_value(deps, "min_confidence", 0.7)
    await set_value(deps, "stop_loss_pct", 2.5, Scope.HIGH)
    before = {scope: await runtime.store.active(scope) for scope in (Scope.GLOBAL, Scope.HIGH)}
    session = await start(deps)
    await learning.stop_learning_session(deps, OPERATOR)
    for scope, original in before.items():
        restored = await runtime.store.active(scope)
        assert original is not None and restored is not None
        assert restored.version == original.version + 2
        assert restored.parameters == original.parameters
        assert restored.learning_session_id == session.id


async def test_effective_parameters_return_to_the_originals_at_the_end(deps: Deps) -> None:
    await set_value(deps, "min_confidence", 0.8, Scope.LOW)
    before = {scope: await effective(deps, scope) for scope in Scope}
    await start(deps)
    assert {scope: await effective(deps, scope) for scope in Scope} != before
    await learning.stop_learning_session(deps, OPERATOR)
    assert {scope: await effective(deps, scope) for scope in Scope} == before


async def test_the_originals_come_back_even_if_a_bound_was_narrowed_meanwhile(
    deps: Deps,
) -> None:
    await set_value(deps, "max_position_size", 50)
    await start(deps)
    narrowed = load_schema({"max_position_size": {"max": 40}})  # a restart with a new config
    await learning.stop_learning_session(dataclasses.replace(deps, schema=narrowed), OPERATOR)
    assert (await effective(deps))["max_position_size"] == 50


async def test_stop_ends_the_session_early_and_records_who_and_why(
    deps: Deps, clock: MovableClock
) -> None:
    await start(deps)
    clock.advance(minutes=12)
    ended = await learning.stop_learning_session(deps, ADMIN, "spreads widened")
    assert ended.status is SessionStatus.STOPPED
    assert (ended.ended_at, ended.ended_by, ended.end_reason) == (
        T0 + timedelta(minutes=12),
        "U0ADMIN",
        "spreads widened",
    )


async def test_stop_without_a_running_session_is_refused(deps: Deps) -> None:
    with pytest.raises(ConflictError, match="no learning session is running"):
        await learning.stop_learning_session(deps, OPERATOR)


async def test_a_session_ends_by_itself_once_its_planned_end_has_passed(
    deps: Deps, clock: MovableClock
) -> None:
    before = await effective(deps)
    session = await start(deps, minutes=30)
    clock.advance(minutes=29, seconds=59)
    assert await learning.end_due_sessions(deps) == []
    clock.advance(seconds=1)
    (ended,) = await learning.end_due_sessions(deps)
    assert (ended.id, ended.status, ended.ended_by) == (
        session.id,
        SessionStatus.COMPLETED,
        learning.SYSTEM.id,
    )
    assert await effective(deps) == before
    assert await learning.end_due_sessions(deps) == []


async def test_the_analysis_sets_the_session_beside_an_equally_long_window_before_it(
    deps: Deps, clock: MovableClock
) -> None:
    await close_trades(deps, 99.0, closed_at=T0 - timedelta(minutes=61))  # outside the window
    await close_trades(deps, 4.0, -2.0, closed_at=T0 - timedelta(minutes=30))
    await start(deps)
    clock.advance(minutes=30)
    await close_trades(deps, 6.0, 6.0, -3.0)
    clock.advance(minutes=30)
    (ended,) = await learning.end_due_sessions(deps)
    analysis = ended.analysis
    assert analysis is not None
    assert (analysis.baseline_since, analysis.baseline_until) == (T0 - timedelta(hours=1), T0)
    assert dataclasses.asdict(analysis.session) == {
        "trades": 3,
        "wins": 2,
        "losses": 1,
        "win_rate": pytest.approx(2 / 3),
        "total_pnl": 9.0,
        "average_pnl": 3.0,
        "max_profit": 6.0,
        "max_loss": -3.0,
        "profit_factor": 4.0,
    }
    assert (analysis.baseline.trades, analysis.baseline.total_pnl) == (2, 2.0)


async def test_recommendations_are_withheld_below_the_minimum_number_of_trades(
    deps: Deps, clock: MovableClock
) -> None:
    await start(deps)
    await close_trades(deps, *[5.0] * 19)
    clock.advance(minutes=60)
    (ended,) = await learning.end_due_sessions(deps)
    assert ended.recommendations is not None
    assert ended.recommendations.items == ()
    assert ended.recommendations.withheld == (
        "no recommendations from 19 trades: at least 20 are needed"
    )


async def test_recommendations_name_each_relaxed_value_with_evidence_and_confidence(
    deps: Deps, clock: MovableClock
) -> None:
    await close_trades(deps, 2.0, 2.0, closed_at=T0 - timedelta(minutes=10))
    await start(deps)
    await close_trades(deps, *[5.0] * 20)
    clock.advance(minutes=60)
    (ended,) = await learning.end_due_sessions(deps)
    assert ended.recommendations is not None
    items = ended.recommendations.items
    assert [(i.parameter, i.verdict, i.suggested) for i in items] == [
        (name, Verdict.KEEP, value) for name, value in DEFAULT_RELAXED.items()
    ]
    assert {i.confidence for i in items} == {0.5}
    assert items[0].evidence == (
        "session: average PnL +5.00 and win rate 100% over 20 trades; "
        "baseline: average PnL +2.00 and win rate 100% over 2 trades"
    )


async def test_the_results_are_stored_with_the_session(deps: Deps, clock: MovableClock) -> None:
    first = await start(deps)
    await close_trades(deps, 1.0)
    ended = await learning.stop_learning_session(deps, OPERATOR)
    clock.advance(minutes=60)
    second = await start(deps)
    history = await learning.learning_history(deps, VIEWER)
    assert [s.id for s in history] == [second.id, first.id]
    assert history[1] == ended


async def test_each_start_and_end_queues_an_announcement_even_when_the_timer_ends_it(
    deps: Deps, runtime: Runtime, clock: MovableClock
) -> None:
    session = await start(deps)
    clock.advance(minutes=60)
    (ended,) = await learning.end_due_sessions(deps)
    for event in ("started", "ended"):  # in this order, on one topic
        message = await runtime.outbox.head(ANNOUNCE_TOPIC, clock.now())
        assert message is not None
        assert message.payload == {"session_id": session.id, "event": event}
        await runtime.outbox.delivered(message.id, clock.now())
    assert await deps.learning.get(session.id) == ended
