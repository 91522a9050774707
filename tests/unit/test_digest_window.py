"""The period a scheduled digest covers: from its previous scheduled time to this one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.jobs import digest_window

DAILY = CronTrigger.from_crontab("0 8 * * *", timezone=UTC)


def test_a_digest_on_time_covers_the_day_before_it() -> None:
    due = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    assert digest_window(DAILY, "daily", due) == (due - timedelta(days=1), due)


def test_a_digest_caught_up_late_still_covers_its_own_day() -> None:
    late = datetime(2026, 11, 23, 8, 40, tzinfo=UTC)  # the replica came back 40 min late

    since, until = digest_window(DAILY, "daily", late)

    assert (since, until) == (datetime(2026, 11, 22, 8, 0, tzinfo=UTC), late.replace(minute=0))


def test_consecutive_digests_meet_across_a_daylight_saving_change() -> None:
    paris = ZoneInfo("Europe/Paris")
    daily = CronTrigger.from_crontab("0 8 * * *", timezone=paris)
    first = digest_window(daily, "daily", datetime(2026, 3, 28, 8, 0, tzinfo=paris))
    second = digest_window(daily, "daily", datetime(2026, 3, 29, 8, 0, tzinfo=paris))

    assert first[1] == second[0]  # no overlap, no gap
    assert second[1] - second[0] == timedelta(hours=23)  # clocks went forward that night


def test_a_weekly_digest_covers_the_week_since_its_last_time() -> None:
    weekly = CronTrigger.from_crontab("0 8 * * mon", timezone=UTC)
    due = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday

    assert digest_window(weekly, "weekly", due + timedelta(hours=2)) == (
        due - timedelta(days=7),
        due,
    )
