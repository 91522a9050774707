"""The learning timer component ends sessions at their planned end, across restarts."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.learning_timer import LearningTimer
from bot.runtime import Runtime
from core import learning, services
from core.authz import Actor, Role
from core.learning_model import SessionStatus
from core.params import Scope
from core.ports import Deps
from tests.clock import MovableClock

OPERATOR = Actor.having("U0OPS", "slack", Role.OPERATOR)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def deps(runtime: Runtime, clock: MovableClock) -> Deps:
    return dataclasses.replace(runtime.deps, clock=clock)


@pytest.fixture
async def timer(deps: Deps) -> AsyncIterator[LearningTimer]:
    """A timer that looks every 10 ms; started by the test, always stopped."""
    component = LearningTimer(deps, poll_seconds=0.01)
    yield component
    await component.stop()


async def global_values(deps: Deps) -> dict[str, float]:
    return (await services.effective_parameters(deps, Scope.GLOBAL))[0]


async def until_no_session_runs(deps: Deps) -> None:
    async def poll() -> None:
        while await deps.learning.active() is not None:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout=15)


async def test_at_start_it_ends_a_session_that_became_overdue_while_down(
    deps: Deps, clock: MovableClock, timer: LearningTimer
) -> None:
    original = await global_values(deps)
    await learning.start_learning_session(deps, OPERATOR, 30, "explore")
    clock.advance(minutes=45)  # the process was down past the planned end
    await timer.start()
    assert await deps.learning.active() is None  # ended before start() returned
    assert await global_values(deps) == original
    (session,) = await learning.learning_history(deps, OPERATOR)
    assert session.status is SessionStatus.COMPLETED


async def test_at_start_it_leaves_a_running_session_running(
    deps: Deps, clock: MovableClock, timer: LearningTimer
) -> None:
    session = await learning.start_learning_session(deps, OPERATOR, 30, "explore")
    clock.advance(minutes=10)
    await timer.start()
    running = await deps.learning.active()
    assert running is not None and running.id == session.id


async def test_it_ends_the_running_session_when_its_planned_end_comes(
    deps: Deps, clock: MovableClock, timer: LearningTimer
) -> None:
    original = await global_values(deps)
    await timer.start()
    await learning.start_learning_session(deps, OPERATOR, 30, "explore")
    clock.advance(minutes=30)
    await until_no_session_runs(deps)
    assert await global_values(deps) == original
