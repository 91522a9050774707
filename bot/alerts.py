"""Blocked-trade alerts in Slack: delivery from the outbox, coalescing, pacing and expiry.

Each channel has one writer (AlertChannel) that makes at most one Slack call per interval,
so a burst never turns into a 429 storm. It works from the database, not from a list in
memory: every pass takes all trades no alert shows yet, so a burst that arrived while it
waited goes out as one message per symbol, side and reason (or one update of a message
that is still waiting for a decision). An outbox message is marked delivered only when
its trade is in Slack; a failed call fails the waiting deliveries, which the outbox
retries with backoff. Messages are always rendered from the database at the moment they
are written, so a late write can never put back buttons a decision took away.

A refresh (after a decision or an expiry) that Slack did not take is tried again, with
backoff and in the same one-call-per-interval pace, until Slack takes it or the process
stops; only a refusal of the message itself (deleted, say) is not retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.alerts import alert
from bot.loops import Loops
from bot.metrics import ALERTS_SENT
from core.alerts import AlertGroup, AlertStatus, by_key, new_group
from core.ports import Clock
from storage.alert_store import SqlAlertStore
from storage.outbox import OutboxMessage

log = logging.getLogger(__name__)

MIN_SWEEP_PAUSE = 0.5  # seconds; at most this late when an expiry falls due within it
REFRESH_RETRY_FIRST = 1.0  # seconds before a refresh Slack did not take is tried again,
REFRESH_RETRY_MAX = 60.0  # doubling up to this
# Slack's answers that say "not now" rather than "not this message".
_TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)

AlertRef = tuple[str, str]  # channel id, ts of an alert message


@dataclass
class _Refresh:
    due: float  # time.monotonic() from which it may be tried
    failures: int = 0
    waiters: list[asyncio.Future[bool]] = field(default_factory=list)

    def tell(self, shown: bool) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(shown)
        self.waiters.clear()


class AlertChannel:
    """The only writer of alert messages in one channel; one Slack call per `interval`."""

    def __init__(
        self,
        channel: str | None,  # None: alerts are silent or off; only existing messages change
        client: AsyncWebClient,
        store: SqlAlertStore,
        clock: Clock,
        ttl: timedelta,
        interval: float = 1.0,
    ) -> None:
        self.channel = channel
        self._client = client
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._interval = interval
        self._last_call = float("-inf")
        self._wake = asyncio.Event()
        self._waiters: list[asyncio.Future[None]] = []
        self._refreshes: dict[AlertRef, _Refresh] = {}  # oldest first
        self._loops = Loops()
        self.posted = asyncio.Event()  # set for each new message: a new expiry to wait for

    async def start(self) -> None:
        self._loops.spawn(self._run(), name=f"alerts:{self.channel}")
        self._wake.set()  # trades left unalerted by a previous run go out now

    async def stop(self) -> None:
        await self._loops.stop()
        for pending in self._refreshes.values():  # not shown (yet): the process stops
            pending.tell(False)

    async def deliver(self, trade_id: int) -> None:
        """Return once Slack shows the trade (at once when alerts are silent or off); raise if
        the Slack call for it failed."""
        while self.channel is not None and await self._store.needs_alert(trade_id):
            done = asyncio.get_running_loop().create_future()
            self._waiters.append(done)
            self._wake.set()
            await done

    def refresh(self, channel_id: str, ts: str) -> asyncio.Future[bool]:
        """Re-render a message from the database (after a decision or expiry), at once (a
        refresh waiting to be retried is tried now too). The future says whether the next
        attempt showed it: False when Slack did not take it (it is retried) or never will."""
        shown = asyncio.get_running_loop().create_future()
        pending = self._refreshes.setdefault((channel_id, ts), _Refresh(time.monotonic()))
        pending.due = min(pending.due, time.monotonic())
        pending.waiters.append(shown)
        self._wake.set()
        return shown

    async def _run(self) -> None:
        while self._loops.running:
            await self._loops.pause(self._until_retry(), self._wake)
            self._wake.clear()
            try:
                while self._loops.running and await self._write_next():
                    self._settle()
            except Exception as error:
                log.warning("alerts in %s: Slack call failed: %s", self.channel, error)
                self._settle(error)
            else:
                self._settle()

    def _settle(self, error: Exception | None = None) -> None:
        """Let waiting deliveries look again (or fail, so the outbox retries them later)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    async def _write_next(self) -> bool:
        """One Slack call: a refresh first (people are waiting for it), else new trades."""
        due = self._due_refresh()
        if due is not None:
            await self._refresh(due)
            return True
        if self.channel is None:
            return False
        if not self._waiters:
            # New trades go out for a delivery only, and only the lease holder delivers:
            # another replica's writer (refreshing after a click there) never doubles them.
            return False
        pending = await self._store.pending()
        if not pending:
            return False
        key, trades = next(iter(by_key(pending).items()))
        ids = [trade.id for trade in trades]
        waiting = await self._store.open_group(key)
        if waiting is not None and waiting.channel and waiting.ts:
            group = waiting.including(trades)
            await self._paced(
                self._client.chat_update,
                channel=waiting.channel,
                ts=waiting.ts,
                **self._render(group),
            )
            ALERTS_SENT.inc(len(ids))
            await self._store.attach(ids, waiting.channel, waiting.ts, AlertStatus.POSTED)
            return True
        group = new_group(trades, self._ttl, self._clock.now())
        posted = await self._paced(
            self._client.chat_postMessage, channel=self.channel, **self._render(group)
        )
        ALERTS_SENT.inc(len(ids))
        await self._store.attach(ids, str(posted["channel"]), str(posted["ts"]), group.status)
        self.posted.set()
        return True

    def _due_refresh(self) -> AlertRef | None:
        now = time.monotonic()
        return next((key for key, pending in self._refreshes.items() if pending.due <= now), None)

    def _until_retry(self) -> float | None:
        """Seconds until the next refresh may be tried again (None: none is waiting)."""
        if not self._refreshes:
            return None
        return max(0.0, min(p.due for p in self._refreshes.values()) - time.monotonic())

    async def _refresh(self, ref: AlertRef) -> None:
        # Taken off the queue while it runs: a refresh asked for meanwhile (a state the
        # render below may have missed) is queued anew and runs after it.
        pending = self._refreshes.pop(ref)
        channel_id, ts = ref
        try:
            group = await self._store.group(channel_id, ts)
            if group is not None:
                await self._paced(
                    self._client.chat_update, channel=channel_id, ts=ts, **self._render(group)
                )
        except Exception as error:
            pending.tell(False)
            if not _worth_retrying(error):
                log.warning(
                    "alerts: Slack refused to update message %s in %s: %s", ts, channel_id, error
                )
                return
            pending.failures += 1
            pause = min(REFRESH_RETRY_MAX, REFRESH_RETRY_FIRST * 2 ** (pending.failures - 1))
            log.warning(
                "alerts: cannot update message %s in %s (%s); trying again in %.0f s",
                ts,
                channel_id,
                error,
                pause,
            )
            pending.due = time.monotonic() + pause
            again = self._refreshes.setdefault(ref, pending)
            if again is not pending:  # asked for again meanwhile: now, and keep the backoff
                again.failures = pending.failures
            return
        pending.tell(True)

    def _render(self, group: AlertGroup) -> dict[str, Any]:
        return alert(group, self._ttl).payload()

    async def _paced(self, call: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        delay = self._last_call + self._interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            return await call(**kwargs)
        finally:
            self._last_call = time.monotonic()


class Alerts:
    """The alert component: the outbox deliverer, decisions, and the expiry sweep."""

    def __init__(
        self,
        channel: AlertChannel,
        store: SqlAlertStore,
        clock: Clock,
        ttl: timedelta,
        sweep_seconds: float = 30.0,
    ) -> None:
        self._channel = channel
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._sweep_seconds = sweep_seconds
        self._loops = Loops()

    async def start(self) -> None:
        await self._channel.start()
        self._loops.spawn(self._sweep(), name="alerts:expiry")

    async def stop(self) -> None:
        await self._loops.stop()
        await self._channel.stop()

    async def deliver(self, message: OutboxMessage) -> None:
        await self._channel.deliver(int(message.payload["blocked_trade_id"]))

    async def decided(self, channel_id: str, ts: str) -> asyncio.Future[bool]:
        """A decision was recorded for the message: close it and show who decided. The future
        says whether Slack took the update at the first attempt (it is retried if not)."""
        await self._store.mark(channel_id, ts, AlertStatus.DECIDED)
        return self._channel.refresh(channel_id, ts)

    def refresh(self, channel_id: str, ts: str) -> None:
        self._channel.refresh(channel_id, ts)

    async def expire_due(self) -> None:
        """Close every message nobody answered in time."""
        cutoff = self._clock.now() - self._ttl
        for channel_id, ts in await self._store.due_for_expiry(cutoff):
            if await self._store.mark(channel_id, ts, AlertStatus.EXPIRED):
                self._channel.refresh(channel_id, ts)

    async def _sweep(self) -> None:
        """Expire what is due, then sleep until the next message falls due (at most the sweep
        interval: another replica may have posted it), or until a new message is posted."""
        posted = self._channel.posted
        while self._loops.running:
            posted.clear()
            try:
                await self.expire_due()
                pause = await self._until_next_expiry()
            except Exception:
                log.warning("alerts: expiry sweep failed; trying again later", exc_info=True)
                pause = self._sweep_seconds
            await self._loops.pause(pause, posted)

    async def _until_next_expiry(self) -> float:
        waiting = await self._store.longest_waiting()
        if waiting is None:
            return self._sweep_seconds
        left = (waiting + self._ttl - self._clock.now()).total_seconds()
        return min(self._sweep_seconds, max(left + 0.01, MIN_SWEEP_PAUSE))


def _worth_retrying(error: Exception) -> bool:
    """Whether a failed update may go through later: Slack busy or failing, the network or
    the database; not Slack refusing the message itself (deleted, or not the bot's)."""
    if not isinstance(error, SlackApiError):
        return True
    status = int(getattr(error.response, "status_code", 0) or 0)
    return status == 429 or status >= 500 or error.response.get("error") in _TRANSIENT
