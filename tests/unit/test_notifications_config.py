"""The [notifications] and [digest] sections: the documented shape, where each event type goes,
and one clear line naming the setting when it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings
from bot.notifications import EventType, Mode, channel_for, digest_channel

DOCUMENTED = """
[slack]
risk_channel = "#risk"

[notifications]
blocked_trade = "on"
learning_session = { mode = "on", channel = "#learning" }
override_decision = "silent"
error = "off"

[digest]
channel = "#trading-digest"
daily = true
weekly = false
"""


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "paramadapt.toml"
    path.write_text(text)
    return load_settings({"PARAMADAPT_CONFIG": str(path)})


def test_each_event_type_goes_to_its_channel_or_nowhere(tmp_path: Path) -> None:
    settings = load(tmp_path, DOCUMENTED)

    assert channel_for(settings, EventType.BLOCKED_TRADE) == "#risk"
    assert channel_for(settings, EventType.LEARNING_SESSION) == "#learning"
    assert channel_for(settings, EventType.OVERRIDE_DECISION) is None  # silent
    assert channel_for(settings, EventType.ERROR) is None  # off
    assert channel_for(settings, EventType.ROLLBACK) == "#risk"  # unset: on, risk channel
    assert settings.notifications.of(EventType.OVERRIDE_DECISION).mode is Mode.SILENT


def test_the_digest_section_names_its_channel_and_which_digests_run(tmp_path: Path) -> None:
    settings = load(tmp_path, DOCUMENTED)

    assert digest_channel(settings) == "#trading-digest"
    assert (settings.digest.daily, settings.digest.weekly) == (True, False)


def test_without_the_sections_everything_is_posted_to_the_risk_channel() -> None:
    settings = load_settings({})

    assert all(channel_for(settings, event) == "#risk-blocked" for event in EventType)
    assert digest_channel(settings) == "#risk-blocked"
    assert settings.digest.daily and settings.digest.weekly


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[notifications]\nerror = "loud"', "notifications.error: must be on, silent or off"),
        ('[notifications]\ntrades = "on"', "notifications.trades: not an event type"),
        ("[notifications]\nerror = { colour = 1 }", 'notifications.error: must be "on"'),
        ('[notifications]\nerror = { channel = "" }', "notifications.error.channel: must be a"),
        ('[notifications]\nerror = { mode = "never" }', "notifications.error.mode: must be on,"),
        ('[digest]\nweekly = "yes"', "digest.weekly: must be true or false, got 'yes'"),
        ("[digest]\nhour = 8", "digest.hour: unknown; [digest] takes channel, daily and weekly"),
        ("notifications = 3", "[notifications] must be a table"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)

    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
