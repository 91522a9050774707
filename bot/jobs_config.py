"""The [jobs] section of the configuration file: when each scheduled job runs.

```toml
[jobs]
timezone = "UTC"                          # the zone the times below are in
misfire_grace_seconds = 3600              # a run missed by less runs once at start-up
lease_seconds = 30                        # a dead leader's jobs move after at most this
trade_threshold = "10 * * * *"            # crontab: minute hour day month weekday
weekly_optimization = "0 3 * * sun"
performance_monitor = "0 */6 * * *"
daily_digest = "0 8 * * *"
weekly_digest = "0 8 * * mon"
cleanup = "0 2 1 * *"
```

Weekdays are written as names (mon … sun): APScheduler numbers them from Monday = 0,
unlike crontab, so a number would silently mean another day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

DEFAULT_SCHEDULES: Mapping[str, str] = {
    "trade_threshold": "10 * * * *",
    "weekly_optimization": "0 3 * * sun",
    "performance_monitor": "0 */6 * * *",
    "daily_digest": "0 8 * * *",
    "weekly_digest": "0 8 * * mon",
    "cleanup": "0 2 1 * *",
}
_OPTIONS = ("timezone", "misfire_grace_seconds", "lease_seconds")
_NUMBERED_WEEKDAY = re.compile(r"\d")


@dataclass(frozen=True)
class JobsSettings:
    schedules: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SCHEDULES))
    timezone: str = "UTC"
    misfire_grace_seconds: int = 3600
    lease_seconds: int = 30

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def misfire_grace(self) -> timedelta:
        return timedelta(seconds=self.misfire_grace_seconds)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    def trigger(self, job: str) -> CronTrigger:
        return CronTrigger.from_crontab(self.schedules[job], timezone=self.zone)


def parse_jobs(table: Mapping[str, Any]) -> JobsSettings:
    """Raise ValueError naming the key and the problem."""
    unknown = set(table) - set(_OPTIONS) - set(DEFAULT_SCHEDULES)
    if unknown:
        known = ", ".join((*_OPTIONS, *DEFAULT_SCHEDULES))
        raise ValueError(f"{sorted(unknown)[0]}: unknown key; known: {known}")
    settings = JobsSettings(
        schedules={job: table.get(job, default) for job, default in DEFAULT_SCHEDULES.items()},
        timezone=_zone_name(table.get("timezone", "UTC")),
        misfire_grace_seconds=_seconds(table, "misfire_grace_seconds", 3600, minimum=0),
        lease_seconds=_seconds(table, "lease_seconds", 30, minimum=3),
    )
    for job, expression in settings.schedules.items():
        _check_crontab(job, expression, settings.zone)
    return settings


def _zone_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(
            f"timezone: must be a zone name such as UTC or Europe/Paris, got {value!r}"
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown time zone {value!r}") from None
    return value


def _seconds(table: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"{key}: must be a whole number of seconds of at least {minimum}, got {value!r}"
        )
    return value


def _check_crontab(job: str, expression: Any, zone: ZoneInfo) -> None:
    if not isinstance(expression, str) or len(expression.split()) != 5:
        raise ValueError(
            f"{job}: must be a crontab 'minute hour day month weekday', got {expression!r}"
        )
    if _NUMBERED_WEEKDAY.search(expression.split()[4]):
        raise ValueError(f"{job}: write weekdays as names (mon … sun), got {expression!r}")
    try:
        CronTrigger.from_crontab(expression, timezone=zone)
    except ValueError as error:
        raise ValueError(f"{job}: {error}") from None
