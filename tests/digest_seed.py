"""A day of activity for the digest tests, made through the use cases as people and the
engine would make it: a parameter change, closed trades, blocked trades (one with text that
would ping the channel if it were not escaped), an override, a learning session and an
optimization run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from core import learning, services, trades
from core.authz import Actor, Role
from core.models import AuditEntry, BlockedTradeEvent, ClosedTradeEvent, Outcome, Side
from core.optimization_model import DataRange, NewRun, RunEnd, RunStatus, Trigger
from core.optimizer import Method
from core.params import Scope
from core.ports import Deps

ADMIN = Actor.having("U0ADMIN", "slack", Role.ADMIN)
OPERATOR = Actor.having("U0OPS", "slack", Role.OPERATOR)
ENGINE = Actor.having("engine", "api", Role.ENGINE)
DAY = datetime(2026, 3, 2, tzinfo=UTC)  # the seeded day starts here
PINGING_REASON = "<!channel> & <@U0BOSS>"  # engine text that must reach Slack inert


class SettableClock(Protocol):
    """The tests' clocks (tests.clock.MovableClock, the e2e ManualClock): deps.clock's time."""

    at: datetime


@dataclass(frozen=True)
class Seeded:
    blocked_ids: list[int]
    run_id: str


async def seed_day(deps: Deps, clock: SettableClock) -> Seeded:
    """Activity from DAY 01:00 to DAY 06:00; the clock is left at DAY 06:00."""
    clock.at = DAY + timedelta(hours=1)
    await services.set_parameter(deps, ADMIN, Scope.GLOBAL, "min_confidence", 0.6, "more trades")
    clock.at = DAY + timedelta(hours=2)
    await close_trades(deps, 10.0, -4.0, 6.0)
    blocked = await trades.ingest_blocked_trades(
        deps,
        ENGINE,
        [
            blocked_trade("BTCUSDT", "min_confidence"),
            blocked_trade("ETHUSDT", PINGING_REASON),
            blocked_trade("ETHUSDT", "min_confidence"),
        ],
    )
    await trades.decide_blocked_trade(deps, OPERATOR, blocked[0].id, approve=True)
    clock.at = DAY + timedelta(hours=3)
    await learning.start_learning_session(deps, OPERATOR, 30, "explore")
    clock.at = DAY + timedelta(hours=3, minutes=20)
    await learning.stop_learning_session(deps, OPERATOR, "seen enough")
    clock.at = DAY + timedelta(hours=5)
    run_id = await finished_run(deps, RunStatus.NO_IMPROVEMENT)
    clock.at = DAY + timedelta(hours=6)
    return Seeded([item.id for item in blocked], run_id)


async def close_trades(deps: Deps, *pnls: float) -> None:
    exit_time = deps.clock.now()
    events = [
        ClosedTradeEvent(
            trade_id=uuid.uuid4().hex,
            symbol="BTCUSDT",
            side=Side.BUY,
            entry_time=exit_time - timedelta(minutes=5 + index),
            exit_time=exit_time - timedelta(minutes=index),
            entry_price=100.0,
            exit_price=100.0 + pnl,
            quantity=1.0,
            pnl=pnl,
            pnl_pct=pnl,
        )
        for index, pnl in enumerate(pnls)
    ]
    await trades.ingest_trades(deps, ENGINE, events)


def blocked_trade(symbol: str, reason: str) -> BlockedTradeEvent:
    return BlockedTradeEvent(
        event_id=uuid.uuid4().hex,
        timestamp=DAY + timedelta(hours=2),
        symbol=symbol,
        signal=Side.BUY,
        block_reason=reason,
        confidence=0.62,
        price=100.0,
    )


async def finished_run(deps: Deps, status: RunStatus) -> str:
    assert deps.optimizer is not None
    now, run_id = deps.clock.now(), f"opt_{uuid.uuid4().hex[:8]}"
    data = DataRange(now - timedelta(days=1), now, "5m")
    new = NewRun(run_id, Trigger.SCHEDULED, Scope.HIGH, Method.GRID, now, "scheduler", 1, "x", data)
    audit = AuditEntry(now, "scheduler", "job", "optimize", "HIGH", Outcome.APPLIED)
    await deps.optimizer.runs.claim(new, now - timedelta(hours=2), audit)
    end = RunEnd(status, now, 60.0, candidates=(), improvement_pct=-2.5)
    await deps.optimizer.runs.finish(run_id, end)
    return run_id
