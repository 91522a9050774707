"""Failures people must hear of, queued for Slack like any other announcement (bot.event_announcer
posts them as the `error` notification setting says)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.outbox import enqueue

ERROR_TOPIC = "slack.error"
MESSAGE_MAX = 2000  # what failed and why; a traceback belongs in the log


def enqueue_error(session: AsyncSession, source: str, message: str, now: datetime) -> None:
    """In the transaction that records the failure, so it is reported exactly when it is."""
    enqueue(session, ERROR_TOPIC, error_payload(source, message), now)


def error_payload(source: str, message: str) -> dict[str, str]:
    return {"source": source[:200], "message": message[:MESSAGE_MAX]}
