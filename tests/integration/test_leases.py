"""The leader lease, on SQLite and PostgreSQL: one holder at a time, renewal, and takeover
once a holder that stopped renewing (it died) has let its lease run out."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import make_url

from bot.config import Settings
from bot.lease import LEADER_LEASE, Leadership, replica_id
from bot.runtime import Runtime
from storage.db import create_engine, sessionmaker
from storage.leases import SqlLeases
from tests.clock import MovableClock
from tests.faults.tcp_proxy import TcpProxy

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


@pytest.fixture
def leases(runtime: Runtime) -> SqlLeases:
    return SqlLeases(sessionmaker(runtime.engine))


async def test_the_first_replica_takes_the_lease_and_the_second_is_refused(
    leases: SqlLeases,
) -> None:
    assert await leases.acquire(LEADER_LEASE, "a", TTL, NOW)
    assert not await leases.acquire(LEADER_LEASE, "b", TTL, NOW + timedelta(seconds=1))
    lease = await leases.current(LEADER_LEASE)
    assert lease is not None and (lease.holder, lease.expires_at) == ("a", NOW + TTL)


async def test_renewing_extends_the_lease_and_keeps_when_it_was_taken(leases: SqlLeases) -> None:
    await leases.acquire(LEADER_LEASE, "a", TTL, NOW)
    assert await leases.acquire(LEADER_LEASE, "a", TTL, NOW + timedelta(seconds=10))
    lease = await leases.current(LEADER_LEASE)
    assert lease is not None
    assert (lease.acquired_at, lease.expires_at) == (NOW, NOW + timedelta(seconds=40))


async def test_another_replica_takes_over_a_lease_nobody_renewed(leases: SqlLeases) -> None:
    await leases.acquire(LEADER_LEASE, "a", TTL, NOW)
    assert await leases.acquire(LEADER_LEASE, "b", TTL, NOW + TTL)
    assert not await leases.acquire(LEADER_LEASE, "a", TTL, NOW + TTL + timedelta(seconds=1))


async def test_a_released_lease_is_free_at_once(leases: SqlLeases) -> None:
    await leases.acquire(LEADER_LEASE, "a", TTL, NOW)
    await leases.release(LEADER_LEASE, "a")
    assert await leases.acquire(LEADER_LEASE, "b", TTL, NOW + timedelta(seconds=1))


async def test_of_many_concurrent_claims_exactly_one_wins(runtime: Runtime) -> None:
    # Separate store objects, as separate processes would have.
    claims = [
        SqlLeases(sessionmaker(runtime.engine)).acquire(LEADER_LEASE, f"r{i}", TTL, NOW)
        for i in range(6)
    ]
    assert sorted(await asyncio.gather(*claims)) == [False] * 5 + [True]


class Recorder:
    """A leader-only component: says whether it is running."""

    def __init__(self) -> None:
        self.running = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False


@contextlib.asynccontextmanager
async def replicas(
    leases: SqlLeases, *names: str, clock: MovableClock | None = None
) -> AsyncIterator[list[tuple[Leadership, Recorder]]]:
    """Replicas started in the order named, each with its leader-only component; all stopped
    at the end, the last started first."""
    clock = clock or MovableClock(NOW)
    started: list[tuple[Leadership, Recorder]] = []
    try:
        for name in names:
            work = Recorder()
            replica = Leadership(leases, clock, name, timedelta(seconds=3), [work])
            await replica.start()
            started.append((replica, work))
        yield started
    finally:
        for replica, _ in reversed(started):
            await replica.stop()


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    async def until() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(until(), timeout=10)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def test_only_the_holder_runs_the_leader_components(leases: SqlLeases) -> None:
    async with replicas(leases, "a", "b") as [(a, first), (b, second)]:
        assert (a.leading, first.running) == (True, True)
        assert (b.leading, second.running) == (False, False)


async def test_a_standby_replica_takes_over_when_the_holder_stops_renewing(
    leases: SqlLeases,
) -> None:
    clock = MovableClock(NOW)
    await leases.acquire(LEADER_LEASE, "dead", timedelta(seconds=3), NOW)  # then SIGKILLed
    async with replicas(leases, "b", clock=clock) as [(standby, work)]:
        assert not work.running
        clock.advance(seconds=3)
        await wait_for(lambda: work.running, "the standby replica to take over")
        assert standby.leading


async def test_a_clean_stop_hands_the_lease_over_at_once(leases: SqlLeases) -> None:
    async with replicas(leases, "a", "b") as [(a, first), (_, second)]:
        await a.stop()
        assert not first.running
        await wait_for(lambda: second.running, "the other replica to take over")


def finished_process_on_this_host() -> str:
    """The replica id a process of this host had before it died."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host, namespace, _pid, suffix = replica_id().rsplit(":", 3)
    return f"{host}:{namespace}:{child.pid}:{suffix}"


@pytest.mark.skipif(not Path("/proc/self/ns/pid").exists(), reason="needs Linux pid namespaces")
async def test_a_replica_restarted_after_a_crash_leads_at_once(leases: SqlLeases) -> None:
    await leases.acquire(LEADER_LEASE, finished_process_on_this_host(), TTL, NOW)
    async with replicas(leases, replica_id()) as [(_, work)]:
        assert work.running  # without waiting for the dead process's lease to run out


async def test_a_live_holder_on_this_host_keeps_its_lease(leases: SqlLeases) -> None:
    await leases.acquire(LEADER_LEASE, replica_id(), TTL, NOW)  # this very process
    async with replicas(leases, replica_id()) as [(_, work)]:
        assert not work.running


class SlowToStop(Recorder):
    """Leader work that takes a while to stop (a job finishing within its grace period)."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping = asyncio.Event()
        self.may_stop = asyncio.Event()

    async def stop(self) -> None:
        self.stopping.set()
        await self.may_stop.wait()
        await super().stop()


async def lease_renewed_after(leases: SqlLeases, at: datetime) -> None:
    async def renewed() -> None:
        while (lease := await leases.current(LEADER_LEASE)) is None or lease.expires_at <= at:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(renewed(), timeout=10)


async def test_a_stopping_leader_renews_its_lease_until_its_work_has_stopped(
    leases: SqlLeases,
) -> None:
    clock, work = MovableClock(NOW), SlowToStop()
    leader = Leadership(leases, clock, "a", timedelta(seconds=3), [work])
    await leader.start()
    stopping = asyncio.create_task(leader.stop())
    await work.stopping.wait()

    clock.advance(seconds=10)  # long past the lease taken at start
    await lease_renewed_after(leases, clock.now())
    assert not await leases.acquire(LEADER_LEASE, "b", TTL, clock.now())

    work.may_stop.set()
    await stopping
    assert await leases.acquire(LEADER_LEASE, "b", TTL, clock.now())  # released once stopped


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # cut off by a proxy
async def test_a_leader_that_cannot_renew_steps_down_before_its_lease_runs_out(
    settings: Settings,
) -> None:
    url = make_url(settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    engine = create_engine(url.set(host="127.0.0.1", port=proxy.port))
    clock, work = MovableClock(NOW), Recorder()
    leader = Leadership(SqlLeases(sessionmaker(engine)), clock, "a", timedelta(seconds=3), [work])
    try:
        await leader.start()
        assert work.running
        await proxy.take_down()
        clock.advance(seconds=2)  # one renewal period (1 s) before the lease taken at NOW ends
        await wait_for(lambda: not work.running, "the leader to step down")
        assert clock.now() < NOW + timedelta(seconds=3)  # before anyone else may take it
    finally:
        await leader.stop()
        await engine.dispose()
        await proxy.close()
