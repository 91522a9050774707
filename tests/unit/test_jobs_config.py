"""The [jobs] section: every time configurable, UTC by default, and a mistake named in one
line at start."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings


def settings_from(tmp_path: Path, toml: str) -> Settings:
    config = tmp_path / "paramadapt.toml"
    config.write_text(toml)
    return load_settings({"PARAMADAPT_CONFIG": str(config)})


def test_defaults_follow_the_specification() -> None:
    jobs = load_settings({}).jobs
    assert jobs.schedules == {
        "trade_threshold": "10 * * * *",
        "weekly_optimization": "0 3 * * sun",
        "performance_monitor": "0 */6 * * *",
        "daily_digest": "0 8 * * *",
        "weekly_digest": "0 8 * * mon",
        "cleanup": "0 2 1 * *",
    }
    assert (jobs.timezone, jobs.misfire_grace_seconds, jobs.lease_seconds) == ("UTC", 3600, 30)


def test_times_are_read_in_the_configured_time_zone(tmp_path: Path) -> None:
    jobs = settings_from(
        tmp_path,
        '[jobs]\ntimezone = "Europe/Paris"\ndaily_digest = "30 7 * * *"\nlease_seconds = 9\n',
    ).jobs
    after = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    # 07:30 in Paris is 06:30 UTC in November.
    assert jobs.trigger("daily_digest").get_next_fire_time(None, after) == datetime(
        2026, 11, 24, 6, 30, tzinfo=UTC
    )
    assert jobs.lease_seconds == 9


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('cleanup = "every month"', "jobs.cleanup: must be a crontab"),
        ('cleanup = "0 2 32 * *"', "jobs.cleanup: "),
        ('weekly_digest = "0 8 * * 1"', "jobs.weekly_digest: write weekdays as names"),
        ('timezone = "Mars/Olympus"', "jobs.timezone: unknown time zone 'Mars/Olympus'"),
        ("misfire_grace_seconds = -1", "jobs.misfire_grace_seconds: must be a whole number"),
        (
            "lease_seconds = 1",
            "jobs.lease_seconds: must be a whole number of seconds of at least 3",
        ),
        ('digest = "0 8 * * *"', "jobs.digest: unknown key; known: timezone"),
    ],
)
def test_a_mistake_names_the_setting(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^PARAMADAPT_CONFIG") as raised:
        settings_from(tmp_path, f"[jobs]\n{toml}\n")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
