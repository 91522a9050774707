"""`paramadapt run`: start the process's components, run until SIGINT/SIGTERM, stop them.

Components start in order and stop in reverse, so the HTTP server (which accepts engine
events) stops before the dispatchers that deliver what it accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import aiohttp

from bot.engine_push import PUSH_TOPICS, EnginePusher
from bot.jobs import Jobs
from bot.learning_timer import LearningTimer
from bot.lease import Leadership, replica_id
from bot.optimizer_component import OptimizerComponent
from bot.outbox import Deliver, OutboxDispatcher
from bot.runtime import Runtime
from bot.slack import build_slack
from bot.webhook.server import HttpServer
from storage.db import sessionmaker
from storage.leases import SqlLeases

log = logging.getLogger(__name__)


class Component(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def serve(runtime: Runtime, console_user: str | None = None) -> None:
    """`console_user`: who types at the console when there are no Slack tokens."""
    stop = asyncio.Event()
    async with _engine_session() as http:
        slack = build_slack(runtime, console_user, stop)
        dispatcher = OutboxDispatcher(
            runtime.outbox,
            runtime.deps.clock,
            {**_deliverers(runtime, http), **slack.deliverers()},
        )
        runtime.wakers.append(dispatcher.nudge)
        leadership = _leadership(runtime, [LearningTimer(runtime.deps), dispatcher])
        runtime.holds_lease = lambda: leadership.leading
        server = HttpServer(runtime)
        slack.mount(server.app)
        # Slack's writers start before the dispatcher that feeds them; what brings requests
        # in (Socket Mode, the console prompt) starts last and stops first. The lease is
        # tried before the HTTP server starts: a lone replica ends a learning session that
        # became overdue while it was down before it serves parameters.
        components: list[Component] = [
            OptimizerComponent(runtime),
            *slack.backend,
            leadership,
            server,
            *slack.frontend,
        ]
        await run_until_signalled(components, stop)


def _leadership(runtime: Runtime, once: list[Component]) -> Leadership:
    """Of several replicas on one database, only the lease holder runs `once`, and the jobs."""
    replica = replica_id()
    leases = SqlLeases(sessionmaker(runtime.engine))
    settings = runtime.settings.jobs
    leading = [*once, Jobs(runtime, replica)]
    return Leadership(leases, runtime.deps.clock, replica, settings.lease, leading)


@contextlib.asynccontextmanager
async def _engine_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _deliverers(runtime: Runtime, http: aiohttp.ClientSession) -> dict[str, Deliver]:
    settings = runtime.settings
    if not settings.engine_callback_url:
        return {}
    pusher = EnginePusher(
        settings.engine_callback_url, settings.engine_webhook_secret, http, runtime.deps
    )
    return {topic: pusher.deliver for topic in PUSH_TOPICS}


async def run_until_signalled(
    components: Sequence[Component], stop: asyncio.Event | None = None
) -> None:
    """Run until SIGINT/SIGTERM, or until a component sets `stop` (the console at EOF)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with started(components):
            await stop.wait()
            log.info("paramadapt stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@contextlib.asynccontextmanager
async def started(components: Sequence[Component]) -> AsyncIterator[None]:
    """Start the components in order; stop those that started, in reverse."""
    running: list[Component] = []
    try:
        for component in components:
            await component.start()
            running.append(component)
        yield
    finally:
        for component in reversed(running):
            await component.stop()
