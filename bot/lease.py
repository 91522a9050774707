"""Leadership among replicas: the replica holding the database lease runs what must run
exactly once (scheduled jobs, the learning timer, the outbox dispatchers); the others
serve Slack events and the HTTP API.

Each replica tries to take or renew the lease every third of its length. The holder that
dies (even by SIGKILL) stops renewing, so another replica takes over once the lease has
expired; a clean stop releases it at once. A holder that cannot renew steps down when its
lease runs out, since by then another replica may hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.loops import Loops
from core.ports import Clock
from storage.leases import SqlLeases

if TYPE_CHECKING:
    from bot.service import Component

log = logging.getLogger(__name__)

LEADER_LEASE = "leader"


def replica_id() -> str:
    """Host, pid namespace and pid say which process it is; the suffix tells a reused pid
    apart."""
    return f"{socket.gethostname()}:{_pid_namespace()}:{os.getpid()}:{secrets.token_hex(2)}"


def died_here(holder: str) -> bool:
    """Whether `holder` was a process of this host and pid namespace that no longer runs:
    then its lease need not run out first (a replica restarted after a crash leads at once)."""
    try:
        host, namespace, pid, _ = holder.rsplit(":", 3)
        number = int(pid)
    except ValueError:
        return False
    here = (socket.gethostname(), _pid_namespace())
    if namespace == "?" or (host, namespace) != here or number == os.getpid():
        return False
    try:
        os.kill(number, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, as another user
        return False
    return False


def _pid_namespace() -> str:
    """Pids are comparable only within one namespace (containers have their own)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # not Linux: no shortcut, the lease runs out
        return "?"


class Leadership:
    def __init__(
        self,
        leases: SqlLeases,
        clock: Clock,
        replica: str,
        ttl: timedelta,
        components: Sequence[Component],
    ) -> None:
        self.replica = replica
        self._leases = leases
        self._clock = clock
        self._ttl = ttl
        self._components = components
        self._held_until: datetime | None = None
        self._running: contextlib.AsyncExitStack | None = None
        self._stopping = False
        self._loops = Loops()

    @property
    def leading(self) -> bool:
        return self._running is not None

    async def start(self) -> None:
        # One attempt before returning: a lone replica runs its timers before the HTTP
        # server starts, so an overdue learning session ends before parameters are served.
        await self._tick()
        if not self.leading:
            log.info("lease: replica %s is on standby; another replica runs the jobs", self.replica)
        self._loops.spawn(self._run(), name="lease")

    async def stop(self) -> None:
        # The lease is renewed until the leader components have stopped (a job may take its
        # grace period to finish): if it ran out first, another replica's dispatcher would
        # deliver the same outbox messages as ours.
        self._stopping = True
        running, self._running = self._running, None
        if running is not None:
            await running.aclose()
        await self._loops.stop()
        if running is not None:
            with contextlib.suppress(Exception):  # it then runs out on its own
                await self._leases.release(LEADER_LEASE, self.replica)
            log.info("lease: replica %s released the lease", self.replica)

    async def _run(self) -> None:
        while self._loops.running:
            await self._loops.pause(self._ttl.total_seconds() / 3)
            if self._loops.running:
                await self._tick()

    async def _tick(self) -> None:
        now, look = self._clock.now(), self._ttl / 3
        try:
            held = await asyncio.wait_for(self._acquire(now), look.total_seconds())
        except Exception as error:
            log.warning("lease: cannot reach the database to renew the lease (%r)", error)
            # Step down before the lease runs out, not after: from then on another replica
            # may take it, and two replicas must never run the jobs at once.
            if self._held_until is not None and now + look >= self._held_until:
                await self._step_down("it could not be renewed before running out")
            return
        if held:
            self._held_until = now + self._ttl
            if not self.leading and not self._stopping:
                await self._take_over()
        elif self.leading:
            await self._step_down("another replica holds the lease")

    async def _acquire(self, now: datetime) -> bool:
        if await self._leases.acquire(LEADER_LEASE, self.replica, self._ttl, now):
            return True
        lease = await self._leases.current(LEADER_LEASE)
        if lease is None or not died_here(lease.holder):
            return False
        log.info("lease: its holder %s is no longer running on this host", lease.holder)
        return await self._leases.take_from(
            LEADER_LEASE, lease.holder, self.replica, self._ttl, now
        )

    async def _take_over(self) -> None:
        log.info("lease: replica %s holds the lease; it runs the jobs and timers", self.replica)
        stack = contextlib.AsyncExitStack()
        try:
            for component in self._components:
                await component.start()
                stack.push_async_callback(component.stop)
        except Exception:
            # Retried at the next renewal: the lease stays held, nothing else runs the jobs.
            log.exception("lease: a leader component failed to start")
            await stack.aclose()
            return
        self._running = stack

    async def _step_down(self, why: str) -> None:
        running, self._running, self._held_until = self._running, None, None
        if running is not None:
            log.warning("lease: replica %s no longer holds the lease: %s", self.replica, why)
            await running.aclose()
