"""Learning from blocked trades through the use case, on SQLite and PostgreSQL, with the real
market data files of /work/shared/data (5-minute bars, 2018-01-10 04:55 to 2018-01-30 04:55
UTC; ADA/BTC has a 33-bar gap on 2018-01-15 from 12:00)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import render_blocked
from bot.config import Settings
from bot.optimizer_config import OptimizerSettings
from bot.runtime import Runtime
from core import services, trades
from core.authz import Actor, Role
from core.blocked_insights import blocked_trade_insights
from core.counterfactual import Counterfactual, CounterfactualPolicy, Insights, TradeOutcome
from core.errors import PermissionDeniedError
from core.models import BlockedTradeEvent, Side, VersionStatus
from core.optimization_model import OptimizerPolicy
from core.params import Scope
from core.ports import Deps
from storage.tables import ConfigVersionRow
from tests.clock import MovableClock

DATA = Path("/work/shared/data")
ADMIN = Actor.having("U0ADMIN", "slack", Role.ADMIN)
VIEWER = Actor.having("U0VIEW", "slack", Role.VIEWER)
ENGINE = Actor.having("engine", "api", Role.ENGINE)
AFTER_THE_DATA = datetime(2018, 2, 5, tzinfo=UTC)


def utc(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2018, 1, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str, backup_dir: Path) -> Settings:
    symbols: dict[str, Scope | None] = {"ETH/BTC": Scope.HIGH, "LTC/BTC": None}  # None: "auto"
    optimizer = OptimizerSettings(OptimizerPolicy(symbols=symbols), workers=1)
    return Settings(
        database_url=database_url,
        backup_dir=backup_dir,
        market_data_dir=DATA,
        optimizer=optimizer,
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(utc(10))


@pytest.fixture
def deps(runtime: Runtime, clock: MovableClock) -> Deps:
    return dataclasses.replace(runtime.deps, clock=clock)


async def block(deps: Deps, *events: tuple[str, str, datetime]) -> None:
    """The engine reports blocked BUY signals: (event id, symbol, time)."""
    await trades.ingest_blocked_trades(
        deps,
        ENGINE,
        [
            BlockedTradeEvent(event_id, at, symbol, Side.BUY, "min_confidence", confidence=0.6)
            for event_id, symbol, at in events
        ],
    )


async def set_at(
    deps: Deps, clock: MovableClock, at: datetime, scope: Scope, **values: float
) -> None:
    clock.at = at
    for name, value in values.items():
        await services.set_parameter(deps, ADMIN, scope, name, value, "test")


async def insights(deps: Deps, clock: MovableClock, now: datetime = AFTER_THE_DATA) -> Insights:
    clock.at = now
    return await blocked_trade_insights(deps, VIEWER, utc(10), utc(31))


async def add_candidate(runtime: Runtime, scope: Scope, at: datetime) -> None:
    """A version as an optimizer candidate is stored: never live, TESTING then ARCHIVED."""
    async with runtime.engine.begin() as connection:
        await connection.execute(
            ConfigVersionRow.__table__.insert().values(
                scope=scope.value, version=99, parameters={"stop_loss_pct": 9.0},
                status=VersionStatus.ARCHIVED.value, author="optimizer", source="optimizer",
                reason="candidate", parent_version=1, created_at=at,
            )
        )  # fmt: skip


def by_event(found: Insights) -> dict[str, Counterfactual]:
    return {c.order.trade.event_id: c for c in found.evaluated}


async def test_each_trade_takes_the_bracket_its_scope_had_live_when_it_was_blocked(
    deps: Deps, clock: MovableClock, runtime: Runtime
) -> None:
    await set_at(deps, clock, utc(11), Scope.GLOBAL, stop_loss_pct=1.0, take_profit_pct=1.5)
    await set_at(deps, clock, utc(14), Scope.HIGH, stop_loss_pct=0.5)
    await add_candidate(runtime, Scope.HIGH, utc(15))
    await block(
        deps,
        ("defaults", "ETH/BTC", utc(10, 12)),  # before any version
        ("global", "ETH/BTC", utc(13)),  # HIGH has no version yet: global's values
        ("high", "ETH/BTC", utc(16)),  # HIGH's stop, global's target
        ("auto", "LTC/BTC", utc(16)),  # "auto" symbols take the global scope
    )
    brackets = {
        event: (c.order.scope, c.order.stop_loss_pct, c.order.take_profit_pct)
        for event, c in by_event(await insights(deps, clock)).items()
    }
    assert brackets == {
        "defaults": (Scope.HIGH, 2.0, 4.0),
        "global": (Scope.HIGH, 1.0, 1.5),
        "high": (Scope.HIGH, 0.5, 1.5),
        "auto": (Scope.GLOBAL, 1.0, 1.5),
    }


async def test_live_versions_are_those_live_in_the_window_never_a_candidate(
    deps: Deps, clock: MovableClock, runtime: Runtime
) -> None:
    for day, value in ((11, 1.0), (13, 1.1), (15, 1.2), (17, 1.3)):
        await set_at(deps, clock, utc(day), Scope.GLOBAL, stop_loss_pct=value)
    await add_candidate(runtime, Scope.GLOBAL, utc(14))
    live = await deps.config.live_versions(Scope.GLOBAL, utc(12), utc(16))
    assert [(v.version, v.created_at) for v in live] == [(1, utc(11)), (2, utc(13)), (3, utc(15))]
    assert await deps.config.live_versions(Scope.HIGH, utc(12), utc(16)) == []


async def test_the_fill_rules_apply_to_the_real_candles(deps: Deps, clock: MovableClock) -> None:
    await set_at(deps, clock, utc(10, 12), Scope.GLOBAL, stop_loss_pct=2.0, take_profit_pct=1.0)
    await block(deps, ("tp", "ETH/BTC", utc(13, 16, 15)), ("late", "ETH/BTC", utc(29, 23)))
    found = by_event(await insights(deps, clock))
    assert found["tp"].outcome is TradeOutcome.WON  # bar 1007, as in tests/unit
    assert found["tp"].exit_time == utc(13, 16, 50)
    # The data ends on 2018-01-30 at 04:55, before the 3-day horizon: still open there.
    assert found["late"].outcome is TradeOutcome.OPEN
    assert found["late"].exit_time == utc(30, 4, 50)


async def test_every_trade_is_evaluated_or_listed_with_the_reason(
    deps: Deps, clock: MovableClock
) -> None:
    await block(
        deps,
        ("eth", "ETH/BTC", utc(12)),
        ("no file", "XRP/BTC", utc(12)),
        ("before the gap", "ADA/BTC", utc(15, 6)),
        ("after the gap", "ADA/BTC", utc(16)),
        ("after the data", "ETH/BTC", utc(30, 12)),
        ("just now", "ETH/BTC", utc(30, 23, 58)),
    )
    found = await insights(deps, clock, now=utc(31))
    assert sorted(by_event(found)) == ["before the gap", "eth"]
    assert by_event(found)["before the gap"].exit_time <= utc(15, 11, 55)  # before the gap
    reasons = {item.trade.event_id: item.reason for item in found.not_evaluated}
    assert reasons == {
        "no file": f"no market data for XRP/BTC 5m: no file in {DATA} and no candles "
        "reported by the engine",
        "after the gap": "no usable 5m bar after the block: ADA/BTC 5m: 1 gap(s) longer than "
        "12 bars, the first of 33 bars from 2018-01-15 12:00 to 2018-01-15 14:40 UTC",
        "after the data": "no usable 5m bar after the block: ETH/BTC: requested 2018-01-11 "
        "23:55 .. 2018-01-31 00:00 UTC, but the data covers 2018-01-10 04:55 .. 2018-01-30 "
        "04:55 UTC",
        "just now": "no 5m bar has closed since the block yet",
    }
    assert found.blocked == 6


async def test_a_trade_blocked_before_any_market_data_is_not_evaluated(deps: Deps) -> None:
    ancient = datetime(1000, 1, 1, tzinfo=UTC)  # beyond what nanosecond bar times hold
    await block(deps, ("ancient", "ETH/BTC", ancient))
    found = await blocked_trade_insights(deps, VIEWER, ancient, utc(31))
    assert [n.reason for n in found.not_evaluated] == ["blocked before 1970: no market data"]


async def test_the_report_shows_statistics_recommendations_and_what_was_not_evaluated(
    deps: Deps, clock: MovableClock
) -> None:
    deps = dataclasses.replace(deps, counterfactual=CounterfactualPolicy(min_trades=10))
    # ETH/BTC (HIGH) with a target 0.1 % away and a stop 50 % away: blocks that would have
    # won; LTC/BTC (global) the other way round: blocks that would have lost.
    await set_at(deps, clock, utc(10, 6), Scope.HIGH, stop_loss_pct=50.0, take_profit_pct=0.1)
    await set_at(deps, clock, utc(10, 6), Scope.GLOBAL, stop_loss_pct=0.1, take_profit_pct=100.0)
    await trades.ingest_blocked_trades(
        deps,
        ENGINE,
        [
            BlockedTradeEvent(f"{symbol}-{day}", utc(day, 10), symbol, Side.BUY, reason)
            for symbol, reason in (("ETH/BTC", "news"), ("LTC/BTC", "max_exposure"))
            for day in range(11, 26)
        ],
    )
    await block(deps, ("no file", "XRP/BTC", utc(12)))
    found = await insights(deps, clock)
    assert [(r.block_reason, r.advice.value) for r in found.recommendations] == [
        ("max_exposure", "keep"),
        ("news", "review"),
    ]
    text = render_blocked.insights(found)
    assert text.startswith(
        "blocked trades 2018-01-10 00:00 UTC – 2018-01-31 00:00 UTC: 31 blocked, 30 evaluated, "
        "1 not evaluated\n"
    )
    assert "  news          n=15    won 15, lost 0, open 0: would have won 100 % (n=15)" in text
    assert "recommendations (from at least 10 won or lost trades each):\n  • max_exposure" in text
    assert (
        "not evaluated:\n  2018-01-12 00:00 UTC XRP/BTC BUY (min_confidence, event no file)" in text
    )


async def test_viewers_may_read_the_insights_the_engine_may_not(deps: Deps) -> None:
    with pytest.raises(PermissionDeniedError):
        await blocked_trade_insights(deps, ENGINE, utc(10), utc(31))
    empty = await blocked_trade_insights(deps, VIEWER, utc(10), utc(31))
    assert (empty.blocked, empty.recommendations) == (0, ())
    assert render_blocked.insights(empty).endswith(": 0 blocked, 0 evaluated, 0 not evaluated")


def test_the_horizon_is_counted_in_bars_of_the_timeframe() -> None:
    policy = CounterfactualPolicy(horizon=timedelta(hours=2))
    assert (policy.horizon_bars(300), policy.horizon_bars(86_400)) == (24, 1)
