"""A clock the tests move: core takes the time from deps.clock, so no test waits for it."""

from __future__ import annotations

from datetime import datetime, timedelta


class MovableClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)
