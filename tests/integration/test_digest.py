"""The digest use case on SQLite and PostgreSQL: what a period's digest holds."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

import pytest

from bot.runtime import Runtime
from core import digest
from core.authz import Actor, Role
from core.counterfactual import Insights
from core.errors import PermissionDeniedError
from core.learning_model import SessionStatus
from core.market import LoadedCandles
from core.models import OverrideStatus
from core.optimization_model import RunStatus
from core.params import Scope
from core.ports import Deps
from tests.clock import MovableClock
from tests.digest_seed import DAY, PINGING_REASON, seed_day

VIEWER = Actor.having("U0VIEW", "slack", Role.VIEWER)
STRANGER = Actor.having("U0NOBODY", "slack")


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(DAY)


@pytest.fixture
def deps(runtime: Runtime, clock: MovableClock) -> Deps:
    return dataclasses.replace(runtime.deps, clock=clock)


async def daily(deps: Deps) -> digest.Digest:
    since, until = digest.period("daily", deps.clock.now())
    return await digest.gather_digest(deps, VIEWER, "daily", since, until)


async def test_the_daily_digest_holds_the_days_activity(deps: Deps, clock: MovableClock) -> None:
    seeded = await seed_day(deps, clock)

    found = await daily(deps)

    assert not found.empty
    assert (found.pnl.trades, found.pnl.wins, found.pnl.total_pnl) == (3, 2, 12.0)
    assert [total for _, total in found.equity.points] == [6.0, 2.0, 12.0]  # in closing order
    assert found.blocked.by_reason == {"min_confidence": 2, PINGING_REASON: 1}
    assert found.blocked.by_symbol == {"BTCUSDT": 1, "ETHUSDT": 2}
    assert isinstance(found.counterfactual, Insights) and found.counterfactual.blocked == 3
    [override] = found.overrides
    assert (override.status, override.decided_by) == (OverrideStatus.APPROVED, "U0OPS")
    [session] = found.learning
    assert (session.status, session.started_by) == (SessionStatus.STOPPED, "U0OPS")
    assert not isinstance(found.runs, digest.Unavailable)
    assert [(run.run_id, run.status) for run in found.runs] == [
        (seeded.run_id, RunStatus.NO_IMPROVEMENT)
    ]
    assert not isinstance(found.counters, digest.Unavailable)
    assert [level.volatility_level for level in found.counters] == [
        Scope.HIGH,
        Scope.MEDIUM,
        Scope.LOW,
    ]


async def test_current_parameters_show_each_scope_with_the_periods_changes(
    deps: Deps, clock: MovableClock
) -> None:
    await seed_day(deps, clock)

    scopes = {item.scope: item for item in (await daily(deps)).parameters}

    glob = scopes[Scope.GLOBAL]
    assert glob.values["min_confidence"] == 0.6
    assert set(glob.values) == set(deps.schema.names)  # defaults filled in
    made = glob.changes[0]  # then the learning session's relaxing and restoring
    assert (made.parameter, made.old, made.new, made.actor) == (
        "min_confidence",
        0.65,
        0.6,
        "U0ADMIN",
    )
    assert not scopes[Scope.HIGH].changes


async def test_the_equity_marks_each_version_the_period_made(
    deps: Deps, clock: MovableClock
) -> None:
    await seed_day(deps, clock)

    found = await daily(deps)

    made = found.parameters[0].changes
    marks = [(mark.at, mark.label) for mark in found.equity.changes]
    assert marks[0] == (DAY + timedelta(hours=1), f"global v{made[0].to_version}")
    assert len(marks) == len({(c.scope, c.to_version) for c in made})  # one per version


async def test_activity_outside_the_period_is_left_out(deps: Deps, clock: MovableClock) -> None:
    await seed_day(deps, clock)
    clock.advance(days=2)

    found = await daily(deps)

    assert found.empty
    assert found.parameters[0].values["min_confidence"] == 0.6  # still shown as current


async def test_the_weekly_digest_covers_seven_days(deps: Deps, clock: MovableClock) -> None:
    await seed_day(deps, clock)
    clock.advance(days=6)

    since, until = digest.period("weekly", clock.now())
    found = await digest.gather_digest(deps, VIEWER, "weekly", since, until)

    assert found.pnl.trades == 3 and until - since == timedelta(days=7)


async def test_someone_without_a_role_may_not_read_the_digest(
    deps: Deps, clock: MovableClock
) -> None:
    since, until = digest.period("daily", clock.now())
    with pytest.raises(PermissionDeniedError, match="viewer"):
        await digest.gather_digest(deps, STRANGER, "daily", since, until)


class UnmountedMarketData:
    """A market data source whose storage is gone: it fails with an OSError, not with the
    MarketDataError blocked_insights expects."""

    async def candles(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> LoadedCandles:
        raise OSError(f"/mnt/market/{symbol}-{timeframe}.feather: no such device")


async def test_failing_market_data_leaves_out_only_the_counterfactual_statistics(
    deps: Deps, clock: MovableClock, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_day(deps, clock)
    assert deps.optimizer is not None
    broken = dataclasses.replace(
        deps, optimizer=dataclasses.replace(deps.optimizer, market=UnmountedMarketData())
    )

    found = await daily(broken)

    assert found.counterfactual == digest.Unavailable("unexpected OSError, details in the log")
    assert (found.pnl.trades, found.blocked.total, len(found.overrides)) == (3, 3, 1)
    assert len(found.learning) == 1 and found.changes
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "counterfactual statistics not available" in warning.getMessage()
    assert isinstance(warning.exc_info and warning.exc_info[1], OSError)
